"""Third review of the foundation: each test pins a bug that was found and fixed.

The store, its backends, the keyring and the audit chain; one behaviour per test.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keymgmt import KeyManager
from keymgmt._store import Store
from keymgmt.audit import AUDIT_KIND, AuditLog, entry_name
from keymgmt.errors import AuditChainError, IntegrityError
from keymgmt.keyring import KdfProfile, Keyring, RawMasterKey
from keymgmt.storage import Backend, MemoryBackend, Put
from keymgmt.storage._protocol import Record
from keymgmt.testing import FakeClock, SeededRandomness

CHEAP = KdfProfile.TESTING_ONLY_INSECURE
MASTER = bytes(range(32))


def open_km(path: Path) -> KeyManager:
    return KeyManager.open(path, passphrase="pw", kdf_profile=CHEAP)


def make_store(backend: Backend, seed: int = 1) -> Store:
    rng = SeededRandomness(seed)
    keyring = (
        Keyring.open(backend, RawMasterKey(MASTER), rng)
        if Keyring.exists(backend)
        else Keyring.initialize(backend, RawMasterKey(MASTER), rng)
    )
    return Store(
        backend=backend,
        keyring=keyring,
        clock=FakeClock(),
        randomness=rng,
        consistency_interval=0,
    )


def edit_row(path: Path, kind: str, name: str, change: Callable[[bytes], bytes]) -> None:
    """Edit one stored value by hand, as someone with the file could."""
    conn = sqlite3.connect(path)
    try:
        (data,) = conn.execute(
            "SELECT data FROM records WHERE kind = ? AND name = ?", (kind, name)
        ).fetchone()
        conn.execute(
            "UPDATE records SET data = ? WHERE kind = ? AND name = ?", (change(data), kind, name)
        )
        conn.commit()
    finally:
        conn.close()


# -- the audit chain: verify() beside a concurrent writer -------------------------------


class _AppendDuringList:
    """A backend that lets another writer append while the audit log is being listed."""

    def __init__(self, inner: Backend, append: Callable[[], None]) -> None:
        self._inner = inner
        self._append = append
        self.fired = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def list(self, kind: str, *, prefix: str = "", after_seq: int = 0) -> list[Record]:
        if kind == AUDIT_KIND and not self.fired:
            self.fired = True
            self._append()
        return self._inner.list(kind, prefix=prefix, after_seq=after_seq)


@pytest.mark.parametrize("appends", [1, 3])
def test_verify_accepts_entries_another_writer_appends_while_it_reads(appends: int) -> None:
    inner = MemoryBackend()
    writer = make_store(inner)
    writer.audit("op", "before")

    def append() -> None:  # another process, committing between head read and listing
        for i in range(appends):
            writer.audit("op", f"during{i}")

    reader_backend = _AppendDuringList(inner, append)
    reader = make_store(reader_backend)  # type: ignore[arg-type]
    report = AuditLog(reader).verify()
    assert reader_backend.fired
    assert report.entries == 1 + appends


def test_verify_still_finds_an_entry_appended_outside_keymgmt_when_nobody_writes() -> None:
    store = make_store(MemoryBackend())
    store.audit("op", "one")
    stored = json.loads(store.backend.get(AUDIT_KIND, entry_name(1)).data)  # type: ignore[union-attr]
    store.backend.commit([Put(AUDIT_KIND, entry_name(2), json.dumps(stored).encode(), 0)])
    with pytest.raises(AuditChainError) as info:
        AuditLog(store).verify()
    assert info.value.position == 2


def test_verify_on_sqlite_beside_another_manager_appending_is_not_a_tamper_alarm(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    with open_km(path) as first, open_km(path) as second:
        first.keys.create("k1")
        backend = first._store.backend
        racing = _AppendDuringList(backend, lambda: second.keys.create("k2"))
        first._store.backend = racing  # type: ignore[assignment]
        try:
            report = first.audit.verify()
        finally:
            first._store.backend = backend
        assert racing.fired
        assert report.entries == second.audit.verify().entries


# -- a hand-edited store: typed errors, never a foreign exception ------------------------


@pytest.fixture
def edited_store(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    with open_km(path) as km:
        km.keys.create("k1")
        km.audit.verify()
    return path


def test_a_deeply_nested_audit_entry_is_a_chain_error_not_a_recursion_error(
    edited_store: Path,
) -> None:
    edit_row(edited_store, AUDIT_KIND, entry_name(1), lambda _: b"[" * 100_000)
    with open_km(edited_store) as km, pytest.raises(AuditChainError) as info:
        km.audit.verify()
    assert info.value.position == 1


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), "\ud800"],
    ids=["nan", "infinity", "lone-surrogate"],
)
def test_an_audit_detail_edited_to_what_keymgmt_never_writes_is_a_chain_error(
    edited_store: Path, value: object
) -> None:
    def change(data: bytes) -> bytes:
        entry = json.loads(data)
        entry["details"]["x"] = value
        return json.dumps(entry).encode()

    edit_row(edited_store, AUDIT_KIND, entry_name(1), change)
    with open_km(edited_store) as km, pytest.raises(AuditChainError) as info:
        km.audit.verify()
    assert info.value.position == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda data: b"[" * 100_000,
        lambda data: data.replace(b'"iterations":1', b'"iterations":1e999'),
        lambda data: data.replace(b'"active":1', b'"active":1e999'),
        lambda data: data.replace(b'"type":"passphrase"', b'"type":"passphrase","x":NaN'),
    ],
    ids=["nested", "infinite-iterations", "infinite-active-id", "nan-parameter"],
)
def test_an_edited_keyring_record_is_an_integrity_error(
    edited_store: Path, change: Callable[[bytes], bytes]
) -> None:
    edit_row(edited_store, "meta", "keyring", change)
    before = {p.name: p.read_bytes() for p in edited_store.parent.iterdir()}
    with pytest.raises(IntegrityError):
        open_km(edited_store)
    assert {p.name: p.read_bytes() for p in edited_store.parent.iterdir()} == before
