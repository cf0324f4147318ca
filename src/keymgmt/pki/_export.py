"""Export: PEM/DER certificates and chains, CRLs, PKCS#12, encrypted private keys.

Private keys leave only encrypted under a passphrase (PKCS#8 with the best
available PBES2, or a PKCS#12 bundle with AES-256 and PBKDF2-SHA256).
Unencrypted private key export is not offered here: that is
``keymgmt.hazmat``'s job, behind an explicit opt-in.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.serialization import pkcs12

from keymgmt._secret import SecretBytes
from keymgmt.errors import InvalidArgumentError
from keymgmt.pki._keys import SigningKey

__all__ = [
    "Encoding",
    "check_passphrase",
    "export_certificate",
    "export_chain",
    "export_crl",
    "export_pkcs12",
    "export_private_key",
]

_MIN_PASSPHRASE = 8
#: What PKCS#8 export takes (finite-field DH keys aside: deprecated in ``cryptography``).
_PRIVATE_KEYS = (
    ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    x25519.X25519PrivateKey,
    x448.X448PrivateKey,
    dsa.DSAPrivateKey,
)
#: What a PKCS#12 bundle holds.
_PKCS12_KEYS = (
    ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    dsa.DSAPrivateKey,
)
_MAX_PKCS8_PASSPHRASE = 1023  # OpenSSL refuses longer ones (PEM_BUFSIZE)


class Encoding(enum.StrEnum):
    """PEM (text) or DER (binary)."""

    PEM = "pem"
    DER = "der"


def _encoding(value: Encoding | str) -> serialization.Encoding:
    try:
        chosen = Encoding(str(value).lower())
    except ValueError:
        raise InvalidArgumentError(f"unknown encoding {value!r}; expected pem or der") from None
    return serialization.Encoding.PEM if chosen is Encoding.PEM else serialization.Encoding.DER


def _certificate(value: object, what: str = "certificate") -> x509.Certificate:
    if not isinstance(value, x509.Certificate):
        raise InvalidArgumentError(
            f"the {what} must be an x509.Certificate, got {type(value).__name__}"
        )
    return value


def _certificates(values: object) -> list[x509.Certificate]:
    if isinstance(values, x509.Certificate | str | bytes) or not isinstance(values, Iterable):
        raise InvalidArgumentError(
            f"the chain must be x509.Certificate objects, got {type(values).__name__}"
        )
    return [_certificate(value, "chain's certificate") for value in values]


def export_certificate(cert: x509.Certificate, encoding: Encoding | str = Encoding.PEM) -> bytes:
    """One certificate as PEM or DER.

    Raises:
        InvalidArgumentError: unknown encoding, or ``cert`` is not a certificate.
    """
    return _certificate(cert).public_bytes(_encoding(encoding))


def export_chain(certs: Sequence[x509.Certificate]) -> bytes:
    """A PEM bundle, in the order given (leaf first, as TLS sends it).

    Raises:
        InvalidArgumentError: ``certs`` is not certificates.
    """
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in _certificates(certs))


def export_crl(
    crl: x509.CertificateRevocationList, encoding: Encoding | str = Encoding.PEM
) -> bytes:
    """A CRL as PEM or DER.

    Raises:
        InvalidArgumentError: unknown encoding, or ``crl`` is not a CRL.
    """
    if not isinstance(crl, x509.CertificateRevocationList):
        raise InvalidArgumentError(
            f"the CRL must be an x509.CertificateRevocationList, got {type(crl).__name__}"
        )
    return crl.public_bytes(_encoding(encoding))


def _passphrase(value: str | bytes | SecretBytes) -> bytes:
    if isinstance(value, SecretBytes):
        raw = value.reveal()
    elif isinstance(value, str):
        try:
            raw = value.encode()
        except UnicodeEncodeError:  # a lone surrogate
            raise InvalidArgumentError("the passphrase is not valid Unicode text") from None
    elif isinstance(value, bytes):
        raw = value
    else:
        raise InvalidArgumentError("the passphrase must be str, bytes or SecretBytes")
    if len(raw) < _MIN_PASSPHRASE:
        raise InvalidArgumentError(f"the passphrase must be at least {_MIN_PASSPHRASE} bytes")
    return raw


def check_passphrase(
    passphrase: str | bytes | SecretBytes, *, pkcs8: bool = False, pkcs12: bool = False
) -> bytes:
    """The passphrase's bytes, if :func:`export_private_key` / :func:`export_pkcs12` take it.

    For callers that must know before doing anything else (the CLI checks
    it before it issues a certificate for a key it will write).

    Args:
        passphrase: the passphrase.
        pkcs8: check the PKCS#8 bound (at most 1,023 bytes).
        pkcs12: check what PKCS#12 needs (no NUL).

    Raises:
        InvalidArgumentError: shorter than 8 bytes, not text, or over a bound asked for.
    """
    raw = _passphrase(passphrase)
    if pkcs8 and len(raw) > _MAX_PKCS8_PASSPHRASE:
        raise InvalidArgumentError(
            f"the passphrase must be at most {_MAX_PKCS8_PASSPHRASE} bytes for PKCS#8"
        )
    if pkcs12 and b"\x00" in raw:
        raise InvalidArgumentError("a PKCS#12 passphrase cannot contain a NUL character")
    return raw


def export_private_key(
    key: SigningKey,
    passphrase: str | bytes | SecretBytes,
    encoding: Encoding | str = Encoding.PEM,
) -> bytes:
    """A private key as encrypted PKCS#8 (PEM or DER). There is no unencrypted option here.

    Raises:
        InvalidArgumentError: passphrase shorter than 8 or longer than 1,023
            bytes (OpenSSL's PEM passphrase limit) or not text, unknown
            encoding, ``key`` not a private key.
    """
    if not isinstance(key, _PRIVATE_KEYS):
        raise InvalidArgumentError(f"the key must be a private key, got {type(key).__name__}")
    raw = check_passphrase(passphrase, pkcs8=True)
    return key.private_bytes(
        _encoding(encoding),
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(raw),
    )


def export_pkcs12(
    *,
    name: str,
    key: SigningKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    passphrase: str | bytes | SecretBytes,
) -> bytes:
    """An encrypted PKCS#12 bundle (AES-256-CBC, PBKDF2-SHA256, SHA-256 MAC).

    Raises:
        InvalidArgumentError: passphrase shorter than 8 bytes, not text or
            with a NUL (PKCS#12 readers stop at it: the bundle could not be
            opened); the key does not match; an argument of the wrong type.
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"the name must be str, got {type(name).__name__}")
    try:
        friendly = name.encode()
    except UnicodeEncodeError:
        raise InvalidArgumentError("the name is not valid Unicode text") from None
    if not isinstance(key, _PKCS12_KEYS):
        raise InvalidArgumentError(
            f"the key must be a private key a PKCS#12 bundle holds, got {type(key).__name__}"
        )
    certificate = _certificate(certificate)
    others = _certificates(chain)
    raw = check_passphrase(passphrase, pkcs12=True)
    if key.public_key() != certificate.public_key():
        raise InvalidArgumentError("the private key does not match the certificate")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(100_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(raw)
    )
    return pkcs12.serialize_key_and_certificates(
        friendly, key, certificate, others or None, encryption
    )
