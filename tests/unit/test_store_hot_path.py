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

import pytest

from keymgmt import _codec
from keymgmt._store import Store, Txn
from keymgmt.audit import AUDIT_HEAD, AUDIT_KIND, AuditEntry, AuditLog, entry_name
from keymgmt.clock import SystemClock
from keymgmt.errors import ConflictError
from keymgmt.keyring import Keyring, RawMasterKey
from keymgmt.storage import ANY, Backend, MemoryBackend, Put, SQLiteBackend
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
