"""An in-memory backend for tests and notebooks."""

from __future__ import annotations

import builtins
import heapq
import threading
from collections.abc import Sequence

from keymgmt.errors import ConflictError, InvalidArgumentError, StoreError
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

__all__ = ["CheckedBatch", "MemoryBackend"]


class CheckedBatch(builtins.list[Operation]):
    """Operations that passed what :func:`check_operations` checks, already.

    The store's :class:`~keymgmt._store.Txn` only ever stages such
    operations (it checks each as it is staged), so the store hands its
    batch over in this type and the built-in backends skip checking it a
    second time. Any other sequence is checked as always: third-party
    callers of ``Backend.commit`` get the full validation. Internal: only
    the store builds one.
    """

    __slots__ = ()


def check_unicode(
    *values: str, message: str = "record kinds and names must be valid Unicode"
) -> None:
    """Refuse text no database can store (lone surrogates do not encode as UTF-8)."""
    for value in values:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgumentError(message) from None


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_list(op: CheckList) -> None:
    if not isinstance(op.kind, str) or not op.kind or not isinstance(op.prefix, str):
        raise InvalidArgumentError("a listing check needs a non-empty kind and a str prefix")
    if not (op.kind.isascii() and op.prefix.isascii()):
        check_unicode(op.kind, op.prefix)
    if not (_is_count(op.count) and _is_count(op.max_seq)):
        raise InvalidArgumentError("a listing check's count and max_seq must be ints >= 0")


def check_operations(operations: Sequence[Operation]) -> None:
    """Refuse batches a backend cannot apply unambiguously."""
    seen: set[tuple[str, str]] = set()
    for op in operations:
        if not isinstance(op, Put | Delete | Check):
            if isinstance(op, CheckList):
                _check_list(op)
                continue
            raise InvalidArgumentError(f"not a storage operation: {type(op).__name__}")
        if (
            not isinstance(op.kind, str)
            or not isinstance(op.name, str)
            or not op.kind
            or not op.name
        ):
            raise InvalidArgumentError("record kind and name must be non-empty strings")
        if not (op.kind.isascii() and op.name.isascii()):
            check_unicode(op.kind, op.name)
        if isinstance(op.expected, bool) or not isinstance(op.expected, int) or op.expected < ANY:
            raise InvalidArgumentError(f"expected revision must be an int >= {ANY}")
        if op.expected == ANY and isinstance(op, Check):
            raise InvalidArgumentError("a check names a revision (0: absent), never ANY")
        if isinstance(op, Put) and not isinstance(op.data, bytes | bytearray | memoryview):
            raise InvalidArgumentError("record data must be bytes")
        key = (op.kind, op.name)
        if key in seen:
            raise InvalidArgumentError(f"record {op.kind}/{op.name} appears twice in one batch")
        seen.add(key)


def check_page(after: object, limit: object) -> None:
    """Refuse a page :meth:`~keymgmt.storage.Backend.scan` cannot read."""
    if type(limit) is not int or limit < 1:
        raise InvalidArgumentError("a page holds at least one record: limit must be an int >= 1")
    if not isinstance(after, str):
        raise InvalidArgumentError("a page starts after a record name: after must be a str")


def listing_conflict(op: CheckList, count: int, newest: int) -> ConflictError:
    """The error for a failed :class:`CheckList` (one wording for every backend)."""
    return ConflictError(
        f"the records {op.kind}/{op.prefix}* changed: {count} of them, the newest written at "
        f"sequence number {newest}; expected {op.count}, none after {op.max_seq}",
        kind=op.kind,
        name=op.prefix,
    )


class MemoryBackend:
    """Records in a dict, guarded by a lock. Nothing survives the process."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], Record] = {}
        # The same records by kind, so a listing reads one kind's records,
        # not the whole store (audit entries, certificates, grants ...).
        self._kinds: dict[str, dict[str, Record]] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryBackend(records={len(self._records)})"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def get(self, kind: str, name: str) -> Record | None:
        """Return the record, or None."""
        with self._lock:
            self._check_open()
            return self._records.get((kind, name))

    def list(self, kind: str, *, prefix: str = "", after_seq: int = 0) -> builtins.list[Record]:
        """Return matching records (see :class:`~keymgmt.storage.Backend`).

        Reads the records of ``kind`` only (time linear in their number; the
        SQLite and PostgreSQL backends answer a prefix from their index).
        """
        with self._lock:
            self._check_open()
            found = [
                r
                for n, r in self._kinds.get(kind, {}).items()
                if n.startswith(prefix) and r.seq > after_seq
            ]
        if after_seq:
            return sorted(found, key=lambda r: r.seq)
        return sorted(found, key=lambda r: r.name)

    def commit(self, operations: Sequence[Operation]) -> builtins.list[Record]:
        """Apply all operations atomically."""
        if type(operations) is not CheckedBatch:
            check_operations(operations)
        with self._lock:
            self._check_open()
            if not operations:
                return []
            records = self._records
            # Check every expected revision (and every check) before changing
            # anything (all or nothing); keep (key, operation, new revision)
            # for the writes.
            staged: builtins.list[tuple[tuple[str, str], Put | Delete, int]] = []
            for op in operations:
                if isinstance(op, CheckList):
                    self._verify_listing(op)
                    continue
                key = (op.kind, op.name)
                current = records.get(key)
                revision = 0 if current is None else current.revision
                expected = op.expected
                if expected != revision and expected != ANY:
                    raise ConflictError(
                        f"record {op.kind}/{op.name} is at revision {revision}, "
                        f"expected {expected}",
                        kind=op.kind,
                        name=op.name,
                    )
                if not isinstance(op, Check):
                    staged.append((key, op, revision + 1))
            if not staged:
                return []  # checks only: nothing written, no sequence number used
            self._seq += 1
            seq = self._seq
            written: builtins.list[Record] = []
            kinds = self._kinds
            for key, op, revision in staged:
                if isinstance(op, Delete):
                    if records.pop(key, None) is not None:
                        del kinds[key[0]][key[1]]
                    continue
                data = op.data
                record = new_record(
                    key[0], key[1], data if type(data) is bytes else bytes(data), revision, seq
                )
                records[key] = record
                of_kind = kinds.get(key[0])
                if of_kind is None:
                    of_kind = kinds[key[0]] = {}
                of_kind[key[1]] = record
                written.append(record)
            return written

    def _verify_listing(self, op: CheckList) -> None:
        """Raise ConflictError unless the listing ``op`` describes is unchanged (under the lock)."""
        of_kind = self._kinds.get(op.kind, {})
        prefix = op.prefix
        if prefix:
            seqs = [r.seq for n, r in of_kind.items() if n.startswith(prefix)]
        else:
            seqs = [r.seq for r in of_kind.values()]
        count, newest = len(seqs), max(seqs, default=0)
        if count != op.count or newest > op.max_seq:
            raise listing_conflict(op, count, newest)

    def kinds(self) -> builtins.list[str]:
        """Return every kind that holds a record, sorted."""
        with self._lock:
            self._check_open()
            return sorted(kind for kind, records in self._kinds.items() if records)

    def scan(self, kind: str, *, after: str = "", limit: int) -> builtins.list[Record]:
        """Return one page of ``kind`` by name (see :class:`~keymgmt.storage.Backend`).

        Time linear in the kind's number of records per page, as :meth:`list`.
        """
        check_page(after, limit)
        with self._lock:
            self._check_open()
            of_kind = self._kinds.get(kind, {})
            names = heapq.nsmallest(limit, (n for n in of_kind if n > after))
            return [of_kind[n] for n in names]

    def generation(self) -> int:
        """Return the latest sequence number."""
        with self._lock:
            self._check_open()
            return self._seq

    def close(self) -> None:
        """Mark closed; later calls raise StoreError."""
        self._closed = True
