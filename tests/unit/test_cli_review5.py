"""Fifth review of the CLI: regression tests for what it found."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from _cli_env import cli_env, run
from keymgmt import KeyManager
from keymgmt.cli import main
from keymgmt.pem import load_private_key

PASSPHRASE = "cli review passphrase"
KEY_PASSPHRASE = "key file passphrase"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cli_env(monkeypatch, tmp_path, PASSPHRASE)
    monkeypatch.delenv("KEYMGMT_KEY_PASSPHRASE", raising=False)


@pytest.fixture
def pki_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A store with a root CA and an intermediate ``issuing``; key files' passphrase set."""
    store = tmp_path / "pki.db"
    monkeypatch.setenv("KEYMGMT_STORE", str(store))
    monkeypatch.setenv("KEYMGMT_KEY_PASSPHRASE", KEY_PASSPHRASE)
    assert main(["init"]) == 0
    assert main(["ca", "create-root", "root"]) == 0
    assert main(["ca", "create-intermediate", "issuing", "--parent", "root"]) == 0
    return store


def _issued_count(store: Path) -> int:
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        return len(list(km.pki.ca("issuing").issued()))


def _issue(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    return run(
        capsys,
        "ca",
        "issue",
        "issuing",
        "--new-key",
        "--subject",
        "app-x",
        "--profile",
        "tls-client",
        *extra,
    )


@pytest.mark.parametrize(
    "options",
    [
        ("--out", "same.pem", "--key-out", "same.pem"),
        ("--out", "same.pem", "--p12-out", "same.pem"),
        ("--out", "cert.pem", "--key-out", "same.pem", "--p12-out", "./same.pem"),
        ("--out", "same.pem", "--key-out", "same.pem", "--overwrite"),
    ],
)
def test_ca_issue_refuses_one_file_for_two_outputs_before_issuing(
    capsys: pytest.CaptureFixture[str], pki_store: Path, tmp_path: Path, options: tuple[str, ...]
) -> None:
    # The certificate (or the bundle) written last would replace the only
    # copy of the new private key.
    before = _issued_count(pki_store)
    code, out, err = _issue(capsys, *options)
    assert code == 2
    assert out == ""
    assert "same.pem" in err
    assert "are one file" in err
    assert not (tmp_path / "same.pem").exists()
    assert _issued_count(pki_store) == before


def test_ca_issue_refuses_an_output_that_links_to_the_key_file(
    capsys: pytest.CaptureFixture[str], pki_store: Path, tmp_path: Path
) -> None:
    key = tmp_path / "app.key"
    key.write_bytes(b"old key")
    (tmp_path / "app.pem").symlink_to(key)
    code, _, err = _issue(capsys, "--out", "app.pem", "--key-out", "app.key", "--overwrite")
    assert code == 2
    assert "are one file" in err
    assert key.read_bytes() == b"old key"


def test_ca_issue_holds_the_key_file_name_while_issuing(
    capsys: pytest.CaptureFixture[str],
    pki_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another process creates the name between the existence check and the
    # write: before, the certificate was issued and its key then thrown away.
    from keymgmt.cli import _pki

    key_file = tmp_path / "app.key"
    planted: list[str] = []
    original = _pki.generate_key

    def racing(*args: Any, **kwargs: Any) -> Any:
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            planted.append("refused")
        else:
            os.close(fd)
            planted.append("created")
        return original(*args, **kwargs)

    monkeypatch.setattr(_pki, "generate_key", racing)
    before = _issued_count(pki_store)
    code, _, err = _issue(capsys, "--out", "app.pem", "--key-out", str(key_file))
    assert (code, err) == (0, "")
    assert planted == ["refused"]  # the name was already ours
    _, key = load_private_key(key_file.read_bytes(), passphrase=KEY_PASSPHRASE)
    assert _issued_count(pki_store) == before + 1
    cert = x509.load_pem_x509_certificate((tmp_path / "app.pem").read_bytes())
    assert cert.public_key() == key.public_key()


def test_ca_issue_that_fails_leaves_no_reserved_key_file(
    capsys: pytest.CaptureFixture[str], pki_store: Path, tmp_path: Path
) -> None:
    code, _, err = run(
        capsys,
        "ca",
        "issue",
        "no-such-ca",
        "--new-key",
        "--subject",
        "app-x",
        "--profile",
        "tls-client",
        "--key-out",
        "app.key",
        "--p12-out",
        "app.p12",
    )
    assert code != 0
    assert err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".app", "app"))) == []


def test_serve_refuses_a_tls_key_passphrase_file_without_a_tls_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # With --ca the server key lives in the store: the passphrase file was
    # silently ignored (a misconfiguration the operator never heard of).
    secret = tmp_path / "pass.txt"
    secret.write_text("server key pass\n")
    code, out, err = run(
        capsys, "serve", "--ca", "issuing", "--tls-key-passphrase-file", str(secret)
    )
    assert (code, out) == (2, "")
    assert "--tls-key-passphrase-file goes with --tls-key" in err
