"""The whole keymgmt exception tree.

Every exception keymgmt raises derives from :class:`KeyMgmtError`, which is
never raised directly. Foreign exceptions (``cryptography``, ``sqlite3``,
``psycopg``, ``OSError``) are translated where keymgmt calls them.

Two rules shape the tree:

* **Crypto failures are opaque.** :class:`DecryptionError`,
  :class:`InvalidSignatureError` and :class:`IntegrityError` carry one fixed
  message and no cause chain, so they are no oracle.
* **Validation failures are specific.** Argument errors also subclass
  :class:`ValueError`, lookups :class:`LookupError`; they carry structured,
  non-secret attributes (``key_name``, ``version``, ``serial``, ``reason``).

No exception ever carries key material or plaintext.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccessDeniedError",
    "AlreadyExistsError",
    "AuditChainError",
    "CertificateError",
    "CertificateRevokedError",
    "CertificateVerificationError",
    "ConflictError",
    "DecryptionError",
    "DestroyedKeyError",
    "HandshakeError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidSignatureError",
    "KeyMgmtError",
    "KeyNotFoundError",
    "KeyStateError",
    "KeyUsageError",
    "LocalProtocolError",
    "MalformedInputError",
    "NotFoundError",
    "PeerVerificationError",
    "ProtocolError",
    "RemoteProtocolError",
    "ReplayError",
    "RevokedError",
    "SchemaVersionError",
    "ServiceError",
    "StaleMessageError",
    "StoreError",
    "StoreUnavailableError",
    "TokenUnavailableError",
    "UnsupportedAlgorithmError",
    "WrongPassphraseError",
]


class KeyMgmtError(Exception):
    """Root of every keymgmt exception. Never raised directly."""

    def __init__(self, message: str, **attributes: Any) -> None:
        super().__init__(message)
        self.message = message
        for name, value in attributes.items():
            setattr(self, name, value)


# -- arguments and lookups ---------------------------------------------------


class InvalidArgumentError(KeyMgmtError, ValueError):
    """An argument is malformed or out of range."""


class UnsupportedAlgorithmError(InvalidArgumentError):
    """The algorithm is unknown, or not allowed for this operation."""


class MalformedInputError(InvalidArgumentError):
    """Serialized input (ciphertext header, DER, wire message) cannot be parsed."""


class NotFoundError(KeyMgmtError, LookupError):
    """The named object does not exist."""


class KeyNotFoundError(NotFoundError):
    """No key with this name (or no such version)."""


class AlreadyExistsError(KeyMgmtError, ValueError):
    """An object with this name exists already."""


# -- keys --------------------------------------------------------------------


class KeyStateError(KeyMgmtError):
    """The key version's lifecycle state does not allow the operation."""


class KeyUsageError(KeyMgmtError):
    """The key's usage (fixed at creation) does not allow the operation."""


class RevokedError(KeyStateError):
    """The key version, certificate or principal is revoked."""


class DestroyedKeyError(KeyStateError):
    """The key version's material has been destroyed."""


class AccessDeniedError(KeyMgmtError):
    """The authorization policy does not allow this principal the operation."""


# -- crypto failures (opaque) ------------------------------------------------


class DecryptionError(KeyMgmtError):
    """Decryption failed. Deliberately says nothing more."""

    def __init__(self) -> None:
        super().__init__("decryption failed")


class InvalidSignatureError(KeyMgmtError):
    """A signature or MAC did not verify. Deliberately says nothing more."""

    def __init__(self) -> None:
        super().__init__("signature verification failed")


class IntegrityError(KeyMgmtError):
    """A sealed record failed authentication: it was edited, swapped or corrupted."""


class WrongPassphraseError(KeyMgmtError):
    """The master key (passphrase, key file or token) does not open this store."""


# -- storage -----------------------------------------------------------------


class StoreError(KeyMgmtError):
    """The storage backend failed."""


class StoreUnavailableError(StoreError):
    """The store cannot be opened or reached (missing file, no server)."""


class TokenUnavailableError(StoreUnavailableError):
    """A PKCS#11 token (HSM) that holds a key is not usable.

    Not attached (``km.pki.use_token``), closed, absent from its module, or
    failing. Carries ``token`` (the token label) when known.
    """


class SchemaVersionError(StoreError):
    """The store was written by a newer (or unknown) schema version."""


class ConflictError(StoreError):
    """A compare-and-set write found a different revision; nothing was written."""


class AuditChainError(KeyMgmtError):
    """The audit chain does not verify: an entry was edited, removed or reordered."""


# -- certificates ------------------------------------------------------------


class CertificateError(KeyMgmtError):
    """A certificate, CSR, CRL or OCSP message is unusable."""


class CertificateVerificationError(CertificateError):
    """Path validation failed; ``reason`` says why (expired, unknown issuer, ...)."""


class CertificateRevokedError(CertificateVerificationError, RevokedError):
    """A certificate in the path is revoked; carries ``serial``, ``reason``, ``revoked_at``."""


# -- protocols ---------------------------------------------------------------


class ProtocolError(KeyMgmtError):
    """A sans-IO protocol (handshake, KDC, OCSP) was violated."""


class LocalProtocolError(ProtocolError):
    """This side tried to do something the protocol state does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something malformed, unexpected or unauthentic."""


class HandshakeError(RemoteProtocolError):
    """The authenticated handshake failed."""


class PeerVerificationError(HandshakeError):
    """The peer's certificate or identity was refused; ``reason`` says why."""


class ReplayError(RemoteProtocolError):
    """A message (nonce) was seen before within the freshness window."""


class StaleMessageError(RemoteProtocolError):
    """A message's timestamp is outside the allowed clock skew, or it expired."""


# -- the network service -----------------------------------------------------


class ServiceError(KeyMgmtError):
    """The key service refused a request at the HTTP level.

    For example: unauthenticated, rate limited, too large, not implemented.
    Carries ``status`` (the HTTP status), ``type`` (the error type of the
    JSON error body) and ``headers`` (e.g. ``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, status=status, type=type)
        self.status = status
        self.type = type
        self.headers = dict(headers or {})
