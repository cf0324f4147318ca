"""The seam between HTTP and the library: what each endpoint asks of the key manager.

Endpoints never call the library directly; they call a :class:`ServiceParts`.
The default, :class:`ManagerParts`, adapts a :class:`~keymgmt.KeyManager`:
it reaches each part through the façade (``km.encrypt``, ``km.pki``,
``km.kdc``, ...) and answers :class:`ServiceError` 501 ``not_implemented``
for a part the installed keymgmt does not have, so the service runs (health,
readiness, revocation, policy, rate limits) whatever parts are there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from keymgmt._manager import KeyManager
from keymgmt.algorithms import Algorithm
from keymgmt.errors import AccessDeniedError, DecryptionError, MalformedInputError, RevokedError
from keymgmt.kdc import claimed_principal
from keymgmt.keys import KeyInfo, KeyRequest, PayloadType, parse_header
from keymgmt.pki._names import check_general_name
from keymgmt.pki._parse import checked_csr
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
    """A certificate issued from a CSR and its issuer's chain (issuing CA first, root last)."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]


@attrs.frozen(kw_only=True)
class CaInfo:
    """A CA the store holds: its name and certificate."""

    name: str
    certificate: x509.Certificate


_UNAUTHORIZED: Final = ocsp.OCSPResponseBuilder.build_unsuccessful(
    ocsp.OCSPResponseStatus.UNAUTHORIZED
).public_bytes(serialization.Encoding.DER)


def key_json(info: KeyInfo) -> dict[str, Any]:
    """A key's public description as JSON (no material, ever)."""
    return {
        "name": info.name,
        "key_id": info.key_id,
        "algorithm": info.algorithm.value,
        "kind": info.kind.value,
        "usage": info.usage.value,
        "created_at": info.created_at.isoformat(),
        "primary_version": info.primary_version,
        "expiry_date": None if info.expiry_date is None else info.expiry_date.isoformat(),
        "versions": [
            {
                "version": v.version,
                "state": v.state.value,
                "algorithm": v.algorithm.value,
                "created_at": v.created_at.isoformat(),
                "is_primary": v.is_primary,
            }
            for v in info.versions
        ],
    }


def _name_text(name: x509.GeneralName) -> str:
    """A subject alternative name as the policy's ``names`` patterns see it."""
    if isinstance(name, x509.DNSName | x509.UniformResourceIdentifier | x509.RFC822Name):
        return str(name.value)
    if isinstance(name, x509.IPAddress):
        return str(name.value)
    if isinstance(name, x509.DirectoryName):
        return f"directory-name:{name.value.rfc4514_string()}"
    if isinstance(name, x509.RegisteredID):
        return f"registered-id:{name.value.dotted_string}"
    if isinstance(name, x509.OtherName):
        return f"other-name:{name.type_id.dotted_string}"
    return f"{type(name).__name__}:?"


def _key_id(certificate: x509.Certificate, extension: type[Any]) -> bytes | None:
    """The certificate's subject or authority key identifier, if it has one."""
    try:
        value = certificate.extensions.get_extension_for_class(extension).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    found = value.digest if extension is x509.SubjectKeyIdentifier else value.key_identifier
    return found if isinstance(found, bytes) else None


def _completed(
    chain: Sequence[x509.Certificate], cas: Callable[[], Sequence[Any]]
) -> list[x509.Certificate]:
    """``chain`` followed by the store's CA certificates above its last one (by name and key id)."""
    path = list(chain)
    authorities: list[x509.Certificate] | None = None
    while path and path[-1].issuer != path[-1].subject and len(path) < _MAX_CHAIN:
        if authorities is None:
            authorities = [ca.certificate for ca in cas()]
        last = path[-1]
        wanted = _key_id(last, x509.AuthorityKeyIdentifier)
        parent = next(
            (
                c
                for c in authorities
                if c.subject == last.issuer
                and (wanted is None or _key_id(c, x509.SubjectKeyIdentifier) == wanted)
                and c not in path
            ),
            None,
        )
        if parent is None:
            break
        path.append(parent)
    return path


_MAX_CHAIN: Final = 16


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

    def create_keys(
        self, requests: Sequence[tuple[str, str | None, str]]
    ) -> Sequence[dict[str, Any] | Exception]:
        """Create several keys in one store write (group commit).

        Each request is ``(name, algorithm or None, principal)``; each gets
        its own outcome, in order: the key's description, or the exception
        that refused it (see :mod:`keymgmt.server._batch`).
        """
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
        """``km.encrypt``."""
        return bytes(self._km.encrypt(key, plaintext, context or None))

    def decrypt(self, key: str, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """``km.decrypt`` for messages, ``km.decrypt_data_key`` for wrapped data keys."""
        if self._header(ciphertext).payload is PayloadType.DATA_KEY:
            return self._km.decrypt_data_key(ciphertext, context or None).reveal()
        return self._km.decrypt(ciphertext, context or None)

    def datakey(self, key: str, context: Mapping[str, str]) -> DataKey:
        """``km.generate_data_key``."""
        made = self._km.generate_data_key(key, context or None)
        return DataKey(plaintext=made.plaintext.reveal(), ciphertext=made.wrapped)

    def rewrap(self, key: str, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """``km.rewrap``."""
        return self._km.rewrap(ciphertext, context or None)

    def create_keys(
        self, requests: Sequence[tuple[str, str | None, str]]
    ) -> list[dict[str, Any] | Exception]:
        """``km.keys.create_many``: one store write; each audit entry names its principal."""
        batch = [
            KeyRequest(
                name=name,
                algorithm=Algorithm.AES_256_GCM if algorithm is None else algorithm,
                actor=principal,
            )
            for name, algorithm, principal in requests
        ]
        return [
            outcome if isinstance(outcome, Exception) else key_json(outcome)
            for outcome in self._km.keys.create_many(batch)
        ]

    def key_info(self, key: str) -> dict[str, Any]:
        """``km.keys.get`` as JSON."""
        return key_json(self._km.keys.get(key))

    @staticmethod
    def _header(ciphertext: bytes) -> Any:
        try:
            return parse_header(ciphertext)
        except MalformedInputError:
            raise DecryptionError() from None

    def ciphertext_key(self, ciphertext: bytes) -> str:
        """The key its header names (a malformed header is the opaque DecryptionError)."""
        return str(self._header(ciphertext).name)

    # -- pki -------------------------------------------------------------------

    def csr_names(self, csr: x509.CertificateSigningRequest) -> list[str]:
        """Subject common names and every subject alternative name of a CSR.

        Each name is given as the CA will certify it (DNS names and e-mail
        domains lowercased), so the policy judges the names the certificate
        will carry: ``App-X`` would be certified, and become the principal,
        ``app-x``. Forms other than DNS, URI, e-mail and IP are given as
        ``"<form>:<value>"``, which only a pattern written for them matches.

        Raises:
            InvalidArgumentError: a malformed name (the CA would refuse it too).
            MalformedInputError: the subject or the extensions do not parse.
        """
        checked_csr(csr)  # what pyca parses lazily (subject, extensions): typed errors here
        names = [str(a.value) for a in csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return names
        names.extend(_name_text(check_general_name(name)) for name in san)
        return names

    def sign_csr(
        self, ca: str, csr: x509.CertificateSigningRequest, profile: str
    ) -> IssuedCertificate:
        """``km.pki.ca(ca).issue(csr, profile=profile)``; the chain up to the root."""
        authority = self._km.pki.ca(ca)
        certificate = authority.issue(csr, profile=profile)
        return IssuedCertificate(certificate=certificate, chain=tuple(authority.chain))

    def cas(self) -> list[CaInfo]:
        """``km.pki.list_cas()``."""
        return [CaInfo(name=c.name, certificate=c.certificate) for c in self._km.pki.list_cas()]

    def crl(self, ca: str) -> x509.CertificateRevocationList:
        """``km.pki.ca(ca).crl()`` (re-signed only when something changed or it is due)."""
        return self._km.pki.ca(ca).crl()

    def ocsp(self, request: bytes) -> bytes:
        """Ask each CA's responder; the first that is authoritative answers.

        A malformed request gets ``malformedRequest`` and a request for an
        issuer we do not have gets ``unauthorized``, as RFC 6960 says.
        """
        answer = _UNAUTHORIZED
        for authority in self._km.pki.list_cas():
            try:
                reply = authority.ocsp_respond(request)
            except RevokedError:
                continue
            status = ocsp.load_der_ocsp_response(reply).response_status
            if status is not ocsp.OCSPResponseStatus.UNAUTHORIZED:
                return reply
        return answer

    # -- kdc -------------------------------------------------------------------

    def kdc(self, message: bytes, principal: str) -> bytes:
        """``km.kdc.handle``, for requests made in the caller's own name.

        The KDC authenticates the message by the principal's credential; on
        top of that a key or ticket request must name the same principal as
        the TLS client certificate, so a stolen KDC credential is not enough
        without the certificate (and the reverse). Malformed framing is left
        to the KDC, which answers with its ERROR message.

        Raises:
            AccessDeniedError: the request names another principal.
        """
        kdc = self._attr("kdc")
        if kdc is None:
            raise _missing("KDC")
        named = claimed_principal(message)
        if named is not None and named != principal:
            raise AccessDeniedError(
                f"the KDC request is made as {named!r}, but the client certificate "
                f"names {principal!r}",
                principal=principal,
            )
        reply: bytes = kdc.handle(message)
        return reply

    # -- revocation ------------------------------------------------------------

    def certificate_subjects(
        self, chain: Sequence[x509.Certificate]
    ) -> list[tuple[SubjectKind, str]]:
        """The registry subjects (``"<ca>:<serial>"``) of every certificate our CAs issued.

        A chain that stops below a self-issued certificate is completed
        upwards with the store's CA certificates first: a resumed TLS
        session carries the client's certificate alone (nothing is verified
        again), and the revocation of a CA above it must still refuse it.
        """
        pki = self._km.pki
        found = []
        for certificate in _completed(chain, pki.list_cas):
            subject = pki.revocation_subject(certificate)
            if subject is not None:
                found.append((SubjectKind.CERTIFICATE, subject))
        return found

    def revocation(self, kind: SubjectKind, subject: str) -> Revocation | None:
        """See :class:`ServiceParts`.

        A certificate of one of the store's CAs whose signing key is
        compromised is revoked with ``ca-compromise``, as ``km.pki.verify``
        says (``km.pki.certificate_revocation``): a root has no parent to
        revoke its certificate, and a thief of the key signs what was never
        recorded.
        """
        if kind is SubjectKind.CERTIFICATE:
            return self._km.pki.certificate_revocation(subject)
        return self._km.revocation.get(kind, subject)

    def revoke(self, kind: SubjectKind, subject: str, reason: RevocationReason) -> Revocation:
        """See :class:`ServiceParts`."""
        return self._km.revocation.revoke(kind, subject, reason)
