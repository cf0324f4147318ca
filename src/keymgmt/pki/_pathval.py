"""keymgmt's strict RFC 5280 path validator, for chains cryptography refuses.

``cryptography.x509.verification`` follows the CA/Browser Forum profile,
which forbids Ed25519 keys and signatures anywhere in a chain and refuses
some RFC 5280-valid paths (non-critical basic constraints, CA certificates
as leaves, self-issued intermediates, names that chain only after
normalisation, directoryName and URI name constraints, critical policy
extensions). This module validates exactly those chains: Ed25519 chains
always, and any chain cryptography's verifier refused (the verifier asks it
second). It builds candidate paths (issuer name, compared after RFC 4518-
style normalisation, plus key identifier; depth-first, bounded) and applies
RFC 5280 section 6.1:

* every signature (``verify_directly_issued_by``), with cryptography's
  algorithm policy: RSA keys of at least 2048 bits with PKCS#1 v1.5 or PSS
  and SHA-256/384/512, ECDSA on P-256/P-384/P-521 with SHA-256/384/512,
  Ed25519 and Ed448; anything else (DSA, SHA-1, small RSA) is refused, so
  the fallback never accepts what the fast path refuses on algorithm grounds;
* X.509 v3 only, validity of every certificate at the validation time;
* basic constraints (cA, pathLenConstraint; self-issued certificates do not
  count against it) and keyCertSign on every CA;
* name constraints on DNS names, email addresses (also the subject's
  emailAddress when there is no SAN), IP addresses, URIs (host) and
  directory names (the subject and SAN directory names); a constraint of
  another name form fails closed;
* any critical extension it does not process fails the path.

Certificate policies (the four policy extensions are processed) are left
to :mod:`keymgmt.pki._policy`; purpose, name and revocation are checked by
the caller, as for the fast path.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import re
import unicodedata
import urllib.parse
from collections.abc import Sequence
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PSS, PKCS1v15
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

from keymgmt.errors import CertificateVerificationError
from keymgmt.pki._failure import VerificationFailure, refusal
from keymgmt.pki._keys import verify_signature

__all__ = [
    "acceptable_algorithms",
    "extension_value",
    "name_allowed",
    "normalised_name",
    "validate_path",
]

_KNOWN_CRITICAL = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.NAME_CONSTRAINTS,
        # Processed by keymgmt.pki._policy on every path this module returns.
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.POLICY_CONSTRAINTS,
        ExtensionOID.POLICY_MAPPINGS,
        ExtensionOID.INHIBIT_ANY_POLICY,
    }
)

# cryptography's web PKI algorithm policy (what its verifier accepts), plus EdDSA.
_SIGNATURES = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
        SignatureAlgorithmOID.RSASSA_PSS,
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
        SignatureAlgorithmOID.ED25519,
        SignatureAlgorithmOID.ED448,
    }
)
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_PSS_HASHES = ("sha256", "sha384", "sha512")


def acceptable_algorithms(cert: x509.Certificate, *, signed: bool = True) -> bool:
    """Whether ``cert``'s key (and, if ``signed``, its signature) meets the algorithm policy.

    The policy is cryptography's web PKI one plus EdDSA: RSA >= 2048 bits,
    ECDSA on P-256/P-384/P-521, Ed25519, Ed448; signatures RSA PKCS#1 v1.5 or
    PSS with SHA-256/384/512, ECDSA with SHA-256/384/512, Ed25519, Ed448.
    """
    try:
        key = cert.public_key()
    except Exception:  # an unparseable or unsupported key (DSA parameters inherited, ...)
        return False
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            return False
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _CURVES):
            return False
    elif not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return False
    if not signed:
        return True
    return acceptable_signature(cert)


def acceptable_signature(
    signed: x509.Certificate | x509.CertificateRevocationList,
) -> bool:
    """Whether a certificate's or a CRL's signature algorithm meets the algorithm policy.

    RSA PKCS#1 v1.5 or PSS with SHA-256/384/512 (PSS with MGF1 over the same
    hash and a salt as long as the hash output, as RFC 8017 recommends and
    the CA/Browser Forum requires), ECDSA with SHA-256/384/512, Ed25519,
    Ed448: no SHA-1, no DSA.
    """
    oid = signed.signature_algorithm_oid
    if oid not in _SIGNATURES:
        return False
    if oid == SignatureAlgorithmOID.RSASSA_PSS:
        hash_algorithm = signed.signature_hash_algorithm
        if hash_algorithm is None or hash_algorithm.name not in _PSS_HASHES:
            return False
        parameters = signed.signature_algorithm_parameters
        if not isinstance(parameters, PSS):
            return False
        # cryptography keeps the parsed MGF1 hash and salt length private
        # (``_mgf._algorithm``, ``_salt_length``); both are always set on
        # parameters it parsed from a certificate or CRL.
        mgf_hash = getattr(getattr(parameters, "_mgf", None), "_algorithm", None)
        salt_length = getattr(parameters, "_salt_length", None)
        return (
            mgf_hash is not None
            and mgf_hash.name == hash_algorithm.name
            and salt_length == hash_algorithm.digest_size
        )
    return True


# RFC 4518 2.2: these map to SPACE; the other C0/C1 controls map to nothing
# (so "Good<US>Corp" is "GoodCorp", not "Good Corp").
_TO_SPACE = (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F)
_MAP: dict[int, str | None] = {
    **dict.fromkeys((*_TO_SPACE, *range(0x2000, 0x200B), 0x3000), " "),
    **dict.fromkeys((*range(0x09), *range(0x0E, 0x20), *range(0x7F, 0x85), *range(0x86, 0xA0))),
}
_SPACES = re.compile(r"\s+")


def _normal_value(value: str | bytes) -> str | bytes:
    if isinstance(value, bytes):
        return value
    return _SPACES.sub(" ", value.translate(_MAP).strip()).casefold()


def _compatibility_name(name: x509.Name) -> tuple[frozenset[tuple[str, str | bytes]], ...]:
    """``normalised_name`` after NFKC as well (RFC 4518 2.3): full-width E (U+FF25) is "e"."""
    return tuple(
        frozenset(
            (oid, unicodedata.normalize("NFKC", value) if isinstance(value, str) else value)
            for oid, value in rdn
        )
        for rdn in normalised_name(name)
    )


def normalised_name(name: x509.Name) -> tuple[frozenset[tuple[str, str | bytes]], ...]:
    """``name`` for comparison (RFC 5280 7.1): string type, case and spaces ignored.

    Each RDN becomes a set of (attribute type, value with RFC 4518's space
    characters mapped to a space and the other control characters removed,
    leading and trailing space removed, inner runs of space collapsed, case
    folded). Compatibility forms (NFKC) are not folded here, only when an
    excluded directoryName subtree is checked.
    """
    return tuple(
        frozenset((attr.oid.dotted_string, _normal_value(attr.value)) for attr in rdn)
        for rdn in name.rdns
    )


def _same_name(a: x509.Name, b: x509.Name) -> bool:
    return a == b or normalised_name(a) == normalised_name(b)


def extension_value(
    cert: x509.Certificate, cls: type[x509.ExtensionType]
) -> x509.ExtensionType | None:
    """The value of ``cert``'s extension of type ``cls``, or None when it has none."""
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _key_id(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> bytes | None:
    value = extension_value(cert, cls)
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return value.key_identifier
    return None


def _names_issuer(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` is named by ``cert`` (issuer name, key identifier if both have one)."""
    if not _same_name(cert.issuer, issuer.subject):
        return False
    aki = _key_id(cert, x509.AuthorityKeyIdentifier)
    ski = _key_id(issuer, x509.SubjectKeyIdentifier)
    return aki is None or ski is None or aki == ski


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``cert``'s signature verifies with ``issuer``'s key."""
    try:
        try:
            cert.verify_directly_issued_by(issuer)
        except ValueError:
            # The names differ in encoding (string type, case, spaces) and are
            # equal only after normalisation: check the signature itself.
            _verify_signature(cert, issuer)
    except Exception:  # InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm
        return False
    return True


def _verify_signature(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """Check ``cert``'s signature with ``issuer``'s key (no name comparison).

    Raises:
        InvalidSignatureError, ValueError, UnsupportedAlgorithm: it does not verify.
    """
    key = issuer.public_key()
    padding = cert.signature_algorithm_parameters
    if not isinstance(padding, PSS | PKCS1v15):
        if isinstance(key, rsa.RSAPublicKey):
            raise ValueError("unexpected RSA signature parameters")
        padding = None
    verify_signature(
        key, cert.signature, cert.tbs_certificate_bytes, cert.signature_hash_algorithm, padding
    )


def _self_issued(cert: x509.Certificate) -> bool:
    return _same_name(cert.issuer, cert.subject)


# Signature checks one path search may spend: candidate issuers that share a
# name (hostile peers can send many) cannot make path building exponential.
_SIGNATURE_BUDGET = 256
# Candidate paths one search may walk: certificates that verify each other
# (one key, many certificates) cost one signature check per pair but
# factorially many orders; past this the search gives up (fails closed).
_PATH_BUDGET = 1024


class _GaveUp(Exception):
    pass


def validate_path(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: _dt.datetime,
    *,
    max_depth: int = 8,
) -> list[x509.Certificate]:
    """Find and validate a path from ``leaf`` to one of ``anchors``.

    Returns:
        the path, leaf first, trust anchor last.

    Raises:
        CertificateVerificationError: no valid path; ``reason`` names the first
            problem found on the most promising candidate.
    """
    errors: list[CertificateVerificationError] = []
    bad_signatures: list[CertificateVerificationError] = []
    anchor_set = set(anchors)
    pool = [*intermediates, *anchors]
    signed: dict[tuple[int, int], bool] = {}  # (id(cert), id(issuer)): signature checked once
    budget = [_SIGNATURE_BUDGET]
    walked = [_PATH_BUDGET]

    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        walked[0] -= 1
        if walked[0] < 0:
            raise _GaveUp
        top = path[-1]
        if top in anchor_set:
            try:
                _check_path(path, at)
            except CertificateVerificationError as exc:
                errors.append(exc)
                return None
            return path
        if len(path) > max_depth:
            errors.append(refusal(VerificationFailure.INVALID_PATH, "the chain is too long", leaf))
            return None
        for candidate in pool:
            if candidate in path or not _names_issuer(top, candidate):
                continue
            key = (id(top), id(candidate))
            if key not in signed:
                if budget[0] <= 0:
                    errors.append(
                        refusal(
                            VerificationFailure.INVALID_PATH,
                            "path building gave up (too many candidate issuers)",
                            leaf,
                        )
                    )
                    return None
                budget[0] -= 1
                signed[key] = _signed_by(top, candidate)
                if not signed[key]:
                    bad_signatures.append(
                        refusal(
                            VerificationFailure.BAD_SIGNATURE,
                            "a certificate's signature does not verify with its issuer's key",
                            top,
                        )
                    )
            if signed[key]:
                found = extend([*path, candidate])
                if found is not None:
                    return found
        return None

    try:
        found = extend([leaf])
    except _GaveUp:
        raise refusal(
            VerificationFailure.INVALID_PATH,
            "path building gave up (too many candidate paths)",
            leaf,
        ) from None
    if found is not None:
        return found
    if errors:
        raise errors[0]
    if bad_signatures:
        raise bad_signatures[0]
    if not any(_same_name(leaf.issuer, c.subject) for c in pool):
        raise refusal(
            VerificationFailure.UNKNOWN_ISSUER, "no trusted issuer for the certificate", leaf
        )
    raise refusal(
        VerificationFailure.UNKNOWN_ISSUER,
        "the chain does not lead to a trust anchor (bad signature?)",
        leaf,
    )


def _check_path(path: list[x509.Certificate], at: _dt.datetime) -> None:
    # path: leaf ... anchor. Walk from the anchor down (RFC 5280 6.1 order).
    for cert in path:
        if at < cert.not_valid_before_utc:
            raise refusal(
                VerificationFailure.NOT_YET_VALID,
                "a certificate in the chain is not yet valid",
                cert,
            )
        if at > cert.not_valid_after_utc:
            raise refusal(
                VerificationFailure.EXPIRED, "a certificate in the chain has expired", cert
            )
        if cert.version is not x509.Version.v3:
            raise refusal(
                VerificationFailure.INVALID_PATH, "only X.509 v3 certificates are accepted", cert
            )
        if not acceptable_algorithms(cert, signed=False):
            raise refusal(
                VerificationFailure.INVALID_PATH,
                "a key algorithm outside the accepted policy "
                "(RSA >= 2048, P-256/384/521, Ed25519/Ed448)",
                cert,
            )
        if cert is not path[-1] and not acceptable_signature(cert):
            raise refusal(
                VerificationFailure.BAD_SIGNATURE,
                "a signature algorithm outside the accepted policy (SHA-256 or better; "
                "RSA-PSS with MGF1 over the same hash and a salt of the hash's length)",
                cert,
            )
        for ext in cert.extensions:
            if ext.critical and ext.oid not in _KNOWN_CRITICAL:
                raise refusal(
                    VerificationFailure.UNSUPPORTED_CRITICAL_EXTENSION,
                    f"unsupported critical extension {ext.oid.dotted_string}",
                    cert,
                )
    cas = path[1:]
    for depth, ca in enumerate(cas, start=1):
        bc = extension_value(ca, x509.BasicConstraints)
        if not isinstance(bc, x509.BasicConstraints) or not bc.ca:
            raise refusal(VerificationFailure.NOT_A_CA, "an issuer in the chain is not a CA", ca)
        ku = extension_value(ca, x509.KeyUsage)
        if isinstance(ku, x509.KeyUsage) and not ku.key_cert_sign:
            raise refusal(
                VerificationFailure.WRONG_USAGE,
                "an issuer's key usage forbids certificate signing",
                ca,
            )
        if bc.path_length is not None:
            below = [c for c in path[1:depth] if not _self_issued(c)]
            if len(below) > bc.path_length:
                raise refusal(
                    VerificationFailure.PATH_LENGTH, "the chain exceeds a CA's path length", ca
                )
        nc = extension_value(ca, x509.NameConstraints)
        if isinstance(nc, x509.NameConstraints):
            for subject_cert in path[:depth]:
                if subject_cert is not path[0] and _self_issued(subject_cert):
                    continue
                _check_names(nc, subject_cert, ca)


def _names(cert: x509.Certificate) -> list[x509.GeneralName]:
    """The names a name constraint applies to: SANs, the subject DN, legacy emailAddress."""
    san = extension_value(cert, x509.SubjectAlternativeName)
    names: list[x509.GeneralName] = (
        list(san) if isinstance(san, x509.SubjectAlternativeName) else []
    )
    if cert.subject.rdns:
        names.append(x509.DirectoryName(cert.subject))
    if not isinstance(san, x509.SubjectAlternativeName):
        # RFC 5280 4.2.1.10: with no SAN, rfc822Name constraints apply to the
        # subject's emailAddress attributes.
        for attr in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
            if isinstance(attr.value, str):
                names.append(x509.RFC822Name(attr.value))
    return names


def _dns_within(name: str, base: str) -> bool:
    name, base = name.lower().rstrip("."), base.lower().rstrip(".").lstrip(".")
    # RFC 5280 4.2.1.10: the empty name is every name (labels added on the left).
    return not base or name == base or name.endswith("." + base)


def _dns_touches(name: str, base: str) -> bool:
    """Whether any host ``name`` stands for is in ``base`` (a wildcard stands for many)."""
    if _dns_within(name, base):
        return True
    if not name.startswith("*."):
        return False
    # "*.p" stands for every "x.p": inside base when p is, or when base is one such x.p.
    parent = name[2:].lower().rstrip(".")
    base = base.lower().rstrip(".").lstrip(".")
    return _dns_within(parent, base) or (
        base.endswith("." + parent) and base.count(".") == parent.count(".") + 1
    )


def _host_within(host: str, base: str) -> bool:
    """RFC 5280 4.2.1.10 for URI and email hosts: ``.x`` means below x; ``x`` means x."""
    host, base = host.lower().rstrip("."), base.lower().rstrip(".")
    if base.startswith("."):
        return host.endswith(base)
    return host == base


def _dn_within(name: x509.Name, base: x509.Name) -> bool:
    names, bases = normalised_name(name), normalised_name(base)
    return len(names) >= len(bases) and names[: len(bases)] == bases


def _dn_touches(name: x509.Name, base: x509.Name) -> bool:
    """``_dn_within``, also after NFKC (for excluded subtrees: only ever more exclusions)."""
    if _dn_within(name, base):
        return True
    names, bases = _compatibility_name(name), _compatibility_name(base)
    return len(names) >= len(bases) and names[: len(bases)] == bases


def _matches(
    name: x509.GeneralName, tree: x509.GeneralName, *, excluded: bool = False
) -> bool | None:
    """Whether ``name`` is inside ``tree``; None when the forms differ.

    With ``excluded``, whether any part of ``name`` is (a wildcard DNS name
    is excluded when one of the names it stands for is).
    """
    if isinstance(name, x509.DNSName) and isinstance(tree, x509.DNSName):
        if excluded:
            return _dns_touches(name.value, tree.value)
        return _dns_within(name.value, tree.value)
    if (
        excluded
        and isinstance(tree, x509.RFC822Name | x509.UniformResourceIdentifier)
        and type(name) is type(tree)
        and not tree.value.strip(".")
    ):
        return True  # an empty excluded subtree: every name of its form (fail closed)
    if isinstance(name, x509.RFC822Name) and isinstance(tree, x509.RFC822Name):
        base = tree.value
        local, _, domain = name.value.rpartition("@")
        if "@" in base:
            # One mailbox (RFC 5280 4.2.1.10, 7.5): the local part exactly,
            # the domain without regard to case. An excluded one also
            # excludes its local part's other spellings (fail closed: many
            # mail systems fold case).
            base_local, _, base_domain = base.rpartition("@")
            if excluded:
                base_local, local = base_local.lower(), local.lower()
            return local == base_local and domain.lower() == base_domain.lower()
        return _host_within(domain, base)
    if isinstance(name, x509.IPAddress) and isinstance(tree, x509.IPAddress):
        network = tree.value
        address = name.value
        if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network) and isinstance(
            address, ipaddress.IPv4Address | ipaddress.IPv6Address
        ):
            return address.version == network.version and address in network
        return False
    if isinstance(name, x509.UniformResourceIdentifier) and isinstance(
        tree, x509.UniformResourceIdentifier
    ):
        host = _uri_host(name.value)
        return host is not None and _host_within(host, tree.value)
    if isinstance(name, x509.DirectoryName) and isinstance(tree, x509.DirectoryName):
        if excluded:
            return _dn_touches(name.value, tree.value)
        return _dn_within(name.value, tree.value)
    return None


_SUPPORTED = (
    x509.DNSName,
    x509.RFC822Name,
    x509.IPAddress,
    x509.UniformResourceIdentifier,
    x509.DirectoryName,
)


def name_allowed(nc: x509.NameConstraints, name: x509.GeneralName) -> bool:
    """Whether ``name`` satisfies ``nc`` (forms keymgmt does not process pass here)."""
    if not isinstance(name, _SUPPORTED):
        return True
    if _excluded_uri_unknown(name, nc):  # as path validation: no well-formed host, refused
        return False
    if any(_matches(name, tree, excluded=True) for tree in nc.excluded_subtrees or ()):
        return False
    permitted = [t for t in nc.permitted_subtrees or () if type(t) is type(name)]
    return not permitted or any(_matches(name, t) for t in permitted)


_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
# In a URI's authority: a userinfo separator, a path separator to WHATWG
# parsers, an escape (each parser decodes, or not, differently).
_AMBIGUOUS_AUTHORITY: Final = ("@", "\\", "%")


def _uri_host(uri: str) -> str | None:
    """The host of ``uri`` when it is a plain DNS name or an IP literal, else None.

    Anything else is read differently by different URI parsers, so it cannot
    be placed in or out of a URI subtree: whitespace or a control character
    anywhere (urllib silently drops tabs and newlines; WHATWG parsers trim
    and drop them too, at other places), and in the authority a backslash
    (WHATWG parsers read ``https://evil.com\\@example.com/`` as host
    ``evil.com``, urllib as userinfo then host ``example.com``), a
    percent-escape, or any userinfo at all.
    """
    if any(c.isspace() or not c.isprintable() for c in uri):
        return None
    try:
        parts = urllib.parse.urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return None
    if host is None or any(c in parts.netloc for c in _AMBIGUOUS_AUTHORITY):
        return None
    if _HOST.fullmatch(host):
        return host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


def _excluded_uri_unknown(name: x509.GeneralName, nc: x509.NameConstraints) -> bool:
    # A URI without a (well-formed) host cannot be placed in or out of a URI
    # subtree: fail closed.
    if not isinstance(name, x509.UniformResourceIdentifier):
        return False
    trees = [*(nc.permitted_subtrees or ()), *(nc.excluded_subtrees or ())]
    if not any(isinstance(t, x509.UniformResourceIdentifier) for t in trees):
        return False
    return _uri_host(name.value) is None


def _check_names(nc: x509.NameConstraints, cert: x509.Certificate, ca: x509.Certificate) -> None:
    trees = [*(nc.permitted_subtrees or ()), *(nc.excluded_subtrees or ())]
    if any(not isinstance(t, _SUPPORTED) for t in trees):
        raise refusal(
            VerificationFailure.NAME_CONSTRAINTS,
            "a name constraint form keymgmt does not process (fails closed)",
            ca,
        )
    for name in _names(cert):
        if not isinstance(name, _SUPPORTED):
            continue
        shown = name.value.rfc4514_string() if isinstance(name, x509.DirectoryName) else name.value
        if _excluded_uri_unknown(name, nc):
            raise refusal(
                VerificationFailure.NAME_CONSTRAINTS,
                f"{shown} has no well-formed host to check against a CA's URI constraints",
                cert,
            )
        for tree in nc.excluded_subtrees or ():
            if _matches(name, tree, excluded=True):
                raise refusal(
                    VerificationFailure.NAME_CONSTRAINTS, f"{shown} is excluded by a CA", cert
                )
        permitted = [t for t in nc.permitted_subtrees or () if type(t) is type(name)]
        if permitted and not any(_matches(name, t) for t in permitted):
            raise refusal(
                VerificationFailure.NAME_CONSTRAINTS,
                f"{shown} is outside a CA's permitted names",
                cert,
            )
