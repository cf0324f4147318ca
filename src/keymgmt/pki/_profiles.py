"""Certificate profiles as data: which extensions each kind of certificate gets.

A profile is a frozen value, not code: the issuing CA reads it to decide key
usage, extended key usage, basic constraints and validity, and whether names
from a request are copied. Anything a CSR asks for beyond the profile is
dropped, so a CSR cannot make itself a CA. Subject and authority key
identifiers are always added; CRL distribution points and OCSP (AIA) URLs
when the issuing CA has them configured; name constraints only on CAs.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from keymgmt.errors import InvalidArgumentError
from keymgmt.pki._keys import CertificatePublicKey
from keymgmt.pki._names import (
    BASIC_NAME_FORMS,
    NAME_FORMS,
    check_dns_name,
    check_email,
    check_general_name,
    check_uri,
)

__all__ = [
    "CODE_SIGNING",
    "INTERMEDIATE_CA",
    "OCSP_SIGNING",
    "PROFILES",
    "ROOT_CA",
    "TLS_CLIENT",
    "MAX_PATH_LENGTH",
    "TLS_SERVER",
    "Extension",
    "ExtensionTemplate",
    "KeyUsageBit",
    "Profile",
    "build_extensions",
    "check_path_length",
    "extension_template",
    "name_constraints",
    "parse_names",
]

KeyUsageBit = str  # one of the cryptography.x509.KeyUsage keyword names

_KU_BITS: Final = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def _bits(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _check_bits(_inst: object, _attr: object, value: frozenset[str]) -> None:
    unknown = sorted(set(value) - set(_KU_BITS))
    if unknown:
        raise InvalidArgumentError(f"unknown key usage bits: {', '.join(unknown)}")


def _check_forms(_inst: object, _attr: object, value: frozenset[str]) -> None:
    unknown = sorted(set(value) - NAME_FORMS)
    if unknown:
        raise InvalidArgumentError(f"unknown subject alternative name forms: {', '.join(unknown)}")


#: The largest pathLenConstraint taken (far beyond any real hierarchy; an
#: INTEGER the certificate encoder cannot hold was a TypeError).
MAX_PATH_LENGTH: Final = 2**31 - 1


def check_path_length(value: object) -> None:
    """Refuse a pathLenConstraint that is not None or an int from 0 to :data:`MAX_PATH_LENGTH`.

    Raises:
        InvalidArgumentError: anything else (a string, a bool, a negative or huge int).
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"path_length must be an int, got {type(value).__name__}")
    if not 0 <= value <= MAX_PATH_LENGTH:
        raise InvalidArgumentError(f"path_length must be from 0 to {MAX_PATH_LENGTH}")


@attrs.frozen(kw_only=True)
class Profile:
    """What one kind of certificate contains.

    Attributes:
        name: the profile's stable name (recorded with each issued certificate).
        is_ca: basic constraints cA (critical); CA profiles also get keyCertSign+cRLSign.
        path_length: basic constraints pathLenConstraint (CAs only; None = unlimited).
        key_usage: key usage bits (critical), as ``cryptography.x509.KeyUsage`` names.
        rsa_key_encipherment: add keyEncipherment when the subject key is RSA
            (TLS key transport); ignored for other key types.
        extended_key_usage: EKU purposes; empty = no EKU extension.
        validity: default lifetime (clipped to the issuer's).
        copy_names: copy subject alternative names from the request.
        require_names: refuse issuance without at least one subject alternative name.
        name_forms: the subject alternative name forms allowed (``dns``, ``ip``,
            ``email``, ``uri`` by default; also ``directory-name``,
            ``other-name``, ``registered-id``); others are refused, from a
            CSR or from ``names=``.
    """

    name: str
    is_ca: bool = False
    path_length: int | None = None
    key_usage: frozenset[KeyUsageBit] = attrs.field(
        default=frozenset({"digital_signature"}), converter=_bits, validator=_check_bits
    )
    rsa_key_encipherment: bool = False
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] = ()
    validity: _dt.timedelta = _dt.timedelta(days=397)
    copy_names: bool = True
    require_names: bool = False
    name_forms: frozenset[str] = attrs.field(
        default=BASIC_NAME_FORMS, converter=_bits, validator=_check_forms
    )

    def __attrs_post_init__(self) -> None:
        # Recorded with each certificate as JSON text (and audited): a str.
        if not isinstance(self.name, str):
            raise InvalidArgumentError(
                f"a profile name must be a str, got {type(self.name).__name__}"
            )
        check_path_length(self.path_length)
        if self.path_length is not None and not self.is_ca:
            raise InvalidArgumentError("path_length needs a CA profile and must be >= 0")
        # RFC 5280 4.2.1.3: keyCertSign MUST come with cA, and a keyUsage
        # extension MUST have a bit set (CA profiles always get two).
        if not self.is_ca and "key_cert_sign" in self.key_usage:
            raise InvalidArgumentError("key_cert_sign needs a CA profile (RFC 5280 4.2.1.3)")
        if not self.is_ca and not self.key_usage:
            raise InvalidArgumentError(
                "a profile needs at least one key usage bit (RFC 5280 4.2.1.3)"
            )
        if not isinstance(self.validity, _dt.timedelta):
            raise InvalidArgumentError(
                f"profile validity must be a datetime.timedelta, got {type(self.validity).__name__}"
            )
        if self.validity <= _dt.timedelta(0):
            raise InvalidArgumentError("profile validity must be positive")

    def evolve(self, **changes: Any) -> Profile:
        """A copy with ``changes`` (e.g. ``TLS_SERVER.evolve(validity=timedelta(days=30))``)."""
        return attrs.evolve(self, **changes)


ROOT_CA: Final = Profile(
    name="root-ca",
    is_ca=True,
    key_usage=frozenset({"key_cert_sign", "crl_sign"}),
    validity=_dt.timedelta(days=3650),
    copy_names=False,
)
INTERMEDIATE_CA: Final = Profile(
    name="intermediate-ca",
    is_ca=True,
    path_length=0,
    key_usage=frozenset({"key_cert_sign", "crl_sign"}),
    validity=_dt.timedelta(days=1825),
    copy_names=False,
)
TLS_SERVER: Final = Profile(
    name="tls-server",
    key_usage=frozenset({"digital_signature"}),
    rsa_key_encipherment=True,
    extended_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
    validity=_dt.timedelta(days=90),
    require_names=True,
)
TLS_CLIENT: Final = Profile(
    name="tls-client",
    key_usage=frozenset({"digital_signature"}),
    extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH,),
    validity=_dt.timedelta(days=90),
)
CODE_SIGNING: Final = Profile(
    name="code-signing",
    key_usage=frozenset({"digital_signature"}),
    extended_key_usage=(ExtendedKeyUsageOID.CODE_SIGNING,),
    validity=_dt.timedelta(days=365),
)
OCSP_SIGNING: Final = Profile(
    name="ocsp-signing",
    key_usage=frozenset({"digital_signature"}),
    extended_key_usage=(ExtendedKeyUsageOID.OCSP_SIGNING,),
    validity=_dt.timedelta(days=30),
    copy_names=False,
)

#: Every built-in profile by name.
PROFILES: Final = {
    p.name: p
    for p in (ROOT_CA, INTERMEDIATE_CA, TLS_SERVER, TLS_CLIENT, CODE_SIGNING, OCSP_SIGNING)
}


def parse_names(names: Iterable[str | x509.GeneralName]) -> list[x509.GeneralName]:
    """Turn strings into subject alternative names.

    ``"10.0.0.1"``/``"::1"`` become IP addresses, ``"a@b.example"`` an email
    address, anything with ``"://"`` a URI, anything else a DNS name. A
    ``DNS:``/``IP:``/``email:``/``URI:`` prefix forces the type.

    Raises:
        InvalidArgumentError: an empty or malformed name.
    """
    out: list[x509.GeneralName] = []
    given: object = names
    if isinstance(given, str | bytes) or not isinstance(given, Iterable):
        # A str would be read as one name per character.
        raise InvalidArgumentError(f"names must be a list of names, got {type(given).__name__}")
    for item in names:
        # str first: GeneralName is an ABC, whose isinstance check costs more.
        if not isinstance(item, str):
            if isinstance(item, x509.GeneralName):
                out.append(check_general_name(item))
                continue
            raise InvalidArgumentError(f"invalid subject alternative name {item!r}")
        text = item.strip()
        if not text:
            raise InvalidArgumentError(f"invalid subject alternative name {item!r}")
        prefix, sep, rest = text.partition(":")
        kind = prefix.lower() if sep and prefix.lower() in ("dns", "ip", "email", "uri") else ""
        value = rest if kind else text
        try:
            if kind == "ip" or (not kind and _is_ip(value)):
                out.append(x509.IPAddress(ipaddress.ip_address(value)))
            elif kind == "email" or (not kind and "@" in value):
                out.append(x509.RFC822Name(check_email(value)))
            elif kind == "uri" or (not kind and "://" in value):
                out.append(x509.UniformResourceIdentifier(check_uri(value)))
            else:
                out.append(x509.DNSName(check_dns_name(value)))
        except InvalidArgumentError:
            raise
        except ValueError:
            raise InvalidArgumentError(f"invalid subject alternative name {item!r}") from None
    return out


def _is_ip(value: str) -> bool:
    # Cheap pre-check: most names are DNS names, and a failed parse costs an exception.
    if ":" not in value and not value.replace(".", "").isdigit():
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _subtree(value: str | x509.GeneralName) -> x509.GeneralName:
    if isinstance(value, x509.GeneralName):
        return value
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"a name constraint is a str or an x509.GeneralName, got {type(value).__name__}"
        )
    if "/" in value:
        try:
            return x509.IPAddress(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise InvalidArgumentError(f"invalid name constraint {value!r}") from None
    if value.startswith("*."):
        raise InvalidArgumentError(
            f"invalid name constraint {value!r}: a DNS constraint has no wildcard "
            f"({value[2:]!r} covers its subdomains)"
        )
    name = parse_names([value])[0]
    if isinstance(name, x509.IPAddress):  # one address: the network of just it
        return x509.IPAddress(ipaddress.ip_network(name.value))
    return name


def name_constraints(
    permitted: Sequence[str | x509.GeneralName], excluded: Sequence[str | x509.GeneralName]
) -> x509.NameConstraints | None:
    """A NameConstraints extension (DNS names, emails, ``10.0.0.0/8``-style IP ranges).

    A bare IP address is the range of just it (``/32`` or ``/128``); a DNS
    constraint covers the name and its subdomains, so it has no wildcard.

    Raises:
        InvalidArgumentError: a malformed constraint (a wildcard, a value
            that is neither a str nor a GeneralName cryptography takes).
    """
    if not permitted and not excluded:
        return None
    try:
        return x509.NameConstraints(
            permitted_subtrees=[_subtree(p) for p in permitted] or None,
            excluded_subtrees=[_subtree(e) for e in excluded] or None,
        )
    except (ValueError, TypeError) as exc:  # a GeneralName cryptography refuses here
        if isinstance(exc, InvalidArgumentError):
            raise
        raise InvalidArgumentError(f"invalid name constraint: {exc}") from None


#: A certificate extension as cryptography takes it (value, OID and criticality).
Extension = x509.Extension[x509.ExtensionType]


def _ext(value: x509.ExtensionType, critical: bool) -> Extension:
    return x509.Extension(value.oid, critical, value)


@attrs.frozen(kw_only=True)
class ExtensionTemplate:
    """The extensions one issuer gives every certificate of one profile.

    Everything but the subject key identifier and the subject alternative
    names is the same for every certificate a CA issues with a profile
    (basic constraints, key usage, the authority key identifier, EKU, name
    constraints, CRL and OCSP pointers), so a CA builds it once per profile
    (:func:`extension_template`) and only :meth:`extensions` runs per
    certificate. The order of the extensions is the one
    :func:`build_extensions` has always produced.

    Attributes:
        profile: the profile it was built for.
        head: basic constraints and key usage.
        head_rsa: the same with keyEncipherment added for an RSA subject key
            (the profile's ``rsa_key_encipherment``), else ``head``.
        aki: the authority key identifier; None for a self-signed
            certificate (the AKI is then the certificate's own SKI).
        middle: extended key usage (and OCSP no-check).
        tail: name constraints, CRL distribution points, OCSP (AIA).
    """

    profile: Profile
    head: tuple[Extension, ...]
    head_rsa: tuple[Extension, ...]
    aki: Extension | None
    middle: tuple[Extension, ...]
    tail: tuple[Extension, ...]

    def extensions(
        self, key_identifier: bytes, names: Sequence[x509.GeneralName], *, rsa_subject: bool
    ) -> list[Extension]:
        """The extensions of one certificate.

        Args:
            key_identifier: the subject key identifier (see
                :func:`keymgmt.pki._keys.public_key_info`).
            names: the subject alternative names (already parsed and checked).
            rsa_subject: whether the subject key is RSA.

        Raises:
            InvalidArgumentError: the profile needs names and there are none.
        """
        if not names and self.profile.require_names:
            raise InvalidArgumentError(
                f"the {self.profile.name} profile needs at least one subject alternative name"
            )
        ski = x509.SubjectKeyIdentifier(key_identifier)
        aki = self.aki
        if aki is None:
            aki = _ext(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
        out = [*(self.head_rsa if rsa_subject else self.head), _ext(ski, False), aki, *self.middle]
        if names:
            out.append(_ext(x509.SubjectAlternativeName(names), False))
        out.extend(self.tail)
        return out


def _key_usage(bits: set[str]) -> x509.KeyUsage:
    return x509.KeyUsage(
        **{bit: bit in bits for bit in _KU_BITS}, encipher_only=False, decipher_only=False
    )


def extension_template(
    profile: Profile,
    *,
    issuer_ski: x509.SubjectKeyIdentifier | None,
    constraints: x509.NameConstraints | None = None,
    crl_urls: Sequence[str] = (),
    ocsp_urls: Sequence[str] = (),
) -> ExtensionTemplate:
    """What every certificate of ``profile`` from one issuer carries (:class:`ExtensionTemplate`).

    Args:
        profile: the profile.
        issuer_ski: the issuer's subject key identifier; None for a self-signed
            certificate.
        constraints: name constraints (kept for CA profiles only).
        crl_urls: CRL distribution points.
        ocsp_urls: OCSP responder URLs (AIA).
    """
    bits = set(profile.key_usage)
    if profile.is_ca:
        bits |= {"key_cert_sign", "crl_sign"}
    basic = _ext(x509.BasicConstraints(ca=profile.is_ca, path_length=profile.path_length), True)
    head = (basic, _ext(_key_usage(bits), True))
    head_rsa = head
    if profile.rsa_key_encipherment:
        head_rsa = (basic, _ext(_key_usage(bits | {"key_encipherment"}), True))
    aki = None
    if issuer_ski is not None:
        aki = _ext(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), False
        )
    middle: list[Extension] = []
    if profile.extended_key_usage:
        middle.append(_ext(x509.ExtendedKeyUsage(list(profile.extended_key_usage)), False))
        if ExtendedKeyUsageOID.OCSP_SIGNING in profile.extended_key_usage:
            # RFC 6960 4.2.2.2.1: clients trust a delegated responder with
            # id-pkix-ocsp-nocheck for its (short) lifetime; without it they
            # would need its own status, which nobody can give them.
            middle.append(_ext(x509.OCSPNoCheck(), False))
    tail: list[Extension] = []
    if constraints is not None and profile.is_ca:
        tail.append(_ext(constraints, True))
    if crl_urls:
        points = [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(u)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
            for u in crl_urls
        ]
        tail.append(_ext(x509.CRLDistributionPoints(points), False))
    if ocsp_urls:
        access = [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u)
            )
            for u in ocsp_urls
        ]
        tail.append(_ext(x509.AuthorityInformationAccess(access), False))
    return ExtensionTemplate(
        profile=profile,
        head=head,
        head_rsa=head_rsa,
        aki=aki,
        middle=tuple(middle),
        tail=tuple(tail),
    )


def build_extensions(
    profile: Profile,
    *,
    public_key: CertificatePublicKey,
    issuer_public_key: CertificatePublicKey | None,
    issuer_ski: x509.SubjectKeyIdentifier | None,
    names: Sequence[x509.GeneralName],
    constraints: x509.NameConstraints | None = None,
    crl_urls: Sequence[str] = (),
    ocsp_urls: Sequence[str] = (),
) -> list[tuple[x509.ExtensionType, bool]]:
    """The extensions (value, critical) a certificate of ``profile`` gets.

    ``issuer_public_key`` None means self-signed (the AKI is the SKI). A CA
    issuing many certificates uses :func:`extension_template` once instead.

    Raises:
        InvalidArgumentError: names are required but missing.
    """
    if issuer_ski is None and issuer_public_key is not None:
        issuer_ski = x509.SubjectKeyIdentifier.from_public_key(issuer_public_key)
    template = extension_template(
        profile,
        issuer_ski=issuer_ski,
        constraints=constraints,
        crl_urls=crl_urls,
        ocsp_urls=ocsp_urls,
    )
    extensions = template.extensions(
        x509.SubjectKeyIdentifier.from_public_key(public_key).digest,
        list(names),
        rsa_subject=isinstance(public_key, rsa.RSAPublicKey),
    )
    return [(e.value, e.critical) for e in extensions]
