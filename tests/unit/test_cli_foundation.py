"""The CLI's foundation commands: init, audit verify/tail, demo, and error handling.

Stores are created with the test-only KDF switch (KEYMGMT_TEST_KDF=insecure)
so Argon2id costs nothing here.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from _cli_env import cli_env, run
from keymgmt import KeyManager
from keymgmt.cli import main
from keymgmt.errors import AuditChainError
from keymgmt.keyring import KEYRING_RECORD, KeyFile

PASSPHRASE = "cli test passphrase"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cli_env(monkeypatch, tmp_path, PASSPHRASE)


@pytest.fixture
def store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    code, _, err = run(capsys, "--store", str(path), "init")
    assert code == 0, err
    return path


def test_init_creates_a_0600_store_with_the_env_passphrase(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "new.db"
    code, out, err = run(capsys, "--store", str(path), "init")
    assert (code, out) == (0, f"created {path}\n")
    assert err == "warning: insecure test-only KDF parameters (never for real data)\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with KeyManager.open(path, passphrase=PASSPHRASE, create=False) as km:
        assert km.audit.verify().entries == 1


def test_the_test_kdf_switch_makes_cheap_labelled_parameters(store: Path) -> None:
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        record = km._store.backend.get(*KEYRING_RECORD)
        assert record is not None
        assert json.loads(record.data)["parameters"]["profile"] == "testing-only-insecure"


def test_without_the_switch_init_uses_the_moderate_profile(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEYMGMT_TEST_KDF")
    path = tmp_path / "real.db"
    code, _, err = run(capsys, "--store", str(path), "init")
    assert (code, err) == (0, "")
    with KeyManager.open(path, passphrase=PASSPHRASE) as km:
        record = km._store.backend.get(*KEYRING_RECORD)
        assert record is not None
        parameters = json.loads(record.data)["parameters"]
        assert (parameters["iterations"], parameters["memory_kib"]) == (3, 65536)
        assert "profile" not in parameters


def test_the_hidden_option_also_selects_the_test_kdf(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEYMGMT_TEST_KDF")
    path = tmp_path / "opt.db"
    code, _, err = run(capsys, "--insecure-test-kdf", "--store", str(path), "init")
    assert code == 0
    assert "insecure test-only KDF" in err
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "insecure-test-kdf" not in out


def test_the_store_comes_from_keymgmt_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYMGMT_STORE", str(tmp_path / "env.db"))
    assert run(capsys, "init")[0] == 0
    assert (tmp_path / "env.db").exists()


def test_init_refuses_an_existing_file_and_leaves_it(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    before = store.read_bytes()
    code, out, err = run(capsys, "--store", str(store), "init")
    assert (code, out) == (1, "")
    assert err.endswith(f"error: {store} exists already; init never overwrites a store\n")
    assert store.read_bytes() == before


def test_a_passphrase_file_wins_over_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    secret_file = tmp_path / "pass.txt"
    secret_file.write_text("from the file\n")
    path = tmp_path / "pf.db"
    code, _, _ = run(capsys, "--store", str(path), "--passphrase-file", str(secret_file), "init")
    assert code == 0
    KeyManager.open(path, passphrase="from the file").close()


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "the passphrase file is empty"), (b"\xff\xfe", "the passphrase file is not UTF-8 text")],
)
def test_a_bad_passphrase_file_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, message: str
) -> None:
    secret_file = tmp_path / "pass.txt"
    secret_file.write_bytes(content)
    code, _, err = run(capsys, "--store", "x.db", "--passphrase-file", str(secret_file), "init")
    assert code == 1
    assert [line for line in err.splitlines() if line.startswith("error")] == [f"error: {message}"]
    assert not (tmp_path / "x.db").exists()


def test_no_passphrase_and_no_terminal_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KEYMGMT_PASSPHRASE")
    code, _, err = run(capsys, "--store", str(tmp_path / "n.db"), "init")
    assert code == 1
    assert "error: no passphrase: set KEYMGMT_PASSPHRASE, use --passphrase-file" in err


def test_init_with_a_key_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    key_path = tmp_path / "master.key"
    KeyFile.generate(key_path)
    path = tmp_path / "kf.db"
    code, _, err = run(capsys, "--store", str(path), "--key-file", str(key_path), "init")
    assert (code, err) == (0, "")
    code, out, _ = run(capsys, "--store", str(path), "--key-file", str(key_path), "audit", "verify")
    assert (code, out) == (0, "audit chain ok: 1 entries\n")


def test_audit_verify_reports_ok(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    assert run(capsys, "--store", str(store), "audit", "verify") == (
        0,
        "audit chain ok: 1 entries\n",
        "",
    )


def test_audit_verify_as_json(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    code, out, _ = run(capsys, "--store", str(store), "--format", "json", "audit", "verify")
    assert code == 0
    value = json.loads(out)
    assert (value["ok"], value["entries"], len(value["head"])) == (True, 1, 64)


MISSING_FIRST = "audit entry 1 is missing or out of order (found entry 2 at 00000000000000000002)"


def delete_first_audit_entry(store: Path) -> None:
    conn = sqlite3.connect(store)
    conn.execute("DELETE FROM records WHERE kind = 'audit' AND name = ?", (f"{1:020d}",))
    conn.commit()
    conn.close()


def test_a_broken_chain_exits_1_with_one_error_line(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        km.audit.verify()
        km._store.audit("op", "obj")
    delete_first_audit_entry(store)
    code, out, err = run(capsys, "--store", str(store), "audit", "verify")
    assert (code, out) == (1, "")
    assert err == f"error: {MISSING_FIRST}\n"


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    delete_first_audit_entry(store)
    with pytest.raises(AuditChainError):
        main(["--debug", "--store", str(store), "audit", "verify"])


def test_errors_have_no_traceback_in_a_real_process(store: Path) -> None:
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        km._store.audit("op", "obj")
    delete_first_audit_entry(store)
    result = subprocess.run(
        [Path(sys.executable).with_name("keymgmt"), "--store", str(store), "audit", "verify"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr == f"error: {MISSING_FIRST}\n"


def test_the_wrong_passphrase_is_one_error_line(
    capsys: pytest.CaptureFixture[str], store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYMGMT_PASSPHRASE", "wrong")
    code, _, err = run(capsys, "--store", str(store), "audit", "verify")
    assert code == 1
    assert err == (
        "error: the master key does not open this store (wrong passphrase or key file?)\n"
    )


def test_a_missing_store_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "--store", str(tmp_path / "none.db"), "audit", "verify")
    assert code == 1
    assert err.startswith("error: no store at")
    assert not (tmp_path / "none.db").exists()


def test_audit_tail_as_json(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        for i in range(3):
            km._store.audit("thing.touch", f"thing{i}", index=i)
    code, out, _ = run(
        capsys, "--store", str(store), "--format", "json", "audit", "tail", "-n", "2"
    )
    assert code == 0
    entries = json.loads(out)
    assert [(e["seq"], e["operation"], e["object"], e["details"]) for e in entries] == [
        (3, "thing.touch", "thing1", {"index": 1}),
        (4, "thing.touch", "thing2", {"index": 2}),
    ]
    assert set(entries[0]) == {"seq", "time", "actor", "operation", "object", "outcome", "details"}


def test_audit_tail_as_text(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    code, out, _ = run(capsys, "--store", str(store), "audit", "tail")
    assert code == 0
    header, first = out.splitlines()[:2]
    assert header.split() == ["SEQ", "TIME", "ACTOR", "OPERATION", "OBJECT", "OUTCOME", "DETAILS"]
    assert first.split()[:4] == ["1", first.split()[1], "local", "store.init"]


def test_help_and_usage_errors_have_their_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--help")[0] == 0
    assert run(capsys, "no-such-command")[0] == 2


def test_demo_runs_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo")
    assert code == 0
    assert "All demo steps passed." in out
    assert "hold neither the store key nor the passphrase" in out
