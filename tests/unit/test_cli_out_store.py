"""``--out`` never names the store the command has open (nor its WAL)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _cli_env import cli_env, run


@pytest.fixture
def store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    cli_env(monkeypatch, tmp_path, "pw")
    path = tmp_path / "keys.db"
    assert run(capsys, "--store", str(path), "init")[0] == 0
    assert run(capsys, "--store", str(path), "key", "create", "payments")[0] == 0
    assert run(capsys, "--store", str(path), "ca", "create-root", "root")[0] == 0
    return path


@pytest.mark.parametrize("suffix", ["", "-wal"])
def test_encrypt_refuses_to_write_over_the_store(
    store: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    (store.parent / "in.txt").write_bytes(b"hello")
    before = store.read_bytes()
    code, _, err = run(
        capsys,
        "--store",
        str(store),
        "encrypt",
        "payments",
        "--in",
        "in.txt",
        "--out",
        f"{store}{suffix}",
    )
    assert code == 2
    assert "is the store's own file" in err
    assert store.read_bytes() == before


def test_a_relative_spelling_or_a_hard_link_of_the_store_is_refused(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.link(store, store.parent / "alias.db")
    for target in ("./keys.db", "alias.db"):
        code, _, err = run(capsys, "--store", str(store), "ca", "export", "root", "--out", target)
        assert code == 2, target
        assert "is the store's own file" in err


def test_another_file_is_written(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "--store", str(store), "ca", "export", "root", "--out", "root.pem")
    assert code == 0
    assert (store.parent / "root.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
