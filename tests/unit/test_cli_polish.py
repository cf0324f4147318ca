"""CLI polish: JSON output everywhere, one-line errors, bulk rewrap, progress, completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keymgmt import KeyManager
from keymgmt.cli import main

PASSPHRASE = "cli polish passphrase"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEYMGMT_TEST_KDF", "insecure")
    monkeypatch.setenv("KEYMGMT_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("KEYMGMT_STORE", str(tmp_path / "s.db"))
    monkeypatch.delenv("KEYMGMT_KEY_FILE", raising=False)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = run(capsys, *args)
    assert code == 0, err
    return out


@pytest.fixture
def store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    ok(capsys, "init")
    return tmp_path / "s.db"


# -- rewrap -----------------------------------------------------------------------------


def _encrypt(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, text: bytes) -> Path:
    (tmp_path / f"{name}.txt").write_bytes(text)
    ok(capsys, "encrypt", "--key", "k", "--in", f"{name}.txt", "--out", f"{name}.enc")
    return tmp_path / f"{name}.enc"


def test_rewrap_moves_files_to_the_primary_version(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    ok(capsys, "key", "create", "k")
    files = [_encrypt(capsys, tmp_path, f"f{i}", f"data {i}".encode()) for i in range(3)]
    ok(capsys, "key", "rotate", "k")
    out = ok(capsys, "rewrap", *map(str, files))
    assert out == "rewrapped 3 of 3 files\n"
    ok(capsys, "key", "revoke", "k", "--version", "1", "--reason", "superseded")
    ok(capsys, "key", "destroy", "k", "--version", "1", "--grace-days", "0")
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        assert [km.decrypt(f.read_bytes()) for f in files] == [b"data 0", b"data 1", b"data 2"]


def test_rewrap_json_summary_and_keep_going(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    ok(capsys, "key", "create", "k")
    good = _encrypt(capsys, tmp_path, "good", b"fine")
    bad = tmp_path / "bad.enc"
    bad.write_bytes(b"not a ciphertext")
    code, out, _ = run(capsys, "--format", "json", "rewrap", "--keep-going", str(good), str(bad))
    summary = json.loads(out)
    assert (code, summary["rewrapped"], summary["failed"]) == (1, 1, 1)
    assert summary["files"][1] == {"file": str(bad), "ok": False, "error": "decryption failed"}


def test_rewrap_stops_at_the_first_bad_file_with_one_line(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    ok(capsys, "key", "create", "k")
    bad = tmp_path / "bad.enc"
    bad.write_bytes(b"junk")
    code, out, err = run(capsys, "rewrap", str(bad))
    assert (code, out, err) == (1, "", f"error: {bad}: decryption failed\n")
    assert bad.read_bytes() == b"junk"


# -- completion ---------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_the_shell(
    capsys: pytest.CaptureFixture[str], shell: str
) -> None:
    out = ok(capsys, "completion", shell)
    assert "_KEYMGMT_COMPLETE" in out


def test_completion_env_variable_completes_subcommands(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "_KEYMGMT_COMPLETE": "bash_complete",
        "COMP_WORDS": "keymgmt ke",
        "COMP_CWORD": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from keymgmt.cli import main; sys.exit(main())"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert "plain,key" in result.stdout.splitlines()


# -- errors -------------------------------------------------------------------------------


def test_usage_errors_are_one_line_with_a_help_pointer(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    code, out, err = run(capsys, "key", "create")
    assert (code, out) == (2, "")
    assert err == "error: Missing argument 'NAME'. (see 'keymgmt key create --help')\n"


def test_unknown_options_are_one_line(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    code, _, err = run(capsys, "key", "list", "--bogus")
    assert code == 2
    assert err == "error: No such option '--bogus'. (see 'keymgmt key list --help')\n"


def test_unexpected_exceptions_are_one_line_without_traceback(
    capsys: pytest.CaptureFixture[str], store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("keymgmt.cli._common.open_manager", broken)
    code, out, err = run(capsys, "key", "list")
    assert (code, out) == (1, "")
    assert err == (
        "error: unexpected RuntimeError: boom second line (run with --debug for the traceback)\n"
    )


def test_debug_reraises_unexpected_exceptions(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("keymgmt.cli._common.open_manager", broken)
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "key", "list"])


def test_keymgmt_errors_are_one_line(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    code, out, err = run(capsys, "key", "show", "missing")
    assert (code, out, err) == (1, "", "error: no key named 'missing'\n")
