"""Signatures and key files made by keymgmt, checked by the OpenSSL command line.

The public key goes to OpenSSL exactly as ``PublicKey.pem()`` writes it,
identity lines included (RFC 7468 explanatory text, which OpenSSL skips); the
signature is the detached ``raw`` part of keymgmt's enveloped signature.
The installed OpenSSL (3.0) has no ML-DSA, so ML-DSA is checked by plain
``cryptography`` in the unit tests instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from _openssl_cli import openssl
from keymgmt.algorithms import Algorithm
from keymgmt.keys import _asymmetric as asym
from keymgmt.pem import load_private_key, write_private_key_pem
from keymgmt.public import PublicKey, Signature

pytestmark = [
    pytest.mark.interop,
    pytest.mark.usefixtures("openssl_cli"),
]

MESSAGE = b"keymgmt signs this; openssl checks it\n"
KEY_ID = "0123456789abcdef"


@pytest.fixture(scope="module")
def keys() -> dict[Algorithm, asym.LoadedKeyPair]:
    """One key per OpenSSL-checkable signing algorithm (RSA once, at 2048 bits)."""
    handler = asym.AsymmetricHandler()
    return {
        a: handler.load(a, asym.generate(a))
        for a in (Algorithm.ED25519, Algorithm.ECDSA_P256, Algorithm.ECDSA_P384, Algorithm.RSA_2048)
    }


def _write(
    tmp_path: Path, pair: asym.LoadedKeyPair, data: bytes = MESSAGE
) -> tuple[Path, Path, Path]:
    """Sign ``data`` the way km.sign does; write public key, message and detached signature."""
    raw = asym.sign(pair.algorithm, pair.private, data)
    envelope = Signature(
        key_name="release-signing",
        version=1,
        key_id=bytes.fromhex(KEY_ID),
        algorithm=pair.algorithm,
        raw=raw,
    ).encode()
    public = PublicKey(
        algorithm=pair.algorithm,
        key=pair.public,
        key_name="release-signing",
        version=1,
        key_id=KEY_ID,
    )
    public.verify(data, envelope)  # our own check first
    pub, msg, sig = tmp_path / "pub.pem", tmp_path / "msg.bin", tmp_path / "sig.bin"
    pub.write_bytes(public.pem())
    msg.write_bytes(data)
    sig.write_bytes(Signature.decode(envelope).raw)
    return pub, msg, sig


def test_openssl_pkeyutl_verifies_ed25519(keys: dict, tmp_path: Path) -> None:
    pub, msg, sig = _write(tmp_path, keys[Algorithm.ED25519])
    result = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", msg,
                      "-sigfile", sig)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Signature Verified Successfully" in result.stdout


def test_openssl_pkeyutl_rejects_ed25519_over_other_data(keys: dict, tmp_path: Path) -> None:
    pub, msg, sig = _write(tmp_path, keys[Algorithm.ED25519])
    msg.write_bytes(MESSAGE + b"tampered")
    result = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", msg,
                      "-sigfile", sig)  # fmt: skip
    assert result.returncode != 0


@pytest.mark.parametrize(
    ("algorithm", "digest"),
    [(Algorithm.ECDSA_P256, "-sha256"), (Algorithm.ECDSA_P384, "-sha384")],
    ids=str,
)
def test_openssl_dgst_verifies_ecdsa(
    algorithm: Algorithm, digest: str, keys: dict, tmp_path: Path
) -> None:
    pub, msg, sig = _write(tmp_path, keys[algorithm])
    result = openssl("dgst", digest, "-verify", pub, "-signature", sig, msg)
    assert result.returncode == 0, result.stderr
    assert "Verified OK" in result.stdout


def test_openssl_pkeyutl_verifies_ecdsa_p256_over_the_digest(keys: dict, tmp_path: Path) -> None:
    pub, _, sig = _write(tmp_path, keys[Algorithm.ECDSA_P256])
    digest = tmp_path / "digest.bin"
    digest.write_bytes(hashlib.sha256(MESSAGE).digest())
    result = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", digest,
                      "-sigfile", sig)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_openssl_dgst_verifies_rsa_pss(keys: dict, tmp_path: Path) -> None:
    pub, msg, sig = _write(tmp_path, keys[Algorithm.RSA_2048])
    result = openssl("dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss",
                      "-sigopt", "rsa_pss_saltlen:32", "-sigopt", "rsa_mgf1_md:sha256",
                      "-verify", pub, "-signature", sig, msg)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Verified OK" in result.stdout


def test_openssl_dgst_rejects_rsa_pss_over_other_data(keys: dict, tmp_path: Path) -> None:
    pub, msg, sig = _write(tmp_path, keys[Algorithm.RSA_2048])
    msg.write_bytes(b"other")
    result = openssl("dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss",
                      "-verify", pub, "-signature", sig, msg)  # fmt: skip
    assert "Verification failure" in result.stdout + result.stderr


def test_openssl_made_rsa_pss_signature_verifies_detached_here(keys: dict, tmp_path: Path) -> None:
    from keymgmt.hazmat._asymmetric import write_private_key_pem_unencrypted

    pair = keys[Algorithm.RSA_2048]
    key_file = write_private_key_pem_unencrypted(
        tmp_path / "key.pem", pair.private, allow_plaintext=True
    )
    msg, sig = tmp_path / "msg.bin", tmp_path / "sig.bin"
    msg.write_bytes(MESSAGE)
    result = openssl("dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sign", key_file,
                      "-out", sig, msg)  # fmt: skip
    assert result.returncode == 0, result.stderr
    PublicKey(algorithm=Algorithm.RSA_2048, key=pair.public).verify_detached(
        MESSAGE, sig.read_bytes()
    )


def test_openssl_opens_the_encrypted_pkcs8_file(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = write_private_key_pem(tmp_path / "key.pem", key, passphrase="s3cret pass")
    result = openssl("pkey", "-in", path, "-passin", "pass:s3cret pass", "-pubout")
    assert result.returncode == 0, result.stderr
    assert PublicKey.from_pem(result.stdout).key == key.public_key()
    wrong = openssl("pkey", "-in", path, "-passin", "pass:wrong", "-pubout")
    assert wrong.returncode != 0


def test_openssl_encrypted_pkcs8_imports_here(tmp_path: Path) -> None:
    source = tmp_path / "plain.pem"
    key = ed25519.Ed25519PrivateKey.generate()
    from keymgmt.hazmat._asymmetric import write_private_key_pem_unencrypted

    write_private_key_pem_unencrypted(source, key, allow_plaintext=True)
    target = tmp_path / "enc.pem"
    result = openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", source, "-out", target,
                      "-passout", "pass:pw")  # fmt: skip
    assert result.returncode == 0, result.stderr
    algorithm, loaded = load_private_key(target.read_bytes(), passphrase="pw")
    assert algorithm is Algorithm.ED25519
    assert loaded.public_key() == key.public_key()
