"""Third review of the CLI: regression tests for what it found."""

from __future__ import annotations

from pathlib import Path

import pytest

from _cli_env import cli_env, run
from keymgmt import KeyManager
from keymgmt.keyring import KdfProfile

PASSPHRASE = "cli review passphrase"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cli_env(monkeypatch, tmp_path, PASSPHRASE)


def test_demo_keep_refuses_a_directory_holding_an_earlier_demo_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keep = tmp_path / "kept"
    keep.mkdir()
    # What an earlier `keymgmt demo --keep kept` leaves (its first keys made).
    with KeyManager.open(
        keep / "demo.db",
        passphrase="correct horse battery staple",
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
    ) as km:
        km.keys.create("payments")
    before = (keep / "demo.db").read_bytes()
    code, out, err = run(capsys, "demo", "--keep", str(keep))
    assert code == 1
    assert out == ""  # refused before any step ran
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert str(keep / "demo.db") in err
    assert (keep / "demo.db").read_bytes() == before
