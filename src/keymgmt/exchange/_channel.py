"""The secure channel a finished handshake opens: one AEAD key per direction.

Records::

    record = version:u8 (=1) | type:u8 | length:u16 | ciphertext[length]
    type   = 1 data | 2 key update | 3 close

The header is the AEAD's associated data; the nonce is the direction's IV
XOR the record's sequence number (RFC 8446 section 5.3). Sequence numbers are
never sent: each side counts. So a replayed, reordered, dropped or
substituted record fails authentication (the receiver expects another
number), and a stream that ends without a close record is reported as
truncated. Any failure ends the channel: it cannot be resynchronized.

:meth:`SecureChannel.rekey` sends a key-update record and moves the sending
direction to ``Expand-Label(secret, "traffic upd", "", 32)`` with the
sequence reset; the receiver does the same on reading it. Old keys are
dropped, so a later compromise of the channel state does not expose earlier
records. A sender also updates its key by itself (the key-update record goes
out just before the next record) once a key has sealed its budget of
records: 2^24 with AES-256-GCM, whose confidentiality bound allows about
2^24.5 full records per key (RFC 8446 section 5.5).
"""

from __future__ import annotations

import enum
import struct
from typing import Final

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from keymgmt._secret import SecretBytes
from keymgmt.errors import InvalidArgumentError, LocalProtocolError, RemoteProtocolError
from keymgmt.exchange._hkdf import expand_label

__all__ = [
    "MAX_RECORD_PLAINTEXT",
    "NEED_DATA",
    "ChannelCipher",
    "Closed",
    "Data",
    "KeyUpdated",
    "NeedData",
    "SecureChannel",
]

MAX_RECORD_PLAINTEXT: Final = 16 * 1024
_TAG = 16
_HEADER = 4
_VERSION = 1
_DATA, _REKEY, _CLOSE = 1, 2, 3
_MIN_SECRET: Final = 32  # a traffic secret is an HKDF-SHA-256 output
_SEQ_LIMIT: Final = 2**48  # far below nonce reuse; a receiver refuses records past it


class ChannelCipher(enum.StrEnum):
    """The record AEAD. Both ends must choose the same."""

    CHACHA20_POLY1305 = "chacha20-poly1305"
    AES_256_GCM = "aes-256-gcm"


#: Records a sender seals under one key before it moves to the next by itself
#: (a key-update record). AES-GCM's confidentiality bound allows about 2^24.5
#: full records per key (RFC 8446 section 5.5); ChaCha20-Poly1305's is far
#: beyond the sequence limit.
_RECORDS_PER_KEY: Final = {
    ChannelCipher.CHACHA20_POLY1305: _SEQ_LIMIT - 1,
    ChannelCipher.AES_256_GCM: 2**24,
}


class NeedData:
    """More bytes are needed before the next event (a singleton: :data:`NEED_DATA`)."""

    _instance: NeedData | None = None

    def __new__(cls) -> NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


@attrs.frozen
class Data:
    """Application data from the peer."""

    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")


@attrs.frozen
class KeyUpdated:
    """The peer moved its sending keys forward (and so did our receiving side)."""


@attrs.frozen
class Closed:
    """The peer closed the channel cleanly."""


ChannelEvent = Data | KeyUpdated | Closed | NeedData


def _remote(message: str, reason: str) -> RemoteProtocolError:
    return RemoteProtocolError(message, reason=reason)


class _Direction:
    """One direction's key, IV and sequence number."""

    __slots__ = ("_aead", "_cipher", "_iv", "_secret", "seq")

    def __init__(self, secret: SecretBytes, cipher: ChannelCipher) -> None:
        self._cipher = cipher
        self._set(secret)

    def _set(self, secret: SecretBytes) -> None:
        self._secret = secret
        key = expand_label(secret, b"key", b"", 32).reveal()
        self._iv = int.from_bytes(expand_label(secret, b"iv", b"", 12).reveal(), "big")
        self._aead: ChaCha20Poly1305 | AESGCM = (
            ChaCha20Poly1305(key)
            if self._cipher is ChannelCipher.CHACHA20_POLY1305
            else AESGCM(key)
        )
        self.seq = 0

    def nonce(self) -> bytes:
        if self.seq >= _SEQ_LIMIT:
            raise LocalProtocolError("sequence numbers exhausted; rekey first")
        return (self._iv ^ self.seq).to_bytes(12, "big")

    def seal(self, header: bytes, plaintext: bytes) -> bytes:
        out = self._aead.encrypt(self.nonce(), plaintext, header)
        self.seq += 1
        return out

    def open(self, header: bytes, ciphertext: bytes) -> bytes:
        try:
            out = self._aead.decrypt(self.nonce(), ciphertext, header)
        except InvalidTag:
            raise _remote("record authentication failed", "bad-record") from None
        self.seq += 1
        return out

    def update(self) -> None:
        self._set(expand_label(self._secret, b"traffic upd", b"", 32))


class SecureChannel:
    """A sans-IO record layer over two traffic secrets.

    Build it from a finished handshake with
    :meth:`keymgmt.exchange.Session.channel`. Outgoing: :meth:`send`,
    :meth:`rekey`, :meth:`close` return bytes to transmit. Incoming:
    :meth:`receive_data` then :meth:`next_event` until :data:`NEED_DATA`.

    Args:
        send_secret: this side's sending traffic secret.
        receive_secret: the peer's sending traffic secret.
        cipher: the record AEAD (both ends must agree).

    Raises:
        InvalidArgumentError: an unknown cipher, or a secret that is not
            :class:`~keymgmt.SecretBytes` of at least 32 bytes.
    """

    def __init__(
        self,
        *,
        send_secret: SecretBytes,
        receive_secret: SecretBytes,
        cipher: ChannelCipher = ChannelCipher.CHACHA20_POLY1305,
    ) -> None:
        try:
            cipher = ChannelCipher(cipher)
        except ValueError:
            names = ", ".join(c.value for c in ChannelCipher)
            raise InvalidArgumentError(
                f"unknown channel cipher {cipher!r}; expected one of: {names}"
            ) from None
        secrets: tuple[object, object] = (send_secret, receive_secret)
        if not all(isinstance(x, SecretBytes) and len(x) >= _MIN_SECRET for x in secrets):
            raise InvalidArgumentError(
                f"the traffic secrets must be SecretBytes of at least {_MIN_SECRET} bytes"
            )
        self._records_per_key = _RECORDS_PER_KEY[cipher]
        self._send = _Direction(send_secret, cipher)
        self._recv = _Direction(receive_secret, cipher)
        self._buffer = bytearray()
        self._eof = False
        self._sent_close = False
        self._peer_closed = False
        self._broken = False

    # -- outgoing -------------------------------------------------------------

    def _record(self, kind: int, plaintext: bytes) -> bytes:
        if self._broken:
            raise LocalProtocolError("the channel failed; open a new one")
        if self._sent_close:
            raise LocalProtocolError("the channel is closed for sending")
        update = b""
        if kind != _REKEY and self._send.seq >= self._records_per_key:
            update = self._record(_REKEY, b"")  # the key's record budget is spent
            self._send.update()
        header = struct.pack(">BBH", _VERSION, kind, len(plaintext) + _TAG)
        return update + header + self._send.seal(header, plaintext)

    def send(self, data: bytes) -> bytes:
        """Encrypt ``data`` into one or more records.

        Raises:
            LocalProtocolError: the channel is closed or broken.
            InvalidArgumentError: ``data`` is not bytes.
        """
        candidate: object = data
        if not isinstance(candidate, bytes | bytearray | memoryview):
            raise InvalidArgumentError("data must be bytes")
        data = bytes(data)
        if not data:
            return self._record(_DATA, b"")
        return b"".join(
            self._record(_DATA, data[i : i + MAX_RECORD_PLAINTEXT])
            for i in range(0, len(data), MAX_RECORD_PLAINTEXT)
        )

    def rekey(self) -> bytes:
        """Send a key update and move our sending keys forward.

        Raises:
            LocalProtocolError: the channel is closed or broken.
        """
        record = self._record(_REKEY, b"")
        self._send.update()
        return record

    def close(self) -> bytes:
        """Send the close record; nothing may be sent afterwards.

        Raises:
            LocalProtocolError: already closed or broken.
        """
        record = self._record(_CLOSE, b"")
        self._sent_close = True
        return record

    # -- incoming -----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the network; ``b""`` means the peer closed the stream.

        Raises:
            LocalProtocolError: data after end of stream.
            InvalidArgumentError: ``data`` is not bytes.
        """
        candidate: object = data
        if not isinstance(candidate, bytes | bytearray | memoryview):
            raise InvalidArgumentError("receive_data takes bytes")
        if self._eof and data:
            raise LocalProtocolError("receive_data after end of stream")
        if not data:
            self._eof = True
            return
        self._buffer += data

    def next_event(self) -> ChannelEvent:
        """The next event from the peer, or :data:`NEED_DATA`.

        Raises:
            RemoteProtocolError: a record failed authentication (tampered,
                replayed, reordered or dropped), was malformed, came after
                close, or the stream ended without a close record
                (``reason``: ``bad-record``, ``malformed``, ``after-close``,
                ``truncated``).
            LocalProtocolError: the channel already failed.
        """
        if self._broken:
            raise LocalProtocolError("the channel failed; open a new one")
        try:
            return self._next()
        except RemoteProtocolError:
            self._broken = True
            raise

    def _next(self) -> ChannelEvent:
        buf = self._buffer
        if self._peer_closed:
            if buf:
                raise _remote("data after the close record", "after-close")
            return NEED_DATA
        if len(buf) >= _HEADER:
            version, kind, length = struct.unpack_from(">BBH", buf)
            if version != _VERSION or kind not in (_DATA, _REKEY, _CLOSE):
                raise _remote("malformed record header", "malformed")
            if not _TAG <= length <= MAX_RECORD_PLAINTEXT + _TAG:
                raise _remote("record length out of range", "malformed")
            if len(buf) >= _HEADER + length:
                header = bytes(buf[:_HEADER])
                body = bytes(buf[_HEADER : _HEADER + length])
                del buf[: _HEADER + length]
                plaintext = self._recv.open(header, body)
                if kind == _DATA:
                    return Data(plaintext)
                if plaintext:
                    raise _remote("control record with a payload", "malformed")
                if kind == _REKEY:
                    self._recv.update()
                    return KeyUpdated()
                self._peer_closed = True
                return Closed()
        if self._eof:
            raise _remote("the stream ended without a close record", "truncated")
        return NEED_DATA

    @property
    def closed(self) -> bool:
        """Whether both sides have closed."""
        return self._sent_close and self._peer_closed

    def __repr__(self) -> str:
        return f"SecureChannel(sent={self._send.seq}, received={self._recv.seq})"
