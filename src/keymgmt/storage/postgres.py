"""PostgreSQL backend (extra ``keymgmt[postgres]``): many processes, many hosts, one store.

Imported only when asked for (``KeyManager.open("postgresql://...")`` or
``from keymgmt.storage.postgres import PostgresBackend``), so the core
install needs no database driver.

How a commit works
------------------

Every batch is **one** call of the server-side function ``commit_batch``,
i.e. one round trip and one implicit transaction::

    lock the single counter row (SELECT ... FOR UPDATE)
    check every operation's expected revision      -> conflict: write nothing
    counter.seq += 1                                -> this batch's seq
    apply the puts (revision + 1, seq) and deletes
    commit                                          -> releases the counter lock

Taking the counter lock first serializes writers, so batches commit in
``seq`` order. That is what makes ``list(after_seq=n)`` correct under
concurrency: once a reader sees ``generation() == g``, every batch with
``seq <= g`` has committed, and no batch can later commit with a smaller
``seq``. (A PostgreSQL ``SEQUENCE`` would not give this: numbers are handed
out in call order but become visible in commit order, so a reader could skip
a row that commits late with a smaller number.) The price is that writes do
not run in parallel; for a key store, where reads dominate and a write is a
rotation or a revocation, one commit per fsync is plenty (see ``bench/``).

Revision checks run after the lock under READ COMMITTED (each pooled
session is set to it, whatever the server's default), where every statement
of a PL/pgSQL function sees the latest committed data, so a check cannot
pass on a stale read.

A batch holding :class:`~keymgmt.storage.Check` or
:class:`~keymgmt.storage.CheckList` operations (what a transaction only
read) calls ``commit_checked`` instead (schema version 2): it takes the same
counter lock, verifies the checks, then runs ``commit_batch`` for the writes
in the same transaction, still one round trip. Batches without checks call
``commit_batch`` as before, so they pay nothing for checks, and processes of
an older keymgmt that are still running keep working on a migrated schema.

Reads (:meth:`get`, :meth:`list`, :meth:`generation`) are single statements
on an autocommit connection from the backend's pool, prepared by
psycopg after a few uses. :meth:`generation` reads one row by primary key.

Schema
------

All objects live in one PostgreSQL schema (default ``keymgmt``; pass
``schema=`` to keep several stores in one database). ``schema_version``
holds the version; :data:`MIGRATIONS` upgrades step by step under an advisory
lock, so processes opening a new database at the same time do not race, and a
database written by a newer keymgmt is refused with
:class:`~keymgmt.errors.SchemaVersionError`. Names are ``COLLATE "C"`` so
listing order is code point order, as in the other backends.

Errors
------

Connection failures (server down, pool exhausted, bad DSN) raise
:class:`~keymgmt.errors.StoreUnavailableError`; failed revision checks
:class:`~keymgmt.errors.ConflictError`; anything else psycopg raises becomes
:class:`~keymgmt.errors.StoreError`. A read that fails because its pooled
connection died is retried once on a fresh connection; a commit is never
retried blindly (it may have landed), the caller gets the error.

Cross-instance freshness comes from the caller's ``Store.sync()`` comparing
:meth:`generation` (one indexed single-row read): another instance honours a
commit at its first operation that starts after the commit returned, or — when
it caches, with ``consistency_interval`` > 0 — at its first operation more than
``consistency_interval`` seconds after its previous check. No LISTEN/NOTIFY:
the bound holds without it.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from keymgmt.errors import (
    ConflictError,
    InvalidArgumentError,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
)
from keymgmt.storage._memory import (
    check_operations,
    check_page,
    check_unicode,
    listing_conflict,
)
from keymgmt.storage._protocol import Check, CheckList, Delete, Operation, Put, Record
from keymgmt.storage._sqlite import _prefix_end

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresBackend"]

SCHEMA_VERSION: Final = 2

#: Statements that take a schema from version ``n - 1`` to ``n``. ``{s}`` is
#: replaced by the quoted schema name.
MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        """CREATE TABLE {s}.records (
               kind text COLLATE "C" NOT NULL,
               name text COLLATE "C" NOT NULL,
               data bytea NOT NULL,
               revision bigint NOT NULL,
               seq bigint NOT NULL,
               PRIMARY KEY (kind, name)
           )""",
        "CREATE INDEX records_by_seq ON {s}.records (kind, seq)",
        """CREATE TABLE {s}.counter (
               id integer PRIMARY KEY CHECK (id = 1),
               seq bigint NOT NULL
           )""",
        "INSERT INTO {s}.counter (id, seq) VALUES (1, 0)",
        """CREATE FUNCTION {s}.commit_batch(
               p_kind text[], p_name text[], p_data bytea[], p_expected bigint[]
           ) RETURNS TABLE (o_index integer, o_revision bigint, o_seq bigint, o_conflict boolean)
           LANGUAGE plpgsql VOLATILE AS $fn$
           DECLARE
               v_seq bigint;
               v_rev bigint;
           BEGIN
               -- Serialize writers: commit order == seq order (see the module docs).
               PERFORM 1 FROM {s}.counter WHERE id = 1 FOR UPDATE;
               FOR i IN 1 .. cardinality(p_kind) LOOP
                   SELECT r.revision INTO v_rev FROM {s}.records r
                    WHERE r.kind = p_kind[i] AND r.name = p_name[i];
                   IF NOT FOUND THEN
                       v_rev := 0;
                   END IF;
                   IF p_expected[i] <> -1 AND p_expected[i] <> v_rev THEN
                       o_index := i; o_revision := v_rev; o_seq := 0; o_conflict := true;
                       RETURN NEXT;
                       RETURN;
                   END IF;
               END LOOP;
               UPDATE {s}.counter c SET seq = c.seq + 1 WHERE c.id = 1 RETURNING c.seq INTO v_seq;
               FOR i IN 1 .. cardinality(p_kind) LOOP
                   IF p_data[i] IS NULL THEN
                       DELETE FROM {s}.records r WHERE r.kind = p_kind[i] AND r.name = p_name[i];
                   ELSE
                       INSERT INTO {s}.records AS r (kind, name, data, revision, seq)
                       VALUES (p_kind[i], p_name[i], p_data[i], 1, v_seq)
                       ON CONFLICT (kind, name) DO UPDATE
                          SET data = excluded.data, revision = r.revision + 1, seq = excluded.seq
                       RETURNING r.revision INTO v_rev;
                       o_index := i; o_revision := v_rev; o_seq := v_seq; o_conflict := false;
                       RETURN NEXT;
                   END IF;
               END LOOP;
           END
           $fn$""",
    ),
    2: (
        """CREATE FUNCTION {s}.commit_checked(
               p_kind text[], p_name text[], p_data bytea[], p_expected bigint[],
               c_kind text[], c_name text[], c_expected bigint[],
               l_kind text[], l_prefix text[], l_end text[], l_count bigint[], l_max_seq bigint[]
           ) RETURNS TABLE (o_index integer, o_revision bigint, o_seq bigint, o_conflict boolean)
           LANGUAGE plpgsql VOLATILE AS $fn$
           DECLARE
               v_rev bigint;
               v_count bigint;
               v_max bigint;
           BEGIN
               -- commit_batch's lock, taken first (it takes it again: a no-op),
               -- so no writer commits between the checks and the writes.
               PERFORM 1 FROM {s}.counter WHERE id = 1 FOR UPDATE;
               FOR i IN 1 .. cardinality(c_kind) LOOP
                   SELECT r.revision INTO v_rev FROM {s}.records r
                    WHERE r.kind = c_kind[i] AND r.name = c_name[i];
                   IF NOT FOUND THEN
                       v_rev := 0;
                   END IF;
                   IF c_expected[i] <> v_rev THEN
                       o_index := -i; o_revision := v_rev; o_seq := 0; o_conflict := true;
                       RETURN NEXT;
                       RETURN;
                   END IF;
               END LOOP;
               FOR i IN 1 .. cardinality(l_kind) LOOP
                   IF l_end[i] IS NULL THEN
                       SELECT count(*), coalesce(max(r.seq), 0) INTO v_count, v_max
                         FROM {s}.records r WHERE r.kind = l_kind[i] AND r.name >= l_prefix[i];
                   ELSE
                       SELECT count(*), coalesce(max(r.seq), 0) INTO v_count, v_max
                         FROM {s}.records r WHERE r.kind = l_kind[i] AND r.name >= l_prefix[i]
                          AND r.name < l_end[i];
                   END IF;
                   IF v_count <> l_count[i] OR v_max > l_max_seq[i] THEN
                       o_index := -(cardinality(c_kind) + i); o_revision := v_count;
                       o_seq := v_max; o_conflict := true;
                       RETURN NEXT;
                       RETURN;
                   END IF;
               END LOOP;
               IF cardinality(p_kind) > 0 THEN
                   RETURN QUERY SELECT * FROM {s}.commit_batch(p_kind, p_name, p_data, p_expected);
               END IF;
           END
           $fn$""",
    ),
}

#: Advisory lock key that serializes migrations ("KMG1").
_MIGRATION_LOCK: Final = 0x4B4D4731
_CONNECT_TIMEOUT: Final = 10
_T = TypeVar("_T")
_IDLE: Final = 0  # psycopg.pq.TransactionStatus.IDLE
_OK: Final = 0  # psycopg.pq.ConnStatus.OK


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreUnavailableError(
            "the PostgreSQL backend needs psycopg: pip install 'keymgmt[postgres]'"
        ) from None
    return psycopg


# fork(): a child inherits its parent's pooled connections, i.e. the
# parent's sockets. Used there, replies cross between the two processes;
# closed there (a worker closing its store), they end the parent's sessions.
# So every pool of a forked child starts empty: the inherited connections are
# dropped unclosed (psycopg does not end a connection that it garbage-collects
# in another process than the one that opened it).
_POOLS: weakref.WeakSet[_Pool] = weakref.WeakSet()


def _forked() -> None:
    for pool in builtins.list(_POOLS):
        pool.forget_inherited()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class _Pool:
    """A small thread-safe connection pool: idle connections on a stack, a cap on the total.

    Why not ``psycopg_pool``: its checkout and return cost ~35 µs per call,
    a third of a local round trip, and the backend's target is to stay within
    1.5x of a bare connection. Here the fast path is one lock. A connection
    that failed or is not idle is closed instead of returned, and one dead
    connection makes the pool drop its idle ones too, so after a server
    restart reads retry once on a fresh connection and a write fails at most
    once.
    """

    def __init__(self, connect: Callable[[], Any], max_size: int, timeout: float) -> None:
        self._connect = connect
        self._max_size = max_size
        self._timeout = timeout
        self._idle: builtins.list[Any] = []
        self._size = 0  # connections open, idle or in use
        self._waiting = 0
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        _POOLS.add(self)

    def forget_inherited(self) -> None:
        """In a forked child (one thread, at the fork): drop the parent's connections unclosed."""
        self._cond = threading.Condition(threading.Lock())  # a parent thread may have held it
        self._idle = []
        self._size = 0
        self._waiting = 0

    def acquire(self) -> Any:
        deadline: float | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise StoreError("the store is closed")
                if self._idle:
                    return self._idle.pop()
                if self._size < self._max_size:
                    self._size += 1
                    break
                if deadline is None:
                    deadline = time.monotonic() + self._timeout
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreUnavailableError(
                        f"all {self._max_size} PostgreSQL connections stayed busy "
                        f"for {self._timeout} s"
                    )
                self._waiting += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waiting -= 1
        try:
            return self._connect()
        except BaseException:
            self._forget()
            raise

    def _forget(self) -> None:
        with self._cond:
            self._size -= 1
            if self._waiting:
                self._cond.notify()

    def release(self, conn: Any, *, healthy: bool) -> None:
        pgconn = conn.pgconn
        keep = healthy and pgconn.status == _OK and pgconn.transaction_status == _IDLE
        with self._cond:
            if keep and not self._closed:
                self._idle.append(conn)
                if self._waiting:
                    self._cond.notify()
                return
        with contextlib.suppress(Exception):
            conn.close()
        self._forget()

    def discard_idle(self) -> None:
        """Close every idle connection (after one died: the server may have restarted)."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._size -= len(idle)
            if self._waiting:
                self._cond.notify_all()
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._size -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()


_UNPARSABLE: Final = "<unparsable DSN>"


def _redact(dsn: str) -> str:
    """The DSN without its password, for messages and repr."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(dsn)
    except Exception:
        return _UNPARSABLE
    if "password" in params:
        params["password"] = "***"  # noqa: S105 - a mask, not a password
    shown: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
    return make_conninfo("", **shown)


class PostgresBackend:
    """Records in a PostgreSQL database; see the module docstring.

    Safe to share between threads; any number of processes and hosts may
    open the same database and schema.

    Args:
        dsn: a libpq connection string or ``postgresql://`` URI.
        schema: the PostgreSQL schema holding this store's tables.
        create: create the schema and tables when they are missing.
        min_connections: connections the pool keeps open.
        max_connections: the most connections the pool opens at once.
        timeout: seconds to wait for a connection before giving up.

    Raises:
        StoreUnavailableError: psycopg is not installed, the server cannot be
            reached, or the schema is missing (and ``create`` is false).
        SchemaVersionError: the schema was written by a newer keymgmt.
        InvalidArgumentError: an empty schema name.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "keymgmt",
        create: bool = True,
        min_connections: int = 1,
        max_connections: int = 10,
        timeout: float = 30.0,
    ) -> None:
        if not schema or "\x00" in schema:
            raise InvalidArgumentError("the schema name must be non-empty text")
        if not 0 <= min_connections <= max_connections or max_connections < 1:
            raise InvalidArgumentError("need 0 <= min_connections <= max_connections, max >= 1")
        self._psycopg = _import_psycopg()
        from psycopg import sql

        self._display = _redact(dsn)
        if self._display == _UNPARSABLE:
            # libpq's parse error quotes the string, password and all.
            raise StoreUnavailableError(
                "cannot reach PostgreSQL: the connection string is malformed "
                "(not shown: it may hold a password)"
            )
        self.schema = schema
        self._closed = False
        self._lock = threading.Lock()
        quoted = sql.Identifier(schema)
        self._quoted_schema = quoted
        # Rendered once: psycopg would re-render a Composed on every execute.
        self._sql_get = (
            sql.SQL("SELECT data, revision, seq FROM {}.records WHERE kind = %s AND name = %s")
            .format(quoted)
            .as_bytes(None)
        )
        list_sql = (
            "SELECT name, data, revision, seq FROM {}.records "
            "WHERE kind = %s AND name >= %s AND starts_with(name, %s) AND seq > %s ORDER BY "
        )
        self._sql_list_by_name = sql.SQL(list_sql + "name").format(quoted).as_bytes(None)
        self._sql_list_by_seq = sql.SQL(list_sql + "seq").format(quoted).as_bytes(None)
        self._sql_kinds = (
            sql.SQL(
                "WITH RECURSIVE k(kind) AS (SELECT min(kind) FROM {0}.records UNION ALL "
                "SELECT (SELECT min(r.kind) FROM {0}.records r WHERE r.kind > k.kind) FROM k "
                "WHERE k.kind IS NOT NULL) SELECT kind FROM k WHERE kind IS NOT NULL"
            )
            .format(quoted)
            .as_bytes(None)
        )
        self._sql_scan = (
            sql.SQL(
                "SELECT name, data, revision, seq FROM {}.records "
                "WHERE kind = %s AND name > %s ORDER BY name LIMIT %s"
            )
            .format(quoted)
            .as_bytes(None)
        )
        self._sql_generation = (
            sql.SQL("SELECT seq FROM {}.counter WHERE id = 1").format(quoted).as_bytes(None)
        )
        self._sql_commit = (
            sql.SQL(
                "SELECT o_index, o_revision, o_seq, o_conflict FROM "
                "{}.commit_batch(%s::text[], %s::text[], %s::bytea[], %s::bigint[])"
            )
            .format(quoted)
            .as_bytes(None)
        )
        self._sql_commit_checked = (
            sql.SQL(
                "SELECT o_index, o_revision, o_seq, o_conflict FROM {}.commit_checked("
                "%s::text[], %s::text[], %s::bytea[], %s::bigint[], "
                "%s::text[], %s::text[], %s::bigint[], "
                "%s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[])"
            )
            .format(quoted)
            .as_bytes(None)
        )
        self._dsn = dsn
        self._migrate(dsn, create)
        self._pool = _Pool(self._connect, max_connections, timeout)
        # Open the first connections now: a bad DSN fails here, not later.
        opened = [self._pool.acquire() for _ in range(min_connections)]
        for conn in opened:
            self._pool.release(conn, healthy=True)

    def __repr__(self) -> str:
        return f"PostgresBackend({self._display!r}, schema={self.schema!r})"

    # -- opening -----------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        pg = self._psycopg
        try:
            conn: psycopg.Connection[Any] = pg.connect(
                self._dsn, autocommit=True, connect_timeout=_CONNECT_TIMEOUT
            )
        except pg.Error as exc:
            raise StoreUnavailableError(
                f"cannot reach PostgreSQL at {self._display}: {str(exc).strip()}"
            ) from None
        # Revision checks rely on READ COMMITTED (see the module docstring),
        # whatever the server's default_transaction_isolation says. (psycopg's
        # isolation_level does not apply to autocommit statements.)
        try:
            conn.execute(
                "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED"
            )
        except pg.Error as exc:
            conn.close()
            raise StoreUnavailableError(
                f"PostgreSQL at {self._display} refused the session set-up: {exc}"
            ) from None
        return conn

    def _migrate(self, dsn: str, create: bool) -> None:
        psycopg = self._psycopg
        from psycopg import sql

        s = self._quoted_schema
        try:
            conn = psycopg.connect(dsn, autocommit=True, connect_timeout=_CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise StoreUnavailableError(
                f"cannot reach PostgreSQL at {self._display}: {str(exc).strip()}"
            ) from None
        try:
            with conn:
                version = self._read_version(conn)
                if version == SCHEMA_VERSION:
                    return
                if version is None and not create:
                    raise StoreUnavailableError(
                        f"no keymgmt store in schema {self.schema!r} at {self._display}"
                    )
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
                    conn.execute(
                        sql.SQL(
                            "CREATE TABLE IF NOT EXISTS {}.schema_version ("
                            "id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)"
                        ).format(s)
                    )
                    version = self._read_version(conn) or 0
                    self._check_version(version)
                    for step in range(version + 1, SCHEMA_VERSION + 1):
                        for statement in MIGRATIONS[step]:
                            conn.execute(sql.SQL(statement).format(s=s))
                    conn.execute(
                        sql.SQL(
                            "INSERT INTO {}.schema_version (id, version) VALUES (1, %s) "
                            "ON CONFLICT (id) DO UPDATE SET version = excluded.version"
                        ).format(s),
                        (SCHEMA_VERSION,),
                    )
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"PostgreSQL at {self._display}: {exc}") from None
        except psycopg.Error as exc:
            raise StoreError(f"cannot prepare the schema {self.schema!r}: {exc}") from None

    def _read_version(self, conn: psycopg.Connection[Any]) -> int | None:
        from psycopg import sql

        exists = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL",
            (sql.SQL("{}.schema_version").format(self._quoted_schema).as_string(conn),),
        ).fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute(
            sql.SQL("SELECT version FROM {}.schema_version WHERE id = 1").format(
                self._quoted_schema
            )
        ).fetchone()
        if row is None:
            return None
        version = int(row[0])
        self._check_version(version)
        return version

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"schema {self.schema!r} at {self._display} has version {version}; this "
                f"keymgmt reads up to {SCHEMA_VERSION}. Upgrade keymgmt to open it.",
                found=version,
                supported=SCHEMA_VERSION,
            )

    # -- plumbing ----------------------------------------------------------

    def _run(self, what: str, fn: Callable[[psycopg.Connection[Any]], _T], *, retry: bool) -> _T:
        """Run ``fn`` on a pooled connection, translating psycopg's errors."""
        psycopg = self._psycopg
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            if self._closed:
                raise StoreError("the store is closed")
            conn = self._pool.acquire()
            healthy = False
            try:
                result = fn(conn)
                healthy = True
                return result
            except psycopg.OperationalError as exc:
                # The connection died (server restart, network): it is not
                # returned to the pool, nor are its idle siblings, which most
                # likely died with it; so a read may try once more, afresh.
                if self._closed:
                    raise StoreError("the store is closed") from None
                self._pool.discard_idle()
                if attempt + 1 < attempts:
                    continue
                raise StoreUnavailableError(
                    f"{what} on PostgreSQL at {self._display} failed: {str(exc).strip()}"
                ) from None
            except psycopg.Error as exc:
                healthy = not conn.closed
                raise StoreError(
                    f"{what} on PostgreSQL at {self._display} failed: {str(exc).strip()}"
                ) from None
            finally:
                self._pool.release(conn, healthy=healthy)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the Backend protocol ----------------------------------------------

    def get(self, kind: str, name: str) -> Record | None:
        """Return the record, or None."""

        def run(conn: psycopg.Connection[Any]) -> Record | None:
            row = conn.execute(self._sql_get, (kind, name)).fetchone()
            if row is None:
                return None
            return Record(kind, name, bytes(row[0]), row[1], row[2])

        _check_text(kind, name)
        return self._run("read", run, retry=True)

    def list(self, kind: str, *, prefix: str = "", after_seq: int = 0) -> builtins.list[Record]:
        """Return matching records (see :class:`~keymgmt.storage.Backend`)."""
        statement = self._sql_list_by_seq if after_seq else self._sql_list_by_name

        def run(conn: psycopg.Connection[Any]) -> builtins.list[Record]:
            rows = conn.execute(statement, (kind, prefix, prefix, after_seq)).fetchall()
            return [Record(kind, name, bytes(data), rev, seq) for name, data, rev, seq in rows]

        _check_text(kind, prefix)
        return self._run("list", run, retry=True)

    def kinds(self) -> builtins.list[str]:
        """Return every kind that holds a record, sorted (one index seek per kind)."""

        def run(conn: psycopg.Connection[Any]) -> builtins.list[str]:
            return sorted(str(row[0]) for row in conn.execute(self._sql_kinds).fetchall())

        return self._run("list kinds", run, retry=True)

    def scan(self, kind: str, *, after: str = "", limit: int) -> builtins.list[Record]:
        """Return one page of ``kind`` by name (see :class:`~keymgmt.storage.Backend`)."""
        check_page(after, limit)
        _check_text(kind, after)

        def run(conn: psycopg.Connection[Any]) -> builtins.list[Record]:
            rows = conn.execute(self._sql_scan, (kind, after, limit)).fetchall()
            return [Record(kind, name, bytes(data), rev, seq) for name, data, rev, seq in rows]

        return self._run("list", run, retry=True)

    def commit(self, operations: Sequence[Operation]) -> builtins.list[Record]:
        """Apply all operations in one transaction (one round trip).

        Raises:
            ConflictError: an expected revision did not match; nothing written.
            StoreUnavailableError: the server could not be reached; the batch
                may or may not have been applied.
            StoreError: any other database failure; nothing written.
        """
        check_operations(operations)
        if not operations:
            return []
        writes: builtins.list[Put | Delete] = []
        checks: builtins.list[Check] = []
        listings: builtins.list[CheckList] = []
        for op in operations:
            if isinstance(op, CheckList):
                _check_text(op.kind, op.prefix)
                listings.append(op)
                continue
            _check_text(op.kind, op.name)
            if isinstance(op, Check):
                checks.append(op)
            else:
                writes.append(op)
        arguments: tuple[object, ...] = (
            [op.kind for op in writes],
            [op.name for op in writes],
            [bytes(op.data) if isinstance(op, Put) else None for op in writes],
            [op.expected for op in writes],
        )
        statement = self._sql_commit
        if checks or listings:
            statement = self._sql_commit_checked
            arguments += (
                [op.kind for op in checks],
                [op.name for op in checks],
                [op.expected for op in checks],
                [op.kind for op in listings],
                [op.prefix for op in listings],
                [_prefix_end(op.prefix) for op in listings],
                [op.count for op in listings],
                [op.max_seq for op in listings],
            )

        def run(conn: psycopg.Connection[Any]) -> builtins.list[tuple[int, int, int, bool]]:
            return conn.execute(statement, arguments).fetchall()

        rows = self._run("write", run, retry=False)
        written: builtins.list[Record] = []
        for index, revision, seq, conflict in rows:
            if index < 0:  # a check (-1 ..), then a listing check
                if -index <= len(checks):
                    raise _conflict(checks[-index - 1], revision)
                raise listing_conflict(listings[-index - len(checks) - 1], revision, seq)
            op = writes[index - 1]
            if conflict:
                raise _conflict(op, revision)
            assert isinstance(op, Put)
            written.append(Record(op.kind, op.name, bytes(op.data), revision, seq))
        return written

    def generation(self) -> int:
        """Return the latest sequence number (one primary-key read)."""

        def run(conn: psycopg.Connection[Any]) -> int:
            row = conn.execute(self._sql_generation).fetchone()
            if row is None:
                raise StoreError(f"schema {self.schema!r} has lost its counter row")
            return int(row[0])

        return self._run("read", run, retry=True)

    def close(self) -> None:
        """Close the pool and its connections. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._pool.close()


def _conflict(op: Put | Delete | Check, revision: int) -> ConflictError:
    return ConflictError(
        f"record {op.kind}/{op.name} is at revision {revision}, expected {op.expected}",
        kind=op.kind,
        name=op.name,
    )


def _check_text(*values: str) -> None:
    """PostgreSQL text holds neither NUL nor lone surrogates: refuse them up front."""
    for value in values:
        if "\x00" in value:
            raise InvalidArgumentError("record kinds and names may not contain NUL")
        if not value.isascii():
            check_unicode(value)
