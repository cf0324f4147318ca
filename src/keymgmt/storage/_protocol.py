"""The storage contract every backend implements.

A backend stores opaque byte records addressed by ``(kind, name)``. It knows
nothing about sealing, keys or certificates; the layers above seal what they
store. What a backend must guarantee:

* **Revisions.** Each record has a revision, 1 on creation and +1 on every
  write. A write names the revision it expects (``0``: must not exist;
  :data:`ANY`: unconditional); any mismatch fails the whole batch with
  :class:`~keymgmt.errors.ConflictError` and writes nothing.
* **Atomic batches.** :meth:`Backend.commit` applies all its operations or none.
* **Checks.** A batch may also hold :class:`Check` (a record must be at a
  revision, ``0``: absent) and :class:`CheckList` (a listing must be
  unchanged) operations. They write nothing; they are verified against the
  store as it is just before the batch's writes, atomically with them, and
  a failed one is a :class:`~keymgmt.errors.ConflictError` like a stale
  ``Put``. The store sends them for what a transaction only read, so a
  write that depends on a read cannot land after that read went stale.
* **Enumeration.** :meth:`Backend.kinds` names every kind that holds a
  record and :meth:`Backend.scan` pages through one kind by name, so a
  pass over the whole store (re-sealing after a store key rotation) needs
  neither private attributes nor a whole kind in memory.
* **A change sequence.** Every committed write gets a store-wide, strictly
  increasing sequence number ``seq``; :meth:`Backend.generation` returns the
  latest. Caches compare generations to notice writes by other processes,
  and :meth:`Backend.list` with ``after_seq`` reads only what changed.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Final, Protocol, runtime_checkable

import attrs

__all__ = ["ANY", "Backend", "Check", "CheckList", "Delete", "Operation", "Put", "Record"]

#: Expected revision that matches anything (an unconditional write).
ANY: Final = -1


@attrs.frozen
class Record:
    """One stored record."""

    kind: str
    name: str
    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")
    revision: int
    seq: int


@attrs.frozen
class Put:
    """Create or replace a record, if its current revision is ``expected``."""

    kind: str
    name: str
    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")
    expected: int = ANY


@attrs.frozen
class Delete:
    """Delete a record, if its current revision is ``expected``."""

    kind: str
    name: str
    expected: int = ANY


@attrs.frozen
class Check:
    """Require a record to be at revision ``expected`` (``0``: absent); write nothing.

    Verified with the batch's other operations, against the store as it is
    just before the batch's writes; a mismatch fails the whole batch with
    :class:`~keymgmt.errors.ConflictError`. Unlike a write, a check has no
    :data:`ANY`: it always names a revision. A batch may not name a record
    in a check and in a write (the write's own expected revision says it).
    """

    kind: str
    name: str
    expected: int


@attrs.frozen
class CheckList:
    """Require ``list(kind, prefix=prefix)`` to be what an earlier listing returned; write nothing.

    That listing returned ``count`` records, the newest written at sequence
    number ``max_seq`` (0 for an empty listing). The records of ``kind``
    under ``prefix`` are still exactly those when there are ``count`` of
    them and none was written after ``max_seq``: a record written since
    (changed, or created: a phantom) carries a later sequence number, and
    one deleted since leaves fewer, unless a later one took its place. So
    two numbers stand for the whole listing, and a backend checks them with
    one range read. Verified like :class:`Check`; a mismatch fails the batch
    with :class:`~keymgmt.errors.ConflictError` naming ``kind`` and
    ``prefix``.
    """

    kind: str
    prefix: str
    count: int
    max_seq: int


Operation = Put | Delete | Check | CheckList

# Building Put, Check and Record values on the write path, without attrs' __init__.
# A frozen attrs class sets each field through object.__setattr__ (its own
# __setattr__ refuses); setting the slots through their descriptors makes
# the same value, equal, hashing and printing alike, for about three
# quarters of the cost, and the store builds several per transaction. Put,
# Check and Record have no validators or converters to skip; a field added
# to one fails the unpacking below at once, and the tests check that these
# set every field, in order.
_new = object.__new__
_Setter = Callable[[object, object], None]
_RECORD_SLOTS: Final[tuple[_Setter, ...]] = tuple(
    getattr(Record, field.name).__set__ for field in attrs.fields(Record)
)
_PUT_SLOTS: Final[tuple[_Setter, ...]] = tuple(
    getattr(Put, field.name).__set__ for field in attrs.fields(Put)
)
_CHECK_SLOTS: Final[tuple[_Setter, ...]] = tuple(
    getattr(Check, field.name).__set__ for field in attrs.fields(Check)
)


def new_record(kind: str, name: str, data: bytes, revision: int, seq: int) -> Record:
    """``Record(kind, name, data, revision, seq)``, built without attrs' ``__init__``."""
    record = _new(Record)
    set_kind, set_name, set_data, set_revision, set_seq = _RECORD_SLOTS
    set_kind(record, kind)
    set_name(record, name)
    set_data(record, data)
    set_revision(record, revision)
    set_seq(record, seq)
    return record


def new_put(kind: str, name: str, data: bytes, expected: int) -> Put:
    """``Put(kind, name, data, expected)``, built without attrs' ``__init__``."""
    put = _new(Put)
    set_kind, set_name, set_data, set_expected = _PUT_SLOTS
    set_kind(put, kind)
    set_name(put, name)
    set_data(put, data)
    set_expected(put, expected)
    return put


def new_check(kind: str, name: str, expected: int) -> Check:
    """``Check(kind, name, expected)``, built without attrs' ``__init__``."""
    check = _new(Check)
    set_kind, set_name, set_expected = _CHECK_SLOTS
    set_kind(check, kind)
    set_name(check, name)
    set_expected(check, expected)
    return check


@runtime_checkable
class Backend(Protocol):
    """Typed records with optimistic versioning; see the module docstring."""

    def get(self, kind: str, name: str) -> Record | None:
        """Return the record, or None when it does not exist."""
        ...

    def list(self, kind: str, *, prefix: str = "", after_seq: int = 0) -> builtins.list[Record]:
        """Return records of ``kind`` whose name starts with ``prefix``.

        Ordered by name; with ``after_seq`` > 0 only records written after that
        sequence number, ordered by ``seq``.
        """
        ...

    def commit(self, operations: Sequence[Operation]) -> builtins.list[Record]:
        """Apply all operations atomically; return the records the puts wrote.

        :class:`Check` and :class:`CheckList` operations write nothing: they
        are verified, with the writes' expected revisions, against the store
        as it is just before the batch's writes.

        Raises:
            ConflictError: an expected revision did not match, or a check
                failed; nothing written.
            StoreError: the backend failed; nothing written.
        """
        ...

    def kinds(self) -> builtins.list[str]:
        """Return every record kind that holds at least one record, sorted.

        For what must see every record, whatever part or application wrote
        it (re-sealing under a rotated store key, retiring an old one).

        Raises:
            StoreError: the backend failed.
        """
        ...

    def scan(self, kind: str, *, after: str = "", limit: int) -> builtins.list[Record]:
        """Return at most ``limit`` records of ``kind`` named after ``after``, ordered by name.

        One page of a pass over a kind in bounded memory: start with
        ``after=""`` and pass the last name returned until a page comes
        back shorter than ``limit``. Each page is read on its own (records
        written between pages may or may not be seen).

        Raises:
            InvalidArgumentError: ``limit`` is not an int >= 1.
            StoreError: the backend failed.
        """
        ...

    def generation(self) -> int:
        """Return the sequence number of the latest committed write (0 if none)."""
        ...

    def close(self) -> None:
        """Release connections and files. Idempotent."""
        ...
