"""The embedded default: one SQLite file, WAL mode, durable commits.

Concurrency model: each thread gets its own connection; every write is one
``BEGIN IMMEDIATE`` transaction, so writers from any thread or process are
serialized by SQLite's lock, and readers never block (WAL). Lock contention is
absorbed here — a busy timeout plus bounded retries — so "database is locked"
never reaches the caller. ``synchronous=FULL`` makes every acknowledged commit
durable across power loss and ``kill -9``.

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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final, TypeVar

from keymgmt.errors import (
    ConflictError,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
)
from keymgmt.storage._memory import check_operations
from keymgmt.storage._protocol import ANY, Delete, Operation, Record

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
_LIST = (
    "SELECT kind, name, data, revision, seq FROM records "
    "WHERE kind = ? AND substr(name, 1, ?) = ? AND seq > ? ORDER BY "
)
_LIST_BY_NAME: Final = _LIST + "name"
_LIST_BY_SEQ: Final = _LIST + "seq"


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SQLiteBackend:
    """Records in one SQLite file; see the module docstring.

    Args:
        path: the database file; created (mode 0600) when missing and
            ``create`` is true.
        create: create the file if it does not exist.

    Raises:
        StoreUnavailableError: the file is missing (and ``create`` is false),
            unreadable, or not a keymgmt store.
        SchemaVersionError: the file was written by a newer schema.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._create_file(create)
        self._migrate()

    def __repr__(self) -> str:
        return f"SQLiteBackend({str(self.path)!r})"

    # -- opening -----------------------------------------------------------

    def _create_file(self, create: bool) -> None:
        if self.path.exists():
            if not os.access(self.path, os.R_OK | os.W_OK):
                raise StoreUnavailableError(f"cannot read and write the store file {self.path}")
            return
        if not create:
            raise StoreUnavailableError(f"no store at {self.path}")
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
                self.path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailableError(f"{self.path} is not a keymgmt store ({exc})") from None
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("the store is closed")
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _migrate(self) -> None:
        conn = self._conn
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            app = conn.execute("PRAGMA application_id").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailableError(f"{self.path} is not a keymgmt store ({exc})") from None
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.path} has schema version {version}; this keymgmt reads up to "
                f"{SCHEMA_VERSION}. Upgrade keymgmt to open it.",
                found=version,
                supported=SCHEMA_VERSION,
            )
        if version == SCHEMA_VERSION:
            if app != APPLICATION_ID:
                raise StoreUnavailableError(f"{self.path} is not a keymgmt store")
            return
        with self._write() as cur:
            version = cur.execute("PRAGMA user_version").fetchone()[0]
            app = cur.execute("PRAGMA application_id").fetchone()[0]
            tables = cur.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app not in (0, APPLICATION_ID) or (version == 0 and tables):
                raise StoreUnavailableError(f"{self.path} is not a keymgmt store")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    cur.execute(statement)
            cur.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- transactions ------------------------------------------------------

    @staticmethod
    def _retry_locked(fn: Callable[[], _T]) -> _T:
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
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._retry_locked(lambda: conn.execute("COMMIT"))

    # -- the Backend protocol ----------------------------------------------

    def get(self, kind: str, name: str) -> Record | None:
        """Return the record, or None."""
        row = self._read(
            "SELECT kind, name, data, revision, seq FROM records WHERE kind = ? AND name = ?",
            (kind, name),
        )
        return _record(row[0]) if row else None

    def list(self, kind: str, *, prefix: str = "", after_seq: int = 0) -> builtins.list[Record]:
        """Return matching records (see :class:`~keymgmt.storage.Backend`)."""
        rows = self._read(
            _LIST_BY_SEQ if after_seq else _LIST_BY_NAME,
            (kind, len(prefix), prefix, after_seq),
        )
        return [_record(row) for row in rows]

    def commit(self, operations: Sequence[Operation]) -> builtins.list[Record]:
        """Apply all operations in one transaction."""
        check_operations(operations)
        if not operations:
            return []
        try:
            with self._write() as cur:
                for op in operations:
                    row = cur.execute(
                        "SELECT revision FROM records WHERE kind = ? AND name = ?",
                        (op.kind, op.name),
                    ).fetchone()
                    revision = row[0] if row else 0
                    if op.expected != ANY and op.expected != revision:
                        raise ConflictError(
                            f"record {op.kind}/{op.name} is at revision {revision}, "
                            f"expected {op.expected}",
                            kind=op.kind,
                            name=op.name,
                        )
                seq = cur.execute("UPDATE sequence SET seq = seq + 1 RETURNING seq").fetchone()[0]
                written: builtins.list[Record] = []
                for op in operations:
                    if isinstance(op, Delete):
                        cur.execute(
                            "DELETE FROM records WHERE kind = ? AND name = ?", (op.kind, op.name)
                        )
                        continue
                    revision = cur.execute(
                        "INSERT INTO records (kind, name, data, revision, seq) "
                        "VALUES (?, ?, ?, 1, ?) ON CONFLICT (kind, name) DO UPDATE SET "
                        "data = excluded.data, revision = revision + 1, seq = excluded.seq "
                        "RETURNING revision",
                        (op.kind, op.name, bytes(op.data), seq),
                    ).fetchone()[0]
                    written.append(Record(op.kind, op.name, bytes(op.data), revision, seq))
        except sqlite3.Error as exc:
            raise StoreError(f"write to {self.path} failed: {exc}") from None
        return written

    def generation(self) -> int:
        """Return the latest sequence number."""
        seq = self._read("SELECT seq FROM sequence WHERE id = 1", ())[0][0]
        assert isinstance(seq, int)
        return seq

    def close(self) -> None:
        """Close every connection this backend opened. Idempotent."""
        with self._lock:
            self._closed = True
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    def _read(self, sql: str, params: tuple[object, ...]) -> builtins.list[tuple[object, ...]]:
        conn = self._conn
        try:
            return self._retry_locked(lambda: conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"read from {self.path} failed: {exc}") from None


def _record(row: tuple[object, ...]) -> Record:
    kind, name, data, revision, seq = row
    assert isinstance(kind, str)
    assert isinstance(name, str)
    assert isinstance(data, bytes)
    assert isinstance(revision, int)
    assert isinstance(seq, int)
    return Record(kind, name, data, revision, seq)
