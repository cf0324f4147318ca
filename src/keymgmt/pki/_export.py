"""Export: PEM/DER certificates and chains, CRLs, PKCS#12, encrypted private keys.

Private keys leave only encrypted under a passphrase (PKCS#8 with the best
available PBES2, or a PKCS#12 bundle with AES-256 and PBKDF2-SHA256).
Unencrypted private key export is not offered here: that is
``keymgmt.hazmat``'s job, behind an explicit opt-in.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from keymgmt._secret import SecretBytes
from keymgmt.errors import InvalidArgumentError
from keymgmt.pki._keys import SigningKey

__all__ = [
    "Encoding",
    "export_certificate",
    "export_chain",
    "export_crl",
    "export_pkcs12",
    "export_private_key",
]

_MIN_PASSPHRASE = 8
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


def export_certificate(cert: x509.Certificate, encoding: Encoding | str = Encoding.PEM) -> bytes:
    """One certificate as PEM or DER.

    Raises:
        InvalidArgumentError: unknown encoding.
    """
    return cert.public_bytes(_encoding(encoding))


def export_chain(certs: Sequence[x509.Certificate]) -> bytes:
    """A PEM bundle, in the order given (leaf first, as TLS sends it)."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def export_crl(
    crl: x509.CertificateRevocationList, encoding: Encoding | str = Encoding.PEM
) -> bytes:
    """A CRL as PEM or DER.

    Raises:
        InvalidArgumentError: unknown encoding.
    """
    return crl.public_bytes(_encoding(encoding))


def _passphrase(value: str | bytes | SecretBytes) -> bytes:
    if isinstance(value, SecretBytes):
        raw = value.reveal()
    elif isinstance(value, str):
        raw = value.encode()
    elif isinstance(value, bytes):
        raw = value
    else:
        raise InvalidArgumentError("the passphrase must be str, bytes or SecretBytes")
    if len(raw) < _MIN_PASSPHRASE:
        raise InvalidArgumentError(f"the passphrase must be at least {_MIN_PASSPHRASE} bytes")
    return raw


def export_private_key(
    key: SigningKey,
    passphrase: str | bytes | SecretBytes,
    encoding: Encoding | str = Encoding.PEM,
) -> bytes:
    """A private key as encrypted PKCS#8 (PEM or DER). There is no unencrypted option here.

    Raises:
        InvalidArgumentError: passphrase shorter than 8 or longer than 1,023
            bytes (OpenSSL's PEM passphrase limit), unknown encoding.
    """
    raw = _passphrase(passphrase)
    if len(raw) > _MAX_PKCS8_PASSPHRASE:
        raise InvalidArgumentError(
            f"the passphrase must be at most {_MAX_PKCS8_PASSPHRASE} bytes for PKCS#8"
        )
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
        InvalidArgumentError: passphrase shorter than 8 bytes; the key does not match.
    """
    if key.public_key() != certificate.public_key():
        raise InvalidArgumentError("the private key does not match the certificate")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(100_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(_passphrase(passphrase))
    )
    return pkcs12.serialize_key_and_certificates(
        name.encode(), key, certificate, list(chain) or None, encryption
    )
