"""Frozen value types the KDC protocol produces and consumes.

These are what callers hold: credentials (a principal's long-term secret),
what a key request yields (:class:`GrantedKey`), what a ticket request
yields (:class:`SessionTicket`), what a service accepts
(:class:`AcceptedSession`) and the KDC's signed :class:`RevocationList`.
Secrets are :class:`~keymgmt.SecretBytes` with ``repr=False``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import enum
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keymgmt import _codec
from keymgmt._secret import SecretBytes
from keymgmt.errors import (
    AccessDeniedError,
    InvalidArgumentError,
    KeyMgmtError,
    KeyNotFoundError,
    KeyStateError,
    MalformedInputError,
    RemoteProtocolError,
    ReplayError,
    RevokedError,
    StaleMessageError,
)

__all__ = [
    "DEFAULT_SKEW",
    "AcceptedSession",
    "ApRequest",
    "AuthKind",
    "CertificateCredential",
    "Credential",
    "ErrorCode",
    "GrantedKey",
    "RevocationList",
    "RevokedEntry",
    "SessionTicket",
    "SymmetricCredential",
]

#: A certificate key that can sign KDC requests.
SigningKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_CREDENTIAL_FORMAT: Final = "keymgmt-kdc-credential/1"
#: A credential file is a few hundred bytes; reading stops past this.
_MAX_CREDENTIAL_FILE: Final = 64 * 1024

#: The default allowed clock skew, both ways (as in Kerberos).
DEFAULT_SKEW: Final = _dt.timedelta(minutes=5)


class AuthKind(enum.IntEnum):
    """How a request is authenticated (the ``auth_kind`` byte)."""

    SYMMETRIC = 1  # AEAD under the principal's long-term key
    CERTIFICATE = 2  # signed with the principal's certificate key


class ErrorCode(enum.StrEnum):
    """Why the KDC refused a request (carried, unauthenticated, in ERROR)."""

    MALFORMED = "malformed"
    AUTHENTICATION = "authentication-failed"
    STALE = "stale"
    REPLAY = "replay"
    DISABLED = "principal-disabled"
    REVOKED = "revoked"
    DENIED = "access-denied"
    NOT_FOUND = "not-found"
    KEY_STATE = "key-state"
    UNAVAILABLE = "unavailable"

    def exception(self, message: str) -> KeyMgmtError:
        """The exception a client raises for this code."""
        cls = _ERRORS.get(self, RemoteProtocolError)
        return cls(f"the KDC refused the request: {message}", code=self.value)


_ERRORS: Final[dict[ErrorCode, type[KeyMgmtError]]] = {
    ErrorCode.MALFORMED: MalformedInputError,
    ErrorCode.AUTHENTICATION: RemoteProtocolError,
    ErrorCode.STALE: StaleMessageError,
    ErrorCode.REPLAY: ReplayError,
    ErrorCode.DISABLED: AccessDeniedError,
    ErrorCode.REVOKED: RevokedError,
    ErrorCode.DENIED: AccessDeniedError,
    ErrorCode.NOT_FOUND: KeyNotFoundError,
    ErrorCode.KEY_STATE: KeyStateError,
}


def _kdc_key(value: bytes) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidArgumentError("the KDC public key is 32 raw Ed25519 bytes")
    return value


def _path(value: str | os.PathLike[str]) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise InvalidArgumentError(f"a credential file path, not {type(value).__name__}")
    path = Path(value)
    if "\x00" in str(path):  # open() and exists() raise ValueError for it
        raise InvalidArgumentError("a credential file path may not hold a null byte")
    return path


def _principal_name(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"a credential's principal is a non-empty name, got {value!r}")
    return value


def _long_term_key(value: SecretBytes) -> SecretBytes:
    # Checked here, not when a client or receiver first uses it (AESGCM's
    # ValueError, or AttributeError for plain bytes).
    if not isinstance(value, SecretBytes) or len(value) != 32:
        raise InvalidArgumentError("a symmetric credential's key is 32 bytes in a SecretBytes")
    return value


def _signing_key(value: SigningKey) -> SigningKey:
    if not isinstance(
        value, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):
        raise InvalidArgumentError(
            "a certificate credential's private key is an Ed25519, ECDSA or RSA private key, "
            f"not {type(value).__name__}"
        )
    return value


@attrs.frozen(kw_only=True)
class SymmetricCredential:
    """A principal's long-term symmetric key, as handed out once at registration.

    Attributes:
        principal: the principal's name.
        key: the 32-byte long-term key.
        kdc_public_key: the KDC's Ed25519 public key (raw, 32 bytes), to
            verify its revocation lists.

    Raises:
        InvalidArgumentError: an empty or non-str principal, a key that is
            not 32 bytes of SecretBytes, a KDC key that is not 32 bytes.
    """

    principal: str = attrs.field(converter=_principal_name)
    key: SecretBytes = attrs.field(converter=_long_term_key, repr=False)
    kdc_public_key: bytes = attrs.field(converter=_kdc_key, repr=False)

    def to_file(self, path: str | os.PathLike[str]) -> Path:
        """Write the credential to a new file readable by its owner only (0600).

        The file and its directory entry are synced to disk before this
        returns; a file that cannot be written completely is removed.

        Raises:
            InvalidArgumentError: the file exists or cannot be written.
        """
        target = _path(path)
        body = json.dumps(
            {
                "format": _CREDENTIAL_FORMAT,
                "principal": self.principal,
                "key": _codec.b64e(self.key.reveal()),
                "kdc_public_key": _codec.b64e(self.kdc_public_key),
            }
        ).encode()
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise InvalidArgumentError(
                f"cannot create credential file {target}: {exc.strerror}"
            ) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())  # on disk before the caller commits the key
        except OSError as exc:
            target.unlink(missing_ok=True)  # never a partial credential
            raise InvalidArgumentError(
                f"cannot write credential file {target}: {exc.strerror}"
            ) from None
        # The directory entry too, or a crash after the caller commits can
        # leave a principal whose only key file never reached the disk (best
        # effort, as for the master key file: not every filesystem can).
        with contextlib.suppress(OSError):
            directory = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        return target

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SymmetricCredential:
        """Read a credential written by :meth:`to_file`.

        The file holds a long-term key: on POSIX systems one that its group
        or others may read is refused (as OpenSSH refuses such keys, and
        ``keymgmt serve`` its TLS key), so a key left exposed is noticed
        rather than used.

        Raises:
            InvalidArgumentError: unreadable file, or a regular file readable
                by group or others (``chmod 600`` it).
            MalformedInputError: not a credential file.
        """
        target = _path(path)
        try:
            with target.open("rb") as handle:
                mode = os.fstat(handle.fileno()).st_mode  # of what was opened: no race
                data = handle.read(_MAX_CREDENTIAL_FILE + 1)  # never a /dev/zero whole
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read credential file: {exc.strerror}") from None
        if len(data) > _MAX_CREDENTIAL_FILE:
            raise MalformedInputError("not a keymgmt KDC credential file (too large)")
        try:
            value: Any = json.loads(data)
            if not isinstance(value, Mapping) or value.get("format") != _CREDENTIAL_FORMAT:
                raise ValueError
            principal, key_text, kdc_text = (
                value["principal"],
                value["key"],
                value["kdc_public_key"],
            )
            if not all(isinstance(v, str) for v in (principal, key_text, kdc_text)):
                raise ValueError  # a 5 or a null is not the name "5" or "None"
            key = _codec.b64d(key_text)
            kdc = _codec.b64d(kdc_text)
            if len(key) != 32:
                raise ValueError
            credential = cls(principal=principal, key=SecretBytes(key), kdc_public_key=kdc)
        except (ValueError, KeyError, KeyMgmtError, UnicodeDecodeError, RecursionError):
            raise MalformedInputError("not a keymgmt KDC credential file") from None
        if os.name == "posix" and stat.S_ISREG(mode) and mode & 0o077:
            raise InvalidArgumentError(
                f"the credential file {target} is readable by group or others (mode "
                f"{stat.S_IMODE(mode):04o}); make it its owner's only (chmod 600), and "
                "rotate the credential if others may have read it"
            )
        return credential


@attrs.frozen(kw_only=True)
class CertificateCredential:
    """A principal that authenticates with its certificate's private key.

    Attributes:
        principal: the principal's name (registered with this certificate).
        private_key: the certificate's private key (Ed25519, ECDSA or RSA).
        kdc_public_key: the KDC's Ed25519 public key (raw, 32 bytes): it signs
            replies to certificate principals and revocation lists.

    Raises:
        InvalidArgumentError: an empty or non-str principal, a private key
            of another type, a KDC key that is not 32 bytes.
    """

    principal: str = attrs.field(converter=_principal_name)
    private_key: SigningKey = attrs.field(converter=_signing_key, repr=False)
    kdc_public_key: bytes = attrs.field(converter=_kdc_key, repr=False)


Credential = SymmetricCredential | CertificateCredential


@attrs.frozen(kw_only=True)
class GrantedKey:
    """A named key version the KDC handed to this client.

    Use it until :attr:`expires_at`, then ask again; check it against the
    latest :class:`RevocationList` (see :meth:`KdcClient.check_grant`).
    """

    key_name: str
    version: int
    algorithm: str
    material: SecretBytes = attrs.field(repr=False)
    issued_at: _dt.datetime
    expires_at: _dt.datetime
    grant_id: str

    @property
    def key_id(self) -> str:
        """``"name#version"``, the revocation subject of this version."""
        return f"{self.key_name}#{self.version}"

    def is_valid(self, at: _dt.datetime) -> bool:
        """Whether the grant has not expired at ``at``.

        ``issued_at`` is the KDC's time, which may run ahead of the holder's
        clock within the allowed skew, so only the expiry is compared.
        """
        return at < self.expires_at


@attrs.frozen(kw_only=True)
class SessionTicket:
    """A session key shared with ``service`` and the ticket that carries it there."""

    client: str
    service: str
    session_key: SecretBytes = attrs.field(repr=False)
    issued_at: _dt.datetime
    expires_at: _dt.datetime
    ticket_id: str
    ticket: bytes = attrs.field(repr=lambda t: f"<{len(t)} bytes>")


@attrs.frozen(kw_only=True)
class ApRequest:
    """A ticket plus a fresh authenticator, ready to send to the service."""

    data: bytes = attrs.field(repr=lambda t: f"<{len(t)} bytes>")
    nonce: bytes = attrs.field(repr=False)
    ticket: SessionTicket


@attrs.frozen(kw_only=True)
class AcceptedSession:
    """What a service learns when it accepts a ticket.

    Attributes:
        client: the authenticated client principal.
        session_key: the key the client also holds.
        reply: the AP reply to send back (mutual authentication).
    """

    client: str
    service: str
    session_key: SecretBytes = attrs.field(repr=False)
    expires_at: _dt.datetime
    ticket_id: str
    reply: bytes = attrs.field(repr=lambda t: f"<{len(t)} bytes>")


@attrs.frozen
class RevokedEntry:
    """One entry of a KDC revocation list."""

    kind: str  # "key" or "principal"
    subject: str
    reason: str
    revoked_at: _dt.datetime


@attrs.frozen(kw_only=True)
class RevocationList:
    """The KDC's signed list of revoked key versions and principals.

    Verified by the client against the KDC's Ed25519 public key before it is
    returned; :attr:`next_update` says when to fetch a newer one.
    """

    number: int
    this_update: _dt.datetime
    next_update: _dt.datetime
    entries: tuple[RevokedEntry, ...]
    _index: frozenset[tuple[str, str]] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_index", frozenset((e.kind, e.subject) for e in self.entries))

    def is_revoked(self, kind: str, subject: str) -> bool:
        """Whether ``subject`` of ``kind`` is on the list (O(1))."""
        return (kind, subject) in self._index

    def key_revoked(self, key_name: str, version: int) -> bool:
        """Whether this key version, or the whole key, is revoked."""
        return self.is_revoked("key", f"{key_name}#{version}") or self.is_revoked("key", key_name)


def kdc_public_key_bytes(key: ed25519.Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of the KDC's public key."""
    return key.public_bytes_raw()
