"""The KDC wire format, version 1: strict, length-prefixed, bounded.

Every KDC message is::

    magic "KD" | version (1 byte, = 1) | type (1 byte) | field* (exactly as many as the type has)

and every field is ``length (4 bytes, big-endian) | bytes``. Each message
type has a fixed list of fields, and each field a minimum and maximum
length; integers travel as fixed-width big-endian fields (timestamps as
8-byte microseconds since the epoch). The parser refuses, with
:class:`~keymgmt.errors.MalformedInputError`: a wrong magic, an unknown
version, an unknown or unexpected type, a field outside its bounds, a
truncated field, too few fields and any trailing byte. The same field codec
(without the 4-byte header) encodes the *inner* bodies that travel encrypted,
and those are parsed just as strictly after decryption.

The header (magic, version, type) is part of the associated data or the
signed bytes of every protected part, so a message cannot be re-labelled as
another type or another version.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from typing import Final

import attrs

from keymgmt.errors import MalformedInputError

__all__ = [
    "MAGIC",
    "MAX_MESSAGE",
    "VERSION",
    "Field",
    "MessageType",
    "decode",
    "decode_fields",
    "encode",
    "encode_after",
    "encode_fields",
    "header",
    "u32",
    "u64",
    "read_u32",
    "read_u64",
]

MAGIC: Final = b"KD"
VERSION: Final = 1
#: No message is larger than this (a revocation list of ~40k entries fits).
MAX_MESSAGE: Final = 4 * 1024 * 1024

_LEN = struct.Struct(">I")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class MessageType(enum.IntEnum):
    """The type byte of each KDC message."""

    KEY_REQUEST = 1
    KEY_REPLY = 2
    TICKET_REQUEST = 3
    TICKET_REPLY = 4
    TICKET = 5
    AP_REQUEST = 6
    AP_REPLY = 7
    ERROR = 8
    REVOCATION_LIST_REQUEST = 9
    REVOCATION_LIST = 10


_TYPES: Final = {int(m): m for m in MessageType}


@attrs.frozen
class Field:
    """One field of a message schema: its name and its length bounds."""

    name: str
    min: int
    max: int


def _f(name: str, lo: int, hi: int | None = None) -> Field:
    return Field(name, lo, lo if hi is None else hi)


NAME_MAX: Final = 255
_PRINCIPAL = _f("principal", 1, NAME_MAX)
_TICKET_MAX: Final = 2048

#: The outer fields of each message type.
SCHEMAS: Final[dict[MessageType, tuple[Field, ...]]] = {
    MessageType.KEY_REQUEST: (
        _PRINCIPAL,
        _f("auth_kind", 1),
        _f("body", 1, 4096),
        _f("signature", 0, 1024),
    ),
    MessageType.TICKET_REQUEST: (
        _PRINCIPAL,
        _f("auth_kind", 1),
        _f("body", 1, 4096),
        _f("signature", 0, 1024),
    ),
    MessageType.KEY_REPLY: (
        _PRINCIPAL,
        _f("nonce", 16),
        _f("kdc_share", 0, 32),
        _f("sealed", 28, 4096),
        _f("signature", 0, 64),
    ),
    MessageType.TICKET_REPLY: (
        _PRINCIPAL,
        _f("nonce", 16),
        _f("kdc_share", 0, 32),
        _f("sealed", 28, 8192),
        _f("signature", 0, 64),
    ),
    MessageType.TICKET: (
        _f("service", 1, NAME_MAX),
        _f("sealed", 28, _TICKET_MAX),
    ),
    MessageType.AP_REQUEST: (
        _f("ticket", 1, _TICKET_MAX + 64),
        _f("authenticator", 28, 1024),
    ),
    MessageType.AP_REPLY: (_f("sealed", 28, 256),),
    MessageType.ERROR: (
        _f("code", 1, 64),
        _f("message", 0, 1024),
    ),
    MessageType.REVOCATION_LIST_REQUEST: (_f("nonce", 0, 16),),
    MessageType.REVOCATION_LIST: (
        _f("number", 8),
        _f("this_update", 8),
        _f("next_update", 8),
        _f("nonce", 0, 16),
        _f("entries", 0, MAX_MESSAGE - 256),
        _f("signature", 64),
    ),
}

#: Inner (encrypted or signed) bodies, parsed with :func:`decode_fields`.
INNER: Final[dict[str, tuple[Field, ...]]] = {
    "request": (
        _f("target", 1, NAME_MAX),
        _f("nonce", 16),
        _f("timestamp", 8),
        _f("reply_share", 0, 32),
    ),
    "key_reply": (
        _f("key_name", 1, NAME_MAX),
        _f("version", 4),
        _f("algorithm", 1, 64),
        _f("material", 16, 64),
        _f("issued_at", 8),
        _f("expires_at", 8),
        _f("grant_id", 16),
    ),
    "ticket_reply": (
        _f("service", 1, NAME_MAX),
        _f("session_key", 32),
        _f("issued_at", 8),
        _f("expires_at", 8),
        _f("ticket_id", 16),
        _f("ticket", 1, _TICKET_MAX + 64),
    ),
    "ticket": (
        _f("client", 1, NAME_MAX),
        _f("service", 1, NAME_MAX),
        _f("session_key", 32),
        _f("issued_at", 8),
        _f("expires_at", 8),
        _f("ticket_id", 16),
    ),
    "authenticator": (
        _f("client", 1, NAME_MAX),
        _f("timestamp", 8),
        _f("nonce", 16),
    ),
    "ap_reply": (
        _f("nonce", 16),
        _f("timestamp", 8),
    ),
    "revocation_entry": (
        _f("kind", 1, 16),
        _f("subject", 1, 512),
        _f("reason", 1, 64),
        _f("revoked_at", 8),
    ),
}


_HEADERS: Final = {kind: MAGIC + bytes((VERSION, int(kind))) for kind in MessageType}
_BOUNDS: Final = {
    kind: tuple((spec.min, spec.max) for spec in schema) for kind, schema in SCHEMAS.items()
}


def header(kind: MessageType) -> bytes:
    """The 4-byte header of a version-1 message of type ``kind``."""
    return _HEADERS[kind]


def encode_fields(fields: Sequence[bytes]) -> bytes:
    """Length-prefix and concatenate ``fields`` (no header)."""
    pack = _LEN.pack
    parts: list[bytes] = []
    for field in fields:
        parts.append(pack(len(field)))
        parts.append(field)
    return b"".join(parts)


def encode(kind: MessageType, fields: Sequence[bytes]) -> bytes:
    """Encode a whole message, checking the fields against the type's schema.

    Raises:
        MalformedInputError: wrong field count or a field outside its bounds
            (a local bug, or an oversize name given by the caller).
    """
    if len(fields) != len(_BOUNDS[kind]):
        _check(fields, SCHEMAS[kind], kind.name)  # says how many were expected
    return encode_after(kind, _HEADERS[kind], 0, fields)


def encode_after(kind: MessageType, head: bytes, count: int, fields: Sequence[bytes]) -> bytes:
    """Finish a message whose header and first ``count`` fields are already ``head``.

    For builders that encoded those fields once for associated data: only
    the remaining ``fields`` are checked against the schema here, so the
    caller must have checked the first ones (:func:`encode` does both).

    Raises:
        MalformedInputError: wrong field count or a field outside its bounds.
    """
    bounds = _BOUNDS[kind][count:]
    if len(fields) != len(bounds):
        raise MalformedInputError(
            f"{kind.name}: expected {len(bounds)} more fields, got {len(fields)}"
        )
    pack = _LEN.pack
    parts = [head]
    for index, (field, (lo, hi)) in enumerate(zip(fields, bounds, strict=True)):
        size = len(field)
        if not lo <= size <= hi:
            spec = SCHEMAS[kind][count + index]
            raise MalformedInputError(
                f"{kind.name}: field {spec.name!r} has {size} bytes "
                f"(allowed {spec.min}..{spec.max})",
                field=spec.name,
            )
        parts.append(pack(size))
        parts.append(field)
    return b"".join(parts)


def _check(fields: Sequence[bytes], schema: tuple[Field, ...], what: str) -> None:
    if len(fields) != len(schema):
        raise MalformedInputError(f"{what}: expected {len(schema)} fields, got {len(fields)}")
    for value, spec in zip(fields, schema, strict=True):
        if not spec.min <= len(value) <= spec.max:
            raise MalformedInputError(
                f"{what}: field {spec.name!r} has {len(value)} bytes "
                f"(allowed {spec.min}..{spec.max})",
                field=spec.name,
            )


def decode_fields(data: bytes, schema: tuple[Field, ...], what: str) -> list[bytes]:
    """Parse exactly ``len(schema)`` length-prefixed fields filling all of ``data``.

    Raises:
        MalformedInputError: truncated, oversize, missing or trailing bytes.
    """
    return _decode_fields(data if type(data) is bytes else bytes(data), 0, schema, what)


def _decode_fields(data: bytes, pos: int, schema: tuple[Field, ...], what: str) -> list[bytes]:
    # The hot path of every message: plain bytes slicing (one copy per
    # field), no memoryview round trip, the bounds checked before slicing.
    out: list[bytes] = []
    unpack = _LEN.unpack_from
    end = len(data)
    for spec in schema:
        if end - pos < 4:
            raise MalformedInputError(f"{what}: truncated before field {spec.name!r}")
        (length,) = unpack(data, pos)
        pos += 4
        if not spec.min <= length <= spec.max:
            raise MalformedInputError(
                f"{what}: field {spec.name!r} has {length} bytes (allowed {spec.min}..{spec.max})",
                field=spec.name,
            )
        stop = pos + length
        if stop > end:
            raise MalformedInputError(f"{what}: field {spec.name!r} is truncated")
        out.append(data[pos:stop])
        pos = stop
    if pos != end:
        raise MalformedInputError(f"{what}: {end - pos} trailing bytes")
    return out


def peek_type(data: bytes) -> MessageType:
    """The type of a message, after checking magic and version.

    Raises:
        MalformedInputError: not a KDC message, unknown version or type.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedInputError("a KDC message must be bytes")
    if len(data) > MAX_MESSAGE:
        raise MalformedInputError(f"message too large ({len(data)} bytes, max {MAX_MESSAGE})")
    if len(data) < 4 or bytes(data[:2]) != MAGIC:
        raise MalformedInputError("not a KDC message (bad magic)")
    if data[2] != VERSION:
        raise MalformedInputError(
            f"unsupported KDC protocol version {data[2]} (this side speaks {VERSION})",
            version=data[2],
        )
    found = _TYPES.get(data[3])
    if found is None:
        raise MalformedInputError(f"unknown KDC message type {data[3]}")
    return found


def decode(data: bytes, *expected: MessageType) -> tuple[MessageType, list[bytes]]:
    """Parse a whole message whose type must be one of ``expected``.

    Raises:
        MalformedInputError: anything wrong with the framing (see the module
            docstring), or a type not in ``expected``.
    """
    kind = peek_type(data)
    if expected and kind not in expected:
        names = ", ".join(e.name for e in expected)
        raise MalformedInputError(
            f"unexpected KDC message {kind.name} (expected {names})", message_type=kind.name
        )
    raw = data if type(data) is bytes else bytes(data)
    return kind, _decode_fields(raw, 4, SCHEMAS[kind], kind.name)


def u32(value: int) -> bytes:
    """Encode a 32-bit unsigned integer field."""
    return _U32.pack(value)


def u64(value: int) -> bytes:
    """Encode a 64-bit unsigned integer field."""
    return _U64.pack(value)


def read_u32(data: bytes) -> int:
    """Decode a 32-bit field (its length was checked by the schema)."""
    value: int = _U32.unpack(data)[0]
    return value


def read_u64(data: bytes) -> int:
    """Decode a 64-bit field (its length was checked by the schema)."""
    value: int = _U64.unpack(data)[0]
    return value


def text(data: bytes, what: str) -> str:
    """Decode a UTF-8 name field.

    Raises:
        MalformedInputError: not UTF-8, or it holds control characters.
    """
    try:
        value = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInputError(f"{what} is not valid UTF-8") from None
    if not value.isprintable():
        raise MalformedInputError(f"{what} holds control characters")
    return value


def claimed_principal(message: bytes) -> str | None:
    """The principal a KEY_REQUEST or TICKET_REQUEST claims to come from, else None.

    Only the framing is checked, not the authentication: a front end (the
    HTTPS service) uses it to refuse requests made in someone else's name
    before the KDC verifies them. Malformed input gives None, never an error.
    """
    try:
        kind, fields = decode(message)
    except MalformedInputError:
        return None
    if kind not in (MessageType.KEY_REQUEST, MessageType.TICKET_REQUEST):
        return None
    try:
        return fields[0].decode("utf-8")
    except UnicodeDecodeError:
        return None
