"""The store's per-transaction path keeps its guarantees where it was made cheaper.

A transaction reads the wall clock as integer microseconds (no datetime is
built unless an audit sink receives the entry), remembers the audit head's
revision as the one after the compare-and-set it committed, and the SQLite
backend learns the outcome of a creation or compare-and-set update from the
row count. These tests pin each of those to what the log and the backends
hold.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from keymgmt import _codec
from keymgmt._store import Store, Txn
from keymgmt.audit import AUDIT_HEAD, AUDIT_KIND, AuditEntry, AuditLog, entry_name
from keymgmt.clock import SystemClock
from keymgmt.errors import ConflictError, InvalidArgumentError
from keymgmt.keyring import Keyring, RawMasterKey
from keymgmt.storage import ANY, Backend, Check, MemoryBackend, Put, Record, SQLiteBackend
from keymgmt.storage._protocol import new_check, new_put, new_record
from keymgmt.testing import FakeClock, SeededRandomness

MASTER = bytes(range(32))


@pytest.fixture(params=["memory", "sqlite"])
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    backend: Backend = (
        MemoryBackend() if request.param == "memory" else SQLiteBackend(tmp_path / "s.db")
    )
    yield backend
    backend.close()


def make_store(backend: Backend, clock: Any, **kwargs: Any) -> Store:
    rng = SeededRandomness(3)
    keyring = (
        Keyring.open(backend, RawMasterKey(MASTER), rng)
        if Keyring.exists(backend)
        else Keyring.initialize(backend, RawMasterKey(MASTER), rng)
    )
    return Store(backend=backend, keyring=keyring, clock=clock, randomness=rng, **kwargs)


def issue(name: str) -> Any:
    def run(txn: Txn) -> None:
        txn.put("cert", name, b"der bytes of " + name.encode())
        txn.audit("pki.issue", f"cert:{name}", profile="tls-server", subject="CN=svc")

    return run


def test_entries_on_the_system_clock_are_stamped_with_the_commit_time() -> None:
    received: list[AuditEntry] = []
    store = make_store(MemoryBackend(), SystemClock(), audit_sinks=[received.append])
    before = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    store.transact(issue("a"))
    after = _dt.datetime.now(_dt.UTC)
    (entry,) = received
    assert before <= entry.time <= after
    assert entry.time.tzinfo is _dt.UTC
    assert list(AuditLog(store).entries()) == received


def test_entries_on_an_injected_clock_carry_its_time_to_the_microsecond(
    clock: FakeClock,
) -> None:
    received: list[AuditEntry] = []
    store = make_store(MemoryBackend(), clock, audit_sinks=[received.append])
    clock.advance(_dt.timedelta(microseconds=123_457))
    store.transact(issue("a"))
    (stored,) = AuditLog(store).entries()
    assert stored.time == received[0].time == clock.now()


def test_the_remembered_audit_head_revision_is_the_one_the_backend_holds(
    any_backend: Backend, clock: FakeClock
) -> None:
    store = make_store(any_backend, clock)
    revisions = []
    for name in ("a", "b", "c"):
        store.transact(issue(name))
        head = any_backend.get(*AUDIT_HEAD)
        assert head is not None
        assert store._head is not None
        assert store._head[3] == head.revision
        revisions.append(head.revision)
    # Three transactions, no retries: each head write was a compare-and-set
    # on the revision the previous one left.
    assert revisions == [1, 2, 3]
    assert AuditLog(store).verify().entries == 3


def test_a_head_moved_by_another_writer_is_read_again_and_the_chain_stays_whole(
    any_backend: Backend, clock: FakeClock
) -> None:
    first, second = make_store(any_backend, clock), make_store(any_backend, clock)
    first.transact(issue("a"))
    second.transact(issue("b"))  # moves the head behind first's back
    first.transact(issue("c"))  # conflicts on the remembered head, reads it, commits
    report = AuditLog(first).verify()
    assert report.entries == 3
    third = any_backend.get(AUDIT_KIND, entry_name(3))
    assert third is not None
    assert _codec.loads(third.data)["object"] == "cert:c"


def test_creation_and_compare_and_set_report_the_revisions_the_backend_holds(
    any_backend: Backend,
) -> None:
    (created,) = any_backend.commit([Put("k", "a", b"1", 0)])
    (updated,) = any_backend.commit([Put("k", "a", b"2", 1)])
    (forced,) = any_backend.commit([Put("k", "a", b"3", ANY)])
    assert [created.revision, updated.revision, forced.revision] == [1, 2, 3]
    assert any_backend.get("k", "a") == forced


@pytest.mark.parametrize(
    "stale",
    [Put("k", "a", b"x", 0), Put("k", "a", b"x", 1), Put("k", "missing", b"x", 1)],
    ids=["create-existing", "stale-revision", "update-missing"],
)
def test_a_refused_creation_or_update_conflicts_and_rolls_back_the_batch(
    any_backend: Backend, stale: Put
) -> None:
    any_backend.commit([Put("k", "a", b"1", 0)])
    any_backend.commit([Put("k", "a", b"2", 1)])
    generation = any_backend.generation()
    with pytest.raises(ConflictError) as raised:
        any_backend.commit([Put("k", "new", b"n", 0), stale])
    assert (raised.value.kind, raised.value.name) == (stale.kind, stale.name)  # type: ignore[attr-defined]
    assert any_backend.get("k", "new") is None
    assert any_backend.generation() == generation
    # The connection was left outside any transaction: the next write works.
    any_backend.commit([Put("k", "new", b"n", 0)])


def test_the_write_path_builds_records_and_puts_equal_to_attrs_ones() -> None:
    record = new_record("k", "a", b"data", 2, 7)
    put = new_put("k", "a", b"data", 1)
    assert record == Record("k", "a", b"data", 2, 7)
    assert hash(record) == hash(Record("k", "a", b"data", 2, 7))
    assert repr(record) == repr(Record("k", "a", b"data", 2, 7))
    assert put == Put("k", "a", b"data", 1)
    assert new_check("k", "a", 0) == Check("k", "a", 0)
    assert repr(new_check("k", "a", 0)) == repr(Check("k", "a", 0))
    assert attrs.asdict(put) == {"kind": "k", "name": "a", "data": b"data", "expected": 1}
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.revision = 3  # type: ignore[misc]


@pytest.mark.parametrize("cls", [Record, Put, Check])
def test_the_fast_constructors_set_every_field_of_their_class(cls: type[Any]) -> None:
    # A field added to Record, Put or Check must be added to new_record / new_put / new_check.
    values: dict[str, Any] = {"kind": "k", "name": "n", "data": b"d", "revision": 4, "seq": 5}
    values["expected"] = 6
    names = [field.name for field in attrs.fields(cls)]
    build = {Record: new_record, Put: new_put, Check: new_check}[cls]
    assert attrs.asdict(build(*(values[name] for name in names))) == {
        name: values[name] for name in names
    }


def test_group_commit_items_land_with_their_entries_in_order(
    any_backend: Backend, clock: FakeClock
) -> None:
    store = make_store(any_backend, clock)
    store.transact(issue("a"))
    outcomes = store.transact_many([issue(f"m{i}") for i in range(5)])
    assert outcomes == [None] * 5
    objects = [entry.object for entry in AuditLog(store).entries()]
    assert objects == ["cert:a"] + [f"cert:m{i}" for i in range(5)]
    assert AuditLog(store).verify().entries == 6
    assert store.get("cert", "m4") == b"der bytes of m4"


@pytest.mark.parametrize(
    "details", [{"bad \udfff": "v"}, {"k": "bad \ud800"}], ids=["in-a-name", "in-a-value"]
)
def test_a_detail_with_a_lone_surrogate_is_refused_when_staged(
    clock: FakeClock, details: dict[str, Any]
) -> None:
    store = make_store(MemoryBackend(), clock)
    with pytest.raises(InvalidArgumentError, match="valid Unicode"):
        Txn(store).audit("op", "obj", **details)


def test_non_ascii_audit_text_is_stored_as_utf8_and_verifies(clock: FakeClock) -> None:
    store = make_store(MemoryBackend(), clock)
    store.transact(
        lambda txn: txn.audit("opé", "obj→", outcome="ok✓", actor="zoë", subject="CN=Ünïcode")
    )
    (entry,) = AuditLog(store).entries()
    assert (entry.operation, entry.object, entry.outcome, entry.actor) == (
        "opé",
        "obj→",
        "ok✓",
        "zoë",
    )
    assert entry.details == {"subject": "CN=Ünïcode"}
    assert AuditLog(store).verify().entries == 1
