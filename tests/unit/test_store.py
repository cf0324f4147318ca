"""Store.transact: sealed, audited, atomic, compare-and-set, retried on conflict."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from keymgmt import KeyManager
from keymgmt import _store as store_module
from keymgmt._store import Store, Txn
from keymgmt.audit import AUDIT_KIND, AuditEntry, AuditLog
from keymgmt.errors import ConflictError, InvalidArgumentError
from keymgmt.keyring import KdfProfile, Keyring, Passphrase, RawMasterKey
from keymgmt.storage import Backend, MemoryBackend, SQLiteBackend
from keymgmt.testing import FakeClock, SeededRandomness

MASTER = bytes(range(32))


def make_store(
    backend: Backend, clock: FakeClock, rng: SeededRandomness, **kwargs: object
) -> Store:
    keyring = (
        Keyring.open(backend, RawMasterKey(MASTER), rng)
        if Keyring.exists(backend)
        else Keyring.initialize(backend, RawMasterKey(MASTER), rng)
    )
    return Store(
        backend=backend,
        keyring=keyring,
        clock=clock,
        randomness=rng,
        consistency_interval=0,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def entries() -> list[AuditEntry]:
    return []


@pytest.fixture
def store(clock: FakeClock, rng: SeededRandomness, entries: list[AuditEntry]) -> Store:
    return make_store(MemoryBackend(), clock, rng, audit_sinks=[entries.append])


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without real sleeping (tests never sleep)."""
    monkeypatch.setattr(store_module.time, "sleep", lambda _s: None)


def put(kind: str, name: str, value: bytes) -> Callable[[Txn], None]:
    def run(txn: Txn) -> None:
        txn.get(kind, name)
        txn.put(kind, name, value)

    return run


def test_a_committed_put_reads_back_unsealed(store: Store) -> None:
    store.transact(put("thing", "a", b"value"))
    assert store.get("thing", "a") == b"value"


def test_records_are_stored_sealed(store: Store) -> None:
    store.transact(put("thing", "a", b"value"))
    record = store.backend.get("thing", "a")
    assert record is not None
    assert b"value" not in record.data
    assert store.keyring.unseal("thing", "a", record.data) == b"value"


def test_json_helpers_round_trip(store: Store) -> None:
    store.transact(lambda txn: txn.put_json("thing", "a", {"n": 1, "s": "x"}))
    store.transact(lambda txn: txn.put_json("thing", "b", {"n": 2}))
    assert store.get_json("thing", "a") == {"n": 1, "s": "x"}
    assert store.list_json("thing") == [("a", {"n": 1, "s": "x"}), ("b", {"n": 2})]
    assert store.get_json("thing", "zzz") is None


def test_transact_returns_the_functions_result(store: Store) -> None:
    assert store.transact(lambda txn: 42) == 42


def test_a_failing_function_writes_nothing_and_audits_nothing(
    store: Store, entries: list[AuditEntry]
) -> None:
    before = store.backend.generation()
    ran: list[str] = []

    def run(txn: Txn) -> None:
        txn.put("thing", "a", b"value")
        txn.audit("thing.create", "a")
        txn.after_commit(lambda: ran.append("callback"))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        store.transact(run)
    assert store.backend.generation() == before
    assert store.get("thing", "a") is None
    assert store.backend.list(AUDIT_KIND) == []
    assert ran == []
    assert entries == []


def test_a_put_without_a_read_must_create(
    store: Store, no_backoff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_MAX_ATTEMPTS", 3)
    store.transact(lambda txn: txn.put("thing", "a", b"1"))
    with pytest.raises(ConflictError, match="too many concurrent writers"):
        store.transact(lambda txn: txn.put("thing", "a", b"2"))
    assert store.get("thing", "a") == b"1"


def test_a_put_after_a_read_replaces(store: Store) -> None:
    store.transact(put("thing", "a", b"1"))
    store.transact(put("thing", "a", b"2"))
    assert store.get("thing", "a") == b"2"
    record = store.backend.get("thing", "a")
    assert record is not None
    assert record.revision == 2


def test_a_conflicting_write_reruns_the_function_on_fresh_data(
    store: Store, no_backoff: None, entries: list[AuditEntry]
) -> None:
    store.transact(lambda txn: txn.put_json("counter", "c", {"n": 0}))
    runs: list[int] = []

    def increment(txn: Txn) -> None:
        value = txn.get_json("counter", "c")
        assert value is not None
        runs.append(value["n"])
        if len(runs) == 1:
            # Someone else writes between our read and our commit.
            store.transact(set_counter_to_ten)
        txn.put_json("counter", "c", {"n": value["n"] + 1})
        txn.audit("counter.increment", "c")

    store.transact(increment)
    assert runs == [0, 10]
    assert store.get_json("counter", "c") == {"n": 11}
    assert [e.operation for e in AuditLog(store).entries()] == ["counter.increment"]
    assert [e.operation for e in entries] == ["counter.increment"]  # the sink: once, committed


def set_counter_to_ten(txn: Txn) -> None:
    txn.get("counter", "c")
    txn.put_json("counter", "c", {"n": 10})


def test_txn_get_sees_its_own_staged_writes(store: Store) -> None:
    store.transact(put("thing", "gone", b"x"))

    def run(txn: Txn) -> tuple[bytes | None, bytes | None]:
        txn.put("thing", "new", b"staged")
        txn.get("thing", "gone")
        txn.delete("thing", "gone")
        return txn.get("thing", "new"), txn.get("thing", "gone")

    assert store.transact(run) == (b"staged", None)


def test_txn_list_includes_staged_puts_and_omits_staged_deletes(store: Store) -> None:
    store.transact(put("thing", "a", b"1"))
    store.transact(put("thing", "b", b"2"))

    def run(txn: Txn) -> list[tuple[str, bytes]]:
        txn.put("thing", "c", b"3")
        txn.get("thing", "a")
        txn.delete("thing", "a")
        txn.put("other", "z", b"9")
        return txn.list("thing")

    assert store.transact(run) == [("b", b"2"), ("c", b"3")]


def test_txn_list_filters_by_prefix(store: Store) -> None:
    for name in ("ab", "ac", "b"):
        store.transact(put("thing", name, b"x"))
    assert [n for n, _ in store.transact(lambda txn: txn.list("thing", prefix="a"))] == [
        "ab",
        "ac",
    ]


def test_delete_after_a_read_is_compare_and_set(store: Store, no_backoff: None) -> None:
    store.transact(put("thing", "a", b"1"))
    runs: list[int] = []

    def run(txn: Txn) -> None:
        txn.get("thing", "a")
        runs.append(1)
        if len(runs) == 1:
            store.transact(put("thing", "a", b"2"))
        txn.delete("thing", "a")

    store.transact(run)
    assert len(runs) == 2
    assert store.get("thing", "a") is None


@pytest.mark.parametrize("kind", ["audit", "meta"])
def test_reserved_kinds_cannot_be_written_or_deleted(store: Store, kind: str) -> None:
    with pytest.raises(InvalidArgumentError, match="reserved"):
        store.transact(lambda txn: txn.put(kind, "x", b"1"))
    with pytest.raises(InvalidArgumentError, match="reserved"):
        store.transact(lambda txn: txn.delete(kind, "x"))


@pytest.mark.parametrize("value", [b"raw", 1.5, object(), ["list"]])
def test_audit_details_refuse_values_that_could_carry_secrets(store: Store, value: object) -> None:
    before = store.backend.generation()
    with pytest.raises(InvalidArgumentError, match="must be str, int, bool or None"):
        store.transact(lambda txn: txn.audit("op", "obj", detail=value))
    assert store.backend.generation() == before


def test_audit_requires_operation_and_object(store: Store) -> None:
    with pytest.raises(InvalidArgumentError, match="operation"):
        store.audit("", "obj")


def test_sinks_receive_committed_entries_in_order(store: Store, entries: list[AuditEntry]) -> None:
    store.audit("one", "x", n=1)
    store.transact(lambda txn: (txn.audit("two", "y"), txn.audit("three", "z")))
    assert [(e.seq, e.operation) for e in entries] == [(1, "one"), (2, "two"), (3, "three")]
    assert entries == list(AuditLog(store).entries())


def test_a_failing_sink_is_logged_and_the_write_stands(
    clock: FakeClock, rng: SeededRandomness, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(entry: AuditEntry) -> None:
        raise OSError("disk full")

    store = make_store(MemoryBackend(), clock, rng, audit_sinks=[broken])
    with caplog.at_level(logging.ERROR, logger="keymgmt"):
        store.transact(lambda txn: (txn.put("thing", "a", b"1"), txn.audit("op", "a")))
    assert store.get("thing", "a") == b"1"
    assert "audit sink failed after a committed write" in caplog.text


def test_after_commit_callbacks_run_once_after_the_commit(store: Store) -> None:
    seen: list[bytes | None] = []

    def run(txn: Txn) -> None:
        txn.put("thing", "a", b"1")
        txn.after_commit(lambda: seen.append(store.get("thing", "a")))

    store.transact(run)
    assert seen == [b"1"]


def test_a_read_only_transaction_runs_callbacks_and_writes_nothing(store: Store) -> None:
    before = store.backend.generation()
    seen: list[str] = []
    store.transact(lambda txn: (txn.get("thing", "a"), txn.after_commit(lambda: seen.append("x"))))
    assert seen == ["x"]
    assert store.backend.generation() == before


def test_audit_entries_use_the_injected_clock(store: Store, clock: FakeClock) -> None:
    clock.advance(days=3)
    store.audit("op", "obj")
    (entry,) = AuditLog(store).entries()
    assert entry.time == clock.now()


def test_a_clock_returning_naive_time_is_refused(rng: SeededRandomness) -> None:
    class NaiveClock:
        def now(self) -> dt.datetime:
            return dt.datetime(2030, 1, 1)

    store = make_store(MemoryBackend(), NaiveClock(), rng)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="timezone-aware"):
        store.audit("op", "obj")


def test_negative_consistency_interval_is_refused(rng: SeededRandomness) -> None:
    backend = MemoryBackend()
    keyring = Keyring.initialize(backend, RawMasterKey(MASTER), rng)
    with pytest.raises(InvalidArgumentError, match="consistency_interval"):
        Store(
            backend=backend,
            keyring=keyring,
            clock=FakeClock(),
            randomness=rng,
            consistency_interval=-1,
        )


def test_sync_tells_listeners_about_other_writers_records(
    clock: FakeClock, rng: SeededRandomness
) -> None:
    backend = MemoryBackend()
    mine = make_store(backend, clock, rng)
    theirs = make_store(backend, clock, rng)
    seen: list[tuple[str, str]] = []
    mine.watch("thing")
    mine.subscribe(lambda records: seen.extend((r.kind, r.name) for r in records))
    theirs.transact(put("thing", "a", b"1"))
    theirs.transact(put("ignored", "b", b"1"))
    mine.sync()
    assert seen == [("thing", "a")]
    mine.sync()
    assert seen == [("thing", "a")]


def test_sync_does_not_read_back_this_stores_own_writes(
    clock: FakeClock, rng: SeededRandomness
) -> None:
    store = make_store(MemoryBackend(), clock, rng)
    calls: list[int] = []
    store.watch("thing")
    store.subscribe(lambda records: calls.append(len(records)))
    store.transact(put("thing", "a", b"1"))
    store.sync()
    assert calls == []


def test_sync_is_throttled_by_the_consistency_interval(
    clock: FakeClock, rng: SeededRandomness
) -> None:
    backend = MemoryBackend()
    slow = make_store(backend, clock, rng)
    slow.consistency_interval = 3600
    slow._next_check = float("inf")
    calls: list[int] = []
    slow.subscribe(lambda records: calls.append(len(records)))
    make_store(backend, clock, rng).transact(put("thing", "a", b"1"))
    slow.sync()
    assert calls == []
    slow.sync(force=True)
    assert calls == [0]


# -- concurrency ---------------------------------------------------------------------

INCREMENTS = 15


def increment(txn: Txn) -> None:
    value = txn.get_json("counter", "c") or {"n": 0}
    txn.put_json("counter", "c", {"n": value["n"] + 1})
    txn.audit("counter.increment", "c")


def test_threads_sharing_one_store_lose_no_update(
    tmp_path: Path, clock: FakeClock, rng: SeededRandomness
) -> None:
    store = make_store(SQLiteBackend(tmp_path / "s.db"), clock, rng)
    workers = [
        threading.Thread(target=lambda: [store.transact(increment) for _ in range(INCREMENTS)])
        for _ in range(4)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert store.get_json("counter", "c") == {"n": 4 * INCREMENTS}
    assert AuditLog(store).verify().entries == 4 * INCREMENTS


def test_threads_with_separate_connections_to_one_file_lose_no_update(
    tmp_path: Path, clock: FakeClock, rng: SeededRandomness
) -> None:
    path = tmp_path / "s.db"
    stores = [make_store(SQLiteBackend(path), clock, SeededRandomness(i)) for i in range(3)]
    workers = [
        threading.Thread(target=lambda s=s: [s.transact(increment) for _ in range(INCREMENTS)])
        for s in stores
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert stores[0].get_json("counter", "c") == {"n": 3 * INCREMENTS}
    assert AuditLog(stores[0]).verify().entries == 3 * INCREMENTS
    for s in stores:
        s.backend.close()


WORKER = textwrap.dedent(
    """
    import sys
    from keymgmt import KeyManager
    from keymgmt.keyring import KdfProfile

    def increment(txn):
        value = txn.get_json("counter", "c") or {"n": 0}
        txn.put_json("counter", "c", {"n": value["n"] + 1})
        txn.audit("counter.increment", "c")

    with KeyManager.open(sys.argv[1], passphrase="pw") as km:
        for _ in range(int(sys.argv[2])):
            km._store.transact(increment)
    """
)


def test_two_processes_on_one_file_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_cheap(path).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(INCREMENTS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err
    with open_cheap(path) as km:
        assert km._store.get_json("counter", "c") == {"n": 2 * INCREMENTS}
        assert km.audit.verify().entries == 1 + 2 * INCREMENTS


def open_cheap(path: Path) -> KeyManager:
    return KeyManager.open(path, passphrase="pw", kdf_profile=KdfProfile.TESTING_ONLY_INSECURE)


def test_master_key_change_is_audited_in_the_same_write(
    clock: FakeClock, rng: SeededRandomness
) -> None:
    store = make_store(MemoryBackend(), clock, rng)
    before = store.backend.generation()
    store.change_master_key(Passphrase("new", KdfProfile.TESTING_ONLY_INSECURE))
    assert store.backend.generation() == before + 1
    (entry,) = AuditLog(store).entries()
    assert (entry.operation, entry.details) == ("store.change-master-key", {"source": "passphrase"})


def test_a_listener_that_fails_sees_the_changes_again_next_sync(
    clock: FakeClock, rng: SeededRandomness
) -> None:
    backend = MemoryBackend()
    mine = make_store(backend, clock, rng)
    seen: list[str] = []
    failures = [RuntimeError("damaged record")]

    def listener(records: object) -> None:
        if failures:
            raise failures.pop()
        seen.extend(r.name for r in records)  # type: ignore[attr-defined]

    mine.watch("thing")
    mine.subscribe(listener)
    make_store(backend, clock, rng).transact(put("thing", "a", b"1"))
    with pytest.raises(RuntimeError, match="damaged record"):
        mine.sync()
    mine.sync()
    assert seen == ["a"]


@pytest.mark.parametrize("value", ["text", 5, None])
def test_record_data_must_be_bytes(store: Store, value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="record data must be bytes"):
        store.transact(lambda txn: txn.put("thing", "a", value))  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "name"), [("thing", ""), ("thing", "a\x00b"), (5, "a")])
def test_bad_record_identities_are_argument_errors(store: Store, kind: object, name: str) -> None:
    with pytest.raises(InvalidArgumentError):
        store.transact(lambda txn: txn.put(kind, name, b"x"))  # type: ignore[arg-type]


def test_a_lookup_sync_does_not_wait_for_a_commit_in_progress(
    clock: FakeClock, rng: SeededRandomness
) -> None:
    backend = MemoryBackend()
    mine = make_store(backend, clock, rng)
    calls: list[int] = []
    mine.subscribe(lambda records: calls.append(len(records)))
    make_store(backend, clock, rng).transact(put("thing", "a", b"1"))
    holding, release = threading.Event(), threading.Event()

    def committer() -> None:  # stands in for a thread inside Store.transact
        with mine._lock:
            holding.set()
            release.wait()

    thread = threading.Thread(target=committer)
    thread.start()
    holding.wait()
    mine.sync()  # returns at once instead of blocking
    assert calls == []
    release.set()
    thread.join()
    mine.sync()
    assert calls == [0]
