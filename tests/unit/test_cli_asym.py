"""``keymgmt sign``, ``keymgmt verify`` and ``keymgmt key public``."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import load_der_public_key

from _cli_env import cli_env, run
from keymgmt import KeyManager
from keymgmt.public import PublicKey

PASSPHRASE = "cli asym passphrase"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cli_env(monkeypatch, tmp_path, PASSPHRASE)


@pytest.fixture
def store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    assert run(capsys, "--store", str(path), "init")[0] == 0
    code, _, err = run(
        capsys, "--store", str(path), "key", "create", "signer", "--algorithm", "ed25519"
    )
    assert code == 0, err
    (tmp_path / "msg").write_bytes(b"release 1.0")
    return path


def test_sign_out_then_verify_succeeds(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    code, out, _ = run(
        capsys, "--store", str(store), "sign", "--key", "signer", "--in", "msg", "--out", "sig"
    )
    assert (code, out) == (0, "wrote sig (ed25519, signer version 1)\n")
    code, out, _ = run(
        capsys,
        "--store", str(store), "verify", "--key", "signer", "--in", "msg",
        "--signature", "sig",
    )  # fmt: skip
    assert (code, out) == (0, "signer: signature valid\n")


def test_verify_of_a_changed_message_exits_1(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    run(capsys, "--store", str(store), "sign", "--key", "signer", "--in", "msg", "--out", "sig")
    (tmp_path / "other").write_bytes(b"release 1.1")
    code, out, _ = run(
        capsys,
        "--store", str(store), "verify", "--key", "signer", "--in", "other",
        "--signature", "sig",
    )  # fmt: skip
    assert (code, out) == (1, "signer: signature INVALID\n")


def test_sign_prints_base64_that_verify_accepts(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    code, out, _ = run(capsys, "--store", str(store), "sign", "--key", "signer", "--in", "msg")
    assert code == 0
    code, out, _ = run(
        capsys,
        "--store", str(store), "verify", "--key", "signer", "--in", "msg",
        "--signature-b64", out.strip(),
    )  # fmt: skip
    assert code == 0


def test_sign_json_gives_a_detached_signature_plain_cryptography_verifies(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    code, out, _ = run(
        capsys, "--store", str(store), "--format", "json", "sign", "--key", "signer", "--in", "msg"
    )
    data = json.loads(out)
    assert (code, data["key"], data["version"], data["algorithm"]) == (0, "signer", 1, "ed25519")
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        public = km.public_key("signer").key
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(base64.b64decode(data["detached"]), b"release 1.0")


def test_verify_needs_exactly_one_signature_source(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    code, _, err = run(capsys, "--store", str(store), "verify", "--key", "signer", "--in", "msg")
    assert code == 2
    assert "give exactly one of --signature or --signature-b64" in err


def test_verify_refuses_non_base64_with_one_error_line(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    code, _, err = run(
        capsys,
        "--store", str(store), "verify", "--key", "signer", "--in", "msg",
        "--signature-b64", "@@",
    )  # fmt: skip
    assert (code, err) == (1, "error: --signature-b64 is not base64\n")


def test_key_public_pem_carries_the_identity(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    code, out, _ = run(capsys, "--store", str(store), "key", "public", "signer")
    assert code == 0
    key = PublicKey.from_pem(out)
    assert (key.key_name, key.version) == ("signer", 1)


def test_key_public_jwk_is_an_okp_jwk(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    code, out, _ = run(capsys, "--store", str(store), "key", "public", "signer", "--format", "jwk")
    jwk = json.loads(out)
    assert (code, jwk["kty"], jwk["kid"]) == (0, "OKP", "signer#1")


def test_key_public_der_to_a_file_loads_in_cryptography(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    code, out, _ = run(
        capsys,
        "--store",
        str(store),
        "key",
        "public",
        "signer",
        "--format",
        "der",
        "--out",
        "pub.der",
    )
    assert (code, out) == (0, "wrote pub.der (der, signer version 1)\n")
    assert isinstance(
        load_der_public_key((tmp_path / "pub.der").read_bytes()), ed25519.Ed25519PublicKey
    )


def test_key_public_of_a_symmetric_key_is_one_error_line(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    run(capsys, "--store", str(store), "key", "create", "sym")
    code, out, err = run(capsys, "--store", str(store), "key", "public", "sym")
    assert (code, out) == (1, "")
    assert err.startswith("error: ")
    assert err.count("\n") == 1


def test_sign_with_an_unknown_key_is_one_error_line(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    code, _, err = run(capsys, "--store", str(store), "sign", "--key", "nope", "--in", "msg")
    assert (code, err) == (1, "error: no key named 'nope'\n")


def _encrypted_pem(tmp_path: Path, passphrase: bytes) -> tuple[Path, ed25519.Ed25519PrivateKey]:
    from cryptography.hazmat.primitives import serialization

    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    return path, key


def test_import_of_an_encrypted_private_key_reads_the_passphrase_file(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    pem, key = _encrypted_pem(tmp_path, b"import me")
    (tmp_path / "pass").write_text("import me\n")
    code, _, err = run(
        capsys, "--store", str(store), "key", "import", "imported",
        "--private-key", str(pem), "--passphrase-file", str(tmp_path / "pass"),
    )  # fmt: skip
    assert code == 0, err
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        signature = km.sign("imported", b"m")
        assert km.public_key("imported").key == key.public_key()
        km.verify("imported", b"m", signature)


def test_import_of_an_encrypted_private_key_without_a_passphrase_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    pem, _ = _encrypted_pem(tmp_path, b"import me")
    code, out, err = run(
        capsys, "--store", str(store), "key", "import", "imported", "--private-key", str(pem)
    )
    assert (code, out) == (1, "")
    assert "--passphrase-file or KEYMGMT_KEY_PASSPHRASE" in err
    assert err.count("\n") == 1
