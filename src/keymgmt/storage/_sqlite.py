"""The embedded default: one SQLite file, WAL mode, durable commits.

Concurrency model: each thread gets its own connection; every write is one
``BEGIN IMMEDIATE`` transaction, so writers from any thread or process are
serialized by SQLite's lock, and readers never block (WAL). Lock contention is
absorbed here — a busy timeout plus bounded retries — so "database is locked"
never reaches the caller. ``synchronous=FULL`` makes every acknowledged commit
durable across power loss and ``kill -9``.

Checks (:class:`~keymgmt.storage.Check`, :class:`~keymgmt.storage.CheckList`)
run inside that same write transaction, before its writes, one indexed read
each: no other writer can commit between them and the writes. A batch of
checks only runs in a deferred (read) transaction, one WAL snapshot.

Schema versions live in ``PRAGMA user_version``; :data:`MIGRATIONS` upgrades
older files step by step, and a file from a newer keymgmt is refused rather
than misread.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final, TypeVar

from keymgmt.errors import (
    ConflictError,
    IntegrityError,
    InvalidArgumentError,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
)
from keymgmt.storage._memory import (
    CheckedBatch,
    check_operations,
    check_page,
    listing_conflict,
)
from keymgmt.storage._protocol import (
    ANY,
    Check,
    CheckList,
    Delete,
    Operation,
    Put,
    Record,
    new_record,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteBackend"]

#: ``PRAGMA application_id`` of a keymgmt store ("KMG1").
APPLICATION_ID: Final = 0x4B4D4731
SCHEMA_VERSION: Final = 1

#: Statements that take a file from version ``n - 1`` to version ``n``.
MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        """CREATE TABLE records (
               kind TEXT NOT NULL,
               name TEXT NOT NULL,
               data BLOB NOT NULL,
               revision INTEGER NOT NULL,
               seq INTEGER NOT NULL,
               PRIMARY KEY (kind, name)
           ) WITHOUT ROWID""",
        "CREATE INDEX records_by_seq ON records (kind, seq)",
        """CREATE TABLE sequence (
               id INTEGER PRIMARY KEY CHECK (id = 1),
               seq INTEGER NOT NULL
           )""",
        "INSERT INTO sequence (id, seq) VALUES (1, 0)",
    ),
}

_BUSY_TIMEOUT_MS: Final = 10_000
_LOCK_RETRY_SECONDS: Final = 60.0
_T = TypeVar("_T")
# Prefix listing is a range on the primary key (kind, name), so it uses the
# index: names sort by UTF-8 bytes, which is code point order, and every name
# that starts with ``prefix`` lies in [prefix, _prefix_end(prefix)).
_LIST = "SELECT kind, name, data, revision, seq FROM records WHERE kind = ? AND name >= ? "
_LIST_TAIL = "AND seq > ? ORDER BY "
_LIST_OPEN: Final = {
    order: _LIST + _LIST_TAIL + order for order in ("name", "seq")
}  # no upper bound (empty prefix, or one made only of U+10FFFF)
_LIST_RANGE: Final = {
    order: _LIST + "AND name < ? " + _LIST_TAIL + order for order in ("name", "seq")
}
_IDENTITY: Final = (
    "SELECT (SELECT user_version FROM pragma_user_version), "
    "(SELECT application_id FROM pragma_application_id), "
    "(SELECT count(*) FROM sqlite_master)"
)
_GET: Final = "SELECT kind, name, data, revision, seq FROM records WHERE kind = ? AND name = ?"
_NEXT_SEQ: Final = "UPDATE sequence SET seq = seq + 1 RETURNING seq"
_REVISION: Final = "SELECT revision FROM records WHERE kind = ? AND name = ?"
_UPSERT: Final = (
    "INSERT INTO records (kind, name, data, revision, seq) VALUES (?, ?, ?, 1, ?) "
    "ON CONFLICT (kind, name) DO UPDATE SET "
    "data = excluded.data, revision = revision + 1, seq = excluded.seq RETURNING revision"
)
# Creation (expected revision 0) and compare-and-set updates know the new
# revision (1, expected + 1): the row count says whether the write happened,
# without a RETURNING clause (which SQLite runs through a temporary table).
_INSERT: Final = (
    "INSERT INTO records (kind, name, data, revision, seq) VALUES (?, ?, ?, 1, ?) "
    "ON CONFLICT (kind, name) DO NOTHING"
)
_UPDATE: Final = (
    "UPDATE records SET data = ?, revision = revision + 1, seq = ? "
    "WHERE kind = ? AND name = ? AND revision = ?"
)
_DELETE: Final = "DELETE FROM records WHERE kind = ? AND name = ?"
# Enumeration (kinds(), scan()): a loose index scan of the primary key, one
# seek per kind (not a pass over every record), and one page by name.
_KINDS: Final = (
    "WITH RECURSIVE k(kind) AS (SELECT min(kind) FROM records UNION ALL "
    "SELECT (SELECT min(kind) FROM records WHERE kind > k.kind) FROM k "
    "WHERE k.kind IS NOT NULL) SELECT kind FROM k WHERE kind IS NOT NULL"
)
_SCAN: Final = (
    "SELECT kind, name, data, revision, seq FROM records "
    "WHERE kind = ? AND name > ? ORDER BY name LIMIT ?"
)
# A listing check (CheckList): how many records the listing holds now, and
# the newest one's seq; a range on the primary key, like _LIST.
_LISTING = "SELECT count(*), coalesce(max(seq), 0) FROM records WHERE kind = ? AND name >= ?"
_LISTING_OPEN: Final = _LISTING
_LISTING_RANGE: Final = _LISTING + " AND name < ?"
_WRITES: Final = (Put, Delete)


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


# fork(): SQLite forbids using a connection in a child process that was
# opened before the fork (its locks belong to the parent: the child's writes
# would go unguarded, and land in a WAL the parent may checkpoint and delete
# as it closes, so acknowledged commits were lost). A child therefore opens
# connections of its own; the inherited ones are never used, closed or
# finalized there, only kept referenced in _INHERITED.
_FORKS = [0]  # how many forks separate this process from the one that started
_INHERITED: list[sqlite3.Connection] = []


def _forked() -> None:
    _FORKS[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class _Holder:
    """Owns one thread's connection; closing it when the thread is gone.

    ``sqlite3.Connection`` cannot be weakly referenced, so each thread's
    connection sits in a holder that lives in the thread-local storage. When
    the thread ends, the holder is collected and its finalizer closes the
    connection, so a server that starts many short-lived threads does not
    leak file descriptors. A holder remembers the process it was made in
    (``fork``): in a forked child it is abandoned (:meth:`abandon`).
    """

    __slots__ = ("__weakref__", "conn", "finalizer", "fork")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.fork = _FORKS[0]
        self.finalizer = weakref.finalize(self, _close_quietly, conn)

    def abandon(self) -> None:
        """Never use, close or finalize this (inherited) connection in this process."""
        self.finalizer.detach()
        _INHERITED.append(self.conn)


def _close_quietly(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.close()


class SQLiteBackend:
    """Records in one SQLite file; see the module docstring.

    Opening checks the file before changing anything in it: a file that is
    not a keymgmt store (another application's SQLite database, or not a
    database at all) or one from a newer schema is refused untouched.

    Args:
        path: the database file; created (mode 0600) when missing and
            ``create`` is true.
        create: create the file if it does not exist.

    Raises:
        StoreUnavailableError: the file is missing (and ``create`` is false),
            unreadable, locked for too long, or not a keymgmt store.
        SchemaVersionError: the file was written by a newer schema.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        candidate: object = path  # checked at run time: callers may be untyped
        if not isinstance(candidate, str | os.PathLike):
            raise InvalidArgumentError(
                f"a store path is a str or a path, not {type(path).__name__}"
            )
        self.path = Path(path)
        # Every connection opens the file this names now: absolute, so a later
        # chdir() cannot point new threads at another file, and read-write
        # only, so a new connection never creates a stand-in (SQLite would,
        # with the default mode) if the file went away; _create_file made it.
        self._uri = self.path.absolute().as_uri() + "?mode=rw"
        self._local = threading.local()
        self._holders: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        self._create_file(create)
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteBackend({str(self.path)!r})"

    # -- opening -----------------------------------------------------------

    def _create_file(self, create: bool) -> None:
        if self.path.exists():
            if self.path.is_dir():
                raise StoreUnavailableError(f"{self.path} is a directory, not a store file")
            if not os.access(self.path, os.R_OK | os.W_OK):
                raise StoreUnavailableError(f"cannot read and write the store file {self.path}")
            return
        if not create:
            raise StoreUnavailableError(f"no store at {self.path} (create one with keymgmt init)")
        if not self.path.parent.is_dir():
            raise StoreUnavailableError(f"directory {self.path.parent} does not exist")
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return  # another process created it first
        except OSError as exc:
            raise StoreUnavailableError(f"cannot create {self.path}: {exc.strerror}") from None
        os.close(fd)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._uri,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
                uri=True,
            )
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open {self.path}: {exc}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            # Identify the file before anything writes to it: switching the
            # journal mode rewrites the header of whatever file this is.
            self._check_identity(conn)
            mode = self._retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreUnavailableError(
                    f"{self.path}: this file system does not support SQLite's WAL mode"
                )
            conn.execute("PRAGMA synchronous = FULL")
            # Freed content is overwritten with zeros, not left in free pages:
            # a destroyed key version's sealed record, an old keyring record
            # (the default of some SQLite builds, not of all).
            conn.execute("PRAGMA secure_delete = ON")
        except BaseException as exc:
            _close_quietly(conn)
            if isinstance(exc, sqlite3.Error):
                raise self._open_error(exc) from None
            raise
        return conn

    def _check_identity(self, conn: sqlite3.Connection) -> None:
        def read() -> tuple[int, int, int]:
            # One statement, so one snapshot: read separately, the three could
            # straddle another connection's migration commit (version and
            # application id from before it, the tables from after it) and a
            # store being created would look like another application's file.
            version, app, tables = conn.execute(_IDENTITY).fetchone()
            return int(version), int(app), int(tables)

        version, app, tables = self._retry_locked(read)
        if app not in (0, APPLICATION_ID) or (app == 0 and tables):
            raise StoreUnavailableError(
                f"{self.path} is an SQLite database of another application, not a keymgmt store"
            )
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.path} has schema version {version}; this keymgmt reads up to "
                f"{SCHEMA_VERSION}. Upgrade keymgmt to open it.",
                found=version,
                supported=SCHEMA_VERSION,
            )

    def _open_error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and _is_locked(exc):
            return StoreUnavailableError(
                f"{self.path} stayed locked by another process for too long ({text})"
            )
        if "not a database" in text or "malformed" in text:
            return StoreUnavailableError(
                f"{self.path} is not a keymgmt store (not a valid SQLite database)"
            )
        return StoreUnavailableError(f"cannot open {self.path}: {text}")

    @property
    def _conn(self) -> sqlite3.Connection:
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is None or holder.fork != _FORKS[0]:
            if holder is not None:  # the parent's, inherited through fork()
                holder.abandon()
            self._check_open()
            conn = self._connect()
            holder = _Holder(conn)
            with self._lock:
                closed = self._closed  # close() may have run while we connected
                if not closed:
                    self._holders.add(holder)
            if closed:
                _close_quietly(conn)
                self._check_open()
            self._local.holder = holder
        return holder.conn

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def _migrate(self) -> None:
        conn = self._conn
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == SCHEMA_VERSION:
                return
            with self._write() as cur:
                # Re-read under the write lock: another process may have
                # migrated the file meanwhile.
                version, app, tables = cur.execute(_IDENTITY).fetchone()
                if app not in (0, APPLICATION_ID) or (version == 0 and tables):
                    raise StoreUnavailableError(f"{self.path} is not a keymgmt store")
                if version > SCHEMA_VERSION:  # a newer keymgmt got there first
                    raise SchemaVersionError(
                        f"{self.path} has schema version {version}; this keymgmt reads up to "
                        f"{SCHEMA_VERSION}. Upgrade keymgmt to open it.",
                        found=version,
                        supported=SCHEMA_VERSION,
                    )
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    try:
                        for statement in MIGRATIONS[step]:
                            cur.execute(statement)
                    except sqlite3.Error as exc:
                        raise StoreError(
                            f"{self.path}: migrating to schema version {step} failed ({exc}); "
                            "the file was left unchanged"
                        ) from None
                cur.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise self._open_error(exc) from None

    # -- transactions ------------------------------------------------------

    @staticmethod
    def _retry_locked(fn: Callable[[], _T]) -> _T:
        try:
            return fn()  # the common case: no contention, no clock reads
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc):
                raise
        deadline = time.monotonic() + _LOCK_RETRY_SECONDS
        delay = 0.001
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        conn = self._conn
        self._retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield conn.cursor()
            self._retry_locked(lambda: conn.execute("COMMIT"))
        except BaseException:
            _abandon(conn)
            raise

    # -- the Backend protocol ----------------------------------------------

    def get(self, kind: str, name: str) -> Record | None:
        """Return the record, or None."""
        row = self._read(_GET, (kind, name))
        return _record(row[0]) if row else None

    def list(self, kind: str, *, prefix: str = "", after_seq: int = 0) -> builtins.list[Record]:
        """Return matching records (see :class:`~keymgmt.storage.Backend`)."""
        order = "seq" if after_seq else "name"
        end = _prefix_end(prefix)
        if end is None:
            rows = self._read(_LIST_OPEN[order], (kind, prefix, after_seq))
        else:
            rows = self._read(_LIST_RANGE[order], (kind, prefix, end, after_seq))
        return [_record(row) for row in rows]

    def kinds(self) -> builtins.list[str]:
        """Return every kind that holds a record, sorted (one index seek per kind)."""
        return sorted(str(row[0]) for row in self._read(_KINDS, ()))

    def scan(self, kind: str, *, after: str = "", limit: int) -> builtins.list[Record]:
        """Return one page of ``kind`` by name (see :class:`~keymgmt.storage.Backend`)."""
        check_page(after, limit)
        return [_record(row) for row in self._read(_SCAN, (kind, after, limit))]

    def commit(self, operations: Sequence[Operation]) -> builtins.list[Record]:
        """Apply all operations in one transaction."""
        if type(operations) is not CheckedBatch:  # the store's Txn checked those
            check_operations(operations)
        if not operations:
            return []
        writes: Sequence[Operation] = operations
        checks: builtins.list[Check | CheckList] = []
        for op in operations:
            if not isinstance(op, _WRITES):
                checks.append(op)
        if checks:
            writes = [op for op in operations if isinstance(op, _WRITES)]
            if not writes:
                return self._verify_only(checks)
        # _write() inlined: this is every transaction's path.
        conn = self._conn
        try:
            self._retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                cur = conn.cursor()
                if checks:  # under the write lock, before any write of the batch
                    self._verify(cur, checks)
                row = cur.execute(_NEXT_SEQ).fetchone()
                if row is None or not isinstance(row[0], int):  # edited by hand
                    raise IntegrityError(f"the change sequence of {self.path} is damaged")
                seq = row[0]
                written: builtins.list[Record] = []
                for op in writes:
                    # Compare-and-set in the write itself (one statement per
                    # operation); a mismatch raises and the batch rolls back.
                    if isinstance(op, Delete):
                        self._delete(cur, op)
                        continue
                    assert isinstance(op, Put)  # the checks were taken out above
                    kind, name, expected = op.kind, op.name, op.expected
                    data = bytes(op.data)
                    if expected == 0:
                        done = cur.execute(_INSERT, (kind, name, data, seq)).rowcount == 1
                        revision = 1
                    elif expected == ANY:
                        row = cur.execute(_UPSERT, (kind, name, data, seq)).fetchone()
                        done, revision = row is not None, row[0] if row else 0
                    else:
                        done = cur.execute(_UPDATE, (data, seq, kind, name, expected)).rowcount == 1
                        revision = expected + 1
                    if not done:
                        raise self._conflict(cur, op)
                    written.append(new_record(kind, name, data, revision, seq))
                self._retry_locked(lambda: conn.execute("COMMIT"))
            except BaseException:
                _abandon(conn)
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"write to {self.path} failed: {exc}") from None
        return written

    def _verify_only(self, checks: builtins.list[Check | CheckList]) -> builtins.list[Record]:
        """A batch of checks only: verify them on one read snapshot, write nothing.

        A deferred transaction: WAL readers see one snapshot from their first
        read on, and need no write lock (nor an fsync).
        """
        conn = self._conn
        try:
            self._retry_locked(lambda: conn.execute("BEGIN"))
            try:
                self._verify(conn.cursor(), checks)
                conn.execute("COMMIT")
            except BaseException:
                _abandon(conn)
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"read from {self.path} failed: {exc}") from None
        return []

    def _verify(self, cur: sqlite3.Cursor, checks: builtins.list[Check | CheckList]) -> None:
        """Raise ConflictError unless every check holds (inside the caller's transaction)."""
        for op in checks:
            if isinstance(op, Check):
                row = cur.execute(_REVISION, (op.kind, op.name)).fetchone()
                if (row[0] if row else 0) != op.expected:
                    raise self._conflict(cur, op)
                continue
            end = _prefix_end(op.prefix)
            if end is None:
                found = cur.execute(_LISTING_OPEN, (op.kind, op.prefix)).fetchone()
            else:
                found = cur.execute(_LISTING_RANGE, (op.kind, op.prefix, end)).fetchone()
            count, newest = found
            if count != op.count or newest > op.max_seq:
                raise listing_conflict(op, count, newest)

    def _delete(self, cur: sqlite3.Cursor, op: Delete) -> None:
        if op.expected == ANY:
            cur.execute(_DELETE, (op.kind, op.name))
        elif op.expected == 0:
            if cur.execute(_REVISION, (op.kind, op.name)).fetchone() is not None:
                raise self._conflict(cur, op)
        elif (
            cur.execute(_DELETE + " AND revision = ?", (op.kind, op.name, op.expected)).rowcount
            != 1
        ):
            raise self._conflict(cur, op)

    @staticmethod
    def _conflict(cur: sqlite3.Cursor, op: Put | Delete | Check) -> ConflictError:
        row = cur.execute(_REVISION, (op.kind, op.name)).fetchone()
        return ConflictError(
            f"record {op.kind}/{op.name} is at revision {row[0] if row else 0}, "
            f"expected {op.expected}",
            kind=op.kind,
            name=op.name,
        )

    def generation(self) -> int:
        """Return the latest sequence number."""
        rows = self._read("SELECT seq FROM sequence WHERE id = 1", ())
        if not rows or not isinstance(rows[0][0], int):
            raise IntegrityError(f"the change sequence of {self.path} is damaged")
        return rows[0][0]

    def erase_residue(self) -> bool:
        """Drop the old copies of rewritten records from the write-ahead log, now.

        SQLite keeps the page images a commit replaced in the ``-wal`` file
        until a checkpoint; after a key version's material is erased (or the
        master key changed) they still hold its old sealed record. A
        ``TRUNCATE`` checkpoint copies the current pages into the database
        (where ``secure_delete`` zeroed the freed content) and empties the
        WAL. It does not wait for readers: while another connection reads an
        older snapshot it cannot finish, and the next one (or the last
        connection's close) does.

        Returns:
            True when the WAL was emptied.
        """
        conn = self._conn
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        except sqlite3.Error:
            return False
        return not busy

    def close(self) -> None:
        """Close every connection this backend opened. Idempotent."""
        with self._lock:
            self._closed = True
            holders = list(self._holders)
            self._holders.clear()
        for holder in holders:
            if holder.fork == _FORKS[0]:
                _close_quietly(holder.conn)
            else:  # the parent's, inherited through fork(): the parent closes it
                holder.abandon()
        self._local = threading.local()

    def _read(self, sql: str, params: tuple[object, ...]) -> builtins.list[tuple[object, ...]]:
        conn = self._conn
        try:
            return self._retry_locked(lambda: conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"read from {self.path} failed: {exc}") from None
        except UnicodeEncodeError:
            raise InvalidArgumentError("record kinds and names must be valid Unicode") from None


def _prefix_end(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix``.

    None when there is none (an empty prefix, or one of U+10FFFF only).
    Surrogates are skipped: they cannot be stored.
    """
    while prefix:
        code = ord(prefix[-1]) + 1
        if code <= 0x10FFFF:
            if 0xD800 <= code <= 0xDFFF:
                code = 0xE000
            return prefix[:-1] + chr(code)
        prefix = prefix[:-1]
    return None


def _record(row: tuple[object, ...]) -> Record:
    kind, name, data, revision, seq = row
    if not (
        isinstance(kind, str)
        and isinstance(name, str)
        and isinstance(data, bytes)
        and isinstance(revision, int)
        and isinstance(seq, int)
    ):
        # Someone edited the file by hand (a TEXT where a BLOB belongs, ...).
        raise IntegrityError(
            f"stored record {kind}/{name} has the wrong column types (the file was edited)",
            kind=str(kind),
            name=str(name),
        )
    return new_record(kind, name, data, revision, seq)


def _abandon(conn: sqlite3.Connection) -> None:
    """Roll back a failed write, if SQLite has not already.

    SQLite rolls some failures back by itself; never leave the connection
    inside a transaction, and never mask the real error.
    """
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
