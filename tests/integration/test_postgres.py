"""What only the PostgreSQL backend has: a server, a pool, schemas and migrations."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from keymgmt import KeyManager
from keymgmt.errors import (
    ConflictError,
    InvalidArgumentError,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
    WrongPassphraseError,
)
from keymgmt.keyring import KdfProfile
from keymgmt.revocation import SubjectKind
from keymgmt.storage import ANY, Put

pytestmark = pytest.mark.postgres


@pytest.fixture
def schema(postgres_dsn: str) -> Iterator[str]:
    """A schema name no other test uses; dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"pgtest_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _backend(dsn: str, schema: str, **kwargs: object) -> object:
    from keymgmt.storage.postgres import PostgresBackend

    return PostgresBackend(dsn, schema=schema, **kwargs)  # type: ignore[arg-type]


def test_an_unreachable_server_is_store_unavailable() -> None:
    pytest.importorskip("psycopg")
    from keymgmt.storage.postgres import PostgresBackend

    with pytest.raises(StoreUnavailableError, match="cannot reach PostgreSQL"):
        PostgresBackend("postgresql://nobody:hunter2@127.0.0.1:1/none")


def test_the_password_never_appears_in_errors_or_repr(postgres_dsn: str, schema: str) -> None:
    from keymgmt.storage.postgres import PostgresBackend

    with pytest.raises(StoreUnavailableError) as raised:
        PostgresBackend("postgresql://nobody:hunter2@127.0.0.1:1/none")
    assert "hunter2" not in str(raised.value)
    backend = PostgresBackend(postgres_dsn + "?application_name=x", schema=schema)
    try:
        assert "password" not in repr(backend) or "***" in repr(backend)
    finally:
        backend.close()


def test_a_missing_schema_without_create_is_store_unavailable(
    postgres_dsn: str, schema: str
) -> None:
    from keymgmt.storage.postgres import PostgresBackend

    with pytest.raises(StoreUnavailableError, match="no keymgmt store"):
        PostgresBackend(postgres_dsn, schema=schema, create=False)


def test_a_schema_from_a_newer_keymgmt_is_refused_untouched(postgres_dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    from keymgmt.storage.postgres import SCHEMA_VERSION, PostgresBackend

    PostgresBackend(postgres_dsn, schema=schema).close()
    table = sql.SQL("{}.schema_version").format(sql.Identifier(schema))
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("UPDATE {} SET version = %s").format(table), (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaVersionError) as raised:
        PostgresBackend(postgres_dsn, schema=schema)
    assert raised.value.found == SCHEMA_VERSION + 1  # type: ignore[attr-defined]
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        row = conn.execute(sql.SQL("SELECT version FROM {}").format(table)).fetchone()
    assert row == (SCHEMA_VERSION + 1,)


def test_processes_opening_a_new_schema_at_once_all_succeed(postgres_dsn: str, schema: str) -> None:
    from keymgmt.storage.postgres import PostgresBackend

    errors: list[BaseException] = []
    opened: list[PostgresBackend] = []
    lock = threading.Lock()

    def open_one() -> None:
        try:
            backend = PostgresBackend(postgres_dsn, schema=schema)
        except BaseException as exc:
            errors.append(exc)
            return
        with lock:
            opened.append(backend)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    opened[0].commit([Put("k", "a", b"1", 0)])
    assert all(b.generation() == 1 for b in opened)
    for backend in opened:
        backend.close()


def test_reads_survive_the_server_dropping_pooled_connections(
    postgres_dsn: str, schema: str
) -> None:
    import psycopg

    from keymgmt.storage.postgres import PostgresBackend

    backend = PostgresBackend(postgres_dsn, schema=schema, min_connections=2)
    try:
        backend.commit([Put("k", "a", b"1", 0)])
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                "AND application_name = ''"
            )
        # Every pooled connection is dead now; reads retry once on a fresh one.
        record = backend.get("k", "a")
        assert record is not None
        assert record.data == b"1"
        assert backend.generation() == 1
        # A write is never retried blindly; after at most one failure it works again.
        try:
            backend.commit([Put("k", "b", b"1", 0)])
        except StoreUnavailableError:
            backend.commit([Put("k", "b", b"1", 0)])
        assert backend.get("k", "b") is not None
    finally:
        backend.close()


def test_an_exhausted_pool_times_out_with_store_unavailable(postgres_dsn: str, schema: str) -> None:
    from keymgmt.storage.postgres import PostgresBackend

    backend = PostgresBackend(postgres_dsn, schema=schema, max_connections=1, timeout=0.05)
    held = backend._pool.acquire()
    try:
        with pytest.raises(StoreUnavailableError, match="stayed busy"):
            backend.get("k", "a")
    finally:
        backend._pool.release(held, healthy=True)
    assert backend.get("k", "a") is None
    backend.close()


def test_nul_in_a_record_name_is_an_argument_error(postgres_dsn: str, schema: str) -> None:
    from keymgmt.storage.postgres import PostgresBackend

    backend = PostgresBackend(postgres_dsn, schema=schema)
    try:
        with pytest.raises(InvalidArgumentError):
            backend.commit([Put("k", "a\x00b", b"", ANY)])
        with pytest.raises(InvalidArgumentError):
            backend.get("k", "a\x00")
        with pytest.raises(InvalidArgumentError):
            backend.commit([Put("k", "lone \ud800 surrogate", b"", ANY)])
    finally:
        backend.close()


def test_invalid_pool_sizes_and_schema_are_refused(postgres_dsn: str) -> None:
    from keymgmt.storage.postgres import PostgresBackend

    with pytest.raises(InvalidArgumentError):
        PostgresBackend(postgres_dsn, schema="")
    with pytest.raises(InvalidArgumentError):
        PostgresBackend(postgres_dsn, min_connections=3, max_connections=2)


def test_a_closed_backend_refuses_work(postgres_dsn: str, schema: str) -> None:
    from keymgmt.storage.postgres import PostgresBackend

    backend = PostgresBackend(postgres_dsn, schema=schema)
    backend.close()
    with pytest.raises(StoreError, match="closed"):
        backend.get("k", "a")


def test_a_serializable_server_default_does_not_break_compare_and_set(
    postgres_database: str,
) -> None:
    import psycopg
    from psycopg import sql

    from keymgmt.storage.postgres import PostgresBackend

    with psycopg.connect(postgres_database, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        assert name is not None
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_isolation = 'serializable'").format(
                sql.Identifier(name[0])
            )
        )
    backend = PostgresBackend(postgres_database)
    try:
        backend.commit([Put("k", "n", b"0", 0)])

        errors: list[BaseException] = []

        def bump() -> None:
            try:
                for _ in range(20):
                    while True:
                        current = backend.get("k", "n")
                        assert current is not None
                        value = str(int(current.data) + 1).encode()
                        try:
                            backend.commit([Put("k", "n", value, current.revision)])
                            break
                        except ConflictError:
                            continue
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=bump) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        final = backend.get("k", "n")
        assert final is not None
        assert final.data == b"60"
    finally:
        backend.close()


def test_key_manager_opens_a_postgresql_url_and_reopens_it(postgres_database: str) -> None:
    with KeyManager.open(
        postgres_database, passphrase="pw", kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
    ) as km:
        assert "PostgresBackend" in repr(km)
        km.revocation.revoke(SubjectKind.PRINCIPAL, "mallory")
    with KeyManager.open(postgres_database, passphrase="pw", create=False) as km:
        assert km.revocation.is_revoked(SubjectKind.PRINCIPAL, "mallory")
        assert km.audit.verify().entries == 2
    with pytest.raises(WrongPassphraseError):
        KeyManager.open(postgres_database, passphrase="wrong", create=False)


def test_the_cli_store_option_accepts_a_postgresql_url(postgres_database: str) -> None:
    from click.testing import CliRunner

    from keymgmt.cli import cli

    runner = CliRunner()
    env = {"KEYMGMT_STORE": postgres_database, "KEYMGMT_PASSPHRASE": "pw"}
    created = runner.invoke(cli, ["--insecure-test-kdf", "init"], env=env)
    assert created.exit_code == 0, created.output
    verified = runner.invoke(cli, ["audit", "verify"], env=env)
    assert verified.exit_code == 0, verified.output
    with KeyManager.open(postgres_database, passphrase="pw", create=False) as km:
        assert km.audit.verify().entries >= 1


def test_a_libpq_key_value_dsn_is_refused_rather_than_taken_for_a_file() -> None:
    with pytest.raises(InvalidArgumentError, match="postgresql:// URL"):
        KeyManager.open("host=127.0.0.1 dbname=keys", passphrase="pw")


def test_opening_a_missing_postgresql_store_without_create_changes_nothing(
    postgres_database: str,
) -> None:
    import psycopg

    with pytest.raises(StoreUnavailableError, match="no keymgmt store"):
        KeyManager.open(postgres_database, passphrase="pw", create=False)
    with psycopg.connect(postgres_database) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'keymgmt'"
        ).fetchone()
    assert found == (0,)


# -- checks: what a transaction only read (schema version 2) --------------------------------------


def test_a_version_1_schema_is_migrated_and_old_processes_keep_committing(
    postgres_dsn: str, schema: str
) -> None:
    import psycopg
    from psycopg import sql

    from keymgmt.storage import Check
    from keymgmt.storage.postgres import SCHEMA_VERSION, PostgresBackend

    assert SCHEMA_VERSION == 2
    first = PostgresBackend(postgres_dsn, schema=schema)
    first.commit([Put("k", "a", b"1", 0)])
    first.close()
    s = sql.Identifier(schema)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:  # back to what version 1 made
        conn.execute(sql.SQL("DROP FUNCTION {}.commit_checked").format(s))
        conn.execute(sql.SQL("UPDATE {}.schema_version SET version = 1").format(s))
    backend = PostgresBackend(postgres_dsn, schema=schema)
    try:
        backend.commit([Check("k", "a", 1), Put("k", "b", b"2", 0)])
        with pytest.raises(ConflictError):
            backend.commit([Check("k", "a", 0), Put("k", "c", b"3", 0)])
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            version = conn.execute(sql.SQL("SELECT version FROM {}.schema_version").format(s))
            assert version.fetchone() == (2,)
            # A process of the previous keymgmt, still running, calls commit_batch.
            rows = conn.execute(
                sql.SQL("SELECT * FROM {}.commit_batch(%s, %s, %s, %s)").format(s),
                (["k"], ["d"], [b"4"], [0]),
            ).fetchall()
            assert [row[1:] for row in rows] == [(1, backend.generation(), False)]
        assert [r.name for r in backend.list("k")] == ["a", "b", "d"]
    finally:
        backend.close()


def test_a_failed_check_on_postgresql_writes_nothing_not_even_a_sequence_number(
    postgres_dsn: str, schema: str
) -> None:
    from keymgmt.storage import Check, CheckList, Delete
    from keymgmt.storage.postgres import PostgresBackend

    backend = PostgresBackend(postgres_dsn, schema=schema)
    try:
        backend.commit([Put("k", "a/1", b"1", 0), Put("k", "b", b"1", 0)])
        listing = CheckList("k", "a/", 1, 1)
        backend.commit([Put("k", "a/2", b"phantom", 0)])
        generation = backend.generation()
        for checks in ([listing], [Check("k", "a/1", 2)]):
            with pytest.raises(ConflictError):
                backend.commit([Put("k", "c", b"x", 0), Delete("k", "b", 1), *checks])
        assert backend.generation() == generation
        assert [r.name for r in backend.list("k")] == ["a/1", "a/2", "b"]
    finally:
        backend.close()


def test_a_record_only_read_on_postgresql_makes_a_concurrent_change_rerun_the_function(
    postgres_dsn: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keymgmt._store import Store, Txn
    from keymgmt.keyring import Keyring, RawMasterKey
    from keymgmt.storage.postgres import PostgresBackend
    from keymgmt.testing import FakeClock, SeededRandomness

    monkeypatch.setattr("keymgmt._store.time.sleep", lambda _seconds: None)
    backends = [PostgresBackend(postgres_dsn, schema=schema) for _ in range(2)]
    rng = SeededRandomness(3)
    Keyring.initialize(backends[0], RawMasterKey(bytes(32)), rng)
    store, other = (
        Store(
            backend=backend,
            keyring=Keyring.open(backend, RawMasterKey(bytes(32)), rng),
            clock=FakeClock(),
            randomness=rng,
            consistency_interval=0,
        )
        for backend in backends
    )
    try:
        store.transact(lambda t: t.put("x", "a", b"open"))
        seen: list[bytes | None] = []

        def run(txn: Txn) -> None:
            seen.append(txn.get("x", "a"))
            if len(seen) == 1:  # another process commits between this read and this commit
                other.transact(lambda t: (t.get("x", "a"), t.put("x", "a", b"closed")))
            txn.put("x", "b", b"derived from " + (seen[-1] or b""))
            txn.audit("x.derive", "b")

        store.transact(run)
        assert seen == [b"open", b"closed"]
        assert store.get("x", "b") == b"derived from closed"
    finally:
        for backend in backends:
            backend.close()
