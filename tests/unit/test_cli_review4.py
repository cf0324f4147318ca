"""Fourth review of the CLI: regression tests for what it found."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from _cli_env import cli_env, run
from keymgmt import KeyManager
from keymgmt.cli import main
from keymgmt.cli._main import cli

PASSPHRASE = "cli review passphrase"
_REMOTE_ENV = ("KEYMGMT_SERVER", "KEYMGMT_SERVER_CA", "KEYMGMT_CLIENT_CERT", "KEYMGMT_CLIENT_KEY")


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cli_env(monkeypatch, tmp_path, PASSPHRASE)
    for name in (*_REMOTE_ENV, "KEYMGMT_KEY_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)


def _commands(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, (*path, name))


_EVERY_COMMAND = list(_commands(cli))


@pytest.mark.parametrize("path", _EVERY_COMMAND, ids=lambda p: " ".join(p) or "keymgmt")
def test_every_command_help_works_with_nothing_configured(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, *path, "--help")
    assert (code, err) == (0, "")
    assert out.startswith(f"Usage: keymgmt {' '.join(path)}".rstrip())


@pytest.mark.parametrize("path", _EVERY_COMMAND, ids=lambda p: " ".join(p) or "keymgmt")
def test_no_help_text_shows_docstring_markup(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...]
) -> None:
    out = run(capsys, *path, "--help")[1]
    assert "``" not in out
    assert ":class:" not in out
    assert ":meth:" not in out


def test_remote_subcommand_help_does_not_need_the_connection_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "remote", "encrypt", "--help")
    assert (code, err) == (0, "")
    assert "Encrypt stdin (or --in) under the --key key on the service." in out


def test_remote_without_connection_options_names_each_missing_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ca = tmp_path / "root.pem"
    ca.write_text("not used")
    code, out, err = run(capsys, "remote", "--ca", str(ca), "whoami")
    assert code == 2
    assert out == ""
    assert err == (
        "error: keymgmt remote needs --server (KEYMGMT_SERVER: the service's https:// URL); "
        "--cert (KEYMGMT_CLIENT_CERT: the client certificate); --key (KEYMGMT_CLIENT_KEY: "
        "the client certificate's private key), given before the command "
        "(see 'keymgmt remote --help')\n"
    )


def test_remote_help_names_the_environment_variables(capsys: pytest.CaptureFixture[str]) -> None:
    out = " ".join(run(capsys, "remote", "--help")[1].split())
    for name in (*_REMOTE_ENV, "KEYMGMT_KEY_PASSPHRASE"):
        assert name in out


def test_serve_refuses_a_handshake_timeout_of_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "serve", "--handshake-timeout", "0")
    assert code == 2
    assert out == ""
    assert "--handshake-timeout" in err


# -- ca issue never destroys a private key file unasked ---------------------------------


@pytest.fixture
def pki_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A store with a root CA and an intermediate ``issuing``; key files' passphrase set."""
    store = tmp_path / "pki.db"
    monkeypatch.setenv("KEYMGMT_STORE", str(store))
    monkeypatch.setenv("KEYMGMT_KEY_PASSPHRASE", "key file passphrase")
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
        "--out",
        "app.pem",
        *extra,
    )


@pytest.mark.parametrize("option", ["--key-out", "--p12-out"])
def test_ca_issue_refuses_an_existing_key_file_before_issuing(
    capsys: pytest.CaptureFixture[str], pki_store: Path, tmp_path: Path, option: str
) -> None:
    existing = tmp_path / "app.key"
    existing.write_bytes(b"the only copy of the key of a certificate in use")
    before = _issued_count(pki_store)
    code, out, err = _issue(capsys, option, str(existing))
    assert code == 1
    assert out == ""
    assert err == (
        f"error: {existing} exists (it may be the only copy of a private key); "
        "give --overwrite to replace it\n"
    )
    assert existing.read_bytes() == b"the only copy of the key of a certificate in use"
    assert _issued_count(pki_store) == before  # no certificate for a key never written


def test_ca_issue_does_not_write_a_key_through_a_symlink(
    capsys: pytest.CaptureFixture[str], pki_store: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere.txt"
    link = tmp_path / "app.key"
    link.symlink_to(elsewhere)  # dangling: the key would be created there
    code, _, err = _issue(capsys, "--key-out", str(link))
    assert code == 1
    assert "exists" in err
    assert not elsewhere.exists()


def test_ca_issue_overwrite_replaces_the_key_file_whole_and_owner_only(
    capsys: pytest.CaptureFixture[str], pki_store: Path, tmp_path: Path
) -> None:
    existing = tmp_path / "app.key"
    existing.write_bytes(b"old")
    existing.chmod(0o644)
    code, _, err = _issue(capsys, "--key-out", str(existing), "--overwrite")
    assert (code, err) == (0, "")
    assert existing.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".app.key")) == []


def test_ca_issue_overwrite_replaces_a_symlink_not_its_target(
    capsys: pytest.CaptureFixture[str], pki_store: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target.txt"
    target.write_bytes(b"not a key")
    link = tmp_path / "app.key"
    link.symlink_to(target)
    assert _issue(capsys, "--key-out", str(link), "--overwrite")[0] == 0
    assert not link.is_symlink()
    assert target.read_bytes() == b"not a key"


def test_ca_issue_writes_a_new_key_file_owner_only(
    capsys: pytest.CaptureFixture[str], pki_store: Path, tmp_path: Path
) -> None:
    key = tmp_path / "new.key"
    assert _issue(capsys, "--key-out", str(key))[0] == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_serve_without_tls_material_is_one_usage_error_line(tmp_path: Path) -> None:
    # A process of its own: in-process, pytest's log handler would swallow a
    # warning logged before the usage error.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYMGMT_")}
    program = "import sys; from keymgmt.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", program, "--store", str(tmp_path / "none.db"), "serve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: give either --ca NAME or --tls-cert and --tls-key (see 'keymgmt serve --help')\n"
    )


# -- demo --keep says how to open what it kept -----------------------------------------


def test_demo_keep_says_how_to_open_the_kept_store(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "demo", "--keep", "kept dir")
    assert code == 0
    told = out.splitlines()[-1].strip()
    assert told == (
        "KEYMGMT_PASSPHRASE='correct horse battery staple' keymgmt --store "
        "'kept dir/demo.db' key list"
    )
    monkeypatch.setenv("KEYMGMT_PASSPHRASE", "correct horse battery staple")
    code, out, err = run(capsys, "--store", "kept dir/demo.db", "key", "list")
    assert (code, err) == (0, "")
    assert "payments" in out


def test_kdc_compromise_text_lists_data_key_counts_without_python_syntax(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = str(tmp_path / "kdc.db")
    assert run(capsys, "--store", store, "init")[0] == 0
    assert run(capsys, "--store", store, "key", "create", "payments")[0] == 0
    code, out, err = run(capsys, "--store", store, "kdc", "compromise", "--key", "payments#1")
    assert (code, err) == (0, "")
    assert "  data keys: payments#1: 0\n" in out
    assert "{" not in out
