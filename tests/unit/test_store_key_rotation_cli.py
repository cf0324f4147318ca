"""``keymgmt store status|rotate|reseal|retire``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _cli_env import cli_env, run
from keymgmt import KeyManager
from keymgmt.keyring import KdfProfile

PASSPHRASE = "cli store passphrase"


@pytest.fixture
def store(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    path = tmp_path / "cli.db"
    cli_env(monkeypatch, tmp_path, PASSPHRASE, path)
    assert run(capsys, "init")[0] == 0
    assert run(capsys, "key", "create", "payments")[0] == 0
    return path


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    code, out, err = run(capsys, "--format", "json", *args)
    assert (code, err) == (0, "")
    return json.loads(out)


def test_status_lists_the_current_key_and_its_records(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    data = _json(capsys, "store", "status")
    assert isinstance(data, dict)
    assert data["current"] == 1
    assert data["stale_records"] == 0
    assert [k["key_id"] for k in data["keys"]] == [1]
    assert data["keys"][0]["current"] is True


def test_status_as_text_is_a_table(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    code, out, _ = run(capsys, "store", "status")
    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "CURRENT", "HELD", "RECORDS"]
    assert "0 record(s) under an older store key" in out


def test_rotate_reseal_retire_round_trip(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    assert _json(capsys, "store", "rotate") == {"key_id": 2, "previous": 1}
    status = _json(capsys, "store", "status")
    assert isinstance(status, dict)
    assert status["stale_records"] > 0
    report = _json(capsys, "store", "reseal", "--batch-size", "1")
    assert isinstance(report, dict)
    assert report["key_id"] == 2
    assert report["resealed"] == report["batches"] > 0
    assert report["remaining"] == 0
    assert _json(capsys, "store", "retire", "1") == {"retired": 1}
    status = _json(capsys, "store", "status")
    assert isinstance(status, dict)
    assert [k["key_id"] for k in status["keys"]] == [2]
    assert run(capsys, "key", "show", "payments")[0] == 0  # still unseals


def test_retire_while_records_use_the_key_is_one_error_line(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    assert run(capsys, "store", "rotate")[0] == 0
    code, out, err = run(capsys, "store", "retire", "1")
    assert (code, out) == (1, "")
    assert err.startswith("error: store key 1 still seals ")
    assert err.count("\n") == 1


def test_retire_of_the_current_key_is_refused(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    code, _, err = run(capsys, "store", "retire", "1")
    assert code == 1
    assert "store key 1 is the current store key" in err


def test_retire_needs_a_positive_id(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    code, _, err = run(capsys, "store", "retire", "0")
    assert code == 2
    assert "store retire --help" in err


@pytest.mark.parametrize("command", [["rotate"], ["reseal"], ["retire", "1"]])
def test_the_wrong_passphrase_changes_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    store: Path,
    command: list[str],
) -> None:
    before = store.read_bytes()
    monkeypatch.setenv("KEYMGMT_PASSPHRASE", "not it")
    code, _, err = run(capsys, "store", *command)
    assert code == 1
    assert err.startswith("error: the master key does not open this store")
    assert store.read_bytes() == before
    with KeyManager.open(
        store, passphrase=PASSPHRASE, kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
    ) as km:
        assert km.store_key_status().current == 1
