"""Erased secrets leave no old copy in the SQLite files while the store is open.

A destroyed key version's record is rewritten without its material, and a
master-key change rewrites the keyring record; SQLite keeps the replaced
page images in its write-ahead log until a checkpoint, and freed content in
free pages unless ``secure_delete`` is on. The store empties the WAL after
such a commit and zeroes freed content, so the old sealed records are gone
from ``store.db`` and ``store.db-wal`` at once, not at the next close.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from keymgmt import KeyManager
from keymgmt.keyring import KdfProfile, Passphrase
from keymgmt.keyring._keyring import KEYRING_RECORD
from keymgmt.storage import SQLiteBackend
from keymgmt.testing import FakeClock

_CHEAP = KdfProfile.TESTING_ONLY_INSECURE


@pytest.fixture
def opened(tmp_path: Path, clock: FakeClock) -> Iterator[KeyManager]:
    with KeyManager.open(
        tmp_path / "store.db", passphrase="pw", kdf_profile=_CHEAP, clock=clock
    ) as km:
        yield km


def _files_holding(directory: Path, needle: bytes) -> list[str]:
    return sorted(f.name for f in directory.iterdir() if needle in f.read_bytes())


def _sealed(km: KeyManager, kind: str, name: str) -> bytes:
    record = km._context.store.backend.get(kind, name)
    assert record is not None
    return record.data


def _destroy_version_one(km: KeyManager, clock: FakeClock) -> bytes:
    km.keys.create("k")
    km.keys.rotate("k")
    old = _sealed(km, "keyver", "k#1")
    km.keys.destroy("k", 1, grace=_dt.timedelta(0))
    clock.advance(_dt.timedelta(seconds=1))
    assert km.keys.get("k").versions[0].state.is_destroyed
    return old


def test_a_destroyed_versions_old_sealed_record_is_gone_while_the_store_is_open(
    opened: KeyManager, clock: FakeClock, tmp_path: Path
) -> None:
    old = _destroy_version_one(opened, clock)
    assert _files_holding(tmp_path, old[8:48]) == []


def test_without_emptying_the_wal_the_old_record_would_still_be_there(
    opened: KeyManager, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: what the test above guards against does happen.
    monkeypatch.setattr(SQLiteBackend, "erase_residue", lambda self: False)
    old = _destroy_version_one(opened, clock)
    assert _files_holding(tmp_path, old[8:48]) == ["store.db-wal"]


def test_the_old_keyring_record_is_gone_after_a_master_key_change(
    opened: KeyManager, tmp_path: Path
) -> None:
    old = _sealed(opened, *KEYRING_RECORD)
    # Its longest value: the store key wrapped under the old master key.
    wrapped = max(_strings(json.loads(old)), key=len).encode()
    assert len(wrapped) >= 40
    opened.change_master_key(Passphrase("new", profile=_CHEAP))
    assert wrapped not in _sealed(opened, *KEYRING_RECORD)
    assert _files_holding(tmp_path, wrapped) == []


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_connections_zero_freed_content(opened: KeyManager) -> None:
    backend = opened._context.store.backend
    assert isinstance(backend, SQLiteBackend)
    assert backend._conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
