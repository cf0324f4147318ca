"""What a transaction only read is checked at commit: read-then-write is serializable.

``Store.transact`` sends a ``Check`` for every record the function only read
(present or absent) and a ``CheckList`` for every listing; another writer
that changed any of them between the read and the commit makes the function
run again on fresh data. The property test at the end runs nested
transactions on two stores sharing one backend and compares the outcome with
every serial order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keymgmt._store import Store, Txn
from keymgmt.audit import AUDIT_HEAD
from keymgmt.errors import ConflictError, InvalidArgumentError
from keymgmt.keyring import KEYRING_RECORD, Keyring, RawMasterKey
from keymgmt.storage import (
    Backend,
    Check,
    CheckList,
    MemoryBackend,
    Operation,
    Record,
    SQLiteBackend,
)
from keymgmt.testing import FakeClock, SeededRandomness

MASTER = bytes(range(32))


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


def _keyring_check(op: Operation) -> bool:
    return isinstance(op, Check) and (op.kind, op.name) == KEYRING_RECORD


class Recording(MemoryBackend):
    """A memory backend that keeps every batch it was asked to commit, and what it raised."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[Operation]] = []
        self.conflicts: list[
            tuple[dict[tuple[str, str], Record], dict[tuple[str, str], Record]]
        ] = []

    def commit(self, operations: Sequence[Operation]) -> list[Record]:
        # Without the keyring check every sealing commit carries (a store key
        # rotated meanwhile; tests/unit/test_store_key_rotation.py covers it).
        self.batches.append([op for op in operations if not _keyring_check(op)])
        before = dict(self._records)
        try:
            return super().commit(operations)
        except ConflictError:
            self.conflicts.append((before, dict(self._records)))
            raise


@pytest.fixture(autouse=True)
def _never_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("keymgmt._store.time.sleep", lambda _seconds: None)


@pytest.fixture(params=["memory", "sqlite"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    backend: Backend = (
        MemoryBackend() if request.param == "memory" else SQLiteBackend(tmp_path / "s.db")
    )
    yield backend
    backend.close()


def _while_running(
    store: Store, other_write: Callable[[], object], fn: Callable[[Txn], object]
) -> list[object]:
    """Run ``fn`` in ``store``; on its first run, ``other_write`` commits before it returns."""
    runs: list[object] = []

    def run(txn: Txn) -> None:
        runs.append(fn(txn))
        if len(runs) == 1:
            other_write()

    store.transact(run)
    return runs


# -- single records --------------------------------------------------------------------------


def test_a_record_read_as_absent_makes_its_creation_meanwhile_rerun_the_function(
    shared: Backend,
) -> None:
    store, other = make_store(shared), make_store(shared)

    def derive(txn: Txn) -> bytes | None:
        flag = txn.get("x", "flag")
        txn.put("x", "derived", b"flag was " + (flag or b"absent"))
        return flag

    runs = _while_running(
        store, lambda: other.transact(lambda t: t.put("x", "flag", b"on")), derive
    )
    assert runs == [None, b"on"]
    assert store.get("x", "derived") == b"flag was on"


def test_a_record_read_and_deleted_meanwhile_makes_the_function_rerun(shared: Backend) -> None:
    store, other = make_store(shared), make_store(shared)
    store.transact(lambda t: t.put("x", "flag", b"on"))

    def delete(txn: Txn) -> None:
        txn.get("x", "flag")
        txn.delete("x", "flag")

    def derive(txn: Txn) -> bytes | None:
        flag = txn.get("x", "flag")
        txn.put("x", "derived", b"flag was " + (flag or b"absent"))
        return flag

    runs = _while_running(store, lambda: other.transact(delete), derive)
    assert runs == [b"on", None]
    assert store.get("x", "derived") == b"flag was absent"


def test_a_record_read_but_unchanged_commits_at_the_first_attempt(shared: Backend) -> None:
    store, other = make_store(shared), make_store(shared)
    store.transact(lambda t: t.put("x", "flag", b"on"))

    def derive(txn: Txn) -> bytes | None:
        flag = txn.get("x", "flag")
        txn.put("x", "derived", b"v")
        return flag

    runs = _while_running(store, lambda: other.transact(lambda t: t.put("x", "else", b"v")), derive)
    assert runs == [b"on"]


def test_write_skew_is_refused_one_of_two_doctors_stays_on_call(shared: Backend) -> None:
    # The classic: at least one doctor on call. Each transaction reads both and
    # takes only its own doctor off call if the other is still on.
    first, second = make_store(shared, 1), make_store(shared, 2)
    first.transact(lambda t: (t.put("oncall", "alice", b"1"), t.put("oncall", "bob", b"1")))

    def leave(me: str, other: str) -> Callable[[Txn], bool]:
        def run(txn: Txn) -> bool:
            if txn.get("oncall", me) == b"1" and txn.get("oncall", other) == b"1":
                txn.put("oncall", me, b"0")
                return True
            return False

        return run

    outcomes: list[bool] = []

    def alice(txn: Txn) -> bool:
        left = leave("alice", "bob")(txn)
        if not outcomes:
            outcomes.append(second.transact(leave("bob", "alice")))  # meanwhile
        return left

    outcomes.append(first.transact(alice))
    assert outcomes == [True, False]
    assert {first.get("oncall", "alice"), first.get("oncall", "bob")} == {b"0", b"1"}


def test_a_failed_check_leaves_the_stored_data_unchanged() -> None:
    backend = Recording()
    store, other = make_store(backend, 1), make_store(backend, 2)
    store.transact(lambda t: t.put("x", "a", b"open"))

    def run(txn: Txn) -> None:
        txn.get("x", "a")
        txn.put("x", "b", b"derived")
        txn.audit("x.derive", "b")

    _while_running(
        store,
        lambda: other.transact(lambda t: (t.get("x", "a"), t.put("x", "a", b"closed"))),
        lambda txn: run(txn),
    )
    assert len(backend.conflicts) == 1
    before, after = backend.conflicts[0]
    assert after == before  # the refused batch wrote nothing: not b, not its audit entry
    assert ("x", "b") not in after


def test_the_checks_name_what_was_only_read_never_what_is_written_or_the_audit_head() -> None:
    backend = Recording()
    store = make_store(backend)
    store.transact(lambda t: (t.put("x", "read", b"r"), t.put("x", "both", b"w")))
    store.audit("warm", "up")  # the audit head is cached from here on

    def run(txn: Txn) -> None:
        txn.get("x", "read")
        txn.get("x", "read")  # twice: one check
        txn.get("x", "absent")
        txn.get("x", "both")
        txn.put("x", "both", b"w2")
        txn.get(*AUDIT_HEAD)
        txn.audit("x.write", "both")

    store.transact(run)
    checks = [op for op in backend.batches[-1] if isinstance(op, Check | CheckList)]
    assert sorted(checks, key=repr) == [Check("x", "absent", 0), Check("x", "read", 1)]


def test_a_name_that_cannot_exist_is_read_as_absent_without_a_check() -> None:
    backend = Recording()
    store = make_store(backend)
    store.transact(lambda t: (t.get("x", ""), t.get("x", "\udc80"), t.put("x", "b", b"v")))
    assert not [op for op in backend.batches[-1] if isinstance(op, Check | CheckList)]


def test_a_transaction_that_writes_nothing_commits_and_checks_nothing() -> None:
    backend = Recording()
    store = make_store(backend)
    store.transact(lambda t: t.put("x", "a", b"v"))
    commits = len(backend.batches)
    assert store.transact(lambda t: t.get("x", "a")) == b"v"
    assert len(backend.batches) == commits


# -- listings (phantoms) -----------------------------------------------------------------------


def test_a_record_created_under_a_listed_prefix_meanwhile_makes_the_function_rerun(
    shared: Backend,
) -> None:
    store, other = make_store(shared), make_store(shared)
    store.transact(lambda t: t.put("member", "team/alice", b"1"))

    def count(txn: Txn) -> int:
        members = txn.list("member", prefix="team/")
        txn.put("team", "size", str(len(members)).encode())
        return len(members)

    runs = _while_running(
        store, lambda: other.transact(lambda t: t.put("member", "team/bob", b"1")), count
    )
    assert runs == [1, 2]
    assert store.get("team", "size") == b"2"


def test_a_listed_record_deleted_meanwhile_makes_the_function_rerun(shared: Backend) -> None:
    store, other = make_store(shared), make_store(shared)
    store.transact(
        lambda t: (t.put("member", "team/alice", b"1"), t.put("member", "team/bob", b"1"))
    )

    def drop_bob(txn: Txn) -> None:
        txn.get("member", "team/bob")
        txn.delete("member", "team/bob")

    def count(txn: Txn) -> int:
        members = txn.list("member", prefix="team/")
        txn.put("team", "size", str(len(members)).encode())
        return len(members)

    runs = _while_running(store, lambda: other.transact(drop_bob), count)
    assert runs == [2, 1]


def test_a_write_outside_the_listed_prefix_does_not_rerun_the_function(shared: Backend) -> None:
    store, other = make_store(shared), make_store(shared)

    def count(txn: Txn) -> int:
        members = txn.list("member", prefix="team/")
        txn.put("team", "size", str(len(members)).encode())
        return len(members)

    runs = _while_running(
        store, lambda: other.transact(lambda t: t.put("member", "teams", b"1")), count
    )
    assert runs == [0]


def test_a_listing_is_one_check_not_one_per_record() -> None:
    backend = Recording()
    store = make_store(backend)
    store.transact(lambda t: [t.put("member", f"team/{i}", b"1") for i in range(20)])

    def run(txn: Txn) -> None:
        txn.list("member", prefix="team/")
        txn.put("team", "size", b"20")

    store.transact(run)
    checks = [op for op in backend.batches[-1] if isinstance(op, Check | CheckList)]
    assert checks == [CheckList("member", "team/", 20, backend.generation() - 1)]


# -- group commit ---------------------------------------------------------------------------------


def test_group_commit_holds_back_an_item_that_writes_what_an_earlier_one_only_read() -> None:
    backend = Recording()
    store = make_store(backend)
    store.transact(lambda t: t.put("x", "shared", b"1"))

    def reader(txn: Txn) -> bytes | None:
        value = txn.get("x", "shared")
        txn.put("x", "copy", value or b"")
        return value

    def writer(txn: Txn) -> None:
        txn.get("x", "shared")
        txn.put("x", "shared", b"2")

    commits = len(backend.batches)
    assert store.transact_many([reader, writer]) == [b"1", None]
    assert len(backend.batches) == commits + 2  # the writer ran after the reader's batch
    assert store.get("x", "copy") == b"1"
    assert store.get("x", "shared") == b"2"


def test_group_commit_items_reading_one_record_share_one_check() -> None:
    backend = Recording()
    store = make_store(backend)
    store.transact(lambda t: t.put("x", "shared", b"1"))

    def reader(name: str) -> Callable[[Txn], None]:
        return lambda txn: txn.put("x", name, txn.get("x", "shared") or b"")

    store.transact_many([reader("a"), reader("b")])
    checks = [op for op in backend.batches[-1] if isinstance(op, Check)]
    assert checks == [Check("x", "shared", 1)]


def test_group_commit_reruns_its_items_when_a_read_went_stale() -> None:
    backend = Recording()
    store, other = make_store(backend, 1), make_store(backend, 2)
    store.transact(lambda t: t.put("x", "shared", b"1"))
    changed: list[bool] = []

    def reader(txn: Txn) -> bytes | None:
        value = txn.get("x", "shared")
        if not changed:
            changed.append(True)
            other.transact(lambda t: (t.get("x", "shared"), t.put("x", "shared", b"2")))
        txn.put("x", "copy", value or b"")
        return value

    assert store.transact_many([reader]) == [b"2"]
    assert store.get("x", "copy") == b"2"


# -- serializability, as a property ----------------------------------------------------------------

_NAMES = ("c/a", "c/b", "c/c", "d")


@st.composite
def _transaction(draw: st.DrawFn) -> tuple[int, tuple[str, ...], bool, str, bool]:
    """(store, records read, lists "c/"?, record written, nested call before the reads?)."""
    return (
        draw(st.integers(0, 1)),
        tuple(draw(st.lists(st.sampled_from(_NAMES), max_size=3, unique=True))),
        draw(st.booleans()),
        draw(st.sampled_from(_NAMES)),
        draw(st.booleans()),
    )


def _value(tid: int, values: dict[str, int], reads: Sequence[str], listed: bool) -> int:
    seen = sum(values.get(name, 0) for name in reads)
    if listed:
        seen += sum(v for n, v in values.items() if n.startswith("c/"))
    return seen * 3 + tid + 1  # depends on the order: serial outcomes differ


def _serial(
    transactions: Sequence[tuple[int, tuple[str, ...], bool, str, bool]], order: Sequence[int]
) -> dict[str, int]:
    values: dict[str, int] = {}
    for tid in order:
        _, reads, listed, target, _ = transactions[tid]
        values[target] = _value(tid, values, reads, listed)
    return values


@settings(max_examples=40, deadline=None)
@given(transactions=st.lists(_transaction(), min_size=2, max_size=4))
def test_nested_transactions_on_two_stores_end_as_some_serial_order(
    transactions: list[tuple[int, tuple[str, ...], bool, str, bool]],
) -> None:
    _check_serializable(transactions, MemoryBackend())


@settings(max_examples=15, deadline=None)
@given(transactions=st.lists(_transaction(), min_size=2, max_size=4))
def test_nested_transactions_on_two_sqlite_stores_end_as_some_serial_order(
    tmp_path_factory: pytest.TempPathFactory,
    transactions: list[tuple[int, tuple[str, ...], bool, str, bool]],
) -> None:
    backend = SQLiteBackend(tmp_path_factory.mktemp("serial") / "s.db")
    try:
        _check_serializable(transactions, backend)
    finally:
        backend.close()


def _check_serializable(
    transactions: list[tuple[int, tuple[str, ...], bool, str, bool]], backend: Backend
) -> None:
    # Transaction i, on its first run, runs transaction i + 1 to its commit
    # (before or after its own reads), so every one commits while the
    # ones before it are between their reads and their commit.
    stores = (make_store(backend, 1), make_store(backend, 2))
    started: set[int] = set()

    def run_from(tid: int) -> None:
        store_index, reads, listed, target, nested_first = transactions[tid]

        def fn(txn: Txn) -> None:
            first = tid not in started
            started.add(tid)
            if first and nested_first and tid + 1 < len(transactions):
                run_from(tid + 1)
            values = {name: int(data) for name in reads if (data := txn.get("v", name))}
            if listed:
                values.update((name, int(data)) for name, data in txn.list("v", prefix="c/"))
            if first and not nested_first and tid + 1 < len(transactions):
                run_from(tid + 1)
            txn.get("v", target)  # read before the write: compare-and-set, not create
            txn.put("v", target, str(_value(tid, values, reads, listed)).encode())

        stores[store_index].transact(fn)

    run_from(0)
    final = {name: int(data) for name, data in stores[0].transact(lambda t: t.list("v"))}
    serial = [
        _serial(transactions, order) for order in itertools.permutations(range(len(transactions)))
    ]
    assert final in serial


def test_without_the_checks_the_nested_schedule_is_not_serializable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The property above can fail: with the read checks switched off (what
    # the store did before), this schedule ends in no serial order.
    monkeypatch.setattr(Txn, "_stage_checks", lambda self, ops: None)
    backend = MemoryBackend()
    first, second = make_store(backend, 1), make_store(backend, 2)
    first.transact(lambda t: (t.put("v", "a", b"1"), t.put("v", "b", b"1")))

    def b_from_a(txn: Txn) -> None:
        txn.get("v", "b")
        txn.put("v", "b", str(int(txn.get("v", "a") or b"0") + 10).encode())

    runs: list[int] = []

    def a_from_b(txn: Txn) -> None:
        value = int(txn.get("v", "b") or b"0")
        txn.get("v", "a")
        runs.append(value)
        if len(runs) == 1:
            second.transact(b_from_a)  # commits meanwhile
        txn.put("v", "a", str(value + 100).encode())

    first.transact(a_from_b)
    assert runs == [1]  # not run again
    # Serial: a then b -> a=101, b=111; b then a -> b=11, a=111. Skewed: a=101, b=11.
    assert (first.get("v", "a"), first.get("v", "b")) == (b"101", b"11")


# -- records read outside the transaction (a part's cache): Txn.expect --------------------------


class _Cache:
    """A part's cache of one record: value and revision, filled outside any transaction."""

    def __init__(self, store: Store, kind: str, name: str) -> None:
        self.store, self.kind, self.name = store, kind, name
        self.refresh()

    def refresh(self) -> None:
        self.value, self.revision = self.store.get_json_with_revision(self.kind, self.name)


def test_get_json_with_revision_returns_the_value_and_its_revision() -> None:
    store = make_store(MemoryBackend())
    assert store.get_json_with_revision("ca", "root") == (None, 0)
    store.transact(lambda t: t.put_json("ca", "root", {"enabled": True}))
    store.transact(lambda t: (t.get("ca", "root"), t.put_json("ca", "root", {"enabled": False})))
    assert store.get_json_with_revision("ca", "root") == ({"enabled": False}, 2)


def test_a_cached_record_declared_with_expect_makes_a_change_meanwhile_rerun_the_function(
    shared: Backend,
) -> None:
    store, other = make_store(shared), make_store(shared)
    store.transact(lambda t: t.put_json("ca", "root", {"enabled": True}))
    cache = _Cache(store, "ca", "root")
    runs: list[bool] = []

    def issue(txn: Txn) -> None:
        if runs:
            cache.refresh()  # what the part's subscribe listener does after a sync
        assert cache.value is not None
        runs.append(cache.value["enabled"])
        if len(runs) == 1:
            other.transact(
                lambda t: (t.get("ca", "root"), t.put_json("ca", "root", {"enabled": False}))
            )
        txn.expect("ca", "root", cache.revision)
        if cache.value["enabled"]:
            txn.put("cert", "1", b"issued")

    store.transact(issue)
    assert runs == [True, False]
    assert store.get("cert", "1") is None


def test_expect_absent_makes_a_creation_meanwhile_rerun_the_function(shared: Backend) -> None:
    store, other = make_store(shared), make_store(shared)
    runs: list[int] = []

    def run(txn: Txn) -> None:
        _, revision = store.get_json_with_revision("ca", "root")
        runs.append(revision)
        if len(runs) == 1:
            other.transact(lambda t: t.put_json("ca", "root", {}))
        txn.expect("ca", "root", revision)
        txn.put("x", "derived", str(revision).encode())

    store.transact(run)
    assert runs == [0, 1]


def test_a_put_after_expect_is_compare_and_set_on_the_expected_revision() -> None:
    backend = Recording()
    store = make_store(backend)
    store.transact(lambda t: t.put("ca", "root", b"v1"))

    def run(txn: Txn) -> None:
        txn.expect("ca", "root", 1)
        txn.put("ca", "root", b"v2")

    store.transact(run)
    assert [(op.name, op.expected) for op in backend.batches[-1] if op.kind == "ca"] == [
        ("root", 1)
    ]
    assert store.get("ca", "root") == b"v2"


def test_a_transaction_that_saw_two_revisions_of_one_record_runs_again() -> None:
    backend = Recording()
    store = make_store(backend)
    store.transact(lambda t: t.put_json("ca", "root", {"v": 1}))
    stale = _Cache(store, "ca", "root")
    store.transact(lambda t: (t.get("ca", "root"), t.put_json("ca", "root", {"v": 2})))
    commits = len(backend.batches)
    runs: list[int] = []

    def run(txn: Txn) -> None:
        runs.append(stale.revision)
        txn.expect("ca", "root", stale.revision)
        txn.get("ca", "root")  # the store has moved on: revision 2
        txn.put("x", "derived", b"v")
        stale.refresh()

    store.transact(run)
    assert runs == [1, 2]
    assert len(backend.batches) == commits + 1  # the stale attempt was never sent


def test_group_commit_runs_an_item_that_saw_two_revisions_on_its_own() -> None:
    backend = Recording()
    store = make_store(backend)
    store.transact(lambda t: t.put_json("ca", "root", {"v": 1}))
    stale = _Cache(store, "ca", "root")
    store.transact(lambda t: (t.get("ca", "root"), t.put_json("ca", "root", {"v": 2})))
    runs: list[int] = []

    def plain(name: str) -> Callable[[Txn], str]:
        return lambda txn: (txn.put("x", name, b"v"), name)[1]

    def cached(txn: Txn) -> int:
        runs.append(stale.revision)
        txn.expect("ca", "root", stale.revision)
        txn.get("ca", "root")
        txn.put("x", "b", b"v")
        stale.refresh()
        return runs[-1]

    commits = len(backend.batches)
    assert store.transact_many([plain("a"), cached, plain("c")]) == ["a", 2, "c"]
    assert runs == [1, 2]
    assert [store.get("x", name) for name in "abc"] == [b"v", b"v", b"v"]
    # a's batch; b, stale, held back with c behind it: run again, it is current.
    assert len(backend.batches) == commits + 2


@pytest.mark.parametrize(
    ("kind", "name", "revision"),
    [("ca", "root", -1), ("ca", "root", True), ("ca", "", 0), ("audit", "x", 0), ("ca", "r", "1")],
)
def test_expect_refuses_what_cannot_be_checked(kind: str, name: str, revision: object) -> None:
    store = make_store(MemoryBackend())
    with pytest.raises(InvalidArgumentError):
        store.transact(lambda t: t.expect(kind, name, revision))  # type: ignore[arg-type]
