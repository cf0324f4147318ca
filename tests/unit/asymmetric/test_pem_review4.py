"""Fourth review of keymgmt.pem: reading a key file is bounded and typed."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from keymgmt import pem
from keymgmt._der import der_tlv
from keymgmt.errors import DecryptionError, InvalidArgumentError, MalformedInputError


def test_load_private_key_file_refuses_a_file_larger_than_any_key_without_reading_it_all(
    tmp_path: Path,
) -> None:
    huge = tmp_path / "huge.pem"
    with huge.open("wb") as handle:
        handle.truncate(pem.MAX_KEY_FILE_SIZE + 1)  # sparse: costs no disk
    with pytest.raises(MalformedInputError, match=r"larger than 1 MiB: not a private key file"):
        pem.load_private_key_file(huge)


def test_load_private_key_file_of_a_non_path_is_a_typed_error() -> None:
    with pytest.raises(InvalidArgumentError, match="a str or path, not int"):
        pem.load_private_key_file(5)  # type: ignore[arg-type]


# -- PBES1 (PKCS #5 v1.5) key files are bounded too --------------------------------------

_PBES1_MD5_DES = bytes.fromhex("2a864886f70d010503")  # pbeWithMD5AndDES-CBC


def _pbes1(iterations: int) -> bytes:
    """An EncryptedPrivateKeyInfo under PBES1 (salt, iterations): cryptography reads it."""
    count = der_tlv(0x02, iterations.to_bytes((iterations.bit_length() + 8) // 8, "big"))
    params = der_tlv(0x30, der_tlv(0x04, b"saltsalt") + count)
    algorithm = der_tlv(0x30, der_tlv(0x06, _PBES1_MD5_DES) + params)
    return der_tlv(0x30, algorithm + der_tlv(0x04, bytes(32)))


def test_the_kdf_cost_check_reads_a_pbes1_iteration_count() -> None:
    with pytest.raises(InvalidArgumentError, match="2,000,000,000 key derivation iterations"):
        pem._check_kdf_cost(_pbes1(2_000_000_000), is_pem=False)


def test_a_pbes1_key_file_asking_for_billions_of_iterations_is_refused_at_once() -> None:
    with pytest.raises(InvalidArgumentError, match="refused before deriving"):
        pem.load_private_key(_pbes1(2_000_000_000), passphrase="pw")


def test_a_pbes1_key_file_with_a_sane_count_is_left_to_the_loader() -> None:
    with pytest.raises(DecryptionError):  # junk ciphertext: the passphrase "is wrong"
        pem.load_private_key(_pbes1(2048), passphrase="pw")


# -- a PEM header inside the block does not hide the iteration count ------------------------


def _pem_with_a_header(der: bytes) -> bytes:
    body = base64.encodebytes(der)
    return (
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        b"Comment: cryptography reads past RFC 1421 headers\n\n"
        + body
        + b"-----END ENCRYPTED PRIVATE KEY-----\n"
    )


def test_the_kdf_cost_check_reads_past_a_pem_header_line() -> None:
    with pytest.raises(InvalidArgumentError, match="2,000,000,000 key derivation iterations"):
        pem._check_kdf_cost(_pem_with_a_header(_pbes1(2_000_000_000)), is_pem=True)


def test_a_pem_header_line_is_still_read_by_the_loader() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    algorithm, loaded = pem.load_private_key(_pem_with_a_header(der), passphrase="pw")
    assert algorithm.value == "ed25519"
    assert loaded.public_key() == key.public_key()  # type: ignore[union-attr]


# -- the seed's key files: a non-path is a typed error, before any key is made -----------


def test_generate_rsa_key_files_with_a_non_path_is_a_typed_error() -> None:
    with pytest.raises(InvalidArgumentError, match="a str or path, not int"):
        pem.generate_rsa_key_files(5, passphrase="file passphrase")  # type: ignore[arg-type]


def test_generate_rsa_key_files_unencrypted_with_a_non_path_is_a_typed_error() -> None:
    from keymgmt.hazmat import generate_rsa_key_files_unencrypted

    with pytest.raises(InvalidArgumentError, match="a str or path, not NoneType"):
        generate_rsa_key_files_unencrypted("private.pem", None, allow_plaintext=True)  # type: ignore[arg-type]


def test_writing_a_key_file_that_reading_would_refuse_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    with pytest.raises(InvalidArgumentError, match="at most 10000000"):
        pem.encrypt_private_key_pem(
            ed25519.Ed25519PrivateKey.generate(),
            "file passphrase",
            iterations=pem.MAX_KDF_ITERATIONS + 1,
        )
