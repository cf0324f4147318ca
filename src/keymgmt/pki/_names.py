"""What a CA accepts as a subject alternative name before it signs it.

A CSR's names are the requester's words: whatever reaches the certificate is
what relying parties match and what name constraints are checked against.
So every name, whether typed by the operator (:func:`~._profiles.parse_names`)
or copied from a CSR, goes through the same checks:

* dNSName: ASCII letters, digits and hyphens (LDH; IDNs as A-labels,
  ``xn--...``), labels of 1-63 characters not starting or ending with a
  hyphen, 1-253 characters in all, at most one leading ``*.`` (and then at
  least two more labels); lowercased. No NUL, space or trailing dot: a
  verifier reading ``evil.com\\0.example.com`` as a C string sees
  ``evil.com``, while a name-constraint check sees ``.example.com``.
* iPAddress: one address (4 or 16 bytes). An 8- or 32-byte value is a
  network, which the name-constraint check reads as a range and a
  verifier may match as an address.
* rfc822Name: ``local@domain``, a dot-atom local part (at most 64
  characters) and an LDH domain.
* uniformResourceIdentifier: an absolute URI (RFC 5280 4.2.1.6) of
  printable ASCII without spaces or backslashes; when it has an authority,
  no user information and a host that is an LDH name or an IP literal.

Other forms (directoryName, otherName, registeredID) are refused unless the
profile lists them in :attr:`~._profiles.Profile.name_forms`.

The subject of an end-entity certificate (:func:`check_subject`): not empty
unless there are subject alternative names (RFC 5280 4.1.2.6; the SAN is
then critical, 4.2.1.6, see :func:`mark_names_critical`), not the issuing
CA's own name, no attribute empty, over its upper bound (RFC 5280 A.1:
common name 64, ...) or with a control character such as NUL. Its
emailAddress attributes and the name itself are what the CA's name
constraints are checked against as well (:func:`subject_constraint_names`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from keymgmt.errors import InvalidArgumentError

__all__ = [
    "BASIC_NAME_FORMS",
    "EMPTY_NAME",
    "NAME_FORMS",
    "check_dns_name",
    "check_email",
    "check_general_name",
    "check_name_forms",
    "check_subject",
    "check_uri",
    "csr_subject",
    "mark_names_critical",
    "subject_constraint_names",
]

#: The subject alternative name forms a profile may list.
NAME_FORMS: Final = frozenset(
    {"dns", "ip", "email", "uri", "directory-name", "other-name", "registered-id"}
)
#: The forms every profile allows unless it says otherwise.
BASIC_NAME_FORMS: Final = frozenset({"dns", "ip", "email", "uri"})

_FORM_OF: Final[dict[type, str]] = {
    x509.DNSName: "dns",
    x509.IPAddress: "ip",
    x509.RFC822Name: "email",
    x509.UniformResourceIdentifier: "uri",
    x509.DirectoryName: "directory-name",
    x509.OtherName: "other-name",
    x509.RegisteredID: "registered-id",
}

_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_LOCAL: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.-]*")
_URI_CHARS: Final = re.compile(r"[\x21-\x7e]+")
_MAX_DNS: Final = 253
_MAX_LOCAL: Final = 64
_MAX_URI: Final = 2048


def _bad(kind: str, value: object, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"invalid subject alternative name {kind}:{value!r}: {why}", name=str(value)
    )


def check_dns_name(value: str, *, wildcard: bool = True) -> str:
    """``value`` lowercased, if it is a DNS name a certificate may carry.

    Raises:
        InvalidArgumentError: not an LDH name of 1-253 characters (``*.``
            first only if ``wildcard``).
    """
    if not isinstance(value, str) or not value:
        raise _bad("DNS", value, "empty")
    if len(value) > _MAX_DNS:
        raise _bad("DNS", value[:20] + "...", f"longer than {_MAX_DNS} characters")
    text = value.lower()
    rest = text[2:] if wildcard and text.startswith("*.") else text
    labels = rest.split(".")
    if rest is not text and len(labels) < 2:
        raise _bad("DNS", value, "a wildcard needs at least two labels after '*.'")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise _bad(
                "DNS",
                value,
                "labels are 1-63 of a-z 0-9 - (not first or last; IDNs as xn-- A-labels)",
            )
    if labels[-1].isdigit():
        raise _bad("DNS", value, "an IP address belongs in an IP name, not a DNS name")
    return text


def check_email(value: str) -> str:
    """``value`` (domain lowercased), if it is a mailbox a certificate may carry.

    Raises:
        InvalidArgumentError: not ``local@domain`` with a dot-atom local part
            of at most 64 characters and an LDH domain.
    """
    if not isinstance(value, str):
        raise _bad("email", value, "not text")
    local, at, domain = value.rpartition("@")
    if not at or not _LOCAL.fullmatch(local) or len(local) > _MAX_LOCAL:
        raise _bad("email", value, "expected local@domain (a dot-atom local part)")
    return f"{local}@{check_dns_name(domain, wildcard=False)}"


def check_uri(value: str) -> str:
    """``value``, if it is an absolute URI a certificate may carry.

    Raises:
        InvalidArgumentError: not an absolute URI of printable ASCII (no
            space or backslash), or with user information or a bad host.
    """
    if not isinstance(value, str) or not _URI_CHARS.fullmatch(value) or "\\" in value:
        raise _bad("URI", value, "printable ASCII without spaces or backslashes")
    if len(value) > _MAX_URI:
        raise _bad("URI", value[:20] + "...", f"longer than {_MAX_URI} characters")
    scheme, colon, rest = value.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme.lower()) or not rest:
        raise _bad("URI", value, "not an absolute URI (scheme:...)")
    if rest.startswith("//"):
        try:
            parts = urlsplit(value)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise _bad("URI", value, "malformed authority") from None
        if "@" in parts.netloc or not host:
            # Never echo user information back: it may hold a password.
            shown = f"{scheme}://<user information>@{parts.netloc.rpartition('@')[2]}..."
            raise _bad(
                "URI",
                shown if "@" in parts.netloc else value,
                "the authority needs a host and no user information",
            )
        if parts.netloc.startswith("["):
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise _bad("URI", value, "malformed IP literal") from None
        elif not _is_ipv4(host):
            check_dns_name(host, wildcard=False)
    return value


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def check_general_name(name: x509.GeneralName) -> x509.GeneralName:
    """``name`` (a DNS name or email lowercased), if its value is well formed.

    Forms other than DNS, IP, email and URI are returned as they are (see
    :func:`check_name_forms`).

    Raises:
        InvalidArgumentError: a malformed value.
    """
    kind = type(name)
    if kind is x509.DNSName:
        text = check_dns_name(name.value)
        return name if text == name.value else x509.DNSName(text)
    if kind is x509.IPAddress:
        if not isinstance(name.value, ipaddress.IPv4Address | ipaddress.IPv6Address):
            raise _bad("IP", str(name.value), "a network, not one address")
        return name
    if kind is x509.RFC822Name:
        text = check_email(name.value)
        return name if text == name.value else x509.RFC822Name(text)
    if kind is x509.UniformResourceIdentifier:
        check_uri(name.value)
        return name
    if kind in _FORM_OF:
        return name
    raise InvalidArgumentError(f"unsupported subject alternative name {name!r}")


def check_name_forms(names: Iterable[x509.GeneralName], allowed: frozenset[str]) -> None:
    """Refuse a name whose form (``"dns"``, ``"directory-name"``, ...) is not in ``allowed``.

    Raises:
        InvalidArgumentError: a form the profile does not list.
    """
    for name in names:
        form = _FORM_OF.get(type(name))
        if form not in allowed:
            raise InvalidArgumentError(
                f"the profile allows no {form or type(name).__name__} subject alternative "
                f"names (name_forms: {', '.join(sorted(allowed))})",
                name=str(getattr(name, "value", name)),
            )


#: RFC 5280 appendix A.1 upper bounds (characters) of the usual attributes.
_BOUNDS: Final = {
    NameOID.COMMON_NAME: 64,
    NameOID.ORGANIZATION_NAME: 64,
    NameOID.ORGANIZATIONAL_UNIT_NAME: 64,
    NameOID.LOCALITY_NAME: 128,
    NameOID.STATE_OR_PROVINCE_NAME: 128,
    NameOID.SERIAL_NUMBER: 64,
    NameOID.TITLE: 64,
    NameOID.EMAIL_ADDRESS: 255,
    NameOID.COUNTRY_NAME: 2,
}
_MAX_ATTRIBUTE: Final = 1024  # any other attribute
#: The empty Name (an end-entity subject allowed only with subject alternative names).
EMPTY_NAME: Final = x509.Name([])
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def csr_subject(csr: x509.CertificateSigningRequest) -> x509.Name:
    """The subject of a CSR.

    Raises:
        InvalidArgumentError: cryptography's warning about an attribute over
            its bound was turned into an error (``-W error``).
    """
    try:
        return csr.subject
    except UserWarning as exc:
        raise InvalidArgumentError(f"invalid CSR subject: {exc}") from None


def check_subject(subject: x509.Name, names: Sequence[x509.GeneralName], issuer: x509.Name) -> None:
    """Refuse an end-entity subject a CA must not sign (see the module docstring).

    Raises:
        InvalidArgumentError: empty without subject alternative names, the
            issuer's own name, or an empty, overlong or control-character attribute.
    """
    if subject == EMPTY_NAME:  # cheaper than len(): Name.__len__ walks every RDN
        if not names:
            raise InvalidArgumentError(
                "an empty subject needs at least one subject alternative name (RFC 5280 4.1.2.6)"
            )
        return
    if subject == issuer:
        raise InvalidArgumentError(
            f"the subject {subject.rfc4514_string()!r} is the issuing CA's own name"
        )
    for attribute in subject:
        value = attribute.value
        if type(value) is not str:  # a BIT STRING (x500UniqueIdentifier)
            continue
        bound = _BOUNDS.get(attribute.oid, _MAX_ATTRIBUTE)
        if value and len(value) <= bound and not _CONTROL.search(value):
            continue
        name = attribute.rfc4514_attribute_name
        if not value or len(value) > bound:
            raise InvalidArgumentError(
                f"the subject's {name} must be 1-{bound} characters, not {len(value)}",
                attribute=name,
            )
        raise InvalidArgumentError(
            f"the subject's {name} contains a control character (such as NUL)",
            attribute=name,
        )


def subject_constraint_names(subject: x509.Name) -> list[x509.GeneralName]:
    """The names in ``subject`` that name constraints apply to (RFC 5280 4.2.1.10).

    The subject as a directoryName, and each emailAddress attribute as an
    rfc822Name.

    Raises:
        InvalidArgumentError: a malformed emailAddress.
    """
    if subject == EMPTY_NAME:
        return []
    out: list[x509.GeneralName] = [x509.DirectoryName(subject)]
    for attribute in subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
        if isinstance(attribute.value, str):
            out.append(x509.RFC822Name(check_email(attribute.value)))
    return out


def mark_names_critical(extensions: list[Any]) -> list[Any]:
    """``extensions`` with the subject alternative names critical (for an empty subject)."""
    return [
        x509.Extension(ext.oid, True, ext.value)
        if type(ext.value) is x509.SubjectAlternativeName
        else ext
        for ext in extensions
    ]
