"""``keymgmt key ...``, ``keymgmt encrypt`` and ``keymgmt decrypt`` end to end on SQLite."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

from keymgmt import KeyManager
from keymgmt.cli import main
from keymgmt.hazmat import export_raw_key

PASSPHRASE = "cli test passphrase"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store.db"
    monkeypatch.setenv("KEYMGMT_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("KEYMGMT_TEST_KDF", "insecure")
    monkeypatch.setenv("KEYMGMT_STORE", str(path))
    assert main(["init"]) == 0
    return path


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    capsys.readouterr()
    assert main(["--format", "json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_create_show_and_list(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    created = _json(capsys, "key", "create", "payments", "--algorithm", "chacha20-poly1305")
    assert (created["name"], created["algorithm"], created["primary_version"]) == (
        "payments",
        "chacha20-poly1305",
        1,
    )
    shown = _json(capsys, "key", "show", "payments")
    assert shown["versions"][0]["state"] == "active"
    assert [k["name"] for k in _json(capsys, "key", "list")] == ["payments"]


def test_encrypt_and_decrypt_files_with_a_context(store: Path, tmp_path: Path) -> None:
    assert main(["key", "create", "k"]) == 0
    plain, sealed, opened = tmp_path / "p", tmp_path / "c", tmp_path / "o"
    plain.write_bytes(b"\x00binary\xff payload")
    ctx = ["--context", "tenant=acme", "--context", "file=p"]
    assert main(["encrypt", "--key", "k", *ctx, "--in", str(plain), "--out", str(sealed)]) == 0
    assert main(["decrypt", *ctx, "--in", str(sealed), "--out", str(opened)]) == 0
    assert opened.read_bytes() == plain.read_bytes()
    assert main(["decrypt", "--context", "tenant=acme", "--in", str(sealed)]) == 1


def test_a_malformed_context_is_refused(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["key", "create", "k"]) == 0
    assert main(["encrypt", "--key", "k", "--context", "novalue"]) == 1
    assert "KEY=VALUE" in capsys.readouterr().err


def test_rotate_revoke_and_destroy(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["key", "create", "k"]) == 0
    assert _json(capsys, "key", "rotate", "k")["version"] == 2
    revoked = _json(capsys, "key", "revoke", "k", "--version", "1", "--reason", "key-compromise")
    assert revoked["versions"][0]["state"] == "compromised"
    destroyed = _json(capsys, "key", "destroy", "k", "--version", "1", "--grace-days", "3")
    assert destroyed["versions"][0]["destroy_at"] is not None
    cancelled = _json(capsys, "key", "destroy", "k", "--version", "1", "--cancel")
    assert cancelled["versions"][0]["destroy_at"] is None


def test_export_under_a_kek_file(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["key", "create", "k"]) == 0
    kek = tmp_path / "kek"
    kek.write_bytes(bytes(range(32)))
    exported = _json(capsys, "key", "export", "k", "--kek-file", str(kek))
    assert exported["method"] == "rfc5649"
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        raw = export_raw_key(km, "k", allow_plaintext=True).reveal()
    assert aes_key_unwrap_with_padding(kek.read_bytes(), base64.b64decode(exported["data"])) == raw


def test_export_to_an_x25519_recipient(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["key", "create", "k"]) == 0
    recipient = x25519.X25519PrivateKey.generate()
    pem = tmp_path / "recipient.pem"
    pem.write_bytes(
        recipient.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    out = tmp_path / "export.json"
    assert main(["key", "export", "k", "--recipient", str(pem), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["method"] == "hpke-x25519"


def test_export_needs_exactly_one_destination(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["key", "create", "k"]) == 0
    assert main(["key", "export", "k"]) == 2


def test_import_a_seed_fernet_key_file(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = Fernet.generate_key()
    path = tmp_path / "symmetric.key"
    path.write_bytes(key)
    imported = _json(capsys, "key", "import", "seed", "--fernet-file", str(path))
    assert (imported["algorithm"], imported["imported"]) == ("fernet", True)


def test_an_unknown_key_is_a_one_line_error(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["key", "show", "nobody"]) == 1
    assert "error: no key named 'nobody'" in capsys.readouterr().err
