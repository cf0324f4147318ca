"""Review of Store.transact_many: one item's faults stay its own; batches keep serial order."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from keymgmt import KeyManager
from keymgmt._store import Store, Txn
from keymgmt.audit import AuditLog
from keymgmt.errors import AlreadyExistsError, InvalidArgumentError, StoreError
from keymgmt.keyring import Keyring, RawMasterKey
from keymgmt.keys import KeyRequest
from keymgmt.model import KeyInfo
from keymgmt.storage import Backend, SQLiteBackend
from keymgmt.testing import FakeClock, SeededRandomness

MASTER = bytes(range(32))


def make_store(backend: Backend, clock: FakeClock, rng: SeededRandomness) -> Store:
    keyring = Keyring.initialize(backend, RawMasterKey(MASTER), rng)
    return Store(
        backend=backend, keyring=keyring, clock=clock, randomness=rng, consistency_interval=0
    )


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock, rng: SeededRandomness) -> Store:
    return make_store(SQLiteBackend(tmp_path / "s.db"), clock, rng)


def create(name: str, **details: str) -> Callable[[Txn], str]:
    def run(txn: Txn) -> str:
        if txn.get("item", name) is not None:
            raise AlreadyExistsError(f"{name} exists")
        txn.put("item", name, b"v")
        txn.audit("item.create", name, **details)
        return name

    return run


# -- one item's invalid audit text ---------------------------------------------------


@pytest.mark.parametrize("field", ["operation", "object", "outcome", "actor"])
def test_an_audit_field_with_a_lone_surrogate_is_refused_when_staged(
    store: Store, field: str
) -> None:
    fields = {"operation": "op", "object": "obj", "outcome": "ok", "actor": "me"}
    fields[field] = "bad \udfff"
    txn = Txn(store)
    with pytest.raises(InvalidArgumentError):
        txn.audit(
            fields["operation"],
            fields["object"],
            outcome=fields["outcome"],
            actor=fields["actor"],
        )


def test_one_items_lone_surrogate_in_its_audit_fails_only_that_item(store: Store) -> None:
    outcomes = store.transact_many([create("a"), create("b", note="bad \ud800"), create("c")])
    assert outcomes[0] == "a"
    assert isinstance(outcomes[1], InvalidArgumentError)
    assert outcomes[2] == "c"
    assert store.get("item", "a") == b"v"
    assert store.get("item", "b") is None
    assert store.get("item", "c") == b"v"
    created = [e.object for e in AuditLog(store).entries() if e.operation == "item.create"]
    assert created == ["a", "c"]
    AuditLog(store).verify()


def test_create_many_with_one_unencodable_actor_creates_the_others(
    tmp_path: Path, clock: FakeClock
) -> None:
    with KeyManager(
        backend=SQLiteBackend(tmp_path / "k.db"),
        master_key=RawMasterKey(MASTER),
        clock=clock,
        randomness=SeededRandomness(3),
    ) as km:
        outcomes = km.keys.create_many(
            [KeyRequest(name="a"), KeyRequest(name="b", actor="\udc80"), KeyRequest(name="c")]
        )
        assert isinstance(outcomes[0], KeyInfo)
        assert isinstance(outcomes[1], InvalidArgumentError)
        assert isinstance(outcomes[2], KeyInfo)
        assert [k.name for k in km.keys.list()] == ["a", "c"]


# -- isolation: a batch keeps the order the functions were given -------------------


def test_an_item_held_back_keeps_its_place_before_later_items(store: Store) -> None:
    # One after another: "a" writes x; "b" needs x and creates y; "c" finds y
    # taken. Holding "b" back must not let "c" take y first.
    def write_x(txn: Txn) -> str:
        txn.put("item", "x", b"a")
        return "a"

    def y_after_x(txn: Txn) -> str:
        if txn.get("item", "x") is None:
            raise AlreadyExistsError("x is missing")
        if txn.get("item", "y") is not None:
            raise AlreadyExistsError("y exists")
        txn.put("item", "y", b"b")
        return "b"

    def y_alone(txn: Txn) -> str:
        if txn.get("item", "y") is not None:
            raise AlreadyExistsError("y exists")
        txn.put("item", "y", b"c")
        return "c"

    outcomes = store.transact_many([write_x, y_after_x, y_alone])
    assert outcomes[:2] == ["a", "b"]
    assert isinstance(outcomes[2], AlreadyExistsError)
    assert store.get("item", "y") == b"b"


def test_a_listing_sees_what_an_earlier_item_of_the_batch_created(store: Store) -> None:
    def add(name: str) -> Callable[[Txn], int]:
        def run(txn: Txn) -> int:
            txn.put("item", name, b"v")
            return 0

        return run

    def count(txn: Txn) -> int:
        found = len(txn.list("item", prefix="p/"))
        txn.put("count", "p", str(found).encode())
        return found

    assert store.transact_many([add("p/1"), add("p/2"), count]) == [0, 0, 2]
    assert store.get("count", "p") == b"2"


def test_a_later_write_into_a_held_items_listing_waits_for_it(store: Store) -> None:
    def write_x(txn: Txn) -> int:
        txn.put("item", "x", b"v")
        return 0

    def count_after_x(txn: Txn) -> int:
        txn.get("item", "x")
        found = len(txn.list("item", prefix="p/"))
        txn.put("count", "p", str(found).encode())
        return found

    def add_p(txn: Txn) -> int:
        txn.put("item", "p/1", b"v")
        return 0

    # One after another the count runs before p/1 exists.
    assert store.transact_many([write_x, count_after_x, add_p]) == [0, 0, 0]
    assert store.get("count", "p") == b"0"


# -- Txn.delete checks a name as Txn.put does -----------------------------------------


def test_a_delete_of_a_name_holding_nul_is_refused_when_staged_as_a_put_is(store: Store) -> None:
    txn = Txn(store)
    with pytest.raises(InvalidArgumentError):
        txn.put("item", "a\x00b", b"v")
    with pytest.raises(InvalidArgumentError):
        txn.delete("item", "a\x00b")


def test_one_items_delete_of_a_nul_name_fails_only_that_item(store: Store) -> None:
    def delete_nul(txn: Txn) -> str:
        txn.delete("item", "a\x00b")
        return "deleted"

    outcomes = store.transact_many([create("a"), delete_nul, create("c")])
    assert outcomes[0] == "a"
    assert isinstance(outcomes[1], InvalidArgumentError)
    assert outcomes[2] == "c"


# -- on PostgreSQL -------------------------------------------------------------------


@pytest.fixture
def pg_backends(postgres_dsn: str) -> Iterator[tuple[Backend, Backend]]:
    from keymgmt.storage.postgres import PostgresBackend

    schema = "review_" + uuid.uuid4().hex[:12]
    first = PostgresBackend(postgres_dsn, schema=schema)
    second = PostgresBackend(postgres_dsn, schema=schema)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_on_postgres_one_items_delete_of_a_nul_name_fails_only_that_item(
    pg_backends: tuple[Backend, Backend], clock: FakeClock, rng: SeededRandomness
) -> None:
    store = make_store(pg_backends[0], clock, rng)

    def delete_nul(txn: Txn) -> str:
        txn.delete("item", "a\x00b")
        return "deleted"

    outcomes = store.transact_many([create("a"), delete_nul, create("c")])
    assert outcomes[0] == "a"
    assert isinstance(outcomes[1], InvalidArgumentError)
    assert outcomes[2] == "c"
    assert store.get("item", "a") == b"v"


def test_on_postgres_a_group_commit_after_another_process_appended_keeps_one_chain(
    pg_backends: tuple[Backend, Backend], clock: FakeClock, rng: SeededRandomness
) -> None:
    mine = make_store(pg_backends[0], clock, rng)
    keyring = Keyring.open(pg_backends[1], RawMasterKey(MASTER), rng)
    other = Store(
        backend=pg_backends[1], keyring=keyring, clock=clock, randomness=rng, actor="other"
    )
    mine.transact(create("first"))  # mine now remembers the audit head
    other.transact(create("theirs"))  # ... which another process moves
    assert mine.transact_many([create("a"), create("b")]) == ["a", "b"]
    other.transact(create("theirs-2"))
    assert mine.transact_many([create("c"), create("c")])[0] == "c"
    entries = list(AuditLog(mine).entries())
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    created = [e.object for e in entries if e.operation == "item.create"]
    assert created == ["first", "theirs", "a", "b", "theirs-2", "c"]
    AuditLog(mine).verify()
    AuditLog(other).verify()


# -- the backend failing in the middle of a batch (a real SQLite file) ------------------


def test_sqlite_failing_mid_batch_writes_nothing_and_the_next_batch_chains_on(
    tmp_path: Path, clock: FakeClock, rng: SeededRandomness
) -> None:
    import sqlite3

    path = tmp_path / "mid.db"
    store = make_store(SQLiteBackend(path), clock, rng)
    assert store.transact_many([create("before")]) == ["before"]  # the head is cached
    head = store.audit_head()
    with sqlite3.connect(path) as raw:  # the third record of the next batch fails
        raw.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON records WHEN NEW.name = 'b' "
            "BEGIN SELECT RAISE(ABORT, 'injected'); END"
        )
    raw.close()
    outcomes = store.transact_many([create("a"), create("b"), create("c")])
    assert all(isinstance(o, StoreError) for o in outcomes)
    assert [store.get("item", n) for n in "abc"] == [None, None, None]
    assert store.audit_head() == head
    with sqlite3.connect(path) as raw:
        raw.execute("DROP TRIGGER boom")
    raw.close()
    assert store.transact_many([create("a"), create("c")]) == ["a", "c"]
    entries = list(AuditLog(store).entries())
    assert [e.object for e in entries if e.operation == "item.create"] == ["before", "a", "c"]
    AuditLog(store).verify()


def test_postgres_failing_mid_batch_writes_nothing_and_the_next_batch_chains_on(
    postgres_dsn: str, clock: FakeClock, rng: SeededRandomness
) -> None:
    import psycopg

    from keymgmt.storage.postgres import PostgresBackend

    schema = "review_" + uuid.uuid4().hex[:12]
    backend = PostgresBackend(postgres_dsn, schema=schema)
    try:
        store = make_store(backend, clock, rng)
        assert store.transact_many([create("before")]) == ["before"]  # the head is cached
        head = store.audit_head()
        with psycopg.connect(postgres_dsn, autocommit=True) as raw:
            raw.execute(
                f"CREATE FUNCTION {schema}.boom() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected'; END $$"
            )
            raw.execute(
                f"CREATE TRIGGER boom BEFORE INSERT ON {schema}.records FOR EACH ROW "
                f"WHEN (NEW.name = 'b') EXECUTE FUNCTION {schema}.boom()"
            )
        outcomes = store.transact_many([create("a"), create("b"), create("c")])
        assert all(isinstance(o, StoreError) for o in outcomes)
        assert [store.get("item", n) for n in "abc"] == [None, None, None]
        assert store.audit_head() == head
        with psycopg.connect(postgres_dsn, autocommit=True) as raw:
            raw.execute(f"DROP TRIGGER boom ON {schema}.records")
        assert store.transact_many([create("a"), create("c")]) == ["a", "c"]
        entries = list(AuditLog(store).entries())
        assert [e.object for e in entries if e.operation == "item.create"] == ["before", "a", "c"]
        AuditLog(store).verify()
    finally:
        backend.close()


def test_after_commit_callbacks_run_once_and_only_for_items_that_committed(
    tmp_path: Path, clock: FakeClock, rng: SeededRandomness
) -> None:
    import sqlite3

    path = tmp_path / "cb.db"
    store = make_store(SQLiteBackend(path), clock, rng)
    ran: list[str] = []

    def noted(name: str) -> Callable[[Txn], str]:
        inner = create(name)

        def run(txn: Txn) -> str:
            result = inner(txn)
            txn.after_commit(lambda: ran.append(name))
            return result

        return run

    # The second "a" is held back once (its first run's callback must not
    # run), then refused.
    outcomes = store.transact_many([noted("a"), noted("a"), noted("b")])
    assert isinstance(outcomes[1], AlreadyExistsError)
    assert ran == ["a", "b"]
    with sqlite3.connect(path) as raw:
        raw.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON records WHEN NEW.name = 'd' "
            "BEGIN SELECT RAISE(ABORT, 'injected'); END"
        )
    raw.close()
    outcomes = store.transact_many([noted("c"), noted("d")])
    assert all(isinstance(o, StoreError) for o in outcomes)
    assert ran == ["a", "b"]
