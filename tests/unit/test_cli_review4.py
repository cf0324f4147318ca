"""Fourth review of the CLI: regression tests for what it found."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from _cli_env import cli_env, run
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
