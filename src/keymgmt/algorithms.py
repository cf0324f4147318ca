"""Algorithm and usage names, as enums with stable lowercase string values.

The string values are part of keymgmt's formats (stored metadata, CLI
arguments, JSON output) and never change. An algorithm is always named, never
inferred from a key length.
"""

from __future__ import annotations

import enum

__all__ = [
    "Algorithm",
    "ExchangeGroup",
    "KeyKind",
    "KeyUsage",
]


class KeyKind(enum.StrEnum):
    """Whether a key is one secret or a key pair."""

    SYMMETRIC = "symmetric"
    ASYMMETRIC = "asymmetric"


class KeyUsage(enum.StrEnum):
    """What a key may be used for, fixed when the key is created."""

    ENCRYPT_DECRYPT = "encrypt-decrypt"
    SIGN_VERIFY = "sign-verify"
    KEY_AGREEMENT = "key-agreement"


class Algorithm(enum.StrEnum):
    """Every key algorithm keymgmt manages."""

    # symmetric AEADs
    AES_256_GCM = "aes-256-gcm"
    CHACHA20_POLY1305 = "chacha20-poly1305"
    AES_256_GCM_SIV = "aes-256-gcm-siv"
    FERNET = "fernet"
    # signatures
    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ML_DSA_44 = "ml-dsa-44"
    ML_DSA_65 = "ml-dsa-65"
    ML_DSA_87 = "ml-dsa-87"
    # agreement and public-key encryption
    X25519 = "x25519"
    ECDH_P256 = "ecdh-p256"
    ML_KEM_768 = "ml-kem-768"
    ML_KEM_768_X25519 = "ml-kem-768-x25519"

    @property
    def kind(self) -> KeyKind:
        """Symmetric or asymmetric."""
        if self in _SYMMETRIC:
            return KeyKind.SYMMETRIC
        return KeyKind.ASYMMETRIC

    @classmethod
    def parse(cls, value: str | Algorithm) -> Algorithm:
        """Return the enum member for ``value``.

        Raises:
            UnsupportedAlgorithmError: ``value`` names no algorithm.
        """
        try:
            return cls(value)
        except ValueError:
            from keymgmt.errors import UnsupportedAlgorithmError

            names = ", ".join(a.value for a in cls)
            raise UnsupportedAlgorithmError(
                f"unknown algorithm {value!r}; expected one of: {names}", algorithm=str(value)
            ) from None


_SYMMETRIC = frozenset(
    {
        Algorithm.AES_256_GCM,
        Algorithm.CHACHA20_POLY1305,
        Algorithm.AES_256_GCM_SIV,
        Algorithm.FERNET,
    }
)


class ExchangeGroup(enum.StrEnum):
    """Key agreement groups for :mod:`keymgmt.exchange`."""

    X25519 = "x25519"
    P256 = "p256"
    P384 = "p384"
    FFDHE2048 = "ffdhe2048"
    FFDHE3072 = "ffdhe3072"
    FFDHE4096 = "ffdhe4096"
    X25519_MLKEM768 = "x25519-mlkem768"
