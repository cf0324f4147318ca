"""Seed-compatible key files: encrypted private keys, 0600, import of PEM/DER."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keymgmt.algorithms import Algorithm
from keymgmt.errors import (
    AlreadyExistsError,
    DecryptionError,
    InvalidArgumentError,
    MalformedInputError,
    UnsupportedAlgorithmError,
)
from keymgmt.hazmat._asymmetric import (
    private_key_pem_unencrypted,
    write_private_key_pem_unencrypted,
)
from keymgmt.keys import _asymmetric as asym
from keymgmt.pem import (
    encrypt_private_key_pem,
    generate_rsa_key_files,
    load_private_key,
    load_private_key_file,
    write_private_key_pem,
)

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="session")
def rsa_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, rsa.RSAPrivateKey]:
    """The seed's two files, written once (RSA generation and PBKDF2 are slow)."""
    directory = tmp_path_factory.mktemp("seed")
    private, public = directory / "private_key.pem", directory / "public_key.pem"
    key = generate_rsa_key_files(private, public, passphrase=PASSPHRASE)
    return private, public, key


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_seed_private_key_file_is_encrypted_and_0600(rsa_files: tuple) -> None:
    private, _, _ = rsa_files
    assert _mode(private) == 0o600
    text = private.read_text()
    assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    with pytest.raises(TypeError):  # plain cryptography needs the passphrase too
        serialization.load_pem_private_key(private.read_bytes(), password=None)


def test_seed_private_key_opens_with_the_passphrase_in_plain_cryptography(
    rsa_files: tuple,
) -> None:
    private, _, key = rsa_files
    loaded = serialization.load_pem_private_key(private.read_bytes(), PASSPHRASE.encode())
    assert isinstance(loaded, rsa.RSAPrivateKey)
    assert loaded.private_numbers() == key.private_numbers()


def test_seed_public_key_file_is_spki_pem(rsa_files: tuple) -> None:
    _, public, key = rsa_files
    assert _mode(public) == 0o644
    loaded = serialization.load_pem_public_key(public.read_bytes())
    assert loaded == key.public_key()


def test_encrypted_file_uses_pbkdf2_sha256_with_600k_iterations(rsa_files: tuple) -> None:
    import base64

    private, _, _ = rsa_files
    body = "".join(private.read_text().splitlines()[1:-1])
    der = base64.b64decode(body)
    assert bytes.fromhex("06092a864886f70d01050c") in der  # PBKDF2
    assert bytes.fromhex("06082a864886f70d0209") in der  # hmacWithSHA256
    assert bytes.fromhex("060960864801650304012a") in der  # aes256-CBC
    assert bytes.fromhex("02030927c0") in der  # INTEGER 600000


def test_load_private_key_file_names_the_algorithm(rsa_files: tuple) -> None:
    private, _, key = rsa_files
    algorithm, loaded = load_private_key_file(private, passphrase=PASSPHRASE)
    assert algorithm is Algorithm.RSA_2048
    assert loaded.private_numbers() == key.private_numbers()  # type: ignore[union-attr]


def test_wrong_passphrase_is_an_opaque_decryption_error(rsa_files: tuple) -> None:
    private, _, _ = rsa_files
    with pytest.raises(DecryptionError):
        load_private_key_file(private, passphrase="wrong")


def test_encrypted_key_without_passphrase_is_refused(rsa_files: tuple) -> None:
    private, _, _ = rsa_files
    with pytest.raises(InvalidArgumentError, match="encrypted: give its passphrase"):
        load_private_key_file(private)


def test_existing_files_are_not_overwritten(rsa_files: tuple) -> None:
    private, public, _ = rsa_files
    before = private.read_bytes()
    with pytest.raises(AlreadyExistsError):
        generate_rsa_key_files(private, public, passphrase=PASSPHRASE)
    assert private.read_bytes() == before


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="must not be empty"):
        generate_rsa_key_files(tmp_path / "a", tmp_path / "b", passphrase="")
    assert list(tmp_path.iterdir()) == []


def test_fewer_iterations_than_the_floor_are_refused() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(InvalidArgumentError, match="600000"):
        encrypt_private_key_pem(key, PASSPHRASE, iterations=1000)


def test_overwrite_replaces_and_keeps_0600(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_private_key_pem(
        path, ed25519.Ed25519PrivateKey.generate(), passphrase="p", overwrite=True
    )
    assert _mode(path) == 0o600
    assert load_private_key(path.read_bytes(), passphrase="p")[0] is Algorithm.ED25519
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]  # no temporary file left


@pytest.mark.parametrize(
    "encoding", [serialization.Encoding.PEM, serialization.Encoding.DER], ids=str
)
@pytest.mark.parametrize(
    "fmt",
    [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL],
    ids=str,
)
def test_unencrypted_pem_and_der_import(
    encoding: serialization.Encoding, fmt: serialization.PrivateFormat
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    data = key.private_bytes(encoding, fmt, serialization.NoEncryption())
    algorithm, loaded = load_private_key(data)
    assert algorithm is Algorithm.ECDSA_P384
    assert asym.material_from_private(loaded) == asym.private_pkcs8(key)


def test_traditional_encrypted_pem_imports() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert load_private_key(data, passphrase="pw")[0] is Algorithm.ECDSA_P256


def test_unsupported_key_type_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP521R1())
    data = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(UnsupportedAlgorithmError, match="secp521r1"):
        load_private_key(data)


def test_garbage_is_malformed_input() -> None:
    with pytest.raises(MalformedInputError):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(MalformedInputError):
        load_private_key(b"\x30\x03\x02\x01\x00")


def test_handler_check_material_takes_imported_keys_in_stored_form() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    handler = asym.AsymmetricHandler()
    assert handler.check_material(Algorithm.ED25519, pem) == asym.private_pkcs8(key)
    with pytest.raises(InvalidArgumentError, match="not x25519"):
        handler.check_material(Algorithm.X25519, pem)


# -- hazmat: plaintext only with the opt-in ------------------------------------------


def test_hazmat_plaintext_export_needs_the_opt_in() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(InvalidArgumentError, match="allow_plaintext=True"):
        private_key_pem_unencrypted(key)
    with pytest.raises(InvalidArgumentError, match="allow_plaintext=True"):
        private_key_pem_unencrypted(key, allow_plaintext=1)  # type: ignore[arg-type]


def test_hazmat_plaintext_export_with_the_opt_in_is_pkcs8_pem() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = private_key_pem_unencrypted(key, allow_plaintext=True)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_private_key(pem)[0] is Algorithm.ED25519


def test_hazmat_plaintext_file_is_still_0600(tmp_path: Path) -> None:
    path = write_private_key_pem_unencrypted(
        tmp_path / "k.pem", ed25519.Ed25519PrivateKey.generate(), allow_plaintext=True
    )
    assert _mode(path) == 0o600


def test_hazmat_writes_nothing_without_the_opt_in(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        write_private_key_pem_unencrypted(tmp_path / "k.pem", ed25519.Ed25519PrivateKey.generate())
    assert list(tmp_path.iterdir()) == []


def test_hazmat_exports_the_xwing_seed_in_its_own_pem_block() -> None:
    seed = asym.generate(Algorithm.ML_KEM_768_X25519)
    key = asym.load_private(Algorithm.ML_KEM_768_X25519, seed)
    pem = private_key_pem_unencrypted(key, allow_plaintext=True)
    assert pem.startswith(b"-----BEGIN KEYMGMT ML-KEM-768-X25519 PRIVATE KEY-----")
