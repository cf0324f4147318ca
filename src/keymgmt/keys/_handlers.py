"""Material handlers: the per-algorithm half of the key store.

The key store (:mod:`keymgmt.keys._keystore`) owns names, versions, states,
sealing, caching, revocation and audit, and knows nothing about any
algorithm. A *material handler* owns what an algorithm does with the bytes a
version stores. Stored material is:

* symmetric algorithms — the raw key (32 bytes for every algorithm here;
  for Fernet the 32 bytes a Fernet key file holds base64url-encoded);
* key pairs — the private key as unencrypted PKCS#8 DER (sealed by the
  store like every record).

The interface, :class:`MaterialHandler`, has one object per algorithm
family. ``load`` turns material into the object the cache keeps (an AEAD, a
``Fernet``, a private key): loading is the expensive part (RSA validation
costs ~30 ms), so it happens once per version per process. Operations get
that loaded object back. A handler raises only keymgmt errors:
:class:`~keymgmt.errors.DecryptionError` for any decrypt failure,
:class:`~keymgmt.errors.InvalidSignatureError` for a bad signature,
:class:`~keymgmt.errors.InvalidArgumentError` for material it cannot use.

Handlers are plain objects handed to the key store (no global registry):
:func:`default_handlers` returns the symmetric handler and, when the
asymmetric primitive layer is present, an adapter over it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV, ChaCha20Poly1305

from keymgmt._random import Randomness
from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.errors import DecryptionError, InvalidArgumentError, KeyUsageError

__all__ = [
    "AEAD_NONCE_SIZE",
    "MaterialHandler",
    "SymmetricHandler",
    "default_handlers",
]

AEAD_NONCE_SIZE: Final = 12
_TAG: Final = 16
_KEY_SIZE: Final = 32


@runtime_checkable
class MaterialHandler(Protocol):
    """What the key store needs from an algorithm family.

    Every method takes the :class:`~keymgmt.Algorithm` first, so one handler
    object serves a family (all symmetric AEADs, all key pairs).
    """

    def algorithms(self) -> frozenset[Algorithm]:
        """The algorithms this handler serves."""
        ...

    def usages(self, algorithm: Algorithm) -> frozenset[KeyUsage]:
        """The usages a key of ``algorithm`` may be created with (first: default)."""
        ...

    def default_usage(self, algorithm: Algorithm) -> KeyUsage:
        """The usage when the caller names none."""
        ...

    def usage_limit(self, algorithm: Algorithm) -> int | None:
        """Hard cap on protect operations per version (None: no cap)."""
        ...

    def generate(self, algorithm: Algorithm, randomness: Randomness) -> bytes:
        """Fresh material for a new version.

        Symmetric handlers draw from ``randomness``; key-pair handlers use
        OpenSSL's generator (cryptography offers no hook) and return PKCS#8 DER.
        """
        ...

    def check_material(self, algorithm: Algorithm, material: bytes) -> bytes:
        """Validate imported material and return its stored form.

        Raises:
            InvalidArgumentError: the material is not a key of ``algorithm``.
        """
        ...

    def load(self, algorithm: Algorithm, material: bytes) -> Any:
        """Build the object the cache keeps for a version (AEAD, Fernet, private key)."""
        ...

    def encrypt(self, algorithm: Algorithm, loaded: Any, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt; return the body that follows the keymgmt header."""
        ...

    def decrypt(
        self, algorithm: Algorithm, loaded: Any, body: bytes | memoryview, aad: bytes
    ) -> bytes:
        """Decrypt a body.

        Raises:
            DecryptionError: any failure (opaque).
        """
        ...


class SymmetricHandler:
    """AES-256-GCM, ChaCha20-Poly1305, AES-256-GCM-SIV and Fernet.

    The key store encrypts with the three AEADs itself on its hot path (one
    preallocated buffer, cached AEAD objects); :meth:`encrypt` and
    :meth:`decrypt` here are the reference path and serve Fernet.

    Usage limits: random 96-bit nonces collide with probability about
    ``q**2 / 2**97`` after ``q`` messages; NIST SP 800-38D caps random-nonce
    GCM at 2**32 invocations per key. keymgmt caps every 96-bit-nonce AEAD
    (including GCM-SIV, for uniformity) at 2**31 and rotates before that.
    Fernet uses 128-bit random IVs; its cap is 2**48.
    """

    _AEADS: Final[Mapping[Algorithm, type[AESGCM | ChaCha20Poly1305 | AESGCMSIV]]] = {
        Algorithm.AES_256_GCM: AESGCM,
        Algorithm.CHACHA20_POLY1305: ChaCha20Poly1305,
        Algorithm.AES_256_GCM_SIV: AESGCMSIV,
    }

    def __repr__(self) -> str:
        return "SymmetricHandler()"

    def algorithms(self) -> frozenset[Algorithm]:
        """The four symmetric algorithms."""
        return frozenset({*self._AEADS, Algorithm.FERNET})

    def usages(self, algorithm: Algorithm) -> frozenset[KeyUsage]:
        """Symmetric keys only encrypt and decrypt."""
        return frozenset({KeyUsage.ENCRYPT_DECRYPT})

    def default_usage(self, algorithm: Algorithm) -> KeyUsage:
        """Encrypt/decrypt."""
        return KeyUsage.ENCRYPT_DECRYPT

    def usage_limit(self, algorithm: Algorithm) -> int | None:
        """2**31 for 96-bit random nonces, 2**48 for Fernet."""
        return 1 << 48 if algorithm is Algorithm.FERNET else 1 << 31

    def generate(self, algorithm: Algorithm, randomness: Randomness) -> bytes:
        """32 random bytes from the injected source."""
        return randomness.token_bytes(_KEY_SIZE)

    def check_material(self, algorithm: Algorithm, material: bytes) -> bytes:
        """Accept exactly 32 bytes (for Fernet also a base64url Fernet key).

        Raises:
            InvalidArgumentError: wrong length or encoding.
        """
        data = bytes(material)
        if algorithm is Algorithm.FERNET and len(data) == 44:
            data = decode_fernet_key(data)
        if len(data) != _KEY_SIZE:
            raise InvalidArgumentError(
                f"a {algorithm.value} key is {_KEY_SIZE} bytes, got {len(data)}",
                algorithm=algorithm.value,
            )
        return data

    def load(self, algorithm: Algorithm, material: bytes) -> Any:
        """An AEAD object, or a ``Fernet``."""
        if algorithm is Algorithm.FERNET:
            return Fernet(base64.urlsafe_b64encode(material))
        return self._AEADS[algorithm](material)

    def encrypt(self, algorithm: Algorithm, loaded: Any, plaintext: bytes, aad: bytes) -> bytes:
        """Not used for AEADs (the key store does it); Fernet has its own path."""
        raise KeyUsageError(f"{algorithm.value} encryption runs in the key store")

    def decrypt(
        self, algorithm: Algorithm, loaded: Any, body: bytes | memoryview, aad: bytes
    ) -> bytes:
        """Decrypt an AEAD body (nonce | ciphertext | tag) or a Fernet token.

        Raises:
            DecryptionError: any failure.
        """
        try:
            if algorithm is Algorithm.FERNET:
                if aad:
                    raise DecryptionError()
                result: bytes = loaded.decrypt(bytes(body))
                return result
            if len(body) < AEAD_NONCE_SIZE + _TAG:
                raise DecryptionError()
            view = memoryview(body)
            out: bytes = loaded.decrypt(view[:AEAD_NONCE_SIZE], view[AEAD_NONCE_SIZE:], aad)
            return out
        except (InvalidTag, InvalidToken, ValueError, TypeError):
            raise DecryptionError() from None


def decode_fernet_key(data: bytes | str) -> bytes:
    """The 32 raw bytes of a base64url Fernet key (the seed's ``symmetric.key``).

    Raises:
        InvalidArgumentError: not a Fernet key.
    """
    text = data.encode("ascii", "replace") if isinstance(data, str) else bytes(data)
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text)
    except (binascii.Error, ValueError):
        raise InvalidArgumentError("not a Fernet key (expected 44 base64url characters)") from None
    if len(raw) != _KEY_SIZE or len(text) != 44:
        raise InvalidArgumentError("not a Fernet key (expected 44 base64url characters)")
    return raw


def default_handlers() -> dict[Algorithm, MaterialHandler]:
    """The handlers a :class:`~keymgmt.keys.KeyStore` uses unless told otherwise."""
    handlers: dict[Algorithm, MaterialHandler] = {}
    symmetric = SymmetricHandler()
    for algorithm in symmetric.algorithms():
        handlers[algorithm] = symmetric
    asymmetric = _asymmetric_handler()
    for algorithm in asymmetric.algorithms():
        handlers[algorithm] = asymmetric
    return handlers


def _asymmetric_handler() -> MaterialHandler:
    from keymgmt.keys._asymmetric import AsymmetricHandler

    return AsymmetricHandler()
