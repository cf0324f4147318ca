"""Key-pair operations, one algorithm at a time: no store, no lifecycle.

This module is the material handler for asymmetric keys. The lifecycle code
(named keys, versions, states, sealing, caching) stores the bytes
:func:`generate` returns, sealed, and calls the functions here with the key
objects :func:`load_private` builds from them. Nothing here reads a store,
the clock or the audit log, and nothing here knows a key's name.

Algorithms, usages and constructions
------------------------------------

==================  ===============================  =========================================
algorithm           usages (first is the default)    construction
==================  ===============================  =========================================
ed25519             sign-verify                      pure Ed25519 (RFC 8032)
ecdsa-p256          sign-verify                      ECDSA P-256 / SHA-256, DER signature
ecdsa-p384          sign-verify                      ECDSA P-384 / SHA-384, DER signature
rsa-2048/3072/4096  sign-verify, encrypt-decrypt     RSASSA-PSS SHA-256, MGF1-SHA-256, salt 32;
                                                     RSA-OAEP-SHA-256 key wrap + AES-256-GCM
ml-dsa-44/65/87     sign-verify                      ML-DSA (FIPS 204), empty context string
x25519              key-agreement, encrypt-decrypt   X25519 + HKDF-SHA-256; HPKE DHKEM(X25519)
ecdh-p256           key-agreement, encrypt-decrypt   ECDH P-256 + HKDF-SHA-256; HPKE DHKEM(P-256)
ml-kem-768          encrypt-decrypt                  HPKE with KEM ML-KEM-768
ml-kem-768-x25519   encrypt-decrypt                  HPKE with KEM MLKEM768-X25519 (X-Wing)
==================  ===============================  =========================================

Every HPKE suite uses HKDF-SHA-256 and AES-256-GCM (RFC 9180 base mode).

Stored private material
-----------------------

:func:`generate` returns PKCS#8 DER (unencrypted; the caller seals it) for
every algorithm except ``ml-kem-768-x25519``, whose material is the 32-byte
X-Wing decapsulation-key seed: SHAKE-256(seed) gives 96 bytes, the first 64
are the ML-KEM-768 seed (d || z) and the last 32 the X25519 private key
(``expandDecapsulationKey`` of draft-connolly-cfrg-xwing-kem, the KEM the
HPKE-PQ draft names MLKEM768-X25519). No PKCS#8 encoding of that composite
is standardized, so keymgmt keeps the seed, which is what the draft calls
the private key.

Binding the context in HPKE
---------------------------

``cryptography``'s public HPKE API (``hpke.Suite.encrypt(plaintext,
public_key, info)``) takes no associated data. keymgmt passes its associated
data (the ciphertext header and the canonical encryption context) as HPKE's
``info``. ``info`` enters the key schedule, so a different header or context
derives a different AEAD key and the tag fails — the same guarantee as AAD,
through the public API, and the ciphertext still opens with plain
``hpke.Suite.decrypt(body, private_key, info=aad)``. (cryptography has a
private ``_encrypt_with_aad``; keymgmt does not depend on private API.)

RSA-OAEP can only encrypt a few hundred bytes, so RSA encryption wraps a
fresh 32-byte AES-256-GCM key with RSA-OAEP-SHA-256 (the associated data as
the OAEP label) and encrypts the plaintext under it with AES-256-GCM and the
same associated data. Body: ``wrapped key (modulus length) || GCM
ciphertext``. The nonce is all zeros because each AES key encrypts exactly
one message (as in JWE's RSA-OAEP-256 + A256GCM, where the key is also
single-use).
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import (
    ec,
    ed25519,
    mldsa,
    mlkem,
    padding,
    rsa,
    x25519,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keymgmt._codec import b64d, b64e
from keymgmt._random import Randomness
from keymgmt._secret import SecretBytes
from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.errors import (
    DecryptionError,
    IntegrityError,
    InvalidArgumentError,
    InvalidSignatureError,
    KeyMgmtError,
    KeyUsageError,
    MalformedInputError,
    UnsupportedAlgorithmError,
)
from keymgmt.keys._format import PayloadType, check_name, parse_header, prefix

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_USAGE",
    "JWK_KEY_OPS",
    "USAGES",
    "AsymmetricHandler",
    "LoadedKeyPair",
    "PrivateKey",
    "PublicKey",
    "PublicKeyFormat",
    "Signature",
    "XWingPrivateKey",
    "XWingPublicKey",
    "agree",
    "algorithm_of_private",
    "algorithm_of_public",
    "check_public_key",
    "check_usage",
    "decrypt",
    "default_usage",
    "encrypt",
    "generate",
    "hpke_suite",
    "jwk_usage",
    "load_private",
    "load_public",
    "load_public_jwk",
    "material_from_private",
    "pem_armor",
    "private_pkcs8",
    "public_bytes",
    "public_jwk",
    "public_key_of",
    "same_family",
    "sign",
    "verify",
]


# -- composite ML-KEM-768 + X25519 keys ----------------------------------------

_XWING_SEED_LEN: Final = 32
_MLKEM768_PUBLIC_LEN: Final = 1184


@attrs.frozen(repr=False, eq=False)
class XWingPublicKey:
    """An ML-KEM-768 + X25519 (X-Wing) public key: both halves and the HPKE object."""

    mlkem: mlkem.MLKEM768PublicKey
    x25519: x25519.X25519PublicKey
    hpke_key: hpke.MLKEM768X25519PublicKey

    @classmethod
    def from_public_bytes(cls, data: bytes) -> XWingPublicKey:
        """Parse ``pk_M || pk_X`` (1184 + 32 bytes), the draft's encoding.

        Raises:
            MalformedInputError: wrong length or an invalid half.
        """
        if len(data) != _MLKEM768_PUBLIC_LEN + 32:
            raise MalformedInputError("an ML-KEM-768+X25519 public key has 1216 bytes")
        try:
            pk_m = mlkem.MLKEM768PublicKey.from_public_bytes(data[:_MLKEM768_PUBLIC_LEN])
            pk_x = x25519.X25519PublicKey.from_public_bytes(data[_MLKEM768_PUBLIC_LEN:])
        except ValueError:
            raise MalformedInputError("invalid ML-KEM-768+X25519 public key") from None
        return cls(pk_m, pk_x, hpke.MLKEM768X25519PublicKey(pk_m, pk_x))

    def public_bytes_raw(self) -> bytes:
        """``pk_M || pk_X``: the ML-KEM-768 encapsulation key, then the X25519 key."""
        return self.mlkem.public_bytes_raw() + self.x25519.public_bytes_raw()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, XWingPublicKey):
            return self.public_bytes_raw() == other.public_bytes_raw()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.public_bytes_raw())

    def __repr__(self) -> str:
        return "<XWingPublicKey ml-kem-768-x25519>"


@attrs.frozen(repr=False, eq=False)
class XWingPrivateKey:
    """An ML-KEM-768 + X25519 (X-Wing) private key, kept as its 32-byte seed."""

    seed: SecretBytes
    mlkem: mlkem.MLKEM768PrivateKey
    x25519: x25519.X25519PrivateKey
    hpke_key: hpke.MLKEM768X25519PrivateKey

    @classmethod
    def from_seed(cls, seed: bytes) -> XWingPrivateKey:
        """Expand a 32-byte seed as X-Wing's ``expandDecapsulationKey`` does.

        Raises:
            MalformedInputError: the seed is not 32 bytes.
        """
        if len(seed) != _XWING_SEED_LEN:
            raise MalformedInputError("an ML-KEM-768+X25519 private key is a 32-byte seed")
        expanded = hashlib.shake_256(seed).digest(96)
        sk_m = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        sk_x = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
        return cls(SecretBytes(seed), sk_m, sk_x, hpke.MLKEM768X25519PrivateKey(sk_m, sk_x))

    def public_key(self) -> XWingPublicKey:
        """The matching public key."""
        pk_m = self.mlkem.public_key()
        pk_x = self.x25519.public_key()
        return XWingPublicKey(pk_m, pk_x, hpke.MLKEM768X25519PublicKey(pk_m, pk_x))

    def __repr__(self) -> str:
        return "<XWingPrivateKey ml-kem-768-x25519>"

    def __reduce__(self) -> Any:
        raise TypeError("private keys cannot be pickled")


PrivateKey: TypeAlias = (
    ed25519.Ed25519PrivateKey
    | ec.EllipticCurvePrivateKey
    | rsa.RSAPrivateKey
    | mldsa.MLDSA44PrivateKey
    | mldsa.MLDSA65PrivateKey
    | mldsa.MLDSA87PrivateKey
    | x25519.X25519PrivateKey
    | mlkem.MLKEM768PrivateKey
    | XWingPrivateKey
)
"""Every private key object this module hands out."""

PublicKey: TypeAlias = (
    ed25519.Ed25519PublicKey
    | ec.EllipticCurvePublicKey
    | rsa.RSAPublicKey
    | mldsa.MLDSA44PublicKey
    | mldsa.MLDSA65PublicKey
    | mldsa.MLDSA87PublicKey
    | x25519.X25519PublicKey
    | mlkem.MLKEM768PublicKey
    | XWingPublicKey
)
"""Every public key object this module hands out."""


# -- algorithms and usages -----------------------------------------------------

_SIGN = KeyUsage.SIGN_VERIFY
_ENC = KeyUsage.ENCRYPT_DECRYPT
_AGREE = KeyUsage.KEY_AGREEMENT

USAGES: Final[Mapping[Algorithm, tuple[KeyUsage, ...]]] = {
    Algorithm.ED25519: (_SIGN,),
    Algorithm.ECDSA_P256: (_SIGN,),
    Algorithm.ECDSA_P384: (_SIGN,),
    Algorithm.RSA_2048: (_SIGN, _ENC),
    Algorithm.RSA_3072: (_SIGN, _ENC),
    Algorithm.RSA_4096: (_SIGN, _ENC),
    Algorithm.ML_DSA_44: (_SIGN,),
    Algorithm.ML_DSA_65: (_SIGN,),
    Algorithm.ML_DSA_87: (_SIGN,),
    Algorithm.X25519: (_AGREE, _ENC),
    Algorithm.ECDH_P256: (_AGREE, _ENC),
    Algorithm.ML_KEM_768: (_ENC,),
    Algorithm.ML_KEM_768_X25519: (_ENC,),
}
"""The usages each asymmetric algorithm allows; the first is the default."""

ASYMMETRIC_ALGORITHMS: Final = frozenset(USAGES)
"""Every algorithm this module handles."""

DEFAULT_USAGE: Final[Mapping[Algorithm, KeyUsage]] = {a: u[0] for a, u in USAGES.items()}
"""The usage a key pair gets when its creator names none."""


def _require(algorithm: Algorithm) -> Algorithm:
    if algorithm not in USAGES:
        raise UnsupportedAlgorithmError(
            f"{algorithm.value!r} is not a key-pair algorithm", algorithm=algorithm.value
        )
    return algorithm


def default_usage(algorithm: Algorithm) -> KeyUsage:
    """The usage a new key pair of ``algorithm`` gets by default.

    Raises:
        UnsupportedAlgorithmError: ``algorithm`` is not a key-pair algorithm.
    """
    return DEFAULT_USAGE[_require(algorithm)]


def check_usage(algorithm: Algorithm, usage: KeyUsage, *, key_name: str | None = None) -> None:
    """Refuse ``usage`` unless ``algorithm`` allows it.

    Used both when a key is created (is this usage possible?) and before
    each operation (is this the key's usage?).

    Raises:
        UnsupportedAlgorithmError: ``algorithm`` is not a key-pair algorithm.
        KeyUsageError: the algorithm does not allow ``usage``.
    """
    if usage not in USAGES[_require(algorithm)]:
        allowed = ", ".join(u.value for u in USAGES[algorithm])
        raise KeyUsageError(
            f"{algorithm.value} keys cannot be used for {usage.value} (allowed: {allowed})",
            key_name=key_name,
            algorithm=algorithm.value,
            usage=usage.value,
        )


# -- generation and loading ----------------------------------------------------

_CURVES: Final[Mapping[Algorithm, ec.EllipticCurve]] = {
    Algorithm.ECDSA_P256: ec.SECP256R1(),
    Algorithm.ECDSA_P384: ec.SECP384R1(),
    Algorithm.ECDH_P256: ec.SECP256R1(),
}
_RSA_BITS: Final[Mapping[Algorithm, int]] = {
    Algorithm.RSA_2048: 2048,
    Algorithm.RSA_3072: 3072,
    Algorithm.RSA_4096: 4096,
}

Token = Callable[[int], bytes]


def _ec_key(curve: ec.SECP256R1 | ec.SECP384R1, token: Token) -> ec.EllipticCurvePrivateKey:
    # A uniform scalar in [1, n) by rejection sampling (rejects ~2**-32 of draws).
    order = curve.group_order
    size = (order.bit_length() + 7) // 8
    while True:
        scalar = int.from_bytes(token(size), "big")
        if 1 <= scalar < order:
            return ec.derive_private_key(scalar, curve)


_GENERATORS: Final[Mapping[Algorithm, Callable[[Token], PrivateKey]]] = {
    Algorithm.ED25519: lambda t: ed25519.Ed25519PrivateKey.from_private_bytes(t(32)),
    Algorithm.ECDSA_P256: lambda t: _ec_key(ec.SECP256R1(), t),
    Algorithm.ECDSA_P384: lambda t: _ec_key(ec.SECP384R1(), t),
    Algorithm.ECDH_P256: lambda t: _ec_key(ec.SECP256R1(), t),
    # cryptography offers no randomness hook for RSA: OpenSSL's generator.
    Algorithm.RSA_2048: lambda t: rsa.generate_private_key(65537, 2048),
    Algorithm.RSA_3072: lambda t: rsa.generate_private_key(65537, 3072),
    Algorithm.RSA_4096: lambda t: rsa.generate_private_key(65537, 4096),
    Algorithm.ML_DSA_44: lambda t: mldsa.MLDSA44PrivateKey.from_seed_bytes(t(32)),
    Algorithm.ML_DSA_65: lambda t: mldsa.MLDSA65PrivateKey.from_seed_bytes(t(32)),
    Algorithm.ML_DSA_87: lambda t: mldsa.MLDSA87PrivateKey.from_seed_bytes(t(32)),
    Algorithm.X25519: lambda t: x25519.X25519PrivateKey.from_private_bytes(t(32)),
    Algorithm.ML_KEM_768: lambda t: mlkem.MLKEM768PrivateKey.from_seed_bytes(t(64)),
}


def private_pkcs8(private: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 DER of ``private`` (the caller seals or encrypts it).

    Raises:
        UnsupportedAlgorithmError: an ML-KEM-768+X25519 key (it has no PKCS#8 form).
    """
    if isinstance(private, XWingPrivateKey):
        raise UnsupportedAlgorithmError(
            "ML-KEM-768+X25519 keys have no PKCS#8 encoding; export the seed",
            algorithm=Algorithm.ML_KEM_768_X25519.value,
        )
    return private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def material_from_private(private: PrivateKey) -> bytes:
    """The stored form of ``private``: PKCS#8 DER, or the X-Wing seed."""
    if isinstance(private, XWingPrivateKey):
        return private.seed.reveal()
    return private_pkcs8(private)


def generate(algorithm: Algorithm, randomness: Randomness | None = None) -> bytes:
    """Make a new key pair and return its private material (see the module docstring).

    Every key except RSA is derived from bytes drawn from ``randomness``
    (default: the OS CSPRNG): the 32-byte Ed25519/X25519 private key, the
    ML-DSA (32-byte) and ML-KEM (64-byte) seeds of FIPS 204/203, the X-Wing
    seed, and a uniform ECDSA/ECDH scalar. So an injected, seeded source
    makes key generation reproducible in tests. RSA keys come from
    OpenSSL's generator, as ``cryptography`` offers no hook for RSA.

    Raises:
        UnsupportedAlgorithmError: ``algorithm`` is not a key-pair algorithm.
    """
    _require(algorithm)
    token: Token = os.urandom if randomness is None else randomness.token_bytes
    if algorithm is Algorithm.ML_KEM_768_X25519:
        return token(_XWING_SEED_LEN)
    return private_pkcs8(_GENERATORS[algorithm](token))


def algorithm_of_private(private: object) -> Algorithm:
    """The keymgmt algorithm of a private key object.

    RSA keys are named by their exact modulus size (2048, 3072 or 4096 bits);
    an EC P-256 key is named ``ecdsa-p256`` (the caller may store it as
    ``ecdh-p256`` instead).

    Raises:
        UnsupportedAlgorithmError: a key type or size keymgmt does not manage.
    """
    if isinstance(private, XWingPrivateKey):
        return Algorithm.ML_KEM_768_X25519
    if isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return algorithm_of_public(private.public_key())
    for cls, algorithm in _PRIVATE_TYPES:
        if isinstance(private, cls):
            return algorithm
    raise UnsupportedAlgorithmError(
        f"keymgmt does not manage {type(private).__name__} keys", key_type=type(private).__name__
    )


def algorithm_of_public(public: object) -> Algorithm:
    """The keymgmt algorithm of a public key object (see :func:`algorithm_of_private`).

    Raises:
        UnsupportedAlgorithmError: a key type or size keymgmt does not manage.
    """
    if isinstance(public, rsa.RSAPublicKey):
        for algorithm, bits in _RSA_BITS.items():
            if public.key_size == bits:
                return algorithm
        raise UnsupportedAlgorithmError(
            f"RSA keys must have 2048, 3072 or 4096 bits, not {public.key_size}",
            key_size=public.key_size,
        )
    if isinstance(public, ec.EllipticCurvePublicKey):
        if isinstance(public.curve, ec.SECP256R1):
            return Algorithm.ECDSA_P256
        if isinstance(public.curve, ec.SECP384R1):
            return Algorithm.ECDSA_P384
        raise UnsupportedAlgorithmError(
            f"EC curve {public.curve.name} is not supported", curve=public.curve.name
        )
    for cls, algorithm in _PUBLIC_TYPES:
        if isinstance(public, cls):
            return algorithm
    raise UnsupportedAlgorithmError(
        f"keymgmt does not manage {type(public).__name__} keys", key_type=type(public).__name__
    )


_PRIVATE_TYPES: Final[tuple[tuple[type, Algorithm], ...]] = (
    (ed25519.Ed25519PrivateKey, Algorithm.ED25519),
    (mldsa.MLDSA44PrivateKey, Algorithm.ML_DSA_44),
    (mldsa.MLDSA65PrivateKey, Algorithm.ML_DSA_65),
    (mldsa.MLDSA87PrivateKey, Algorithm.ML_DSA_87),
    (x25519.X25519PrivateKey, Algorithm.X25519),
    (mlkem.MLKEM768PrivateKey, Algorithm.ML_KEM_768),
)
_PUBLIC_TYPES: Final[tuple[tuple[type, Algorithm], ...]] = (
    (ed25519.Ed25519PublicKey, Algorithm.ED25519),
    (mldsa.MLDSA44PublicKey, Algorithm.ML_DSA_44),
    (mldsa.MLDSA65PublicKey, Algorithm.ML_DSA_65),
    (mldsa.MLDSA87PublicKey, Algorithm.ML_DSA_87),
    (x25519.X25519PublicKey, Algorithm.X25519),
    (mlkem.MLKEM768PublicKey, Algorithm.ML_KEM_768),
    (XWingPublicKey, Algorithm.ML_KEM_768_X25519),
)


def same_family(stored: Algorithm, found: Algorithm) -> bool:
    """Whether a key typed as ``found`` may serve as ``stored`` (P-256: ECDSA or ECDH)."""
    # P-256 keys serve both ECDSA and ECDH; the stored algorithm decides which.
    return stored == found or {stored, found} == {Algorithm.ECDSA_P256, Algorithm.ECDH_P256}


def load_private(algorithm: Algorithm, material: bytes) -> PrivateKey:
    """Build the private key object from stored material.

    Slow for RSA (the key is validated, ~30 ms for RSA-2048): callers cache
    the result.

    Raises:
        UnsupportedAlgorithmError: ``algorithm`` is not a key-pair algorithm.
        IntegrityError: the material is not a key of ``algorithm``.
    """
    _require(algorithm)
    if algorithm is Algorithm.ML_KEM_768_X25519:
        if len(material) != _XWING_SEED_LEN:
            raise IntegrityError("stored ML-KEM-768+X25519 seed has the wrong length")
        return XWingPrivateKey.from_seed(material)
    try:
        key = serialization.load_der_private_key(material, password=None)
    except Exception:  # ValueError, TypeError, cryptography's UnsupportedAlgorithm
        raise IntegrityError(f"stored {algorithm.value} private key does not parse") from None
    try:
        found = algorithm_of_private(key)
    except UnsupportedAlgorithmError:
        raise IntegrityError(f"stored key is not a {algorithm.value} key") from None
    if not same_family(algorithm, found):
        raise IntegrityError(f"stored key is not a {algorithm.value} key")
    return key  # type: ignore[return-value]  # checked by algorithm_of_private


def public_key_of(private: PrivateKey) -> PublicKey:
    """The public half of ``private``."""
    return private.public_key()


# -- public key export and import ----------------------------------------------


class PublicKeyFormat(enum.StrEnum):
    """How a public key is written out."""

    PEM = "pem"
    """SubjectPublicKeyInfo in PEM (``-----BEGIN PUBLIC KEY-----``)."""
    DER = "der"
    """SubjectPublicKeyInfo in DER."""
    JWK = "jwk"
    """A JSON Web Key (RFC 7517) as UTF-8 JSON."""
    RAW = "raw"
    """The algorithm's raw public key bytes (not for RSA or ECDSA)."""


_XWING_PEM_LABEL: Final = "KEYMGMT ML-KEM-768-X25519 PUBLIC KEY"
_JWK_CRV: Final[Mapping[Algorithm, str]] = {
    Algorithm.ED25519: "Ed25519",
    Algorithm.X25519: "X25519",
    Algorithm.ECDSA_P256: "P-256",
    Algorithm.ECDH_P256: "P-256",
    Algorithm.ECDSA_P384: "P-384",
}
_JWK_AKP_ALG: Final[Mapping[Algorithm, str]] = {
    Algorithm.ML_DSA_44: "ML-DSA-44",
    Algorithm.ML_DSA_65: "ML-DSA-65",
    Algorithm.ML_DSA_87: "ML-DSA-87",
    Algorithm.ML_KEM_768: "ML-KEM-768",
    Algorithm.ML_KEM_768_X25519: "MLKEM768-X25519",
}
_JWK_SIG_ALG: Final[Mapping[Algorithm, str]] = {
    Algorithm.ED25519: "Ed25519",
    Algorithm.ECDSA_P256: "ES256",
    Algorithm.ECDSA_P384: "ES384",
    Algorithm.RSA_2048: "PS256",
    Algorithm.RSA_3072: "PS256",
    Algorithm.RSA_4096: "PS256",
}


JWK_KEY_OPS: Final[Mapping[KeyUsage, str]] = {
    KeyUsage.SIGN_VERIFY: "verify",
    KeyUsage.ENCRYPT_DECRYPT: "encrypt",
    KeyUsage.KEY_AGREEMENT: "deriveKey",
}
"""The JWK ``key_ops`` value (public-key side) for each usage."""


def jwk_usage(jwk: Mapping[str, Any]) -> KeyUsage | None:
    """The usage a JWK's ``key_ops`` (or ``use: sig``) states, if exactly one."""
    ops = jwk.get("key_ops")
    if isinstance(ops, list) and len(ops) == 1:
        for usage, op in JWK_KEY_OPS.items():
            if ops[0] == op:
                return usage
    if jwk.get("use") == "sig":
        return KeyUsage.SIGN_VERIFY
    return None


def _int_b64(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64e(value.to_bytes(size, "big"))


def public_jwk(
    algorithm: Algorithm,
    public: PublicKey,
    *,
    kid: str | None = None,
    usage: KeyUsage | None = None,
) -> dict[str, Any]:
    """The public key as a JWK dict.

    Ed25519 and X25519 are ``OKP`` (RFC 8037); ECDSA/ECDH ``EC`` and RSA
    ``RSA`` (RFC 7518). ML-DSA keys use the ``AKP`` key type with ``alg`` and
    ``pub`` of draft-ietf-cose-dilithium; ML-KEM-768 and ML-KEM-768+X25519 use
    the same ``AKP`` shape with ``alg`` ``ML-KEM-768`` / ``MLKEM768-X25519``
    (keymgmt's choice until a JOSE registration exists). ``kid`` and
    ``key_ops`` (RFC 7517: ``["verify"]``, ``["encrypt"]`` or ``["deriveKey"]``
    for sign-verify, encrypt-decrypt and key-agreement keys) are added when
    given.

    Raises:
        UnsupportedAlgorithmError: ``algorithm`` is not a key-pair algorithm.
        InvalidArgumentError: ``public`` is not a key of ``algorithm``.
    """
    check_public_key(algorithm, public)
    jwk: dict[str, Any]
    if isinstance(public, ed25519.Ed25519PublicKey | x25519.X25519PublicKey):
        jwk = {"kty": "OKP", "crv": _JWK_CRV[algorithm], "x": b64e(public.public_bytes_raw())}
    elif isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        size = (public.curve.key_size + 7) // 8
        jwk = {
            "kty": "EC",
            "crv": _JWK_CRV[algorithm],
            "x": _int_b64(numbers.x, size),
            "y": _int_b64(numbers.y, size),
        }
    elif isinstance(public, rsa.RSAPublicKey):
        rsa_numbers = public.public_numbers()
        jwk = {"kty": "RSA", "n": _int_b64(rsa_numbers.n), "e": _int_b64(rsa_numbers.e)}
    else:
        jwk = {"kty": "AKP", "alg": _JWK_AKP_ALG[algorithm], "pub": b64e(public.public_bytes_raw())}
    if algorithm in _JWK_SIG_ALG and usage in (None, KeyUsage.SIGN_VERIFY):
        jwk["alg"] = _JWK_SIG_ALG[algorithm]
    if usage is not None:
        jwk["key_ops"] = [JWK_KEY_OPS[usage]]
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def public_bytes(
    algorithm: Algorithm,
    public: PublicKey,
    fmt: PublicKeyFormat,
    *,
    kid: str | None = None,
    usage: KeyUsage | None = None,
) -> bytes:
    """Serialize a public key.

    PEM and DER are SubjectPublicKeyInfo. ML-KEM-768+X25519 has no SPKI
    standard yet: its PEM uses the label ``KEYMGMT ML-KEM-768-X25519 PUBLIC
    KEY`` around the raw ``pk_M || pk_X`` bytes, and it has no DER form.

    Raises:
        UnsupportedAlgorithmError: no such form for this algorithm.
        InvalidArgumentError: ``public`` is not a key of ``algorithm``.
    """
    check_public_key(algorithm, public)
    fmt = PublicKeyFormat(fmt)
    if fmt is PublicKeyFormat.JWK:
        return json.dumps(
            public_jwk(algorithm, public, kid=kid, usage=usage),
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
    if isinstance(public, XWingPublicKey):
        if fmt is PublicKeyFormat.RAW:
            return public.public_bytes_raw()
        if fmt is PublicKeyFormat.PEM:
            return pem_armor(_XWING_PEM_LABEL, public.public_bytes_raw())
        raise UnsupportedAlgorithmError(
            "ML-KEM-768+X25519 public keys have no DER form; use pem, jwk or raw",
            algorithm=algorithm.value,
        )
    if fmt is PublicKeyFormat.RAW:
        if isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise UnsupportedAlgorithmError(
                f"{algorithm.value} public keys have no raw form; use pem, der or jwk",
                algorithm=algorithm.value,
            )
        return public.public_bytes_raw()
    encoding = (
        serialization.Encoding.PEM if fmt is PublicKeyFormat.PEM else serialization.Encoding.DER
    )
    return public.public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)


def pem_armor(label: str, body: bytes) -> bytes:
    """Wrap ``body`` in a PEM block labelled ``label`` (64-character lines)."""
    import base64

    text = base64.b64encode(body).decode("ascii")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return (
        "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"
    ).encode()


def _pem_unarmor(label: str, data: bytes) -> bytes | None:
    import base64
    import binascii

    text = data.decode("ascii", errors="replace").strip()
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    if begin not in text:
        return None
    body = text.split(begin, 1)[1]
    if end not in body:
        raise MalformedInputError("PEM block has no END line")
    try:
        return base64.b64decode("".join(body.split(end, 1)[0].split()), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInputError("PEM block is not valid base64") from None


def check_public_key(algorithm: Algorithm, public: object) -> None:
    """Refuse ``public`` unless it is a key of ``algorithm``.

    Raises:
        UnsupportedAlgorithmError: ``algorithm`` is not a key-pair algorithm.
        InvalidArgumentError: ``public`` is not a key of ``algorithm``.
    """
    _require(algorithm)
    try:
        found = algorithm_of_public(public)
    except UnsupportedAlgorithmError:
        found = None
    if found is None or not same_family(algorithm, found):
        raise InvalidArgumentError(
            f"the public key is not a {algorithm.value} key", algorithm=algorithm.value
        )


def load_public(data: bytes | str) -> tuple[Algorithm, PublicKey]:
    """Parse a public key from PEM, DER or JWK (detected from the input).

    A P-256 key comes back as ``ecdsa-p256``; pass it on as ``ecdh-p256``
    when it is an agreement or encryption key (JWKs with ``use: enc`` do this
    already).

    Raises:
        MalformedInputError: the input is no public key keymgmt can read.
        UnsupportedAlgorithmError: a key type or size keymgmt does not manage.
    """
    try:
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    except UnicodeEncodeError:  # a lone surrogate
        raise MalformedInputError("the public key text is not valid Unicode") from None
    except TypeError:
        raise MalformedInputError(
            f"a public key is bytes or text, not {type(data).__name__}"
        ) from None
    stripped = raw.strip()
    if stripped.startswith(b"{"):
        try:
            parsed = json.loads(stripped)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise MalformedInputError("the JWK is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise MalformedInputError("a JWK is a JSON object")
        return load_public_jwk(parsed)
    xwing = _pem_unarmor(_XWING_PEM_LABEL, stripped) if stripped.startswith(b"-----") else None
    if xwing is not None:
        return Algorithm.ML_KEM_768_X25519, XWingPublicKey.from_public_bytes(xwing)
    try:
        if stripped.startswith(b"-----"):
            key: object = serialization.load_pem_public_key(stripped)
        else:
            key = serialization.load_der_public_key(raw)
    except ValueError:
        raise MalformedInputError("not a PEM or DER public key (SubjectPublicKeyInfo)") from None
    except Exception:  # cryptography.exceptions.UnsupportedAlgorithm
        raise UnsupportedAlgorithmError("the public key's algorithm is not supported") from None
    return algorithm_of_public(key), key  # type: ignore[return-value]


def _jwk_bytes(jwk: Mapping[str, Any], member: str) -> bytes:
    value = jwk.get(member)
    if not isinstance(value, str) or not value:
        raise MalformedInputError(f"the JWK has no {member!r} member", member=member)
    try:
        return b64d(value)
    except IntegrityError:
        raise MalformedInputError(f"the JWK member {member!r} is not base64url") from None


def load_public_jwk(jwk: Mapping[str, Any]) -> tuple[Algorithm, PublicKey]:
    """Parse a public JWK (the shapes :func:`public_jwk` writes).

    A JWK holding a private member (``d`` or ``priv``) is refused: keymgmt
    does not take private keys this way.

    Raises:
        MalformedInputError: missing or invalid members.
        UnsupportedAlgorithmError: a key type, curve or size keymgmt does not manage.
    """
    if "d" in jwk or "priv" in jwk:
        raise MalformedInputError("the JWK holds a private key; give the public JWK")
    kty = jwk.get("kty")
    enc = jwk.get("use") == "enc" or jwk_usage(jwk) not in (None, KeyUsage.SIGN_VERIFY)
    try:
        if kty == "OKP":
            crv = jwk.get("crv")
            x = _jwk_bytes(jwk, "x")
            if crv == "Ed25519":
                return Algorithm.ED25519, ed25519.Ed25519PublicKey.from_public_bytes(x)
            if crv == "X25519":
                return Algorithm.X25519, x25519.X25519PublicKey.from_public_bytes(x)
            raise UnsupportedAlgorithmError(f"OKP curve {crv!r} is not supported", curve=str(crv))
        if kty == "EC":
            crv = jwk.get("crv")
            curve: ec.EllipticCurve
            if crv == "P-256":
                curve, algorithm = (
                    ec.SECP256R1(),
                    (Algorithm.ECDH_P256 if enc else Algorithm.ECDSA_P256),
                )
            elif crv == "P-384":
                curve, algorithm = ec.SECP384R1(), Algorithm.ECDSA_P384
            else:
                raise UnsupportedAlgorithmError(
                    f"EC curve {crv!r} is not supported", curve=str(crv)
                )
            size = (curve.key_size + 7) // 8
            xb, yb = _jwk_bytes(jwk, "x"), _jwk_bytes(jwk, "y")
            if len(xb) != size or len(yb) != size:
                raise MalformedInputError("EC coordinates have the wrong length")
            point = ec.EllipticCurvePublicNumbers(
                int.from_bytes(xb, "big"), int.from_bytes(yb, "big"), curve
            )
            return algorithm, point.public_key()
        if kty == "RSA":
            n = int.from_bytes(_jwk_bytes(jwk, "n"), "big")
            e = int.from_bytes(_jwk_bytes(jwk, "e"), "big")
            key = rsa.RSAPublicNumbers(e, n).public_key()
            return algorithm_of_public(key), key
        if kty == "AKP":
            alg = jwk.get("alg")
            pub = _jwk_bytes(jwk, "pub")
            for algorithm, name in _JWK_AKP_ALG.items():
                if alg == name:
                    return algorithm, _public_from_raw(algorithm, pub)
            raise UnsupportedAlgorithmError(f"AKP alg {alg!r} is not supported", alg=str(alg))
    except ValueError as exc:
        if isinstance(exc, KeyMgmtError):
            raise
        raise MalformedInputError("the JWK does not hold a valid public key") from None
    raise UnsupportedAlgorithmError(f"JWK key type {kty!r} is not supported", kty=str(kty))


_RAW_PUBLIC: Final[Mapping[Algorithm, Callable[[bytes], PublicKey]]] = {
    Algorithm.ED25519: ed25519.Ed25519PublicKey.from_public_bytes,
    Algorithm.X25519: x25519.X25519PublicKey.from_public_bytes,
    Algorithm.ML_DSA_44: mldsa.MLDSA44PublicKey.from_public_bytes,
    Algorithm.ML_DSA_65: mldsa.MLDSA65PublicKey.from_public_bytes,
    Algorithm.ML_DSA_87: mldsa.MLDSA87PublicKey.from_public_bytes,
    Algorithm.ML_KEM_768: mlkem.MLKEM768PublicKey.from_public_bytes,
    Algorithm.ML_KEM_768_X25519: XWingPublicKey.from_public_bytes,
}


def _public_from_raw(algorithm: Algorithm, data: bytes) -> PublicKey:
    try:
        return _RAW_PUBLIC[algorithm](data)
    except MalformedInputError:
        raise
    except ValueError:
        raise MalformedInputError(f"invalid {algorithm.value} public key") from None


# -- signatures ------------------------------------------------------------------

_SHA256: Final = hashes.SHA256()
_SHA384: Final = hashes.SHA384()
_ECDSA_SHA256: Final = ec.ECDSA(_SHA256)
_ECDSA_SHA384: Final = ec.ECDSA(_SHA384)
_PSS_SIGN: Final = padding.PSS(mgf=padding.MGF1(_SHA256), salt_length=32)
# Verification accepts any salt length, so signatures made by other tools
# (OpenSSL's default PSS salt length differs) verify too.
_PSS_VERIFY: Final = padding.PSS(mgf=padding.MGF1(_SHA256), salt_length=padding.PSS.AUTO)


def _sign_ed(private: Any, data: bytes) -> bytes:
    return private.sign(data)  # type: ignore[no-any-return]


def _sign_p256(private: Any, data: bytes) -> bytes:
    return private.sign(data, _ECDSA_SHA256)  # type: ignore[no-any-return]


def _sign_p384(private: Any, data: bytes) -> bytes:
    return private.sign(data, _ECDSA_SHA384)  # type: ignore[no-any-return]


def _sign_rsa(private: Any, data: bytes) -> bytes:
    return private.sign(data, _PSS_SIGN, _SHA256)  # type: ignore[no-any-return]


def _verify_ed(public: Any, signature: bytes, data: bytes) -> None:
    public.verify(signature, data)


def _verify_p256(public: Any, signature: bytes, data: bytes) -> None:
    public.verify(signature, data, _ECDSA_SHA256)


def _verify_p384(public: Any, signature: bytes, data: bytes) -> None:
    public.verify(signature, data, _ECDSA_SHA384)


def _verify_rsa(public: Any, signature: bytes, data: bytes) -> None:
    public.verify(signature, data, _PSS_VERIFY, _SHA256)


_SIGNERS: Final[Mapping[Algorithm, Callable[[Any, bytes], bytes]]] = {
    Algorithm.ED25519: _sign_ed,
    Algorithm.ECDSA_P256: _sign_p256,
    Algorithm.ECDSA_P384: _sign_p384,
    Algorithm.RSA_2048: _sign_rsa,
    Algorithm.RSA_3072: _sign_rsa,
    Algorithm.RSA_4096: _sign_rsa,
    Algorithm.ML_DSA_44: _sign_ed,
    Algorithm.ML_DSA_65: _sign_ed,
    Algorithm.ML_DSA_87: _sign_ed,
}
_VERIFIERS: Final[Mapping[Algorithm, Callable[[Any, bytes, bytes], None]]] = {
    Algorithm.ED25519: _verify_ed,
    Algorithm.ECDSA_P256: _verify_p256,
    Algorithm.ECDSA_P384: _verify_p384,
    Algorithm.RSA_2048: _verify_rsa,
    Algorithm.RSA_3072: _verify_rsa,
    Algorithm.RSA_4096: _verify_rsa,
    Algorithm.ML_DSA_44: _verify_ed,
    Algorithm.ML_DSA_65: _verify_ed,
    Algorithm.ML_DSA_87: _verify_ed,
}


def bound_verifier(algorithm: Algorithm, public: Any) -> Callable[[bytes, bytes], None] | None:
    """``public``'s own ``verify`` with this module's parameters bound, or None.

    The key store keeps one per cached signing version, so a verify through
    the façade costs one Python frame and one positional call into
    ``cryptography`` (keyword arguments cost more to parse there than a
    frame costs here). It raises what ``cryptography`` raises
    (``InvalidSignature``, ``ValueError``, ``TypeError``); the caller turns
    that into :class:`InvalidSignatureError`.
    """
    check = public.verify
    if algorithm in _VERIFIERS and _VERIFIERS[algorithm] is _verify_ed:
        return check  # type: ignore[no-any-return]  # Ed25519, ML-DSA: verify(signature, data)
    if algorithm in (Algorithm.RSA_2048, Algorithm.RSA_3072, Algorithm.RSA_4096):

        def verify_pss(signature: bytes, data: bytes) -> None:
            check(signature, data, _PSS_VERIFY, _SHA256)

        return verify_pss
    ecdsa = {Algorithm.ECDSA_P256: _ECDSA_SHA256, Algorithm.ECDSA_P384: _ECDSA_SHA384}.get(
        algorithm
    )
    if ecdsa is None:
        return None

    def verify_ecdsa(signature: bytes, data: bytes) -> None:
        check(signature, data, ecdsa)

    return verify_ecdsa


def _usage_refused(algorithm: Algorithm, usage: KeyUsage) -> KeyUsageError:
    try:
        check_usage(algorithm, usage)
    except KeyUsageError as exc:
        return exc
    raise AssertionError("unreachable")  # pragma: no cover


def sign(algorithm: Algorithm, private: PrivateKey, data: bytes) -> bytes:
    """Sign ``data``; returns the plain signature (what OpenSSL verifies).

    Ed25519 and ML-DSA sign the message itself; ECDSA returns a DER
    signature over SHA-256 (P-256) or SHA-384 (P-384); RSA uses PSS with
    SHA-256, MGF1-SHA-256 and a 32-byte salt.

    Raises:
        UnsupportedAlgorithmError: ``algorithm`` is not a key-pair algorithm.
        KeyUsageError: ``algorithm`` cannot sign.
    """
    signer = _SIGNERS.get(algorithm)
    if signer is None:
        raise _usage_refused(_require(algorithm), KeyUsage.SIGN_VERIFY)
    return signer(private, data)


def verify(algorithm: Algorithm, public: PublicKey, signature: bytes, data: bytes) -> None:
    """Check a plain signature made by :func:`sign` (or by OpenSSL, same parameters).

    Raises:
        InvalidSignatureError: the signature does not verify (opaque).
        UnsupportedAlgorithmError: ``algorithm`` is not a key-pair algorithm.
        KeyUsageError: ``algorithm`` cannot verify.
    """
    verifier = _VERIFIERS.get(algorithm)
    if verifier is None:
        raise _usage_refused(_require(algorithm), KeyUsage.SIGN_VERIFY)
    try:
        verifier(public, signature, data)
    except (InvalidSignature, ValueError, TypeError):
        raise InvalidSignatureError() from None


# -- public-key encryption -------------------------------------------------------

_HPKE_SUITES: Final[Mapping[Algorithm, hpke.Suite]] = {
    Algorithm.X25519: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
    Algorithm.ECDH_P256: hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
    Algorithm.ML_KEM_768: hpke.Suite(
        hpke.KEM.MLKEM768, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
    ),
    Algorithm.ML_KEM_768_X25519: hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM
    ),
}
_ZERO_NONCE: Final = bytes(12)


def hpke_suite(algorithm: Algorithm) -> hpke.Suite:
    """The HPKE suite keymgmt uses for ``algorithm`` (for interop and tests).

    Raises:
        UnsupportedAlgorithmError: ``algorithm`` does no HPKE.
    """
    suite = _HPKE_SUITES.get(algorithm)
    if suite is None:
        raise UnsupportedAlgorithmError(
            f"{algorithm.value} keys do not use HPKE", algorithm=algorithm.value
        )
    return suite


def _oaep(label: bytes) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(_SHA256), algorithm=_SHA256, label=label)


def encrypt(algorithm: Algorithm, public: PublicKey, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt to ``public``, binding ``aad``; returns the body (no header).

    HPKE algorithms return ``enc || ciphertext`` (what ``hpke.Suite.encrypt``
    returns, with ``aad`` as ``info``); RSA returns ``OAEP(aes key) || GCM
    ciphertext`` (see the module docstring).

    Raises:
        UnsupportedAlgorithmError: ``algorithm`` is not a key-pair algorithm.
        KeyUsageError: ``algorithm`` cannot encrypt.
        InvalidArgumentError: ``public`` is an invalid key (a low-order point).
    """
    suite = _HPKE_SUITES.get(algorithm)
    if suite is not None:
        target: Any = public.hpke_key if isinstance(public, XWingPublicKey) else public
        try:
            return suite.encrypt(plaintext, target, info=aad)
        except ValueError:  # a low-order X25519 point: the DH output is all zeros
            raise InvalidArgumentError(
                f"encryption failed (invalid {algorithm.value} public key)",
                algorithm=algorithm.value,
            ) from None
    if algorithm in _RSA_BITS:
        assert isinstance(public, rsa.RSAPublicKey)
        cek = AESGCM.generate_key(256)
        wrapped = public.encrypt(cek, _oaep(aad))
        return wrapped + AESGCM(cek).encrypt(_ZERO_NONCE, plaintext, aad)
    raise _usage_refused(_require(algorithm), KeyUsage.ENCRYPT_DECRYPT)


def decrypt(algorithm: Algorithm, private: PrivateKey, body: bytes, aad: bytes) -> bytes:
    """Open a body made by :func:`encrypt` with the same ``aad``.

    Raises:
        DecryptionError: wrong key, wrong ``aad``, tampered or truncated (opaque).
        UnsupportedAlgorithmError: ``algorithm`` is not a key-pair algorithm.
        KeyUsageError: ``algorithm`` cannot decrypt.
    """
    suite = _HPKE_SUITES.get(algorithm)
    try:
        if suite is not None:
            target: Any = private.hpke_key if isinstance(private, XWingPrivateKey) else private
            return suite.decrypt(body, target, info=aad)
        if algorithm in _RSA_BITS:
            assert isinstance(private, rsa.RSAPrivateKey)
            size = (private.key_size + 7) // 8
            if len(body) < size + 16:
                raise DecryptionError()
            cek = private.decrypt(body[:size], _oaep(aad))
            return AESGCM(cek).decrypt(_ZERO_NONCE, body[size:], aad)
    except DecryptionError:
        raise DecryptionError() from None
    except Exception:  # InvalidTag, ValueError, ...: all one opaque failure
        raise DecryptionError() from None
    raise _usage_refused(_require(algorithm), KeyUsage.ENCRYPT_DECRYPT)


# -- key agreement ---------------------------------------------------------------

_AGREE_LABEL: Final = b"keymgmt agree v1"


def agree(
    algorithm: Algorithm,
    private: PrivateKey,
    peer: PublicKey,
    *,
    info: bytes,
    length: int = 32,
) -> SecretBytes:
    """Derive a shared key with ``peer``: (EC)DH, then HKDF-SHA-256.

    The raw DH output never leaves: HKDF's ``info`` binds a label, both
    public keys (sorted, so both sides derive the same key) and the caller's
    ``info``. Both sides must pass the same ``info``.

    Raises:
        UnsupportedAlgorithmError: ``algorithm`` is not a key-pair algorithm.
        KeyUsageError: ``algorithm`` does no key agreement.
        InvalidArgumentError: ``peer`` is not a key of the same algorithm,
            ``length`` is out of range, or the exchange failed (low-order point).
    """
    if algorithm not in (Algorithm.X25519, Algorithm.ECDH_P256):
        raise _usage_refused(_require(algorithm), KeyUsage.KEY_AGREEMENT)
    if not isinstance(length, int) or isinstance(length, bool) or not 16 <= length <= 64:
        raise InvalidArgumentError(
            "derived key length must be an integer 16..64 (bytes)", length=length
        )
    check_public_key(algorithm, peer)
    mine = public_bytes(algorithm, private.public_key(), PublicKeyFormat.DER)
    theirs = public_bytes(algorithm, peer, PublicKeyFormat.DER)
    try:
        if isinstance(private, x25519.X25519PrivateKey):
            assert isinstance(peer, x25519.X25519PublicKey)
            shared = private.exchange(peer)
        else:
            assert isinstance(private, ec.EllipticCurvePrivateKey)
            assert isinstance(peer, ec.EllipticCurvePublicKey)
            shared = private.exchange(ec.ECDH(), peer)
    except ValueError:
        raise InvalidArgumentError("key agreement failed (invalid peer public key)") from None
    parts = [_AGREE_LABEL, algorithm.value.encode(), *sorted((mine, theirs)), info]
    encoded = b"".join(len(p).to_bytes(4, "big") + p for p in parts)
    return SecretBytes(HKDF(_SHA256, length, salt=None, info=encoded).derive(shared))


# -- the self-describing signature ------------------------------------------------

_MAX_RAW_SIGNATURE: Final = 8192


@attrs.frozen(kw_only=True)
class Signature:
    """A signature that names its key: what ``km.sign`` returns, encoded.

    The wire form is the one keymgmt envelope (:mod:`keymgmt.keys._format`,
    payload type 3 = signature): the header prefix naming algorithm, key id,
    key name and key version, followed by the plain signature (:attr:`raw`)
    and nothing else. Parsing is strict: wrong magic, unknown format version,
    a payload that is not a signature, a non-signing algorithm, an empty or
    oversize (> 8192 bytes) signature are refused.

    :attr:`raw` is the detached signature over the message itself — exactly
    what ``openssl pkeyutl -verify`` / ``openssl dgst -verify`` and plain
    ``cryptography`` check. The header is not signed: it only says which key
    to verify with, and a verifier takes the algorithm from its key, never
    from the header, and checks the header against it (a header naming
    another key, version or algorithm fails verification).

    Attributes:
        key_name: the signing key's name.
        version: the signing key version.
        key_id: the signing key's 8-byte id (random at key creation).
        algorithm: the signing key's algorithm.
        raw: the plain signature bytes.
    """

    key_name: str
    version: int
    key_id: bytes
    algorithm: Algorithm
    raw: bytes = attrs.field(repr=lambda raw: f"<{len(raw)} bytes>")

    def encode(self) -> bytes:
        """The wire form (see the class docstring).

        Raises:
            InvalidArgumentError: a field is out of range or of the wrong type.
        """
        check_name(self.key_name)
        key_id: object = self.key_id  # checked at run time: the fields are not converted
        if not isinstance(key_id, bytes) or len(key_id) != 8:
            raise InvalidArgumentError("a key id is 8 bytes")
        version: object = self.version
        if (
            not isinstance(version, int)
            or isinstance(version, bool)
            or not 1 <= version <= 0xFFFFFFFF
        ):
            raise InvalidArgumentError("key version must be an int 1..2**32-1", version=version)
        algorithm: object = self.algorithm
        if not isinstance(algorithm, str) or algorithm not in _SIGNERS:
            raise InvalidArgumentError(f"{algorithm!s} does not sign")
        raw: object = self.raw
        if not isinstance(raw, bytes) or not 1 <= len(raw) <= _MAX_RAW_SIGNATURE:
            raise InvalidArgumentError("a signature is 1..8192 bytes")
        head = prefix(
            PayloadType.SIGNATURE, self.algorithm, self.key_id, self.key_name, self.version
        )
        return head + self.raw

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Signature:
        """Parse the wire form.

        Raises:
            MalformedInputError: not a keymgmt signature (see the class docstring).
        """
        header = parse_header(data)
        if header.payload is not PayloadType.SIGNATURE:
            raise MalformedInputError("the input is a keymgmt envelope but not a signature")
        if header.algorithm not in _SIGNERS:
            raise MalformedInputError("the signature names a non-signing algorithm")
        if type(data) is memoryview:  # sliced in bytes, not in items or rows
            data = data.tobytes()
        raw = bytes(data[header.prefix_length :])
        if not 1 <= len(raw) <= _MAX_RAW_SIGNATURE:
            raise MalformedInputError("the signature is empty or oversize")
        return cls(
            key_name=header.name,
            version=header.version,
            key_id=header.key_id,
            algorithm=header.algorithm,
            raw=raw,
        )


# -- the material handler the key store calls ---------------------------------------


@attrs.frozen(repr=False, eq=False)
class LoadedKeyPair:
    """What the key store caches for one key-pair version: both halves, built once."""

    algorithm: Algorithm
    private: PrivateKey
    public: PublicKey

    def __repr__(self) -> str:
        return f"<LoadedKeyPair {self.algorithm.value}>"

    def __reduce__(self) -> Any:
        raise TypeError("private keys cannot be pickled")


class AsymmetricHandler:
    """The key store's material handler for every key-pair algorithm.

    Implements :class:`keymgmt.keys._handlers.MaterialHandler` over the
    functions of this module, plus :meth:`sign`, :meth:`verify` and
    :meth:`public_key` for the signing and export paths. ``load`` returns a
    :class:`LoadedKeyPair`; every other method takes that object back.
    """

    def __repr__(self) -> str:
        return "AsymmetricHandler()"

    def algorithms(self) -> frozenset[Algorithm]:
        """Every key-pair algorithm."""
        return ASYMMETRIC_ALGORITHMS

    def usages(self, algorithm: Algorithm) -> frozenset[KeyUsage]:
        """The usages ``algorithm`` allows (see :data:`USAGES`)."""
        return frozenset(USAGES[_require(algorithm)])

    def default_usage(self, algorithm: Algorithm) -> KeyUsage:
        """See :data:`DEFAULT_USAGE`."""
        return default_usage(algorithm)

    def usage_limit(self, algorithm: Algorithm) -> int | None:
        """None: signatures and HPKE (a fresh key per message) need no cap."""
        return None

    def generate(self, algorithm: Algorithm, randomness: Randomness) -> bytes:
        """New private material drawn from ``randomness`` (RSA: OpenSSL's); see :func:`generate`."""
        return generate(algorithm, randomness)

    def check_material(self, algorithm: Algorithm, material: bytes) -> bytes:
        """Validate imported private material and return its stored form.

        Accepts PKCS#8 or traditional DER, unencrypted PEM, or (for
        ML-KEM-768+X25519) the 32-byte seed. Encrypted PEM is opened by
        :func:`keymgmt.pem.load_private_key` first.

        Raises:
            InvalidArgumentError: not a private key of ``algorithm``.
        """
        _require(algorithm)
        data = bytes(material)
        if algorithm is Algorithm.ML_KEM_768_X25519:
            if len(data) != _XWING_SEED_LEN:
                raise InvalidArgumentError("an ML-KEM-768+X25519 private key is a 32-byte seed")
            return data
        try:
            if b"-----BEGIN" in data:  # PEM with text before it too (openssl pkcs12 output)
                key: object = serialization.load_pem_private_key(data, password=None)
            else:
                key = serialization.load_der_private_key(data, password=None)
        except TypeError:
            raise InvalidArgumentError("the private key is encrypted; decrypt it first") from None
        except Exception:  # ValueError, cryptography's UnsupportedAlgorithm
            raise InvalidArgumentError("not a private key keymgmt can read") from None
        try:
            found = algorithm_of_private(key)
        except UnsupportedAlgorithmError as exc:
            raise InvalidArgumentError(exc.message) from None
        if not same_family(algorithm, found):
            raise InvalidArgumentError(
                f"the key is a {found.value} key, not {algorithm.value}", algorithm=algorithm.value
            )
        return private_pkcs8(key)  # type: ignore[arg-type]  # checked above

    def load(self, algorithm: Algorithm, material: bytes) -> LoadedKeyPair:
        """Build both halves once (slow for RSA: the caller caches the result).

        Raises:
            IntegrityError: the material is not a key of ``algorithm``.
        """
        private = load_private(algorithm, material)
        return LoadedKeyPair(algorithm, private, private.public_key())

    def public_key(self, algorithm: Algorithm, loaded: LoadedKeyPair) -> PublicKey:
        """The public half."""
        return loaded.public

    def encrypt(
        self, algorithm: Algorithm, loaded: LoadedKeyPair, plaintext: bytes, aad: bytes
    ) -> bytes:
        """Encrypt to the public half; see :func:`encrypt`."""
        return encrypt(algorithm, loaded.public, plaintext, aad)

    def decrypt(
        self, algorithm: Algorithm, loaded: LoadedKeyPair, body: bytes | memoryview, aad: bytes
    ) -> bytes:
        """Decrypt with the private half; see :func:`decrypt`.

        Raises:
            DecryptionError: any failure (opaque).
        """
        return decrypt(algorithm, loaded.private, bytes(body), aad)

    def sign(self, algorithm: Algorithm, loaded: LoadedKeyPair, data: bytes) -> bytes:
        """The plain signature of ``data``; see :func:`sign`."""
        signer = _SIGNERS.get(algorithm)
        if signer is None:
            return sign(algorithm, loaded.private, data)  # raises the usage error
        return signer(loaded.private, data)

    def agree(
        self,
        algorithm: Algorithm,
        loaded: LoadedKeyPair,
        peer: PublicKey,
        *,
        info: bytes,
        length: int = 32,
    ) -> SecretBytes:
        """A key derived with ``peer``; see :func:`agree`."""
        return agree(algorithm, loaded.private, peer, info=info, length=length)

    def bound_verifier(
        self, algorithm: Algorithm, loaded: LoadedKeyPair
    ) -> Callable[[bytes, bytes], None] | None:
        """The public key's ``verify`` with parameters bound; see :func:`bound_verifier`."""
        return bound_verifier(algorithm, loaded.public)

    def verify(
        self, algorithm: Algorithm, loaded: LoadedKeyPair, signature: bytes, data: bytes
    ) -> None:
        """Check a plain signature; see :func:`verify`.

        Raises:
            InvalidSignatureError: it does not verify (opaque).
        """
        verifier = _VERIFIERS.get(algorithm)
        if verifier is None:
            verify(algorithm, loaded.public, signature, data)  # raises the usage error
            return
        try:
            verifier(loaded.public, signature, data)
        except (InvalidSignature, ValueError, TypeError):
            raise InvalidSignatureError() from None
