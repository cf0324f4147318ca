"""Wrapped export of key material for a recipient, and the recipient's side.

Two methods, both standard so the recipient needs no keymgmt:

* ``rfc5649`` — AES key wrap with padding (RFC 5649) under a 128/192/256-bit
  key-encryption key the recipient already shares. It authenticates the
  material but cannot bind metadata: the :class:`~keymgmt.model.WrappedKey`
  around it says which key, version and algorithm it is.
* ``hpke-x25519`` — RFC 9180 HPKE base mode to the recipient's X25519 public
  key: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (an ephemeral
  X25519 agreement, HKDF, then AEAD). The HPKE ``info`` is
  ``b"keymgmt/export/v1\\0" + algorithm + b"\\0" + name + b"#" + version``,
  so the sealed material only opens for the metadata it was exported with.

The material is the raw key for symmetric algorithms and PKCS#8 DER (or the
documented seed) for key pairs — what the version stores.
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from keymgmt._secret import SecretBytes
from keymgmt.algorithms import Algorithm
from keymgmt.errors import DecryptionError, InvalidArgumentError
from keymgmt.model import WrappedKey

__all__ = [
    "HPKE_METHOD",
    "RFC5649_METHOD",
    "check_recipient",
    "export_info",
    "open_sealed_export",
    "seal_export",
    "unwrap_rfc5649_export",
    "wrap_rfc5649",
]

RFC5649_METHOD: Final = "rfc5649"
HPKE_METHOD: Final = "hpke-x25519"
_SUITE: Final = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def export_info(algorithm: Algorithm, name: str, version: int) -> bytes:
    """The HPKE ``info`` that binds an export to its metadata."""
    return (
        b"keymgmt/export/v1\x00"
        + algorithm.value.encode("ascii")
        + b"\x00"
        + name.encode("ascii")
        + b"#"
        + str(version).encode("ascii")
    )


def _check_wrapped(wrapped: object, method: str) -> None:
    if not isinstance(wrapped, WrappedKey):
        raise InvalidArgumentError(
            f"an export is the WrappedKey that exported it, not {type(wrapped).__name__}"
        )
    if wrapped.method != method:
        raise InvalidArgumentError(f"not an {method} export")


def _kek_bytes(kek: bytes | SecretBytes) -> bytes:
    raw = kek.reveal() if isinstance(kek, SecretBytes) else kek
    if not isinstance(raw, bytes | bytearray) or len(raw) not in (16, 24, 32):
        raise InvalidArgumentError("a key-encryption key is 16, 24 or 32 bytes")
    return bytes(raw)


def wrap_rfc5649(
    material: bytes, kek: bytes | SecretBytes, *, algorithm: Algorithm, name: str, version: int
) -> WrappedKey:
    """Wrap ``material`` under ``kek`` with RFC 5649.

    Raises:
        InvalidArgumentError: the KEK is not 16, 24 or 32 bytes.
    """
    data = aes_key_wrap_with_padding(_kek_bytes(kek), material)
    return WrappedKey(
        key_name=name, version=version, algorithm=algorithm, method=RFC5649_METHOD, data=data
    )


def unwrap_rfc5649_export(wrapped: WrappedKey, kek: bytes | SecretBytes) -> SecretBytes:
    """The recipient's side of :func:`wrap_rfc5649`.

    Raises:
        InvalidArgumentError: not a WrappedKey of an RFC 5649 export, or a bad KEK size.
        DecryptionError: wrong KEK or damaged data (opaque).
    """
    _check_wrapped(wrapped, RFC5649_METHOD)
    try:
        return SecretBytes(aes_key_unwrap_with_padding(_kek_bytes(kek), wrapped.data))
    except (InvalidUnwrap, ValueError):
        raise DecryptionError() from None


def check_recipient(recipient: object) -> x25519.X25519PublicKey:
    """``recipient`` if it is an X25519 public key that HPKE can seal to.

    A low-order point (all-zero key, and the few others) makes every X25519
    agreement all zeros, which HPKE refuses: checked before any material is
    read (or any export audited).

    Raises:
        InvalidArgumentError: not an X25519 public key, or a low-order point.
    """
    if not isinstance(recipient, x25519.X25519PublicKey):
        raise InvalidArgumentError("the recipient must be an X25519 public key")
    try:
        x25519.X25519PrivateKey.generate().exchange(recipient)
    except ValueError:
        raise InvalidArgumentError(
            "the recipient is not a usable X25519 public key (a low-order point)"
        ) from None
    return recipient


def seal_export(
    material: bytes,
    recipient: x25519.X25519PublicKey,
    *,
    algorithm: Algorithm,
    name: str,
    version: int,
) -> WrappedKey:
    """Seal ``material`` to an X25519 public key with HPKE (see the module docstring).

    Raises:
        InvalidArgumentError: ``recipient`` is not an X25519 public key, or
            a low-order point.
    """
    check_recipient(recipient)
    try:
        data = _SUITE.encrypt(material, recipient, info=export_info(algorithm, name, version))
    except ValueError:  # pragma: no cover - check_recipient refused such keys
        raise InvalidArgumentError("the recipient is not a usable X25519 public key") from None
    return WrappedKey(
        key_name=name, version=version, algorithm=algorithm, method=HPKE_METHOD, data=data
    )


def open_sealed_export(wrapped: WrappedKey, private_key: x25519.X25519PrivateKey) -> SecretBytes:
    """The recipient's side of :func:`seal_export`.

    Raises:
        InvalidArgumentError: not a WrappedKey of an HPKE export, or not an
            X25519 private key.
        DecryptionError: wrong key, changed metadata or damaged data (opaque).
    """
    _check_wrapped(wrapped, HPKE_METHOD)
    if not isinstance(private_key, x25519.X25519PrivateKey):
        raise InvalidArgumentError("the private key must be an X25519 private key")
    try:
        return SecretBytes(
            _SUITE.decrypt(
                wrapped.data,
                private_key,
                info=export_info(wrapped.algorithm, wrapped.key_name, wrapped.version),
            )
        )
    except Exception:  # InvalidTag, ValueError: one opaque failure
        raise DecryptionError() from None
