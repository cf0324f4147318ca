"""SQLiteBackend specifics: file mode, durability settings, schema versions, bad files.

The behaviour every backend shares is in the contract suite (tests/contract).
Here: what only a file can get wrong. Whenever opening fails, the file must be
left exactly as it was.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from keymgmt import KeyManager
from keymgmt.errors import (
    AuditChainError,
    IntegrityError,
    KeyMgmtError,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
    WrongPassphraseError,
)
from keymgmt.keyring import KdfProfile
from keymgmt.storage import ANY, Put, SQLiteBackend
from keymgmt.storage._sqlite import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

CHEAP = KdfProfile.TESTING_ONLY_INSECURE


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file of the store (db, -wal, -shm, -journal) and its bytes."""
    return {p.name: p.read_bytes() for p in sorted(path.parent.glob(path.name + "*"))}


def open_km(path: Path, passphrase: str = "pw", **kwargs: object) -> KeyManager:
    return KeyManager.open(path, passphrase=passphrase, kdf_profile=CHEAP, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def closed_store(store_path: Path) -> Path:
    """A store with a few records, closed (so the WAL is checkpointed away)."""
    with open_km(store_path) as km:
        km.audit.verify()
    return store_path


# -- creation, mode, durability ----------------------------------------------------


def test_a_new_store_file_and_its_wal_and_shm_are_mode_0600(store_path: Path) -> None:
    old = os.umask(0o022)
    try:
        backend = SQLiteBackend(store_path)
        backend.commit([Put("k", "n", b"x", ANY)])
        files = sorted(store_path.parent.glob(store_path.name + "*"))
        assert {p.name for p in files} == {"store.db", "store.db-wal", "store.db-shm"}
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        backend.close()
    finally:
        os.umask(old)


def test_every_connection_uses_wal_and_full_synchronous(store_path: Path) -> None:
    backend = SQLiteBackend(store_path)
    seen: list[tuple[str, int]] = []

    def check() -> None:
        conn = backend._conn
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
        seen.append((mode, synchronous))

    check()
    thread = threading.Thread(target=check)
    thread.start()
    thread.join()
    assert seen == [("wal", 2), ("wal", 2)]
    backend.close()


def test_the_file_carries_the_schema_version_and_application_id(closed_store: Path) -> None:
    conn = sqlite3.connect(closed_store)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()


def test_migrations_cover_every_version_in_order() -> None:
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1))


def test_an_empty_file_is_initialized_as_a_store(store_path: Path) -> None:
    store_path.touch(mode=0o600)
    backend = SQLiteBackend(store_path, create=False)
    assert backend.generation() == 0
    backend.close()


def test_two_backends_creating_one_file_at_once_both_work(store_path: Path) -> None:
    backends: list[SQLiteBackend] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            backends.append(SQLiteBackend(store_path))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    backends[0].commit([Put("k", "n", b"x", 0)])
    assert all(b.get("k", "n") is not None for b in backends)
    for b in backends:
        b.close()


# -- refusing files, leaving them untouched ---------------------------------------------


def test_a_missing_file_is_not_created_without_create(store_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match=r"no store at .*keymgmt init"):
        SQLiteBackend(store_path, create=False)
    assert not store_path.exists()


def test_keymanager_open_without_create_refuses_a_missing_file(store_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="no store at"):
        open_km(store_path, create=False)
    assert list(store_path.parent.iterdir()) == []


def test_a_missing_directory_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="does not exist"):
        SQLiteBackend(tmp_path / "nope" / "store.db")


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="is a directory"):
        SQLiteBackend(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files whatever their mode")
def test_an_unreadable_file_is_unavailable_and_untouched(closed_store: Path) -> None:
    before = snapshot(closed_store)
    closed_store.chmod(0o000)
    try:
        with pytest.raises(StoreUnavailableError, match="cannot read and write"):
            SQLiteBackend(closed_store)
    finally:
        closed_store.chmod(0o600)
    assert snapshot(closed_store) == before


def test_a_file_the_process_may_not_read_is_unavailable_and_untouched(
    closed_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs as root too (the test above cannot): the permission check itself.
    before = snapshot(closed_store)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(StoreUnavailableError) as info:
        open_km(closed_store)
    assert info.value.message == f"cannot read and write the store file {closed_store}"
    assert snapshot(closed_store) == before


def test_a_newer_schema_is_refused_and_left_untouched(closed_store: Path) -> None:
    conn = sqlite3.connect(closed_store)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = snapshot(closed_store)
    with pytest.raises(SchemaVersionError) as info:
        open_km(closed_store)
    assert info.value.message == (
        f"{closed_store} has schema version {SCHEMA_VERSION + 1}; this keymgmt reads up to "
        f"{SCHEMA_VERSION}. Upgrade keymgmt to open it."
    )
    assert (info.value.found, info.value.supported) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)  # type: ignore[attr-defined]
    assert snapshot(closed_store) == before


def test_another_applications_sqlite_file_is_refused_and_untouched(store_path: Path) -> None:
    conn = sqlite3.connect(store_path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.commit()
    conn.close()
    before = snapshot(store_path)
    with pytest.raises(StoreUnavailableError, match="another application, not a keymgmt store"):
        open_km(store_path)
    assert snapshot(store_path) == before  # still in rollback-journal mode, no -wal


def test_a_file_with_a_foreign_application_id_is_refused(store_path: Path) -> None:
    conn = sqlite3.connect(store_path)
    conn.execute("PRAGMA application_id = 1234")
    conn.close()
    before = snapshot(store_path)
    with pytest.raises(StoreUnavailableError, match="not a keymgmt store"):
        SQLiteBackend(store_path)
    assert snapshot(store_path) == before


@pytest.mark.parametrize("content", [b"hello, this is not a database" * 50, os.urandom(8192)])
def test_a_non_sqlite_file_is_refused_and_untouched(store_path: Path, content: bytes) -> None:
    store_path.write_bytes(content)
    with pytest.raises(StoreUnavailableError, match="not a keymgmt store"):
        open_km(store_path)
    assert snapshot(store_path) == {"store.db": content}


def test_the_wrong_passphrase_is_refused_and_the_store_untouched(closed_store: Path) -> None:
    before = snapshot(closed_store)
    with pytest.raises(WrongPassphraseError) as info:
        open_km(closed_store, passphrase="wrong")
    assert info.value.message == (
        "the master key does not open this store (wrong passphrase or key file?)"
    )
    assert snapshot(closed_store) == before
    with open_km(closed_store) as km:
        assert km.audit.verify().entries == 1


def test_a_corrupted_page_is_a_store_error_not_a_crash(closed_store: Path) -> None:
    data = bytearray(closed_store.read_bytes())
    page = 4096
    assert len(data) > 2 * page
    data[page : 2 * page] = os.urandom(page)
    closed_store.write_bytes(bytes(data))

    def read_everything() -> None:
        with open_km(closed_store) as km:
            km.audit.verify()
            km._store.backend.list("audit")

    before = snapshot(closed_store)
    with pytest.raises(KeyMgmtError) as info:
        read_everything()
    assert isinstance(info.value, StoreError | IntegrityError | AuditChainError)
    assert snapshot(closed_store) == before


def test_a_data_column_edited_to_text_is_an_integrity_error(store_path: Path) -> None:
    backend = SQLiteBackend(store_path)
    backend.commit([Put("k", "n", b"x", ANY)])
    raw = sqlite3.connect(store_path)
    raw.execute("UPDATE records SET data = 'text' WHERE kind = 'k'")
    raw.commit()
    raw.close()
    with pytest.raises(IntegrityError, match="wrong column types"):
        backend.get("k", "n")
    backend.close()


# -- connections ------------------------------------------------------------------------


def test_close_is_idempotent_and_later_use_is_a_store_error(store_path: Path) -> None:
    backend = SQLiteBackend(store_path)
    backend.close()
    backend.close()
    with pytest.raises(StoreError, match="closed"):
        backend.get("k", "n")
    with pytest.raises(StoreError, match="closed"):
        backend.commit([Put("k", "n", b"x", ANY)])


def test_connections_of_finished_threads_are_released(store_path: Path) -> None:
    backend = SQLiteBackend(store_path)
    threads = [threading.Thread(target=lambda: backend.get("k", "n")) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gc.collect()
    assert len(backend._holders) == 1  # only the opening thread's connection is left
    backend.close()


def test_a_failed_commit_leaves_the_connection_usable(store_path: Path) -> None:
    backend = SQLiteBackend(store_path)
    backend.commit([Put("k", "a", b"1", 0)])
    with pytest.raises(StoreError):
        backend.commit([Put("k", "b", b"1", 0), Put("k", "a", b"2", 0)])
    assert backend.get("k", "b") is None
    backend.commit([Put("k", "b", b"1", 0)])
    assert backend.get("k", "b") is not None
    backend.close()


def test_the_repr_names_the_file(store_path: Path) -> None:
    backend = SQLiteBackend(store_path)
    assert repr(backend) == f"SQLiteBackend({str(store_path)!r})"
    backend.close()


# -- schema migrations ------------------------------------------------------------------


def test_an_older_file_is_migrated_keeping_its_records(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keymgmt.storage import _sqlite

    with open_km(store_path) as km:
        km._store.transact(lambda txn: txn.put("note", "n", b"kept"))
    # A future keymgmt with schema version 2 that adds a column.
    step = ("ALTER TABLE records ADD COLUMN note TEXT",)
    monkeypatch.setattr(_sqlite, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(_sqlite.MIGRATIONS, SCHEMA_VERSION + 1, step)
    with open_km(store_path) as km:
        assert km._store.get("note", "n") == b"kept"
        assert km.audit.verify().entries == 1
    conn = sqlite3.connect(store_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    columns = [row[1] for row in conn.execute("PRAGMA table_info(records)")]
    conn.close()
    assert "note" in columns


def test_a_failing_migration_leaves_the_file_at_its_old_version(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keymgmt.storage import _sqlite

    open_km(store_path).close()
    monkeypatch.setattr(_sqlite, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(
        _sqlite.MIGRATIONS,
        SCHEMA_VERSION + 1,
        ("ALTER TABLE records ADD COLUMN note TEXT", "THIS IS NOT SQL"),
    )
    with pytest.raises(
        StoreError, match=f"migrating to schema version {SCHEMA_VERSION + 1}"
    ) as info:
        SQLiteBackend(store_path)
    assert info.value.message.endswith("the file was left unchanged")
    monkeypatch.undo()
    conn = sqlite3.connect(store_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "note" not in [row[1] for row in conn.execute("PRAGMA table_info(records)")]
    conn.close()
    with open_km(store_path) as km:
        assert km.audit.verify().entries == 1


# -- crashes ------------------------------------------------------------------------------

CRASHING_WRITER = """
import sys
from keymgmt import KeyManager

def increment(txn):
    value = txn.get_json("counter", "c") or {"n": 0}
    txn.put_json("counter", "c", {"n": value["n"] + 1})
    txn.audit("counter.increment", "c")
    return value["n"] + 1

with KeyManager.open(sys.argv[1], passphrase="pw") as km:
    while True:
        print(km._store.transact(increment), flush=True)  # acknowledged
"""


def test_kill_9_mid_write_loses_nothing_acknowledged(store_path: Path) -> None:
    import signal
    import subprocess
    import sys

    open_km(store_path).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, str(store_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged = 0
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged >= 40:
            break
    proc.send_signal(signal.SIGKILL)  # most likely in the middle of the next write
    proc.wait()
    proc.stdout.close()
    with open_km(store_path) as km:
        stored = km._store.get_json("counter", "c")
        assert stored is not None
        assert stored["n"] >= acknowledged
        assert km.audit.verify().entries == 1 + stored["n"]
