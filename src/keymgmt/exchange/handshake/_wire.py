"""The handshake's wire format: three length-prefixed, versioned messages.

Every message is one frame::

    frame   = version:u8 (=1) | type:u8 | length:u24 | body[length]

    ClientHello  (type 1) = nonce[32] | timestamp_ms:u64 | group:u8 | share<u16>
    ServerHello  (type 2) = nonce[32] | group:u8 | share<u16> | sealed_auth<u16>
    ClientFinish (type 3) = sealed_auth<u16>

    auth (the plaintext of sealed_auth)
                  = count:u8 (1..8) | cert<u16> * count | signature<u16> | finished[32]

``x<u16>`` is a 16-bit big-endian length followed by that many bytes. Parsers
are strict: an unknown version or type, a size other than the group's exact
share size, an empty or oversized field, or a single trailing byte is
refused with :class:`~keymgmt.errors.HandshakeError` (``reason`` says what).
A frame longer than :data:`MAX_FRAME` is refused from its header, before
its body is buffered.
"""

from __future__ import annotations

import struct
from typing import Final

import attrs

from keymgmt.errors import HandshakeError
from keymgmt.exchange._groups import GroupInfo, group_by_code

__all__ = [
    "CLIENT_FINISH",
    "CLIENT_HELLO",
    "FINISHED_SIZE",
    "HEADER_SIZE",
    "MAX_CHAIN",
    "MAX_FRAME",
    "NONCE_SIZE",
    "SERVER_HELLO",
    "VERSION",
    "Auth",
    "ClientHello",
    "ServerHello",
    "decode_auth",
    "encode_auth",
    "encode_frame",
    "parse_header",
]

VERSION: Final = 1
CLIENT_HELLO: Final = 1
SERVER_HELLO: Final = 2
CLIENT_FINISH: Final = 3
HEADER_SIZE: Final = 5
MAX_FRAME: Final = 64 * 1024
NONCE_SIZE: Final = 32
FINISHED_SIZE: Final = 32
MAX_CHAIN: Final = 8

_NAMES: Final = {
    CLIENT_HELLO: "ClientHello",
    SERVER_HELLO: "ServerHello",
    CLIENT_FINISH: "ClientFinish",
}


def _malformed(what: str, reason: str = "malformed") -> HandshakeError:
    return HandshakeError(f"malformed handshake message: {what}", reason=reason)


def encode_frame(kind: int, body: bytes) -> bytes:
    """Prefix ``body`` with the frame header."""
    if len(body) > MAX_FRAME:
        raise _malformed("message too large", "too-large")  # pragma: no cover - sizes bounded
    return struct.pack(">BB", VERSION, kind) + len(body).to_bytes(3, "big") + body


def parse_header(header: bytes) -> tuple[int, int]:
    """Return ``(type, body length)`` from a 5-byte header.

    Raises:
        HandshakeError: unknown version or type, or an oversized body.
    """
    version, kind = header[0], header[1]
    length = int.from_bytes(header[2:5], "big")
    if version != VERSION:
        raise HandshakeError(
            f"unsupported handshake version {version}", reason="unsupported-version"
        )
    if kind not in _NAMES:
        raise _malformed(f"unknown message type {kind}", "unknown-type")
    if length > MAX_FRAME:
        raise _malformed(f"{_NAMES[kind]} of {length} bytes exceeds {MAX_FRAME}", "too-large")
    return kind, length


def message_name(kind: int) -> str:
    """The message's name, for errors."""
    return _NAMES.get(kind, f"type {kind}")


class _Reader:
    """Reads fields off a body; every read is bounds-checked."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise _malformed(f"{self._what} is truncated", "truncated")
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "big")

    def vec16(self, field: str, *, min_size: int = 1) -> bytes:
        n = int.from_bytes(self.take(2), "big")
        if n < min_size:
            raise _malformed(f"{self._what} has an empty {field}")
        return self.take(n)

    def done(self) -> None:
        if self._pos != len(self._data):
            raise _malformed(f"{self._what} has trailing bytes", "trailing-bytes")


def _vec16(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _group(code: int, what: str) -> GroupInfo:
    info = group_by_code(code)
    if info is None:
        raise HandshakeError(f"{what} names unknown group {code}", reason="unsupported-group")
    return info


@attrs.frozen
class ClientHello:
    """The initiator's first message."""

    nonce: bytes
    timestamp_ms: int
    group: GroupInfo
    share: bytes

    def encode(self) -> bytes:
        """The whole frame."""
        body = (
            self.nonce
            + self.timestamp_ms.to_bytes(8, "big")
            + bytes([self.group.code])
            + _vec16(self.share)
        )
        return encode_frame(CLIENT_HELLO, body)

    @classmethod
    def decode(cls, body: bytes) -> ClientHello:
        """Parse a ClientHello body.

        Raises:
            HandshakeError: malformed, unknown group, or a wrong share size.
        """
        r = _Reader(body, "ClientHello")
        nonce = r.take(NONCE_SIZE)
        timestamp = r.u64()
        group = _group(r.u8(), "ClientHello")
        share = r.vec16("key share")
        r.done()
        if len(share) != group.initiator_share_size:
            raise _malformed("ClientHello key share has the wrong size for its group")
        return cls(nonce, timestamp, group, share)


@attrs.frozen
class ServerHello:
    """The responder's message: its share in clear, its authentication sealed."""

    nonce: bytes
    group: GroupInfo
    share: bytes
    sealed_auth: bytes

    def plain_part(self) -> bytes:
        """The part hashed into the transcript before the handshake keys exist."""
        return self.nonce + bytes([self.group.code]) + _vec16(self.share)

    def encode(self) -> bytes:
        """The whole frame."""
        return encode_frame(SERVER_HELLO, self.plain_part() + _vec16(self.sealed_auth))

    @classmethod
    def decode(cls, body: bytes) -> ServerHello:
        """Parse a ServerHello body.

        Raises:
            HandshakeError: malformed, unknown group, or a wrong share size.
        """
        r = _Reader(body, "ServerHello")
        nonce = r.take(NONCE_SIZE)
        group = _group(r.u8(), "ServerHello")
        share = r.vec16("key share")
        sealed = r.vec16("sealed authentication")
        r.done()
        if len(share) != group.responder_share_size:
            raise _malformed("ServerHello key share has the wrong size for its group")
        return cls(nonce, group, share, sealed)


def encode_client_finish(sealed_auth: bytes) -> bytes:
    """The ClientFinish frame."""
    return encode_frame(CLIENT_FINISH, _vec16(sealed_auth))


def decode_client_finish(body: bytes) -> bytes:
    """Return the sealed authentication of a ClientFinish body.

    Raises:
        HandshakeError: malformed.
    """
    r = _Reader(body, "ClientFinish")
    sealed = r.vec16("sealed authentication")
    r.done()
    return sealed


@attrs.frozen
class Auth:
    """A party's proof of identity: certificate chain, transcript signature, finished MAC."""

    chain: tuple[bytes, ...]
    signature: bytes
    finished: bytes

    def chain_part(self) -> bytes:
        """Encoded chain (hashed into the transcript before the signature)."""
        return bytes([len(self.chain)]) + b"".join(_vec16(c) for c in self.chain)

    def signature_part(self) -> bytes:
        """Encoded signature (hashed before the finished MAC)."""
        return _vec16(self.signature)


def encode_auth(auth: Auth) -> bytes:
    """Encode an :class:`Auth` (the plaintext of ``sealed_auth``)."""
    return auth.chain_part() + auth.signature_part() + auth.finished


def decode_auth(data: bytes, what: str) -> Auth:
    """Parse the plaintext of ``sealed_auth``.

    Raises:
        HandshakeError: malformed, an empty or overlong chain.
    """
    r = _Reader(data, what)
    count = r.u8()
    if not 1 <= count <= MAX_CHAIN:
        raise _malformed(f"{what} carries {count} certificates (1 to {MAX_CHAIN} allowed)")
    chain = tuple(r.vec16("certificate") for _ in range(count))
    signature = r.vec16("signature")
    finished = r.take(FINISHED_SIZE)
    r.done()
    return Auth(chain, signature, finished)
