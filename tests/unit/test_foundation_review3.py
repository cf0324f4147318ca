"""Third review of the foundation: each test pins a bug that was found and fixed.

The store, its backends, the keyring and the audit chain; one behaviour per test.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keymgmt import KeyManager
from keymgmt._store import Store
from keymgmt.audit import AUDIT_HEAD, AUDIT_KIND, AuditLog, entry_name
from keymgmt.errors import (
    AuditChainError,
    IntegrityError,
    InvalidArgumentError,
    StoreError,
    StoreUnavailableError,
)
from keymgmt.keyring import KdfProfile, KeyFile, Keyring, RawMasterKey
from keymgmt.storage import Backend, Delete, MemoryBackend, Put, SQLiteBackend
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


# -- SQLite after fork(): the child opens connections of its own -------------------------


def _fork(work: Callable[[], None]) -> int:
    """Run ``work`` in a forked child that leaves as multiprocessing's do (os._exit)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    return pid


def _exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_childs_acknowledged_commit_survives_the_parent_closing_first(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    backend = SQLiteBackend(path)
    backend.commit([Put("item", "parent", b"p", 0)])
    read_end, write_end = os.pipe()

    def child() -> None:
        os.close(write_end)
        os.read(read_end, 1)  # the parent has closed its store
        backend.commit([Put("item", "child", b"c", 0)])

    pid = _fork(child)
    os.close(read_end)
    backend.close()
    os.write(write_end, b"go")
    os.close(write_end)
    assert _exit_code(pid) == 0
    reopened = SQLiteBackend(path)
    try:
        assert [r.name for r in reopened.list("item")] == ["child", "parent"]
    finally:
        reopened.close()


def test_a_forked_child_does_not_use_the_parents_connection(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "s.db")
    inherited = backend._conn
    read_end, write_end = os.pipe()

    def child() -> None:
        os.write(write_end, b"1" if backend._conn is not inherited else b"0")
        backend.commit([Put("item", "child", b"c", 0)])

    assert _exit_code(_fork(child)) == 0
    os.close(write_end)
    assert os.read(read_end, 1) == b"1"
    os.close(read_end)
    assert backend._conn is inherited  # the parent's own stays as it was
    assert backend.get("item", "child") is not None
    backend.close()


# -- PostgreSQL after fork(): the child's pool starts empty ------------------------------


def test_a_forked_child_closing_its_postgres_store_leaves_the_parents_session_alive(
    postgres_dsn: str,
) -> None:
    from keymgmt.storage.postgres import PostgresBackend

    backend = PostgresBackend(postgres_dsn, schema="review3_" + uuid.uuid4().hex[:12])
    try:
        backend.commit([Put("item", "parent", b"p", 0)])

        def child() -> None:  # uses the store, then closes it, as a worker would
            backend.commit([Put("item", "child", b"c", 0)])
            backend.close()

        assert _exit_code(_fork(child)) == 0
        backend.commit([Put("item", "parent-after", b"p", 0)])  # not a dead connection
        assert [r.name for r in backend.list("item")] == ["child", "parent", "parent-after"]
    finally:
        backend.close()


# -- secrets: a malformed PostgreSQL DSN is never echoed -----------------------------------


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://keymgmt:s3cret-pw@[::1/keys",  # unclosed IPv6 bracket
        "host=127.0.0.1 password=s3cret-pw trailing",  # a word without "="
    ],
)
def test_a_malformed_postgres_dsn_is_refused_without_echoing_its_password(dsn: str) -> None:
    pytest.importorskip("psycopg", reason="needs the postgres extra (psycopg)")
    from keymgmt.storage.postgres import PostgresBackend

    with pytest.raises(StoreUnavailableError) as info:
        PostgresBackend(dsn)
    shown = f"{info.value} {info.value!r} {info.value.args}"
    assert "s3cret" not in shown
    assert "trailing" not in shown


# -- PKCS#11: bad input is a typed error -------------------------------------------------


@pytest.mark.parametrize("pin", [b"\xff\xfe12", bytearray(b"\xc3("), "12\ud800"])
def test_a_pin_that_is_not_utf8_is_an_invalid_argument_error(pin: bytes) -> None:
    from keymgmt.keyring.pkcs11 import Pkcs11Key, Pkcs11Token

    with pytest.raises(InvalidArgumentError):
        Pkcs11Token("/usr/lib/softhsm/libsofthsm2.so", token_label="t", pin=pin)
    with pytest.raises(InvalidArgumentError):
        Pkcs11Key("/usr/lib/softhsm/libsofthsm2.so", token_label="t", pin=pin)


# -- the store: an audit log its sealed head does not cover is refused at once ----------


def _audited_store() -> Store:
    store = make_store(MemoryBackend())
    for i in range(3):
        store.audit("op", f"entry{i}")
    return store


def test_a_write_after_the_sealed_audit_head_was_deleted_fails_at_once_as_a_chain_error() -> None:
    store = _audited_store()
    store.backend.commit([Delete(*AUDIT_HEAD)])
    fresh = make_store(store.backend)  # no remembered head: reads the backend's
    before = dict(store.backend._records)  # type: ignore[attr-defined]
    with pytest.raises(AuditChainError) as info:
        fresh.transact(lambda txn: (txn.put("item", "a", b"v"), txn.audit("op", "a")))
    assert info.value.position == 1
    assert store.backend._records == before  # type: ignore[attr-defined]


def test_a_write_after_an_older_sealed_head_was_put_back_fails_at_once_as_a_chain_error() -> None:
    store = make_store(MemoryBackend())
    store.audit("op", "first")
    old_head = store.backend.get(*AUDIT_HEAD)
    assert old_head is not None
    store.audit("op", "second")
    store.audit("op", "third")
    store.backend.commit([Put(*AUDIT_HEAD, old_head.data)])  # a stale, genuinely sealed head
    with pytest.raises(AuditChainError) as info:
        make_store(store.backend).audit("op", "fourth")
    assert info.value.position == 2


def test_a_write_racing_another_stores_append_still_retries_and_chains_on() -> None:
    backend = MemoryBackend()
    first, second = make_store(backend), make_store(backend)
    first.audit("op", "one")
    second.audit("op", "two")  # second read the head fresh; first's memory is now stale
    first.audit("op", "three")
    assert AuditLog(first).verify().entries == 3


# -- KeyFile.generate: on disk before a master-key change can depend on it ----------------


def test_a_generated_key_file_is_synced_to_disk_with_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "master.key"
    KeyFile.generate(path)
    assert str(path) in synced  # the key itself
    assert str(tmp_path) in synced  # its directory entry


def test_a_key_file_that_cannot_be_written_is_removed_and_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "master.key"
    with pytest.raises(StoreUnavailableError):
        KeyFile.generate(path)
    assert not path.exists()  # no partial key file left to be taken for the key


# -- sync: a store that went back (restored from a backup) -------------------------------


class _Restorable:
    """A backend whose database can be swapped for a restored copy, as an operator would."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_revocation_made_after_a_restore_to_an_older_generation_is_honoured(
    tmp_path: Path,
) -> None:
    from keymgmt.revocation import RevocationRegistry, SubjectKind

    live, backup = tmp_path / "live.db", tmp_path / "backup.db"
    writer = make_store(SQLiteBackend(live))
    writer.audit("op", "before the backup")
    source, target = sqlite3.connect(live), sqlite3.connect(backup)
    source.backup(target)  # the backup, at this generation
    source.close()
    target.close()
    for i in range(5):  # the live store moves on
        writer.audit("op", f"after the backup {i}")

    restorable = _Restorable(SQLiteBackend(live))
    reader_store = make_store(restorable)  # type: ignore[arg-type]
    reader = RevocationRegistry(reader_store)
    assert not reader.is_revoked(SubjectKind.KEY, "k#1")

    restorable.inner = SQLiteBackend(backup)  # the operator restores the backup ...
    restored = make_store(SQLiteBackend(backup))
    RevocationRegistry(restored).revoke(SubjectKind.KEY, "k#1", "key-compromise")  # ... and revokes
    assert restored.backend.generation() < writer.backend.generation()

    reader.sync()
    assert reader.is_revoked(SubjectKind.KEY, "k#1")


# -- SQLite: a relative store path keeps naming the file it named when opened -------------


def test_a_relative_store_path_still_names_the_same_file_after_a_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "data")
    backend = SQLiteBackend("keys.db")
    backend.commit([Put("item", "a", b"v", 0)])
    monkeypatch.chdir(tmp_path / "elsewhere")  # a daemon's chdir("/"), say
    found: list[object] = []

    def read() -> None:  # a new thread opens a new connection
        try:
            found.append(backend.get("item", "a"))
        except Exception as exc:
            found.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    backend.close()
    assert isinstance(found[0], Record)
    assert found[0].data == b"v"
    assert list((tmp_path / "elsewhere").iterdir()) == []  # no stray (0644) database


def test_a_store_file_moved_away_while_open_is_not_recreated_by_a_new_connection(
    tmp_path: Path,
) -> None:
    import threading

    path = tmp_path / "keys.db"
    backend = SQLiteBackend(path)
    backend.commit([Put("item", "a", b"v", 0)])
    path.rename(tmp_path / "moved.db")
    errors: list[Exception] = []

    def read() -> None:  # a new thread opens a new connection, by name
        try:
            backend.get("item", "a")
        except StoreError as exc:
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    backend.close()
    assert isinstance(errors[0], StoreUnavailableError)
    assert not path.exists()  # never an empty stand-in store (mode 0644) in its place


# -- change_master_key: bad input is a typed error, the store unchanged ------------------


@pytest.mark.parametrize("source", ["new passphrase", b"k" * 32, None])
def test_change_master_key_refuses_what_is_not_a_master_key_source(source: object) -> None:
    km = KeyManager.in_memory()
    before = dict(km._store.backend._records)  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgumentError):
        km.change_master_key(source)  # type: ignore[arg-type]
    assert km._store.backend._records == before  # type: ignore[attr-defined]
    km.close()


@pytest.mark.parametrize("exists", [False, True], ids=["new-store", "existing-store"])
def test_a_keymanager_given_a_passphrase_string_as_master_key_is_an_invalid_argument_error(
    exists: bool,
) -> None:
    backend = MemoryBackend()
    if exists:
        Keyring.initialize(backend, RawMasterKey(MASTER), SeededRandomness(1))
    with pytest.raises(InvalidArgumentError):
        KeyManager(backend=backend, master_key="pw")  # type: ignore[arg-type]


# -- audit reads: bad input is a typed error ----------------------------------------------


@pytest.mark.parametrize("start", ["5", None, 1.5, True])
def test_audit_entries_refuses_a_start_that_is_not_an_int(start: object) -> None:
    store = _audited_store()
    with pytest.raises(InvalidArgumentError):
        list(AuditLog(store).entries(start=start))  # type: ignore[arg-type]


# -- transact: what is compare-and-set (documented in docs/storage.md) ---------------------


def _changed_by_another_writer_while_running(
    stage: Callable[[Any, bytes], None],
) -> tuple[list[bytes], Store]:
    """Run a transaction that reads ``x/a`` while another writer changes it once."""
    backend = MemoryBackend()
    store, other = make_store(backend), make_store(backend)
    store.transact(lambda txn: txn.put("x", "a", b"open"))
    seen: list[bytes] = []

    def change(txn: Any) -> None:
        txn.get("x", "a")
        txn.put("x", "a", b"closed")

    def run(txn: Any) -> None:
        value = txn.get("x", "a")
        seen.append(value)
        if len(seen) == 1:
            other.transact(change)  # commits between this read and this commit
        stage(txn, value)

    store.transact(run)
    return seen, store


def test_a_record_written_back_after_reading_makes_a_concurrent_change_rerun_the_function() -> None:
    def stage(txn: Any, value: bytes) -> None:
        txn.put("x", "a", value)  # written back: compare-and-set on the revision read
        txn.put("x", "b", b"derived from " + value)

    seen, store = _changed_by_another_writer_while_running(stage)
    assert seen == [b"open", b"closed"]
    assert store.get("x", "b") == b"derived from closed"


def test_a_record_only_read_makes_a_concurrent_change_rerun_the_function() -> None:
    def stage(txn: Any, value: bytes) -> None:
        txn.put("x", "b", b"derived from " + value)

    _, store = _changed_by_another_writer_while_running(stage)
    assert store.get("x", "b") == b"derived from closed"


# -- KeyFile: reading is bounded -----------------------------------------------------------


def test_a_key_file_that_never_ends_is_refused_without_reading_it_all() -> None:
    # /dev/zero never ends: read whole, it would fill memory; a key file is small.
    with pytest.raises(InvalidArgumentError):
        KeyFile("/dev/zero")


def test_a_commit_after_the_change_sequence_row_was_deleted_is_an_integrity_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    backend = SQLiteBackend(path)
    backend.commit([Put("item", "a", b"v", 0)])
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM sequence")
    conn.commit()
    conn.close()
    with pytest.raises(IntegrityError):
        backend.commit([Put("item", "b", b"v", 0)])
    assert backend.get("item", "b") is None  # nothing written
    backend.close()


# -- audit tail: the entries the sealed head covers, no more, none missing ------------------


def test_tail_returns_at_most_count_entries_while_another_writer_appends() -> None:
    inner = MemoryBackend()
    writer = make_store(inner)
    for i in range(5):
        writer.audit("op", f"entry{i}")

    class _AppendOnFirstRead(_AppendDuringList):
        def get(self, kind: str, name: str) -> Record | None:
            if kind == AUDIT_KIND and not self.fired:
                self.fired = True
                self._append()
            return self._inner.get(kind, name)

    racing = _AppendOnFirstRead(inner, lambda: [writer.audit("op", "late") for _ in range(3)])
    reader = make_store(racing)  # type: ignore[arg-type]
    entries = AuditLog(reader).tail(2)
    assert racing.fired
    assert [e.seq for e in entries] == [4, 5]


def test_tail_of_a_log_whose_newest_entries_were_removed_is_a_chain_error() -> None:
    store = _audited_store()  # 3 entries, the sealed head names entry 3
    store.backend.commit([Delete(AUDIT_KIND, entry_name(3)), Delete(AUDIT_KIND, entry_name(2))])
    with pytest.raises(AuditChainError) as info:
        AuditLog(store).tail(5)
    assert info.value.position == 2


# -- constructors: a wrong type is a typed error ------------------------------------------


def _constructors() -> dict[str, Callable[[], object]]:
    import datetime as dt

    from keymgmt._replay import ReplayCache
    from keymgmt.keyring.pkcs11 import Pkcs11Key, Pkcs11Token

    return {
        "KeyFile(None)": lambda: KeyFile(None),  # type: ignore[arg-type]
        "KeyFile.generate(None)": lambda: KeyFile.generate(None),  # type: ignore[arg-type]
        "SQLiteBackend(None)": lambda: SQLiteBackend(None),  # type: ignore[arg-type]
        "SQLiteBackend(5)": lambda: SQLiteBackend(5),  # type: ignore[arg-type]
        "Pkcs11Token(None)": lambda: Pkcs11Token(None, token_label="t", pin="1"),  # type: ignore[arg-type]
        "Pkcs11Key(None)": lambda: Pkcs11Key(None, token_label="t", pin="1"),  # type: ignore[arg-type]
        "Pkcs11Token(label=5)": lambda: Pkcs11Token("/x.so", token_label=5, pin="1"),  # type: ignore[arg-type]
        "ReplayCache(window=300)": lambda: ReplayCache(window=300),  # type: ignore[arg-type]
        "ReplayCache(max_skew=None)": lambda: ReplayCache(max_skew=None),  # type: ignore[arg-type]
        "ReplayCache(max_entries='5')": lambda: ReplayCache(max_entries="5"),  # type: ignore[arg-type]
        "ReplayCache(max_entries=2.5)": lambda: ReplayCache(max_entries=2.5),  # type: ignore[arg-type]
        "ReplayCache(window=dt)": lambda: ReplayCache(window=dt.datetime.now(dt.UTC)),
    }


_CONSTRUCTORS = [
    "KeyFile(None)",
    "KeyFile.generate(None)",
    "SQLiteBackend(None)",
    "SQLiteBackend(5)",
    "Pkcs11Token(None)",
    "Pkcs11Key(None)",
    "Pkcs11Token(label=5)",
    "ReplayCache(window=300)",
    "ReplayCache(max_skew=None)",
    "ReplayCache(max_entries='5')",
    "ReplayCache(max_entries=2.5)",
    "ReplayCache(window=dt)",
]


@pytest.mark.parametrize("label", _CONSTRUCTORS)
def test_a_foundation_constructor_given_a_wrong_type_raises_invalid_argument_error(
    label: str,
) -> None:
    build = _constructors()[label]
    with pytest.raises(InvalidArgumentError):
        build()


# -- the store: a sealed head that went back is refused, not written on ------------------


def test_a_store_does_not_write_on_from_a_stale_head_put_back_over_cut_entries() -> None:
    store = make_store(MemoryBackend())
    store.audit("op", "first")
    stale = store.backend.get(*AUDIT_HEAD)
    assert stale is not None
    store.audit("op", "second")
    store.audit("op", "third")
    # Someone with the database removes the newest entries and puts back the
    # head sealed when entry 1 was the newest: the log verifies as 1 entry.
    store.backend.commit(
        [
            Delete(AUDIT_KIND, entry_name(2)),
            Delete(AUDIT_KIND, entry_name(3)),
            Put(*AUDIT_HEAD, stale.data),
        ]
    )
    assert AuditLog(make_store(store.backend)).verify().entries == 1  # a fresh reader: 1 entry
    with pytest.raises(AuditChainError) as info:
        store.audit("op", "fourth")  # this store saw entry 3: it does not write on from 1
    assert info.value.position == 2
    assert AuditLog(make_store(store.backend)).verify().entries == 1  # nothing appended


def test_verify_in_a_process_that_saw_newer_entries_finds_a_stale_head_put_back() -> None:
    store = make_store(MemoryBackend())
    store.audit("op", "first")
    stale = store.backend.get(*AUDIT_HEAD)
    assert stale is not None
    store.audit("op", "second")
    store.backend.commit([Delete(AUDIT_KIND, entry_name(2)), Put(*AUDIT_HEAD, stale.data)])
    with pytest.raises(AuditChainError) as info:
        AuditLog(store).verify()
    assert info.value.position == 2


def test_an_audit_detail_too_large_to_write_as_text_is_an_invalid_argument_error() -> None:
    store = _audited_store()
    with pytest.raises(InvalidArgumentError):
        store.audit("op", "obj", n=10**5000)  # more digits than int-to-str allows
    assert AuditLog(store).verify().entries == 3
