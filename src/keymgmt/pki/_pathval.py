"""The Ed25519 path: RFC 5280 path validation for chains cryptography refuses.

``cryptography.x509.verification`` follows the CA/Browser Forum profile,
which forbids Ed25519 keys and signatures anywhere in a chain. keymgmt
issues Ed25519 CAs, so it must verify them too. This module is the fallback
for exactly those chains: it builds candidate paths (issuer name plus key
identifier, depth-first, bounded) and applies RFC 5280 section 6.1 as far as
keymgmt's own profiles reach:

* every signature (``verify_directly_issued_by``: name chaining + signature);
* validity of every certificate at the validation time;
* basic constraints (cA, pathLenConstraint; self-issued certificates do not
  count against it) and keyCertSign on every CA;
* name constraints on DNS names, email addresses and IP addresses (a
  constraint of another name form fails closed);
* any unknown critical extension fails the path.

Certificate policies are not processed (keymgmt issues none; a critical
policy extension fails closed as unknown). Purpose, name and revocation are
checked by the caller, as for the fast path.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from keymgmt.errors import CertificateVerificationError
from keymgmt.pki._failure import VerificationFailure, refusal

__all__ = ["name_allowed", "validate_path"]

_KNOWN_CRITICAL = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.NAME_CONSTRAINTS,
    }
)


def _ext(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _key_id(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> bytes | None:
    value = _ext(cert, cls)
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return value.key_identifier
    return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    aki = _key_id(cert, x509.AuthorityKeyIdentifier)
    ski = _key_id(issuer, x509.SubjectKeyIdentifier)
    if aki is not None and ski is not None and aki != ski:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm
        return False
    return True


def _self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


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
    anchor_set = set(anchors)
    pool = [*intermediates, *anchors]

    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
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
            if candidate in path:
                continue
            if _issued_by(top, candidate):
                found = extend([*path, candidate])
                if found is not None:
                    return found
        return None

    found = extend([leaf])
    if found is not None:
        return found
    if errors:
        raise errors[0]
    if not any(leaf.issuer == c.subject for c in pool):
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
        for ext in cert.extensions:
            if ext.critical and ext.oid not in _KNOWN_CRITICAL:
                raise refusal(
                    VerificationFailure.UNSUPPORTED_CRITICAL_EXTENSION,
                    f"unsupported critical extension {ext.oid.dotted_string}",
                    cert,
                )
    cas = path[1:]
    for depth, ca in enumerate(cas, start=1):
        bc = _ext(ca, x509.BasicConstraints)
        if not isinstance(bc, x509.BasicConstraints) or not bc.ca:
            raise refusal(VerificationFailure.NOT_A_CA, "an issuer in the chain is not a CA", ca)
        ku = _ext(ca, x509.KeyUsage)
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
        nc = _ext(ca, x509.NameConstraints)
        if isinstance(nc, x509.NameConstraints):
            for subject_cert in path[:depth]:
                if subject_cert is not path[0] and _self_issued(subject_cert):
                    continue
                _check_names(nc, subject_cert, ca)


def _names(cert: x509.Certificate) -> list[x509.GeneralName]:
    san = _ext(cert, x509.SubjectAlternativeName)
    return list(san) if isinstance(san, x509.SubjectAlternativeName) else []


def _dns_within(name: str, base: str) -> bool:
    name, base = name.lower().rstrip("."), base.lower().rstrip(".").lstrip(".")
    return name == base or name.endswith("." + base)


def _matches(name: x509.GeneralName, tree: x509.GeneralName) -> bool | None:
    """Whether ``name`` is inside ``tree``; None when the forms differ."""
    if isinstance(name, x509.DNSName) and isinstance(tree, x509.DNSName):
        return _dns_within(name.value, tree.value)
    if isinstance(name, x509.RFC822Name) and isinstance(tree, x509.RFC822Name):
        base = tree.value.lower()
        value = name.value.lower()
        if "@" in base:
            return value == base
        host = value.rpartition("@")[2]
        return host == base.lstrip(".") if not base.startswith(".") else host.endswith(base)
    if isinstance(name, x509.IPAddress) and isinstance(tree, x509.IPAddress):
        network = tree.value
        address = name.value
        if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network) and isinstance(
            address, ipaddress.IPv4Address | ipaddress.IPv6Address
        ):
            return address.version == network.version and address in network
        return False
    return None


_SUPPORTED = (x509.DNSName, x509.RFC822Name, x509.IPAddress)


def name_allowed(nc: x509.NameConstraints, name: x509.GeneralName) -> bool:
    """Whether ``name`` satisfies ``nc`` (forms keymgmt does not process pass here)."""
    if not isinstance(name, _SUPPORTED):
        return True
    if any(_matches(name, tree) for tree in nc.excluded_subtrees or ()):
        return False
    permitted = [t for t in nc.permitted_subtrees or () if type(t) is type(name)]
    return not permitted or any(_matches(name, t) for t in permitted)


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
        for tree in nc.excluded_subtrees or ():
            if _matches(name, tree):
                raise refusal(
                    VerificationFailure.NAME_CONSTRAINTS, f"{name.value} is excluded by a CA", cert
                )
        permitted = [t for t in nc.permitted_subtrees or () if type(t) is type(name)]
        if permitted and not any(_matches(name, t) for t in permitted):
            raise refusal(
                VerificationFailure.NAME_CONSTRAINTS,
                f"{name.value} is outside a CA's permitted names",
                cert,
            )
