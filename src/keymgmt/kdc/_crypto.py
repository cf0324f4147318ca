"""The few primitives the KDC protocol uses, with foreign errors translated.

* AES-256-GCM with a fresh 12-byte nonce from the injected randomness,
  the nonce prepended to the ciphertext;
* signatures with a certificate's key (Ed25519, ECDSA P-256/P-384 with the
  matching SHA-2, RSA-PSS with SHA-256) and with the KDC's Ed25519 key;
* X25519 + HKDF-SHA256 for replies to certificate principals (an ephemeral
  share on each side, so a later leak of the certificate key does not open
  recorded replies).

Every failure to open or verify raises the opaque
:class:`~keymgmt.errors.DecryptionError` / :class:`~keymgmt.errors.InvalidSignatureError`.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keymgmt._random import Randomness
from keymgmt.errors import DecryptionError, InvalidSignatureError, UnsupportedAlgorithmError

__all__ = [
    "SigningKey",
    "VerifyingKey",
    "derive_reply_key",
    "open_sealed",
    "seal",
    "sign",
    "verify",
]

NONCE_LEN: Final = 12
KEY_LEN: Final = 32

SigningKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
VerifyingKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey

_PSS: Final = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def seal(aead: AESGCM, randomness: Randomness, plaintext: bytes, aad: bytes) -> bytes:
    """``nonce || AES-GCM(plaintext, aad)`` with a fresh nonce."""
    nonce = randomness.token_bytes(NONCE_LEN)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def open_sealed(aead: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`seal`.

    Raises:
        DecryptionError: wrong key, tampered data or associated data (opaque).
    """
    if len(sealed) < NONCE_LEN + 16:
        raise DecryptionError()
    try:
        return aead.decrypt(sealed[:NONCE_LEN], sealed[NONCE_LEN:], aad)
    except InvalidTag:
        raise DecryptionError() from None


def _ecdsa_hash(curve: ec.EllipticCurve) -> hashes.HashAlgorithm:
    return hashes.SHA384() if curve.key_size >= 384 else hashes.SHA256()


def sign(key: SigningKey, data: bytes) -> bytes:
    """Sign ``data`` with an Ed25519, ECDSA or RSA (PSS) private key.

    Raises:
        UnsupportedAlgorithmError: another key type.
    """
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_ecdsa_hash(key.curve)))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, _PSS, hashes.SHA256())
    raise UnsupportedAlgorithmError(
        f"KDC requests cannot be signed with a {type(key).__name__}; "
        "use Ed25519, ECDSA P-256/P-384 or RSA"
    )


def verify(key: object, signature: bytes, data: bytes) -> None:
    """Check a signature made by :func:`sign`.

    Raises:
        InvalidSignatureError: it does not verify, or the key type is not
            supported (opaque).
    """
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_ecdsa_hash(key.curve)))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, _PSS, hashes.SHA256())
        else:
            raise InvalidSignatureError()
    except (InvalidSignature, ValueError):
        raise InvalidSignatureError() from None


def derive_reply_key(
    private: x25519.X25519PrivateKey, peer_share: bytes, *, salt: bytes, transcript: bytes
) -> AESGCM:
    """X25519 with the peer's share, then HKDF-SHA256 bound to the transcript.

    Raises:
        DecryptionError: the peer's share is invalid (opaque, like a bad tag).
    """
    try:
        shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(peer_share))
    except ValueError:  # low-order point: all-zero output, or a bad length
        raise DecryptionError() from None
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_LEN,
        salt=salt,
        info=b"keymgmt/kdc/v1/reply-key\x00" + transcript,
    ).derive(shared)
    return AESGCM(key)


def x25519_from_randomness(randomness: Randomness) -> x25519.X25519PrivateKey:
    """A fresh X25519 key from the injected randomness (deterministic in tests)."""
    return x25519.X25519PrivateKey.from_private_bytes(randomness.token_bytes(32))


def share_of(private: x25519.X25519PrivateKey) -> bytes:
    """The raw 32-byte public share of an X25519 key."""
    return private.public_key().public_bytes_raw()
