"""Third review of the CLI: regression tests for what it found."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from _cli_env import cli_env, run
from keymgmt import KeyManager
from keymgmt.keyring import KdfProfile
from keymgmt.keys import parse_header

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


def test_rewrap_through_a_symlink_rewraps_the_file_it_points_to(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "s.db"
    assert run(capsys, "--store", str(store), "init")[0] == 0
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        km.keys.create("files")
        sealed = km.encrypt("files", b"payroll")
        km.keys.rotate("files")
    data = tmp_path / "data"
    data.mkdir()
    target = data / "payroll.bin"
    target.write_bytes(sealed)
    link = tmp_path / "payroll-link.bin"
    link.symlink_to(target)
    code, _, err = run(capsys, "--store", str(store), "rewrap", str(link))
    assert code == 0, err
    assert link.is_symlink()  # still the link the user made
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        # The file itself moved to version 2: retiring version 1 loses nothing.
        assert parse_header(target.read_bytes()).version == 2
        assert km.decrypt(target.read_bytes()) == b"payroll"


def test_decrypt_out_creates_the_plaintext_file_readable_by_its_owner_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "s.db"
    assert run(capsys, "--store", str(store), "init")[0] == 0
    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        km.keys.create("files")
        (tmp_path / "sealed.bin").write_bytes(km.encrypt("files", b"salary: 1"))
    plain = tmp_path / "plain.txt"
    umask = os.umask(0o022)  # the usual one: files readable by everybody
    try:
        code, _, err = run(
            capsys, "--store", str(store), "decrypt", "--in", "sealed.bin", "--out", str(plain)
        )
    finally:
        os.umask(umask)
    assert code == 0, err
    assert plain.read_bytes() == b"salary: 1"
    assert stat.S_IMODE(plain.stat().st_mode) == 0o600
