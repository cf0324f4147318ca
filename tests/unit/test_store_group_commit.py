"""Store.transact_many: independent transactions, one backend commit, per-item outcomes."""

from __future__ import annotations

import builtins
import contextvars
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from keymgmt._store import Store, Txn
from keymgmt.audit import AuditEntry, AuditLog, act_as
from keymgmt.errors import AlreadyExistsError, StoreError
from keymgmt.keyring import Keyring, RawMasterKey
from keymgmt.storage import Backend, MemoryBackend, Operation, Record, SQLiteBackend
from keymgmt.testing import FakeClock, SeededRandomness

MASTER = bytes(range(32))


def make_store(backend: Backend, clock: FakeClock, rng: SeededRandomness) -> Store:
    keyring = (
        Keyring.open(backend, RawMasterKey(MASTER), rng)
        if Keyring.exists(backend)
        else Keyring.initialize(backend, RawMasterKey(MASTER), rng)
    )
    return Store(
        backend=backend, keyring=keyring, clock=clock, randomness=rng, consistency_interval=0
    )


class CountingCommits(MemoryBackend):
    """A memory backend that counts commits and can fail or be overtaken on the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.commits = 0
        self.fail_next = False
        self.before_next: Callable[[], object] | None = None

    def commit(self, operations: Sequence[Operation]) -> builtins.list[Record]:
        self.commits += 1
        if self.fail_next:
            self.fail_next = False
            raise StoreError("the disk is full")
        hook, self.before_next = self.before_next, None
        if hook is not None:
            hook()
        return super().commit(operations)


@pytest.fixture
def backend() -> CountingCommits:
    return CountingCommits()


@pytest.fixture
def store(backend: CountingCommits, clock: FakeClock, rng: SeededRandomness) -> Store:
    return make_store(backend, clock, rng)


def create(name: str, value: bytes = b"v") -> Callable[[Txn], str]:
    """A create-if-absent transaction that audits itself."""

    def run(txn: Txn) -> str:
        if txn.get("item", name) is not None:
            raise AlreadyExistsError(f"{name} exists", key_name=name)
        txn.put("item", name, value)
        txn.audit("item.create", name)
        return name

    return run


def test_successful_items_commit_in_one_backend_write(
    store: Store, backend: CountingCommits
) -> None:
    before = backend.commits
    outcomes = store.transact_many([create(f"k{i}") for i in range(20)])
    assert outcomes == [f"k{i}" for i in range(20)]
    assert backend.commits == before + 1
    assert all(store.get("item", f"k{i}") == b"v" for i in range(20))


def test_each_item_gets_its_own_audit_entry_and_the_chain_verifies(store: Store) -> None:
    store.transact_many([create(f"k{i}") for i in range(5)])
    objects = [e.object for e in AuditLog(store).entries() if e.operation == "item.create"]
    assert objects == [f"k{i}" for i in range(5)]
    assert AuditLog(store).verify().entries == len(list(AuditLog(store).entries()))


def test_a_refused_item_gets_its_exception_and_the_others_commit(store: Store) -> None:
    store.transact(create("taken"))
    outcomes = store.transact_many([create("a"), create("taken"), create("b")])
    assert outcomes[0] == "a"
    assert outcomes[2] == "b"
    assert isinstance(outcomes[1], AlreadyExistsError)
    assert store.get("item", "a") == b"v"
    assert store.get("item", "b") == b"v"


def test_a_refused_item_writes_no_audit_entry(store: Store) -> None:
    store.transact(create("taken"))
    store.transact_many([create("taken")])
    creates = [e.object for e in AuditLog(store).entries() if e.operation == "item.create"]
    assert creates == ["taken"]


def test_two_items_on_one_record_run_one_after_the_other(
    store: Store, backend: CountingCommits
) -> None:
    before = backend.commits
    outcomes = store.transact_many([create("same", b"first"), create("same", b"second")])
    assert outcomes[0] == "same"
    assert isinstance(outcomes[1], AlreadyExistsError)
    assert store.get("item", "same") == b"first"
    assert backend.commits == before + 1  # the second wrote nothing


def test_an_item_reading_an_earlier_items_write_sees_it(store: Store) -> None:
    def bump(txn: Txn) -> int:
        current = int(txn.get("counter", "c") or b"0")
        txn.put("counter", "c", str(current + 1).encode())
        return current + 1

    assert store.transact_many([bump, bump, bump]) == [1, 2, 3]
    assert store.get("counter", "c") == b"3"


def test_a_backend_failure_fails_every_item_of_the_batch_and_writes_nothing(
    store: Store, backend: CountingCommits
) -> None:
    head = store.audit_head()
    backend.fail_next = True
    outcomes = store.transact_many([create("a"), create("b")])
    assert all(isinstance(o, StoreError) for o in outcomes)
    assert store.get("item", "a") is None
    assert store.get("item", "b") is None
    assert store.audit_head() == head
    assert store.transact_many([create("a")]) == ["a"]  # and the store works on
    AuditLog(store).verify()


def test_a_conflict_with_an_outside_writer_reruns_each_item_on_its_own(
    store: Store, backend: CountingCommits, clock: FakeClock, rng: SeededRandomness
) -> None:
    other = make_store(backend, clock, rng)  # another process on the same backend
    backend.before_next = lambda: other.transact(create("b", b"theirs"))
    outcomes = store.transact_many([create("a"), create("b")])
    assert outcomes[0] == "a"
    assert isinstance(outcomes[1], AlreadyExistsError)
    assert store.get("item", "b") == b"theirs"
    AuditLog(store).verify()


def test_a_bug_in_one_item_is_returned_not_raised(store: Store) -> None:
    def broken(txn: Txn) -> str:
        raise RuntimeError("bug")

    outcomes = store.transact_many([create("a"), broken])
    assert outcomes[0] == "a"
    assert isinstance(outcomes[1], RuntimeError)


def test_each_item_names_the_actor_it_ran_as(store: Store) -> None:
    def as_actor(actor: str, name: str) -> Callable[[Txn], str]:
        def run(txn: Txn) -> str:
            txn.put("item", name, b"v")
            txn.audit("item.create", name, actor=actor)
            return name

        return run

    def batch() -> None:
        act_as("batcher")  # the thread's own actor: each item names its own instead
        store.transact_many([as_actor("alice", "a"), as_actor("bob", "b")])

    contextvars.copy_context().run(batch)
    actors = {e.object: e.actor for e in AuditLog(store).entries() if e.operation == "item.create"}
    assert actors == {"a": "alice", "b": "bob"}


def test_an_empty_list_commits_nothing(store: Store, backend: CountingCommits) -> None:
    before = backend.commits
    assert store.transact_many([]) == []
    assert backend.commits == before


def test_group_commit_on_sqlite_lands_every_item_durably(
    tmp_path: Path, clock: FakeClock, rng: SeededRandomness
) -> None:
    path = tmp_path / "group.db"
    backend = SQLiteBackend(path)
    store = make_store(backend, clock, rng)
    store.transact_many([create(f"k{i}") for i in range(50)])
    backend.close()
    reopened = make_store(SQLiteBackend(path), clock, rng)
    assert all(reopened.get("item", f"k{i}") == b"v" for i in range(50))
    entries: list[AuditEntry] = list(AuditLog(reopened).entries())
    assert sum(1 for e in entries if e.operation == "item.create") == 50
    AuditLog(reopened).verify()
