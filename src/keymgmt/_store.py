"""The sealed, audited, transactional store every part writes through.

One mechanism for all of keymgmt: a part runs a function inside
:meth:`Store.transact`; the function reads (unsealed) records, stages sealed
writes and audit events, and registers what to do in memory once the write
has landed. The store commits records, audit entries and the sealed audit
head in **one** backend batch with compare-and-set on everything read and
written, and re-runs the function on a conflict. A record the function only
read (present or absent) goes into the batch as a
:class:`~keymgmt.storage.Check` of the revision it read, and each listing as
a :class:`~keymgmt.storage.CheckList` (its record count and newest sequence
number: a record created under it meanwhile, a phantom, fails it too); the
backend verifies them atomically with the writes. So a failed operation
writes nothing, a successful one is always audited, concurrent writers lose
no update, and a transaction that writes commits only if everything it read
is still current: transactions that write are serializable. (One that writes
nothing, not even an audit entry, commits nothing and checks nothing: each
of its reads was current when made.)

Ordering inside one process: the function runs without locks; reading the
audit head, the commit, the after-commit callbacks and the audit sinks run
under one store lock (an ``RLock``), and so do :meth:`Store.sync` and its
listeners. Caches therefore see this process's changes in commit order, and
a sync that read the store before a local commit cannot apply its older
view after that commit. Callbacks and listeners may read the store but must
not block on another thread that is itself waiting to commit.

The audit head (last sequence number, its hash and the head record's
revision) is kept in memory after each of this store's commits, so the next
transaction neither reads nor unseals it. That is safe because the head is
written with compare-and-set on the remembered revision in the same batch:
if anyone else (another process) moved the head meanwhile, the commit
conflicts, the cache is dropped and the transaction runs again on the head
read from the backend. A head never goes back: one that names an older
entry than this store has seen it name (an older sealed head put back over
cut entries, or a restore from a backup) is refused with
:class:`~keymgmt.errors.AuditChainError` instead of being written on, and
so is an entry beyond the head (the head deleted).

Freshness across processes: :meth:`Store.sync` compares the backend's
generation with the last one seen — at most once per ``consistency_interval``
seconds — and tells subscribed caches (key cache, revocation registry) which
records changed. ``consistency_interval=0`` checks before every operation.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeVar

from keymgmt import _codec
from keymgmt._random import Randomness
from keymgmt.audit import (
    AUDIT_HEAD,
    AUDIT_KIND,
    AuditEntry,
    AuditSink,
    check_details,
    current_actor,
    encode_chained,
    entry_name,
    entry_text,
    genesis,
)
from keymgmt.clock import Clock, SystemClock, ensure_aware
from keymgmt.errors import AuditChainError, ConflictError, InvalidArgumentError
from keymgmt.keyring import KEYRING_RECORD, Keyring, MasterKeySource
from keymgmt.storage import ANY, Backend, CheckList, Delete, Put, Record
from keymgmt.storage._memory import CheckedBatch, check_unicode
from keymgmt.storage._protocol import new_check, new_put

__all__ = ["Store", "Txn"]

_T = TypeVar("_T")
_MAX_ATTEMPTS: Final = 200
_RESERVED_KINDS: Final = frozenset({AUDIT_KIND, AUDIT_HEAD[0]})
_PLAINTEXT_TYPES: Final = (bytes, bytearray, memoryview)
_DETAIL_TYPES: Final = (str, int, type(None))  # bool is an int
_log = logging.getLogger("keymgmt")
# What Store._commit tells its caller.
_DONE: Final = object()
_RETRY_NOW: Final = object()
_RETRY_LATER: Final = object()

#: Called with the records written since the last sync (by anyone).
ChangeListener = Callable[[Sequence[Record]], None]


def _check_kind(kind: str) -> None:
    if not isinstance(kind, str):
        raise InvalidArgumentError("record kinds are strings")
    if kind in _RESERVED_KINDS:
        raise InvalidArgumentError(f"record kind {kind!r} is reserved")


_AUDIT_TEXT: Final = "audit text must be valid Unicode (no lone surrogates)"


def _storable(kind: object, name: object) -> bool:
    """Whether a record ``kind``/``name`` can exist (what the backends accept)."""
    if type(kind) is not str or type(name) is not str or not kind or not name:
        return False
    if kind.isascii() and name.isascii():
        return "\x00" not in kind and "\x00" not in name
    try:
        _check_name(kind, name)
    except InvalidArgumentError:
        return False
    return True


def _check_name(kind: str, name: str) -> None:
    # What the backends refuse (check_operations; PostgreSQL also NUL),
    # checked when a delete is staged, as sealing (record_aad) checks a put's
    # name: a name refused only at commit would fail a whole group commit.
    if not kind or not isinstance(name, str) or not name:
        raise InvalidArgumentError("record kind and name must be non-empty strings")
    if "\x00" in name or "\x00" in kind:
        raise InvalidArgumentError("record kinds and names may not contain NUL")
    if not (kind.isascii() and name.isascii()):
        check_unicode(kind, name)


class Txn:
    """A unit of work inside :meth:`Store.transact`. Not thread-safe; not reusable.

    Every operation it stages is already what the backends' ``commit``
    checks for (a :class:`Put` or :class:`Delete` with a non-empty, valid
    Unicode kind and name, an int expected revision, bytes data; each record
    once), so the store hands its batch over as a
    :class:`~keymgmt.storage._memory.CheckedBatch` and the built-in backends
    do not check it again. So is every check it adds at commit: a
    :class:`Check` only for a record name that can exist (an absent read of
    one that cannot needs no check), one per record, never one the batch
    also writes.
    """

    # Slots: one object less to allocate (and for the collector to visit)
    # per transaction, and quicker attribute access on the staging path.
    __slots__ = (
        "_after",
        "_covered",
        "_events",
        "_fence",
        "_listed",
        "_ops",
        "_seen",
        "_stale",
        "_store",
    )

    def __init__(self, store: Store) -> None:
        self._store = store
        #: Every list() this transaction made, as the check that it is unchanged.
        self._listed: tuple[CheckList, ...] = ()
        #: The revision each record had when first read (0: absent).
        self._seen: dict[tuple[str, str], int] = {}
        #: Records first seen in a listing: its CheckList covers them, no Check needed.
        self._covered: set[tuple[str, str]] = set()
        self._ops: dict[tuple[str, str], Put | Delete] = {}
        #: Set when it saw two revisions of one record (get, list, expect): it
        #: cannot commit, and runs again without sending a doomed batch.
        self._stale = False
        #: The keyring record's revision before this transaction's first seal:
        #: its commit checks it (a store key rotated or retired meanwhile).
        self._fence: int | None = None
        # (operation, object, outcome, actor, details, and the two pieces of
        # its JSON text from entry_text, UTF-8) per staged audit entry.
        self._events: list[tuple[str, str, str, str, dict[str, Any], bytes, bytes]] = []
        self._after: list[Callable[[], None]] = []

    @property
    def now(self) -> _dt.datetime:
        """The store clock's current time (aware, UTC)."""
        return self._store.now()

    def get(self, kind: str, name: str) -> bytes | None:
        """Read and unseal a record (or see this transaction's own staged write)."""
        staged = self._ops.get((kind, name))
        if staged is not None:
            return (
                self._store.keyring.unseal(kind, name, staged.data)
                if isinstance(staged, Put)
                else None
            )
        record = self._store.backend.get(kind, name)
        if record is not None:
            if self._seen.setdefault((kind, name), record.revision) != record.revision:
                self._stale = True  # it read another revision before: one of them is stale
            return self._store.keyring.unseal(kind, name, record.data)
        if _storable(kind, name) and self._seen.setdefault((kind, name), 0):
            self._stale = True  # it existed when read before (else: cannot exist, no check)
        return None

    def get_json(self, kind: str, name: str) -> dict[str, Any] | None:
        """Read and decode a sealed JSON record."""
        data = self.get(kind, name)
        return None if data is None else _codec.loads(data)

    def list(self, kind: str, *, prefix: str = "") -> builtins.list[tuple[str, bytes]]:
        """Read and unseal every record of ``kind`` under ``prefix``, sorted by name.

        Includes this transaction's own staged puts and leaves out its
        staged deletes.
        """
        found: dict[str, bytes] = {}
        records = self._store.backend.list(kind, prefix=prefix)
        newest = 0
        seen, covered = self._seen, self._covered
        for record in records:
            key = (kind, record.name)
            if key not in seen:
                seen[key] = record.revision
                covered.add(key)
            elif seen[key] != record.revision:
                self._stale = True
            newest = max(newest, record.seq)
            found[record.name] = self._store.keyring.unseal(kind, record.name, record.data)
        if _storable(kind, prefix or kind):  # else nothing can be listed there
            self._listed = (*self._listed, CheckList(kind, prefix, len(records), newest))
        for (op_kind, name), op in self._ops.items():
            if op_kind != kind or not name.startswith(prefix):
                continue
            if isinstance(op, Put):
                found[name] = self._store.keyring.unseal(kind, name, op.data)
            else:
                found.pop(name, None)
        return sorted(found.items())

    def put(self, kind: str, name: str, plaintext: bytes) -> None:
        """Stage a sealed write.

        Compare-and-set: the record must still be at the revision this
        transaction read, or must not exist if it was never read.

        Raises:
            InvalidArgumentError: a reserved kind, a bad kind or name, or
                ``plaintext`` is not bytes.
        """
        if type(kind) is not str or kind in _RESERVED_KINDS:
            _check_kind(kind)
        candidate: object = plaintext  # checked at run time: callers may be untyped
        if not isinstance(candidate, _PLAINTEXT_TYPES):
            raise InvalidArgumentError("record data must be bytes")
        key = (kind, name)
        if self._fence is None:
            self._fence = self._store.keyring.revision
        # Sealing checks the name (record_aad): non-empty, no NUL, valid Unicode.
        sealed = self._store.keyring.seal(kind, name, plaintext)
        self._ops[key] = new_put(kind, name, sealed, self._seen.get(key, 0))

    def put_json(self, kind: str, name: str, value: dict[str, Any]) -> None:
        """Stage a sealed JSON write."""
        self.put(kind, name, _codec.dumps(value))

    def delete(self, kind: str, name: str) -> None:
        """Stage a delete.

        Compare-and-set when the record was read in this transaction (it must
        still be at that revision); unconditional otherwise.
        """
        _check_kind(kind)
        _check_name(kind, name)
        self._ops[(kind, name)] = Delete(kind, name, self._seen.get((kind, name), ANY))

    def _put_unsealed(self, kind: str, name: str, data: bytes, expected: int) -> None:
        # For the keyring record only: it cannot be sealed (it holds what unseals).
        self._ops[(kind, name)] = Put(kind, name, data, expected)

    def audit(
        self,
        operation: str,
        object: str,
        *,
        outcome: str = "ok",
        actor: str | None = None,
        **details: Any,
    ) -> None:
        """Stage an audit entry; it commits with (and only with) this transaction.

        Raises:
            InvalidArgumentError: a detail is not str, int, bool or None (so
                no bytes, secrets or objects reach the log).
        """
        if not (
            type(operation) is str
            and operation
            and type(object) is str
            and object
            and type(outcome) is str
            and outcome
        ):
            for label, value in (
                ("operation", operation),
                ("object", object),
                ("outcome", outcome),
            ):
                if not isinstance(value, str) or not value:
                    raise InvalidArgumentError(f"audit {label} must be a non-empty string")
        if actor is not None and not isinstance(actor, str):
            raise InvalidArgumentError("audit actor must be a string")
        who = actor or current_actor() or self._store.actor
        # ``details`` is this call's own keyword dict (string keys): only its
        # values need checking; check_details says which one is refused.
        for value in details.values():
            if type(value) is not str and not isinstance(value, _DETAIL_TYPES):
                check_details(details)
        # The entry's JSON text but for its place in the chain, written and
        # UTF-8 encoded now (the commit adds sequence number, time and
        # hashes). Text that cannot be encoded (a lone surrogate) is refused
        # here, in the function that staged it, not at commit: a group
        # commit (Store.transact_many) would otherwise fail every item of
        # the batch for one item's entry.
        try:
            head, middle = entry_text(who, operation, object, outcome, details)
        except ValueError:  # an int with more digits than int-to-str conversion allows
            raise InvalidArgumentError("an audit detail is too large to record") from None
        try:
            head_utf8, middle_utf8 = head.encode(), middle.encode()
        except UnicodeEncodeError:
            raise InvalidArgumentError(_AUDIT_TEXT) from None
        self._events.append((operation, object, outcome, who, details, head_utf8, middle_utf8))

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (update caches here)."""
        self._after.append(callback)

    def expect(self, kind: str, name: str, revision: int) -> None:
        """Depend on a record read outside this transaction, at ``revision`` (0: absent).

        For a value a part took from its own cache (filled with
        :meth:`Store.get_json_with_revision`, kept fresh by
        :meth:`Store.subscribe`) instead of reading it here: the commit
        checks that the record is still at ``revision``, exactly as for a
        record read with :meth:`get`, and a change meanwhile runs the
        function again. A later ``put`` or ``delete`` of the record in this
        transaction is compare-and-set on ``revision``. A transaction that
        saw two revisions of one record (here and through :meth:`get`, say)
        cannot commit: it runs again.

        Raises:
            InvalidArgumentError: a bad kind or name, or a revision that is
                not an int >= 0.
        """
        _check_kind(kind)
        _check_name(kind, name)
        if type(revision) is not int or revision < 0:
            raise InvalidArgumentError("a revision is an int >= 0 (0: absent)")
        if self._seen.setdefault((kind, name), revision) != revision:
            self._stale = True

    def _reads(self) -> dict[tuple[str, str], int]:
        """The records this transaction only read, one by one: what its Checks verify.

        Not those it writes (the write's compare-and-set covers them), nor
        those first seen in a listing (its CheckList covers them), nor the
        store's own reserved records (the audit head is compare-and-set on
        the revision the store remembers; the log is append-only).
        """
        ops, covered = self._ops, self._covered
        return {
            key: revision
            for key, revision in self._seen.items()
            if key not in ops and key not in covered and key[0] not in _RESERVED_KINDS
        }

    def _stage_checks(self, ops: builtins.list[Any]) -> None:
        """Append a Check per record only read and a CheckList per listing to ``ops``.

        As :meth:`_reads` says, inlined: this runs in every transaction that read.
        """
        append = ops.append
        writes, covered = self._ops, self._covered
        for key, revision in self._seen.items():
            if key not in writes and key not in covered and key[0] not in _RESERVED_KINDS:
                append(new_check(key[0], key[1], revision))
        for listing in self._listed:
            if listing.kind not in _RESERVED_KINDS:
                append(listing)


class Store:
    """Sealed records + audit chain + freshness over one backend."""

    def __init__(
        self,
        *,
        backend: Backend,
        keyring: Keyring,
        clock: Clock,
        randomness: Randomness,
        actor: str = "local",
        consistency_interval: float = 1.0,
        audit_sinks: Sequence[AuditSink] = (),
    ) -> None:
        if consistency_interval < 0:
            raise InvalidArgumentError("consistency_interval must be >= 0")
        self.backend = backend
        self.keyring = keyring
        self.clock = clock
        self.randomness = randomness
        self.actor = actor
        self.consistency_interval = consistency_interval
        self._sinks = list(audit_sinks)
        self._listeners: list[ChangeListener] = []
        self._lock = threading.RLock()
        self._seen_generation = backend.generation()
        # (seq, hash, hash in base64 as ASCII bytes, revision) of the audit head as of our
        # last commit, or None: read it from the backend (see the module
        # docstring).
        self._head: tuple[int, bytes, bytes, int] | None = None
        # The newest entry the sealed head has named as far as this store saw:
        # a head never goes back, so one that did was put back (a stale
        # sealed head over cut entries, or a restore) and is not written on.
        self._head_seen = 0
        self._next_check = time.monotonic() + consistency_interval

    def __repr__(self) -> str:
        return f"Store(backend={self.backend!r})"

    # -- reads outside transactions -------------------------------------------

    def get(self, kind: str, name: str) -> bytes | None:
        """Read and unseal one record."""
        record = self.backend.get(kind, name)
        return None if record is None else self.keyring.unseal(kind, name, record.data)

    def get_json(self, kind: str, name: str) -> dict[str, Any] | None:
        """Read and decode one sealed JSON record."""
        data = self.get(kind, name)
        return None if data is None else _codec.loads(data)

    def get_json_with_revision(self, kind: str, name: str) -> tuple[dict[str, Any] | None, int]:
        """Read and decode one sealed JSON record, with its revision (0: absent).

        For caches: a transaction that uses the cached value declares it
        with :meth:`Txn.expect`, so its commit checks the record did not
        change since.
        """
        record = self.backend.get(kind, name)
        if record is None:
            return None, 0
        return _codec.loads(self.keyring.unseal(kind, name, record.data)), record.revision

    def list_json(
        self, kind: str, *, prefix: str = ""
    ) -> builtins.list[tuple[str, dict[str, Any]]]:
        """Read and decode every sealed JSON record of ``kind`` under ``prefix``."""
        return [
            (r.name, _codec.loads(self.keyring.unseal(kind, r.name, r.data)))
            for r in self.backend.list(kind, prefix=prefix)
        ]

    def audit_head(self) -> tuple[int, bytes]:
        """The sealed audit head: (last sequence number, its hash)."""
        data = self.get(*AUDIT_HEAD)
        if data is None:
            return 0, genesis()
        value = _codec.loads(data)
        return int(value["seq"]), _codec.b64d(value["hash"])

    # -- writes -----------------------------------------------------------------

    def now(self) -> _dt.datetime:
        """The clock's current time, checked to be aware and converted to UTC.

        Raises:
            InvalidArgumentError: the injected clock returned a naive datetime.
        """
        return ensure_aware(self.clock.now(), "the clock's time")

    def transact(self, fn: Callable[[Txn], _T]) -> _T:
        """Run ``fn`` in a transaction; commit its writes and audit entries atomically.

        ``fn`` may run several times (on write conflicts), so it must have no
        side effects outside the :class:`Txn`. Exceptions from ``fn`` propagate
        and nothing is written. After the commit, the transaction's
        ``after_commit`` callbacks run, then the audit sinks get the new
        entries; both run in commit order and their exceptions are logged
        (the write has landed), not raised.

        Raises:
            ConflictError: still conflicting after many attempts.
            StoreError: the backend failed; nothing was written.
            AuditChainError: the audit log holds entries its sealed head does
                not cover (changed outside keymgmt); nothing was written.
        """
        delay = 0.0005
        for _attempt in range(_MAX_ATTEMPTS):
            txn = Txn(self)
            result = fn(txn)
            outcome = self._commit(txn)
            if outcome is _DONE:
                return result
            if outcome is _RETRY_NOW:
                continue
            time.sleep(delay * (1 + _jitter()))
            delay = min(delay * 2, 0.05)
        raise ConflictError("too many concurrent writers; the operation was not applied")

    def transact_many(self, fns: Sequence[Callable[[Txn], _T]]) -> builtins.list[_T | Exception]:
        """Run independent transactions and commit them together: group commit.

        Each function runs in its own :class:`Txn`, exactly as under
        :meth:`transact`, and each keeps its own outcome, returned in order:
        its result, or the exception it raised (a :class:`KeyMgmtError`
        refusal such as ``AlreadyExistsError``; anything else is a bug,
        returned rather than raised so the other items' outcome stands). A
        function that raised writes nothing and does not affect the others.

        The functions that succeeded are committed in **one** backend batch
        (one SQLite transaction, one fsync): all their records, their audit
        entries in order (each entry still names its own actor and object;
        the hash chain is one chain), one audit-head update. Every item is
        still atomic: its records and audit entries land together or not at
        all, and a success is only returned once the batch is durable.

        Isolation is that of running them one after another, in the order
        given: a function that reads, lists or writes a record an earlier
        function of the same batch writes (whether it then succeeded or
        raised) is held back, with every function after it, and run again
        after that batch has committed, so it sees the write (two creations
        of one key name give one key and one ``AlreadyExistsError``, never a
        lost update; a later function never overtakes a held one). When the batch
        conflicts with a writer outside it (another process), each of its
        functions runs again on its own through :meth:`transact`, with the
        usual retries. When the backend fails (``StoreError``), every item of
        the batch gets that exception, as it would alone; the batch is one
        backend transaction, so all of it landed or none of it did.

        Args:
            fns: the transaction functions; as for :meth:`transact`, each
                may run more than once and must have no side effects outside
                its :class:`Txn`.

        Returns:
            One outcome per function, in the order given.
        """
        outcomes: builtins.list[Any] = [None] * len(fns)
        pending = builtins.list(range(len(fns)))
        while pending:
            staged: builtins.list[tuple[int, Txn, Any]] = []
            held: builtins.list[int] = []
            written: set[tuple[str, str]] = set()  # by the items staged so far
            read: dict[tuple[str, str], int] = {}  # only read (checked) by them
            for index in pending:
                if held:
                    # After an item held back, so that the batch keeps the
                    # order it was given (what the held item will touch when
                    # it runs again is unknown).
                    held.append(index)
                    continue
                txn = Txn(self)
                failed = False
                try:
                    outcomes[index] = fns[index](txn)
                except Exception as exc:
                    # Final unless it read what an earlier item writes: run
                    # after that item, it may well succeed.
                    outcomes[index] = exc
                    failed = True
                if txn._stale and not failed:
                    # It saw two revisions of one record (get, list, expect): run it
                    # on its own, with transact's bounded retries; after the
                    # items staged before it, if any.
                    if staged:
                        held.append(index)
                    else:
                        try:
                            outcomes[index] = self.transact(fns[index])
                        except Exception as exc:
                            outcomes[index] = exc
                    continue
                if written and (
                    not written.isdisjoint(txn._seen)
                    or not written.isdisjoint(txn._ops)
                    or (txn._listed and _covers(txn._listed, written))
                ):
                    held.append(index)  # after this batch, so it sees the batch's writes
                    continue
                if failed:
                    continue
                reads = txn._reads() if txn._seen else {}
                if read and (
                    not read.keys().isdisjoint(txn._ops)
                    or any(read.get(key, revision) != revision for key, revision in reads.items())
                ):
                    # It writes what an earlier item only read (one batch
                    # cannot both check and write a record), or read it at
                    # another revision (one of the two reads is stale).
                    held.append(index)
                    continue
                written.update(txn._ops)
                read.update(reads)
                staged.append((index, txn, outcomes[index]))
            pending = held
            if not staged:
                continue
            batch = Txn(self)
            batch._seen = read  # none of them written by the batch (held back above)
            fences = [txn._fence for _, txn, _ in staged if txn._fence is not None]
            batch._fence = min(fences) if fences else None
            for _, txn, _ in staged:
                batch._ops.update(txn._ops)
                batch._listed += txn._listed
                batch._events.extend(txn._events)
                batch._after.extend(txn._after)
            try:
                outcome = self._commit(batch)
            except Exception as exc:  # the backend failed: nothing of the batch landed
                for index, _, _ in staged:
                    outcomes[index] = exc
                continue
            if outcome is _DONE:
                continue
            # A writer outside the batch got in between: run each on its own.
            for index, _, _ in staged:
                try:
                    outcomes[index] = self.transact(fns[index])
                except Exception as exc:
                    outcomes[index] = exc
        return outcomes

    def _commit(self, txn: Txn) -> object:
        """Commit ``txn``'s writes and audit entries: ``_DONE``, or when to try again.

        One writer at a time inside this process: reading the audit head,
        committing and updating caches happen in commit order under the
        store lock, so the audit head never conflicts between threads and an
        older transaction's callbacks never overwrite a newer one's.

        Returns:
            ``_DONE``; ``_RETRY_NOW`` when only the remembered audit head was
            stale (someone else appended); ``_RETRY_LATER`` on another conflict.
        """
        with self._lock:
            ops = CheckedBatch(txn._ops.values())
            cached = self._head
            fence = txn._fence if txn._fence is not None or not txn._events else None
            if txn._events and fence is None:
                fence = self.keyring.revision  # before the audit head is sealed
            entries, head = self._stage_audit(txn, ops) if txn._events else ([], None)
            if txn._stale:
                return _RETRY_LATER  # it saw two revisions of one record: one is stale
            if not ops:
                self._run_callbacks(txn)
                return _DONE
            if txn._seen or txn._listed:
                txn._stage_checks(ops)  # what it only read must still be current
            if fence is not None and KEYRING_RECORD not in txn._ops:
                # Sealed under the store keys as of ``fence``: commit only if
                # no key was rotated or retired since (keyring/_rotation.py).
                ops.append(new_check(*KEYRING_RECORD, fence))
            try:
                written = self.backend.commit(ops)
            except ConflictError as exc:
                self._head = None
                conflict = (getattr(exc, "kind", None), getattr(exc, "name", None))
                if head is not None and cached is not None and conflict == AUDIT_HEAD:
                    return _RETRY_NOW
                if conflict == KEYRING_RECORD:
                    self.keyring.refresh()  # seal again under the store keys as they are now
                    return _RETRY_NOW
                if head is not None and conflict[0] == AUDIT_KIND:
                    self._check_head_covers(conflict[1])
                return _RETRY_LATER
            except BaseException:
                self._head = None  # the write may or may not have landed
                raise
            if head is not None:
                # The head was written with compare-and-set on revision
                # head[3], so it is now at the next revision.
                self._head = (head[0], head[1], head[2], head[3] + 1)
                self._head_seen = head[0]
            # Our own writes are applied by the after-commit callbacks; then
            # remember the generation so sync does not read them back (after
            # the callbacks: whoever reads synced_generation must find the
            # caches holding what it covers). If another process wrote in
            # between, keep the old mark: sync reads both back (listeners
            # are idempotent).
            for callback in txn._after:
                _call_logged(callback, what="after-commit callback")
            if written and written[0].seq == self._seen_generation + 1:
                self._seen_generation = written[0].seq
            for entry in entries:
                for sink in self._sinks:
                    _call_logged(sink, entry, what="audit sink")
            return _DONE

    def _check_head_covers(self, name: object) -> None:
        """After a write found audit entry ``name`` there already: is it the sealed head's?

        Another writer appends its entries and moves the sealed head in one
        batch, so an entry exists only with a head that covers it. An
        entry beyond the head (the head deleted, or an older sealed head put
        back) was written outside keymgmt: every retry would meet it again.

        Raises:
            AuditChainError: the entry is beyond the sealed head.
        """
        if not (isinstance(name, str) and name.isascii() and name.isdigit()):
            return  # not an entry name this store staged
        seq, _ = self.audit_head()
        if seq < int(name):
            raise AuditChainError(
                f"the audit log holds entry {int(name)} but its sealed head names entry {seq}: "
                "the log or its head was changed outside keymgmt (keymgmt audit verify); "
                "nothing was written",
                position=seq + 1,
            )

    @staticmethod
    def _run_callbacks(txn: Txn) -> None:
        for callback in txn._after:
            _call_logged(callback, what="after-commit callback")

    def erase_residue(self) -> None:
        """Ask the backend to drop old copies of records now (best effort).

        After secret material was erased (a destroyed key version) or the
        master key changed: SQLite empties its write-ahead log, which still
        holds the replaced sealed records (:meth:`SQLiteBackend.erase_residue
        <keymgmt.storage.SQLiteBackend.erase_residue>`); backends without
        such copies (memory) or that keep them until their own maintenance
        (PostgreSQL: until ``VACUUM``) have no such method.
        """
        erase = getattr(self.backend, "erase_residue", None)
        if callable(erase):
            erase()

    def change_master_key(self, new_source: MasterKeySource) -> None:
        """Re-wrap the store key under a new master key, audited in the same write.

        Raises:
            ConflictError: another process changed the master key since this
                store was opened (reopen it).
            InvalidArgumentError: ``new_source`` is not a master key source.
        """
        candidate: object = new_source  # checked at run time: callers may be untyped
        if not isinstance(candidate, MasterKeySource):
            raise InvalidArgumentError(
                "the master key must be a Passphrase, KeyFile, RawMasterKey or Pkcs11Key"
            )
        parameters, master = new_source.create(self.randomness)

        def run(txn: Txn) -> None:
            put = self.keyring.prepare_master_key_change(parameters, master)
            txn._put_unsealed(put.kind, put.name, put.data, put.expected)
            txn.audit(
                "store.change-master-key", "store", source=str(parameters.get("type", "unknown"))
            )
            txn.after_commit(lambda: self.keyring.master_key_changed(put))
            txn.after_commit(self.erase_residue)  # the old keyring record in the WAL

        self.transact(run)

    def audit(self, operation: str, object: str, **kwargs: Any) -> None:
        """Append one audit entry on its own (for decisions that change nothing else)."""
        self.transact(lambda txn: txn.audit(operation, object, **kwargs))

    def _stage_audit(
        self, txn: Txn, ops: builtins.list[Any]
    ) -> tuple[builtins.list[AuditEntry], tuple[int, bytes, bytes, int]]:
        """Stage the transaction's audit entries and the new sealed head.

        Returns the entries (built only when an audit sink will receive
        them) and (new seq, new hash, its base64, the head revision the put
        expects). Runs under the store lock.
        """
        cached = self._head
        if cached is not None:
            seq, prev, prev_b64, revision = cached
        else:
            record = self.backend.get(*AUDIT_HEAD)
            if record is None:
                seq, prev, revision = 0, genesis(), 0
                prev_b64 = _codec.b64e(prev).encode()
            else:
                head = _codec.loads(self.keyring.unseal(*AUDIT_HEAD, record.data))
                seq, prev = int(head["seq"]), _codec.b64d(head["hash"])
                prev_b64 = _codec.b64e(prev).encode()  # canonical, whatever the head held
                revision = record.revision
            if seq < self._head_seen:
                raise AuditChainError(
                    f"the sealed audit head names entry {seq}, but this store saw it name "
                    f"entry {self._head_seen}: an older head was put back or the head removed "
                    "(were the newest entries cut? keymgmt audit verify; after restoring a "
                    "backup, restart); nothing was written",
                    position=seq + 1,
                )
            self._head_seen = seq
        if type(self.clock) is SystemClock:
            # The wall clock's microseconds without building (and checking) a
            # datetime: the same reading datetime.now(UTC) would give.
            micros = time.time_ns() // 1000
        else:
            micros = _codec.to_micros(self.now())
        # The entries themselves are built only for the audit sinks.
        now = _codec.from_micros(micros) if self._sinks else None
        entries = []
        append = ops.append
        for operation, object_, outcome, actor, details, text, middle in txn._events:
            seq += 1
            digest, digest_b64, stored = encode_chained(seq, micros, prev_b64, text, middle)
            append(new_put(AUDIT_KIND, entry_name(seq), stored, 0))
            if now is not None:
                entries.append(
                    AuditEntry(
                        seq=seq,
                        time=now,
                        actor=actor,
                        operation=operation,
                        object=object_,
                        outcome=outcome,
                        details=details,
                        prev_hash=prev,
                        hash=digest,
                    )
                )
            prev, prev_b64 = digest, digest_b64
        # Canonical JSON of {"hash": ..., "seq": ...} (what _codec.dumps writes).
        head_json = b'{"hash":"%s","seq":%d}' % (prev_b64, seq)
        sealed_head = self.keyring.seal(*AUDIT_HEAD, head_json)
        append(new_put(AUDIT_HEAD[0], AUDIT_HEAD[1], sealed_head, revision))
        return entries, (seq, prev, prev_b64, revision)

    # -- freshness --------------------------------------------------------------

    def subscribe(self, listener: ChangeListener) -> None:
        """Call ``listener`` with records written (here or elsewhere) since the last sync."""
        self._listeners.append(listener)

    @property
    def head_seen(self) -> int:
        """The newest audit entry this store has seen the sealed head name (0: none yet)."""
        return self._head_seen

    @property
    def synced_generation(self) -> int:
        """The store generation this process has taken in: its last sync, or its own commits.

        Caches fed by :meth:`subscribe` reflect at least this generation, so
        a number derived from it never claims writes they have not seen.
        """
        return self._seen_generation

    def sync(self, *, force: bool = False) -> None:
        """Notice writes by other processes; at most once per ``consistency_interval``.

        Listeners run under the store's write lock, so a sync that read the
        store before a local commit cannot apply its older view after that
        commit's callbacks. A non-forced sync never waits for that lock:
        while another thread of this process is committing, lookups answer
        from memory at once and the check happens on the next call.
        """
        now = time.monotonic()
        if not force and now < self._next_check:
            return
        if not self._lock.acquire(blocking=force):
            return
        try:
            self._next_check = now + self.consistency_interval
            generation = self.backend.generation()
            if generation == self._seen_generation:
                return
            # A generation below the one seen: the store went back (restored
            # from a backup). Its next writes reuse sequence numbers already
            # seen here, so read every watched record again, not only those
            # after the old mark (they would be skipped until it was passed).
            since = self._seen_generation if generation > self._seen_generation else 0
            changed: builtins.list[Record] = []
            for kind in self._watched_kinds:
                changed.extend(self.backend.list(kind, after_seq=since))
            for listener in self._listeners:
                listener(changed)
            # Only once every listener has taken the changes: if one raised (a
            # damaged record, say), the next sync reads them again instead of
            # silently skipping them.
            self._seen_generation = max(since, generation)
        finally:
            self._lock.release()

    _watched_kinds: tuple[str, ...] = ()

    def watch(self, *kinds: str) -> None:
        """Include ``kinds`` in what :meth:`sync` reads back when the generation moves."""
        self._watched_kinds = tuple(sorted({*self._watched_kinds, *kinds}))


def _covers(ranges: Sequence[CheckList], keys: Iterable[tuple[str, str]]) -> bool:
    """Whether a listing in ``ranges`` includes one of ``keys``."""
    if not ranges:
        return False
    return any(
        kind == listing.kind and name.startswith(listing.prefix)
        for kind, name in keys
        for listing in ranges
    )


def _jitter() -> float:
    """A fraction in [0, 1) for retry backoff (from os.urandom: no second RNG)."""
    return int.from_bytes(os.urandom(2), "big") / 65536


def _call_logged(fn: Callable[..., object], *args: object, what: str) -> None:
    try:
        fn(*args)
    except Exception:
        _log.exception("keymgmt: %s failed after a committed write", what)
