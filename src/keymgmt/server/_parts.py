"""The seam between HTTP and the library: what each endpoint asks of the key manager.

Endpoints never call the library directly; they call a :class:`ServiceParts`.
The default, :class:`ManagerParts`, adapts a :class:`~keymgmt.KeyManager`:
it reaches each part through the façade (``km.encrypt``, ``km.pki``,
``km.kdc``, ...) and answers :class:`ServiceError` 501 ``not_implemented``
for a part the installed keymgmt does not have, so the service runs (health,
readiness, revocation, policy, rate limits) whatever parts are there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs
from cryptography import x509

from keymgmt._manager import KeyManager
from keymgmt.revocation import Revocation, RevocationReason, SubjectKind
from keymgmt.server._errors import ServiceError

__all__ = ["CaInfo", "DataKey", "IssuedCertificate", "ManagerParts", "ServiceParts"]


@attrs.frozen(kw_only=True)
class DataKey:
    """A fresh data key: its plaintext (to use and forget) and its wrapped form (to store)."""

    plaintext: bytes = attrs.field(repr=False)
    ciphertext: bytes


@attrs.frozen(kw_only=True)
class IssuedCertificate:
    """A certificate issued from a CSR and the chain up to (excluding) the root."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]


@attrs.frozen(kw_only=True)
class CaInfo:
    """A CA the store holds: its name and certificate."""

    name: str
    certificate: x509.Certificate


def _missing(part: str) -> ServiceError:
    return ServiceError(
        501, "not_implemented", f"this keymgmt installation has no {part}; the endpoint is off"
    )


class ServiceParts(Protocol):
    """What the service needs from the library; one method per endpoint."""

    def available(self) -> dict[str, bool]:
        """Which parts are wired: ``{"transit": ..., "pki": ..., "kdc": ...}``."""
        ...

    def sync(self) -> None:
        """Pick up other processes' writes (revocations, rotations)."""
        ...

    def encrypt(self, key: str, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        """Encrypt under the primary version of ``key``."""
        ...

    def decrypt(self, key: str, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """Decrypt a ciphertext made under ``key`` (any other key is refused)."""
        ...

    def datakey(self, key: str, context: Mapping[str, str]) -> DataKey:
        """A new data key wrapped under ``key``."""
        ...

    def rewrap(self, key: str, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """Re-encrypt a ciphertext of ``key`` under its primary version."""
        ...

    def create_key(self, key: str, algorithm: str | None) -> dict[str, Any]:
        """Create a symmetric key; returns its public description."""
        ...

    def key_info(self, key: str) -> dict[str, Any]:
        """The public description of ``key`` (never its material)."""
        ...

    def ciphertext_key(self, ciphertext: bytes) -> str:
        """The key name a ciphertext's authenticated header names."""
        ...

    def csr_names(self, csr: x509.CertificateSigningRequest) -> list[str]:
        """Every name a CSR asks for (subject CN and SANs)."""
        ...

    def sign_csr(
        self, ca: str, csr: x509.CertificateSigningRequest, profile: str
    ) -> IssuedCertificate:
        """Issue a certificate from ``csr`` under ``profile`` by CA ``ca``."""
        ...

    def cas(self) -> list[CaInfo]:
        """Every CA in the store."""
        ...

    def crl(self, ca: str) -> x509.CertificateRevocationList:
        """The current CRL of ``ca`` (rebuilt when due)."""
        ...

    def ocsp(self, request: bytes) -> bytes:
        """Answer a DER OCSP request with a DER OCSP response."""
        ...

    def kdc(self, message: bytes, principal: str) -> bytes:
        """Feed one KDC wire message; return the reply message."""
        ...

    def certificate_subjects(
        self, chain: Sequence[x509.Certificate]
    ) -> list[tuple[SubjectKind, str]]:
        """The revocation subjects of the certificates in a verified client chain."""
        ...

    def revocation(self, kind: SubjectKind, subject: str) -> Revocation | None:
        """The revocation of a subject, or None."""
        ...

    def revoke(self, kind: SubjectKind, subject: str, reason: RevocationReason) -> Revocation:
        """Revoke a subject."""
        ...


class ManagerParts:
    """:class:`ServiceParts` over a :class:`~keymgmt.KeyManager`.

    Args:
        km: the key manager (shared, thread-safe).
    """

    def __init__(self, km: KeyManager) -> None:
        self._km = km

    def __repr__(self) -> str:
        return f"ManagerParts({self._km!r})"

    # -- discovery -------------------------------------------------------------

    def _attr(self, name: str) -> Any:
        return getattr(self._km, name, None)

    def available(self) -> dict[str, bool]:
        """Which parts this key manager has."""
        return {
            "transit": self._attr("encrypt") is not None,
            "pki": self._attr("pki") is not None,
            "kdc": self._attr("kdc") is not None,
        }

    def sync(self) -> None:
        """Pick up other processes' writes now."""
        self._km.sync()

    # -- transit ---------------------------------------------------------------

    def encrypt(self, key: str, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        """See :class:`ServiceParts`."""
        raise _missing("symmetric keys")

    def decrypt(self, key: str, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """See :class:`ServiceParts`."""
        raise _missing("symmetric keys")

    def datakey(self, key: str, context: Mapping[str, str]) -> DataKey:
        """See :class:`ServiceParts`."""
        raise _missing("symmetric keys")

    def rewrap(self, key: str, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """See :class:`ServiceParts`."""
        raise _missing("symmetric keys")

    def create_key(self, key: str, algorithm: str | None) -> dict[str, Any]:
        """See :class:`ServiceParts`."""
        raise _missing("symmetric keys")

    def key_info(self, key: str) -> dict[str, Any]:
        """See :class:`ServiceParts`."""
        raise _missing("symmetric keys")

    def ciphertext_key(self, ciphertext: bytes) -> str:
        """See :class:`ServiceParts`."""
        raise _missing("symmetric keys")

    # -- pki -------------------------------------------------------------------

    def csr_names(self, csr: x509.CertificateSigningRequest) -> list[str]:
        """Subject common names, DNS names, URIs, e-mail and IP SANs of a CSR."""
        names = [str(a.value) for a in csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return names
        except ValueError:
            return names
        for kind in (x509.DNSName, x509.UniformResourceIdentifier, x509.RFC822Name):
            names.extend(str(v) for v in san.get_values_for_type(kind))
        names.extend(str(v) for v in san.get_values_for_type(x509.IPAddress))
        return names

    def sign_csr(
        self, ca: str, csr: x509.CertificateSigningRequest, profile: str
    ) -> IssuedCertificate:
        """See :class:`ServiceParts`."""
        raise _missing("PKI")

    def cas(self) -> list[CaInfo]:
        """See :class:`ServiceParts`."""
        raise _missing("PKI")

    def crl(self, ca: str) -> x509.CertificateRevocationList:
        """See :class:`ServiceParts`."""
        raise _missing("PKI")

    def ocsp(self, request: bytes) -> bytes:
        """See :class:`ServiceParts`."""
        raise _missing("PKI")

    # -- kdc -------------------------------------------------------------------

    def kdc(self, message: bytes, principal: str) -> bytes:
        """See :class:`ServiceParts`."""
        raise _missing("KDC")

    # -- revocation ------------------------------------------------------------

    def certificate_subjects(
        self, chain: Sequence[x509.Certificate]
    ) -> list[tuple[SubjectKind, str]]:
        """Revocation subjects for a client chain (none until the PKI names them)."""
        return []

    def revocation(self, kind: SubjectKind, subject: str) -> Revocation | None:
        """See :class:`ServiceParts`."""
        return self._km.revocation.get(kind, subject)

    def revoke(self, kind: SubjectKind, subject: str, reason: RevocationReason) -> Revocation:
        """See :class:`ServiceParts`."""
        return self._km.revocation.revoke(kind, subject, reason)
