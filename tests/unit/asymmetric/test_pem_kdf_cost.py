"""An encrypted key file cannot make the import derive keys for hours.

PBKDF2 iterations and scrypt costs are chosen by whoever wrote the file and
paid before a wrong passphrase shows: ``keymgmt.pem.load_private_key``
reads them first and refuses absurd ones with a typed error, at once.
"""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from keymgmt import pem
from keymgmt._der import der_read, der_tlv
from keymgmt.errors import InvalidArgumentError

_SEQ, _INT, _OCTETS, _OID = 0x30, 0x02, 0x04, 0x06
_PBES2 = bytes.fromhex("2a864886f70d01050d")
_PBKDF2 = bytes.fromhex("2a864886f70d01050c")
_SCRYPT = bytes.fromhex("2b06010401da47040b")
_AES256_CBC = bytes.fromhex("60864801650304012a")  # 2.16.840.1.101.3.4.1.42


def _int(value: int) -> bytes:
    return der_tlv(_INT, value.to_bytes((value.bit_length() + 8) // 8, "big"))


def _encrypted(iterations: int) -> bytes:
    """A real encrypted PKCS#8 Ed25519 key, its PBKDF2 iteration count re-encoded."""
    key = ed25519.Ed25519PrivateKey.generate()
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    _, info, _ = der_read(der)
    _, algorithm, after_algorithm = der_read(info)
    _, oid, at = der_read(algorithm)
    _, params, _ = der_read(algorithm, at)
    _, kdf, after_kdf = der_read(params)
    _, kdf_oid, at = der_read(kdf)
    _, kdf_params, _ = der_read(kdf, at)
    _, salt, at = der_read(kdf_params)
    _, _, after_count = der_read(kdf_params, at)
    assert oid == _PBES2
    assert kdf_oid == _PBKDF2
    new_kdf_params = der_tlv(_OCTETS, salt) + _int(iterations) + kdf_params[after_count:]
    new_kdf = der_tlv(_OID, _PBKDF2) + der_tlv(_SEQ, new_kdf_params)
    new_params = der_tlv(_SEQ, new_kdf) + params[after_kdf:]
    new_algorithm = der_tlv(_OID, _PBES2) + der_tlv(_SEQ, new_params)
    return der_tlv(_SEQ, der_tlv(_SEQ, new_algorithm) + info[after_algorithm:])


def _pem(der: bytes) -> bytes:
    body = base64.encodebytes(der)
    return (
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + body + b"-----END ENCRYPTED PRIVATE KEY-----\n"
    )


def test_a_key_within_the_limit_loads() -> None:
    algorithm, _ = pem.load_private_key(_encrypted(2048), passphrase="pw")
    assert algorithm.value == "ed25519"


@pytest.mark.parametrize("form", ["der", "pem"])
def test_four_billion_pbkdf2_iterations_are_refused_at_once(form: str) -> None:
    der = _encrypted(4_000_000_000)
    data = der if form == "der" else _pem(der)
    started = time.monotonic()
    with pytest.raises(InvalidArgumentError, match="4,000,000,000 key derivation iterations"):
        pem.load_private_key(data, passphrase="pw")
    assert time.monotonic() - started < 5  # refused before deriving, not after


def test_the_limit_itself_is_allowed_and_one_more_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pem, "MAX_KDF_ITERATIONS", 2048)
    pem.load_private_key(_encrypted(2048), passphrase="pw")
    with pytest.raises(InvalidArgumentError, match="at most 2,048"):
        pem.load_private_key(_encrypted(2049), passphrase="pw")


def _synthetic(algorithm: bytes) -> bytes:
    """An EncryptedPrivateKeyInfo with ``algorithm`` and junk ciphertext."""
    return der_tlv(_SEQ, der_tlv(_SEQ, algorithm) + der_tlv(_OCTETS, bytes(48)))


def _scrypt(cost: int, block: int, parallel: int) -> bytes:
    kdf_params = der_tlv(_OCTETS, bytes(16)) + _int(cost) + _int(block) + _int(parallel)
    kdf = der_tlv(_OID, _SCRYPT) + der_tlv(_SEQ, kdf_params)
    scheme = der_tlv(_OID, _AES256_CBC) + der_tlv(_OCTETS, bytes(16))
    params = der_tlv(_SEQ, kdf) + der_tlv(_SEQ, scheme)
    return _synthetic(der_tlv(_OID, _PBES2) + der_tlv(_SEQ, params))


@pytest.mark.parametrize(
    ("cost", "block", "parallel"), [(1 << 30, 8, 1), (1 << 14, 8, 1 << 20)], ids=["memory", "p"]
)
def test_an_absurd_scrypt_cost_is_refused(cost: int, block: int, parallel: int) -> None:
    with pytest.raises(InvalidArgumentError, match="scrypt"):
        pem.load_private_key(_scrypt(cost, block, parallel), passphrase="pw")


def test_an_absurd_pkcs12_pbe_iteration_count_is_refused() -> None:
    pbe_sha1_3des = bytes.fromhex("2a864886f70d010c0103")  # pbeWithSHAAnd3-KeyTripleDES-CBC
    params = der_tlv(_OCTETS, bytes(8)) + _int(3_000_000_000)
    data = _synthetic(der_tlv(_OID, pbe_sha1_3des) + der_tlv(_SEQ, params))
    with pytest.raises(InvalidArgumentError, match="iterations"):
        pem.load_private_key(data, passphrase="pw")


def test_four_billion_iterations_behind_a_preamble_are_refused_at_once() -> None:
    # Text before the BEGIN line (openssl pkcs12 writes "Bag Attributes"):
    # cryptography still reads the PEM, so the cost check must too.
    data = b"Bag Attributes\n    localKeyID: 01\n" + _pem(_encrypted(4_000_000_000))
    started = time.monotonic()
    with pytest.raises(InvalidArgumentError, match="4,000,000,000 key derivation iterations"):
        pem.load_private_key(data, passphrase="pw")
    assert time.monotonic() - started < 5
