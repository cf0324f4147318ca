"""The keymgmt ciphertext format (version 1) and the encryption context encoding.

Every ciphertext, wrapped data key and enveloped signature starts with a
header that says exactly which key version it needs, so decryption never
guesses and rotation needs no trial decryption::

    offset  size  field
    0       2     magic b"km"
    2       1     format version (1)
    3       1     payload type (1 message, 2 data key, 3 signature)
    4       1     algorithm code (see ALGORITHM_CODES; never reused)
    5       8     key id (random at key creation; a re-created key of the
                  same name is a different key)
    13      1     n = length of the key name (1..128)
    14      n     key name, ASCII
    14+n    4     key version, big-endian unsigned
    18+n    ...   body, by algorithm:
                    AES-256-GCM, ChaCha20-Poly1305, AES-256-GCM-SIV:
                        nonce (12) | ciphertext | tag (16)
                    Fernet: the Fernet token exactly as Fernet writes it
                    key pairs: what the asymmetric layer writes (HPKE
                        enc | ciphertext, RSA-OAEP ciphertext, signature)

The *prefix* is bytes ``0 .. 18+n``. For AEADs the associated data is
``prefix || encode_context(context)``, so every header byte and the context
are authenticated; the nonce is authenticated by being the AEAD's nonce.
Fernet cannot take associated data, so Fernet keys refuse a non-empty
context and decrypting with a context fails. Nor can a Fernet token bind the
payload type, so Fernet keys hold messages only: they make no data keys, and
a Fernet envelope of any other type never decrypts (a message relabelled as
a data key would otherwise unwrap). The other header bytes are checked
against the version they name (format, algorithm, key id, name) and the
version number selects the Fernet key, so a changed header never decrypts.

The context encoding is canonical (sorted by key, length-prefixed UTF-8)::

    empty mapping -> b""
    otherwise     -> count (2) | for each (k, v) sorted by k:
                                 len(k) (2) | k | len(v) (4) | v

Parsing is strict: wrong magic, unknown format version, payload type or
algorithm code, an invalid name or a body too short raise
:class:`~keymgmt.errors.MalformedInputError`, which the decrypt paths turn
into the one opaque :class:`~keymgmt.errors.DecryptionError`.
"""

from __future__ import annotations

import enum
import json
import re
import struct
from collections.abc import Mapping
from typing import Final

import attrs

from keymgmt.algorithms import Algorithm
from keymgmt.errors import InvalidArgumentError, MalformedInputError

__all__ = [
    "ALGORITHM_CODES",
    "ContextEncoder",
    "FORMAT_VERSION",
    "MAGIC",
    "Header",
    "PayloadType",
    "check_name",
    "context_json",
    "encode_context",
    "parse_header",
    "prefix",
    "require_bytes",
]

MAGIC: Final = b"km"
FORMAT_VERSION: Final = 1
_FIXED: Final = 14  # magic, format, type, algorithm, key id, name length
_VERSION: Final = struct.Struct(">I")
_KEY_ID_SIZE: Final = 8
_MAX_NAME: Final = 128
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

_MAX_CONTEXT_ENTRIES: Final = 64
_MAX_CONTEXT_KEY: Final = 256
_MAX_CONTEXT_VALUE: Final = 4096


class PayloadType(enum.IntEnum):
    """What a keymgmt envelope holds."""

    MESSAGE = 1
    DATA_KEY = 2
    SIGNATURE = 3


#: One byte per algorithm in every header. Codes are never reused.
ALGORITHM_CODES: Final[dict[Algorithm, int]] = {
    Algorithm.AES_256_GCM: 1,
    Algorithm.CHACHA20_POLY1305: 2,
    Algorithm.AES_256_GCM_SIV: 3,
    Algorithm.FERNET: 4,
    Algorithm.ED25519: 16,
    Algorithm.ECDSA_P256: 17,
    Algorithm.ECDSA_P384: 18,
    Algorithm.RSA_2048: 19,
    Algorithm.RSA_3072: 20,
    Algorithm.RSA_4096: 21,
    Algorithm.ML_DSA_44: 22,
    Algorithm.ML_DSA_65: 23,
    Algorithm.ML_DSA_87: 24,
    Algorithm.X25519: 32,
    Algorithm.ECDH_P256: 33,
    Algorithm.ML_KEM_768: 34,
    Algorithm.ML_KEM_768_X25519: 35,
}
_BY_CODE: Final = {code: algorithm for algorithm, code in ALGORITHM_CODES.items()}


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid key name.

    Key names are 1-128 ASCII characters: letters, digits, ``.``, ``_``,
    ``-``, starting with a letter or digit (no ``#``: it separates versions).

    Raises:
        InvalidArgumentError: the name is not valid.
    """
    if not isinstance(name, str):
        # Never echo it: a plaintext passed where the name goes (swapped
        # arguments) would land in the message, and in whatever logs it.
        raise InvalidArgumentError(
            f"invalid key name: a key name must be a str, not {type(name).__name__}"
        )
    if _NAME_RE.fullmatch(name) is None:
        raise InvalidArgumentError(
            f"invalid key name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            key_name=name,
        )
    return name


def require_bytes(value: object, what: str) -> bytes:
    """``value`` as ``bytes`` when it is bytes-like (``bytes``, ``bytearray``, ``memoryview``).

    Never ``bytes(value)`` on a caller's argument unchecked: an ``int`` would
    become that many zero bytes (an all-zero key, a signature over zeros) and
    a ``str`` a foreign ``TypeError``.

    Raises:
        InvalidArgumentError: ``value`` is not bytes-like.
    """
    if type(value) is bytes:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise InvalidArgumentError(f"{what} must be bytes, not {type(value).__name__}")


def prefix(
    payload: PayloadType, algorithm: Algorithm, key_id: bytes, name: str, version: int
) -> bytes:
    """The header prefix (everything before the body) for one key version."""
    encoded = name.encode("ascii")
    return (
        MAGIC
        + bytes((FORMAT_VERSION, payload, ALGORITHM_CODES[algorithm]))
        + key_id
        + bytes((len(encoded),))
        + encoded
        + _VERSION.pack(version)
    )


@attrs.frozen
class Header:
    """A parsed header."""

    payload: PayloadType
    algorithm: Algorithm
    key_id: bytes
    name: str
    version: int
    prefix_length: int


def parse_header(data: bytes | bytearray | memoryview) -> Header:
    """Parse and validate the header of a keymgmt envelope.

    Raises:
        MalformedInputError: not bytes, or not a keymgmt envelope of a known format.
    """
    try:
        view = memoryview(data)
    except TypeError:
        raise MalformedInputError(
            f"a keymgmt envelope is bytes, not {type(data).__name__}"
        ) from None
    if not view.contiguous or view.itemsize != 1 or view.ndim != 1:  # struct: flat bytes
        view = memoryview(view.tobytes())
    if len(view) < _FIXED + 1 + _VERSION.size:
        raise MalformedInputError("input is too short for a keymgmt header")
    if bytes(view[0:2]) != MAGIC:
        raise MalformedInputError("input is not a keymgmt envelope (bad magic)")
    if view[2] != FORMAT_VERSION:
        raise MalformedInputError(f"unknown keymgmt format version {view[2]}")
    try:
        payload = PayloadType(view[3])
    except ValueError:
        raise MalformedInputError(f"unknown payload type {view[3]}") from None
    algorithm = _BY_CODE.get(view[4])
    if algorithm is None:
        raise MalformedInputError(f"unknown algorithm code {view[4]}")
    key_id = bytes(view[5 : 5 + _KEY_ID_SIZE])
    n = view[13]
    end = _FIXED + n
    if n == 0 or n > _MAX_NAME or len(view) < end + _VERSION.size:
        raise MalformedInputError("bad key name length in header")
    raw_name = bytes(view[_FIXED:end])
    try:
        name = raw_name.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedInputError("key name in header is not ASCII") from None
    if _NAME_RE.fullmatch(name) is None:
        raise MalformedInputError("invalid key name in header")
    (version,) = _VERSION.unpack_from(view, end)
    if version == 0:
        raise MalformedInputError("key version 0 in header")
    return Header(payload, algorithm, key_id, name, version, end + _VERSION.size)


def prefix_length(data: bytes | bytearray | memoryview) -> int:
    """Length of the prefix if ``data`` is long enough to hold one, else 0 (no checks)."""
    if len(data) <= _FIXED:
        return 0
    return _FIXED + data[13] + _VERSION.size


class ContextEncoder:
    """:func:`encode_context` with a small cache (applications reuse a few contexts).

    Keyed by the mapping's items in iteration order; a mapping whose items
    cannot be hashed is encoded (and validated) the slow way.
    """

    __slots__ = ("_cache",)

    _MAX: Final = 256

    def __init__(self) -> None:
        self._cache: dict[tuple[tuple[object, object], ...], bytes] = {}

    def __call__(self, context: Mapping[str, str]) -> bytes:
        """Canonical bytes of ``context`` (see :func:`encode_context`).

        Raises:
            InvalidArgumentError: not a str -> str mapping, or too large.
        """
        try:
            key = tuple(context.items())
            found = self._cache.get(key)
        except (TypeError, AttributeError):
            return encode_context(context)
        if found is not None:
            return found
        encoded = encode_context(context)
        if len(self._cache) >= self._MAX:
            self._cache.clear()
        self._cache[key] = encoded
        return encoded


def encode_context(context: Mapping[str, str] | None) -> bytes:
    """Canonical bytes of an encryption context (see the module docstring).

    Raises:
        InvalidArgumentError: not a str -> str mapping, or too large.
    """
    if not context:
        if context is not None and not isinstance(context, Mapping):
            raise InvalidArgumentError("the encryption context must be a mapping of str to str")
        return b""
    if not isinstance(context, Mapping):
        raise InvalidArgumentError("the encryption context must be a mapping of str to str")
    if len(context) > _MAX_CONTEXT_ENTRIES:
        raise InvalidArgumentError(
            f"the encryption context has more than {_MAX_CONTEXT_ENTRIES} entries"
        )
    if not all(isinstance(key, str) for key in context):  # sorted() would raise TypeError
        raise InvalidArgumentError("the encryption context must map str to str")
    parts = [struct.pack(">H", len(context))]
    for key in sorted(context):
        value = context[key]
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentError("the encryption context must map str to str")
        try:
            k = key.encode("utf-8")
            v = value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgumentError("the encryption context is not valid Unicode") from None
        if len(k) > _MAX_CONTEXT_KEY or len(v) > _MAX_CONTEXT_VALUE:
            raise InvalidArgumentError(
                f"encryption context keys are at most {_MAX_CONTEXT_KEY} bytes and values "
                f"at most {_MAX_CONTEXT_VALUE} bytes"
            )
        parts.append(struct.pack(">H", len(k)) + k + struct.pack(">I", len(v)) + v)
    return b"".join(parts)


def context_json(encoded: bytes) -> str:
    """The audit form of an encoded context: canonical JSON (contexts are not secret)."""
    if not encoded:
        return "{}"
    out: dict[str, str] = {}
    (count,) = struct.unpack_from(">H", encoded, 0)
    offset = 2
    for _ in range(count):
        (kl,) = struct.unpack_from(">H", encoded, offset)
        offset += 2
        key = encoded[offset : offset + kl].decode("utf-8")
        offset += kl
        (vl,) = struct.unpack_from(">I", encoded, offset)
        offset += 4
        out[key] = encoded[offset : offset + vl].decode("utf-8")
        offset += vl
    return json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
