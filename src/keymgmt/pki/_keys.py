"""The CA key types keymgmt issues with, and how each one signs certificates."""

from __future__ import annotations

import hashlib
from typing import Final, TypeAlias, TypeGuard

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PSS, PKCS1v15

from keymgmt.algorithms import Algorithm
from keymgmt.errors import UnsupportedAlgorithmError
from keymgmt.pki._keycheck import check_rsa_public_key

__all__ = [
    "CA_KEY_TYPES",
    "RSA_ALGORITHMS",
    "CertificatePublicKey",
    "SigningKey",
    "algorithm_of",
    "ca_algorithm",
    "generate_key",
    "is_signing_key",
    "public_key_bits",
    "public_key_info",
    "signature_hash",
    "spki_der",
    "verify_signature",
]

#: Private keys a CA (or a leaf made by the CLI) may hold.
SigningKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
#: Public keys keymgmt certifies.
CertificatePublicKey: TypeAlias = (
    ed25519.Ed25519PublicKey | ed448.Ed448PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
)

#: The signature algorithms a CA key may use, P-256 first (the default).
CA_KEY_TYPES: Final = (
    Algorithm.ECDSA_P256,
    Algorithm.ECDSA_P384,
    Algorithm.ED25519,
    Algorithm.RSA_2048,
    Algorithm.RSA_3072,
    Algorithm.RSA_4096,
)

_RSA_BITS: Final = {Algorithm.RSA_2048: 2048, Algorithm.RSA_3072: 3072, Algorithm.RSA_4096: 4096}
#: The RSA key algorithms (their subject keys may get keyEncipherment).
RSA_ALGORITHMS: Final = frozenset(_RSA_BITS)


def ca_algorithm(algorithm: Algorithm | str) -> Algorithm:
    """``algorithm`` parsed, if a CA may sign with it.

    Raises:
        UnsupportedAlgorithmError: not a certificate signing algorithm.
    """
    algorithm = Algorithm.parse(algorithm)
    if algorithm not in CA_KEY_TYPES:
        names = ", ".join(a.value for a in CA_KEY_TYPES)
        raise UnsupportedAlgorithmError(
            f"{algorithm.value} cannot sign certificates; expected one of: {names}",
            algorithm=algorithm.value,
        )
    return algorithm


def generate_key(algorithm: Algorithm | str) -> SigningKey:
    """A fresh private key of ``algorithm`` (from OpenSSL's generator).

    Raises:
        UnsupportedAlgorithmError: not a certificate signing algorithm.
    """
    algorithm = ca_algorithm(algorithm)
    if algorithm is Algorithm.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm is Algorithm.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm is Algorithm.ECDSA_P384:
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[algorithm])


#: (family, is a private key) of each concrete key class seen so far:
#: ``isinstance`` against cryptography's ABCs costs about a microsecond a
#: check, and every issuance asks it of the subject key and the CA key.
#: Only positive answers are remembered (a class registered with an ABC
#: later is still found).
_KINDS: dict[type, tuple[str, bool]] = {}
_TYPES: Final = (
    ("ed25519", ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey),
    ("ec", ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey),
    ("rsa", rsa.RSAPrivateKey, rsa.RSAPublicKey),
)


def _kind(key: object) -> tuple[str, bool] | None:
    kind = _KINDS.get(type(key))
    if kind is not None:
        return kind
    for family, private_type, public_type in _TYPES:
        if isinstance(key, private_type):
            kind = (family, True)
        elif isinstance(key, public_type):
            kind = (family, False)
        else:
            continue
        _KINDS[type(key)] = kind
        return kind
    return None


def is_signing_key(key: object) -> TypeGuard[SigningKey]:
    """Whether ``key`` is a private key a CA signs with (Ed25519, EC or RSA)."""
    kind = _kind(key)
    return kind is not None and kind[1]


def algorithm_of(key: SigningKey | CertificatePublicKey) -> Algorithm:
    """The keymgmt algorithm name of a private or public key.

    Raises:
        UnsupportedAlgorithmError: a key type or size keymgmt does not sign with,
            or an RSA public key with a weak exponent or an easily factored
            modulus (see :mod:`._keycheck`).
    """
    kind = _kind(key)
    family = None if kind is None else kind[0]
    if family == "ed25519":
        return Algorithm.ED25519
    if family == "ec":
        curve = key.curve  # type: ignore[union-attr]
        if curve.name == "secp256r1":
            return Algorithm.ECDSA_P256
        if curve.name == "secp384r1":
            return Algorithm.ECDSA_P384
        raise UnsupportedAlgorithmError(f"unsupported curve {curve.name}", algorithm=curve.name)
    if family == "rsa":
        size = key.key_size  # type: ignore[union-attr]
        for algorithm, bits in _RSA_BITS.items():
            if size == bits:
                if kind is not None and not kind[1]:  # a public key: weak exponent or factors?
                    check_rsa_public_key(key)  # type: ignore[arg-type]
                return algorithm
        raise UnsupportedAlgorithmError(f"unsupported RSA key size {size}", algorithm=f"rsa-{size}")
    raise UnsupportedAlgorithmError(
        f"unsupported key type {type(key).__name__}", algorithm=type(key).__name__
    )


def _element(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``at`` (definite lengths)."""
    first = data[at + 1]
    start = at + 2
    if first < 0x80:
        return data[at], start, start + first
    count = first & 0x7F
    length = int.from_bytes(data[start : start + count], "big")
    return data[at], start + count, start + count + length


def spki_der(public_key: object) -> bytes:
    """The SubjectPublicKeyInfo DER of a public key, or of a certificate's key.

    What "the same key" compares throughout the PKI and the KDC (the key
    index's fingerprint, the CRL index cache, the registry's CA lookup,
    compromise responses).
    """
    if isinstance(public_key, x509.Certificate):
        public_key = public_key.public_key()
    encoded: bytes = public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return encoded


# Read once (an enum member read through its class runs a Python descriptor on 3.11).
_DER: Final = serialization.Encoding.DER
_SPKI: Final = serialization.PublicFormat.SubjectPublicKeyInfo


def public_key_info(public_key: CertificatePublicKey) -> tuple[bytes, bytes]:
    """``public_key``'s SubjectPublicKeyInfo DER and subject key identifier, from one encoding.

    Issuance needs both (the PKI's key index fingerprints the SPKI DER, the
    certificate gets the SKI), and encoding an EC public key costs several
    microseconds (a field inversion). The SKI is RFC 5280 4.2.1.2 method 1,
    the SHA-1 of the subjectPublicKey BIT STRING inside the SPKI: the bytes
    ``x509.SubjectKeyIdentifier.from_public_key`` gives (tested).

    Raises:
        UnsupportedAlgorithmError: cryptography cannot encode the key.
    """
    try:
        spki = public_key.public_bytes(_DER, _SPKI)
    except (TypeError, ValueError, AttributeError):
        raise UnsupportedAlgorithmError(
            f"unsupported key type {type(public_key).__name__}", algorithm=type(public_key).__name__
        ) from None
    return spki, hashlib.sha1(_key_bits(spki), usedforsecurity=False).digest()


def public_key_bits(public_key: object) -> bytes:
    """The value of the subjectPublicKey BIT STRING of a key or a certificate's key.

    What RFC 5280's key identifier (method 1) and RFC 6960's KeyHash hash.
    """
    return _key_bits(spki_der(public_key))


def _key_bits(spki: bytes) -> bytes:
    # SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier,
    #                                     subjectPublicKey BIT STRING }
    # (cryptography's own DER: one SEQUENCE, the BIT STRING second, 0 unused bits).
    _, body, _ = _element(spki, 0)
    _, _, after_algorithm = _element(spki, body)
    tag, bits, end = _element(spki, after_algorithm)
    if tag != 0x03 or end != len(spki) or spki[bits] != 0:  # pragma: no cover - cryptography's DER
        raise UnsupportedAlgorithmError("unexpected SubjectPublicKeyInfo encoding")
    return spki[bits + 1 : end]


def signature_hash(key: SigningKey) -> hashes.HashAlgorithm | None:
    """The hash a CA key signs with: none for Ed25519, SHA-384 for P-384, else SHA-256."""
    kind = _kind(key)
    if kind == ("ed25519", True):
        return None
    if kind == ("ec", True) and key.curve.name == "secp384r1":  # type: ignore[union-attr]
        return hashes.SHA384()
    return hashes.SHA256()


def verify_signature(
    public_key: object,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm | None,
    rsa_padding: PSS | PKCS1v15 | None = None,
) -> None:
    """Check a certificate-style signature (PKCS#1 v1.5 for RSA, ECDSA, EdDSA).

    Args:
        public_key: the signer's public key.
        signature: the signature value.
        data: the signed bytes.
        hash_algorithm: the signature's hash (None for EdDSA).
        rsa_padding: the signed object's RSA padding (a certificate's
            ``signature_algorithm_parameters``: PKCS#1 v1.5 or PSS); default
            PKCS#1 v1.5.

    Raises:
        InvalidSignatureError: it does not verify (or the key type is unusable).
    """
    from cryptography.exceptions import InvalidSignature

    from keymgmt.errors import InvalidSignatureError

    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and hash_algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey) and hash_algorithm is not None:
            public_key.verify(signature, data, rsa_padding or PKCS1v15(), hash_algorithm)
        else:
            raise InvalidSignatureError()
    except (InvalidSignature, ValueError, TypeError):
        raise InvalidSignatureError() from None
