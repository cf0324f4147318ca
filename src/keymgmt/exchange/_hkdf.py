"""HKDF (RFC 5869) and the TLS 1.3-style labelled expansion the handshake uses.

Every secret that leaves :mod:`keymgmt.exchange` has passed through HKDF
bound to a ``salt`` and an ``info`` the caller must name; a raw
Diffie-Hellman output never does. Extract and expand are exposed separately
because the handshake key schedule (RFC 8446 section 7.1) chains them.

HKDF is a few lines over HMAC-SHA-256; it runs on the standard library's
one-shot ``hmac.digest`` (OpenSSL underneath) because the handshake makes
about thirty expansions and pyca's object-per-call ``HKDFExpand`` doubled
their cost. The RFC 5869 vectors and a property test against pyca's HKDF
keep it honest.
"""

from __future__ import annotations

import hmac as _hmac
import struct
from typing import Final

from keymgmt._secret import SecretBytes
from keymgmt.errors import InvalidArgumentError

__all__ = [
    "HASH_SIZE",
    "LABEL_PREFIX",
    "derive_secret",
    "expand_label",
    "hkdf",
    "hkdf_expand",
    "hkdf_extract",
]

#: SHA-256, the schedule's hash.
HASH_SIZE: Final = 32
#: Prefix of every label in :func:`expand_label` (TLS 1.3 uses ``"tls13 "``).
LABEL_PREFIX: Final = b"keymgmt1 "

_MAX_OUTPUT = 255 * HASH_SIZE


def _raw(value: bytes | SecretBytes, what: str) -> bytes:
    candidate: object = value
    if type(candidate) is bytes:  # the common case, checked first
        return value  # type: ignore[return-value]
    if isinstance(value, SecretBytes):
        return value.reveal()
    if not isinstance(candidate, bytearray | memoryview):
        raise InvalidArgumentError(f"{what} must be bytes or SecretBytes")
    return bytes(value)


def _bad_length(length: object) -> InvalidArgumentError:
    # An int only: a bool would pass as 0 or 1, a float or str fail deep inside.
    return InvalidArgumentError(f"length must be 1 to {_MAX_OUTPUT} (an int), got {length!r}")


def hkdf_extract(*, salt: bytes, ikm: bytes | SecretBytes) -> SecretBytes:
    """HKDF-Extract with SHA-256: ``PRK = HMAC(salt, IKM)``.

    An empty ``salt`` means a string of zeros, as RFC 5869 says.

    Raises:
        InvalidArgumentError: arguments are not bytes.
    """
    key = _raw(salt, "salt") or bytes(HASH_SIZE)
    return SecretBytes(_hmac.digest(key, _raw(ikm, "ikm"), "sha256"))


def hkdf_expand(prk: bytes | SecretBytes, *, info: bytes, length: int) -> SecretBytes:
    """HKDF-Expand with SHA-256.

    Raises:
        InvalidArgumentError: ``length`` not an int from 1 to 8160, or a short PRK.
    """
    if type(length) is not int or not 1 <= length <= _MAX_OUTPUT:
        raise _bad_length(length)
    key = _raw(prk, "prk")
    if len(key) < HASH_SIZE:
        raise InvalidArgumentError(f"prk must be at least {HASH_SIZE} bytes")
    # T(i) = HMAC(PRK, T(i-1) || info || i), the RFC 5869 loop, with the
    # stdlib's one-shot HMAC (the schedule makes ~30 of these per handshake).
    info = _raw(info, "info")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = _hmac.digest(key, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return SecretBytes(out[:length])


def hkdf(ikm: bytes | SecretBytes, *, salt: bytes, info: bytes, length: int = 32) -> SecretBytes:
    """HKDF (extract then expand) with SHA-256.

    Args:
        ikm: input keying material (for example an agreement's shared secret).
        salt: a non-secret random or context value; ``b""`` only deliberately.
        info: names what the output is for; different uses, different infos.
        length: output bytes, 1 to 8160.

    Returns:
        The derived key, as :class:`~keymgmt.SecretBytes`.

    Raises:
        InvalidArgumentError: bad lengths or types.
    """
    return hkdf_expand(hkdf_extract(salt=salt, ikm=ikm), info=info, length=length)


def expand_label(secret: SecretBytes, label: bytes, context: bytes, length: int) -> SecretBytes:
    """RFC 8446 HKDF-Expand-Label, with keymgmt's own label prefix.

    ``HkdfLabel = uint16 length || opaque label<7..255> || opaque context<0..255>``
    where the label is ``"keymgmt1 " + label``, so no output can collide with
    a TLS 1.3 derivation from the same secret.

    Raises:
        InvalidArgumentError: label or context too long, or ``length``
            outside 1..8160.
    """
    if type(length) is not int or not 1 <= length <= _MAX_OUTPUT:
        raise _bad_length(length)
    full = LABEL_PREFIX + label
    if len(full) > 255 or len(context) > 255:
        raise InvalidArgumentError("label and context must be at most 255 bytes")
    info = struct.pack(">HB", length, len(full)) + full + bytes([len(context)]) + context
    if length <= HASH_SIZE:  # one HMAC block: the schedule's every call
        return SecretBytes(_hmac.digest(secret.reveal(), info + b"\x01", "sha256")[:length])
    return hkdf_expand(secret, info=info, length=length)


def derive_secret(secret: SecretBytes, label: bytes, transcript_hash: bytes) -> SecretBytes:
    """RFC 8446 Derive-Secret: ``Expand-Label(secret, label, transcript hash, 32)``."""
    return expand_label(secret, label, transcript_hash, HASH_SIZE)
