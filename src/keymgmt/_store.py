"""The sealed, audited, transactional store every part writes through.

One mechanism for all of keymgmt: a part runs a function inside
:meth:`Store.transact`; the function reads (unsealed) records, stages sealed
writes and audit events, and registers what to do in memory once the write
has landed. The store commits records, audit entries and the sealed audit
head in **one** backend batch with compare-and-set on everything read, and
re-runs the function on a conflict. So a failed operation writes nothing, a
successful one is always audited, and concurrent writers lose no update.

Freshness across processes: :meth:`Store.sync` compares the backend's
generation with the last one seen — at most once per ``consistency_interval``
seconds — and tells subscribed caches (key cache, revocation registry) which
records changed. ``consistency_interval=0`` checks before every operation.
"""

from __future__ import annotations

import builtins
import random as _jitter  # backoff jitter only; never for secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from keymgmt import _codec
from keymgmt._random import Randomness
from keymgmt.audit import AUDIT_HEAD, AUDIT_KIND, AuditEntry, AuditSink, entry_name, genesis
from keymgmt.clock import Clock
from keymgmt.errors import ConflictError, InvalidArgumentError
from keymgmt.keyring import Keyring
from keymgmt.storage import ANY, Backend, Delete, Operation, Put, Record

__all__ = ["Store", "Txn"]

_T = TypeVar("_T")
_MAX_ATTEMPTS: Final = 200

#: Called with the records written since the last sync (by anyone).
ChangeListener = Callable[[Sequence[Record]], None]


class Txn:
    """A unit of work inside :meth:`Store.transact`. Not thread-safe; not reusable."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._seen: dict[tuple[str, str], int] = {}
        self._ops: dict[tuple[str, str], Operation] = {}
        self._events: list[dict[str, Any]] = []
        self._after: list[Callable[[], None]] = []

    @property
    def now(self) -> Any:
        """The store clock's current time."""
        return self._store.clock.now()

    def _observe(self, record: Record | None, kind: str, name: str) -> None:
        self._seen.setdefault((kind, name), record.revision if record else 0)

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
        self._observe(record, kind, name)
        return None if record is None else self._store.keyring.unseal(kind, name, record.data)

    def get_json(self, kind: str, name: str) -> dict[str, Any] | None:
        """Read and decode a sealed JSON record."""
        data = self.get(kind, name)
        return None if data is None else _codec.loads(data)

    def list(self, kind: str, *, prefix: str = "") -> builtins.list[tuple[str, bytes]]:
        """Read and unseal every record of ``kind`` under ``prefix``."""
        out = []
        for record in self._store.backend.list(kind, prefix=prefix):
            self._observe(record, kind, record.name)
            out.append((record.name, self._store.keyring.unseal(kind, record.name, record.data)))
        return out

    def put(self, kind: str, name: str, plaintext: bytes) -> None:
        """Stage a sealed write.

        Compare-and-set: the record must still be at the revision this
        transaction read, or must not exist if it was never read.
        """
        if kind in (AUDIT_KIND, AUDIT_HEAD[0]):
            raise InvalidArgumentError(f"record kind {kind!r} is reserved")
        expected = self._seen.get((kind, name), 0)
        sealed = self._store.keyring.seal(kind, name, plaintext)
        self._ops[(kind, name)] = Put(kind, name, sealed, expected)

    def put_json(self, kind: str, name: str, value: dict[str, Any]) -> None:
        """Stage a sealed JSON write."""
        self.put(kind, name, _codec.dumps(value))

    def delete(self, kind: str, name: str) -> None:
        """Stage a delete (compare-and-set as for :meth:`put`)."""
        self._ops[(kind, name)] = Delete(kind, name, self._seen.get((kind, name), ANY))

    def audit(
        self,
        operation: str,
        object: str,
        *,
        outcome: str = "ok",
        actor: str | None = None,
        **details: Any,
    ) -> None:
        """Stage an audit entry; it commits with (and only with) this transaction."""
        self._events.append(
            {
                "operation": operation,
                "object": object,
                "outcome": outcome,
                "actor": actor or self._store.actor,
                "details": details,
            }
        )

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (update caches here)."""
        self._after.append(callback)


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
        self._sync_lock = threading.Lock()
        self._seen_generation = backend.generation()
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

    def transact(self, fn: Callable[[Txn], _T]) -> _T:
        """Run ``fn`` in a transaction; commit its writes and audit entries atomically.

        ``fn`` may run several times (on write conflicts), so it must have no
        side effects outside the :class:`Txn`. Exceptions from ``fn`` propagate
        and nothing is written.

        Raises:
            ConflictError: still conflicting after many attempts.
        """
        delay = 0.0005
        for _attempt in range(_MAX_ATTEMPTS):
            txn = Txn(self)
            result = fn(txn)
            ops = list(txn._ops.values())
            entries = self._stage_audit(txn, ops) if txn._events else []
            if not ops:
                for callback in txn._after:
                    callback()
                return result
            try:
                written = self.backend.commit(ops)
            except ConflictError:
                time.sleep(delay * (1 + _jitter.random()))  # noqa: S311 - jitter
                delay = min(delay * 2, 0.05)
                continue
            for callback in txn._after:
                callback()
            self._notify(written)
            for entry in entries:
                for sink in self._sinks:
                    sink(entry)
            return result
        raise ConflictError("too many concurrent writers; the operation was not applied")

    def audit(self, operation: str, object: str, **kwargs: Any) -> None:
        """Append one audit entry on its own (for decisions that change nothing else)."""
        self.transact(lambda txn: txn.audit(operation, object, **kwargs))

    def _stage_audit(self, txn: Txn, ops: list[Operation]) -> builtins.list[AuditEntry]:
        record = self.backend.get(*AUDIT_HEAD)
        if record is None:
            seq, prev = 0, genesis()
        else:
            head = _codec.loads(self.keyring.unseal(*AUDIT_HEAD, record.data))
            seq, prev = int(head["seq"]), _codec.b64d(head["hash"])
        now = self.clock.now()
        entries = []
        for event in txn._events:
            seq += 1
            entry = AuditEntry.create(seq=seq, time=now, prev_hash=prev, **event)
            ops.append(Put(AUDIT_KIND, entry_name(seq), entry.encode(), expected=0))
            prev = entry.hash
            entries.append(entry)
        sealed_head = self.keyring.seal(
            *AUDIT_HEAD, _codec.dumps({"seq": seq, "hash": _codec.b64e(prev)})
        )
        ops.append(
            Put(
                *AUDIT_HEAD,
                sealed_head,
                expected=record.revision if record else 0,
            )
        )
        return entries

    # -- freshness --------------------------------------------------------------

    def subscribe(self, listener: ChangeListener) -> None:
        """Call ``listener`` with records written (here or elsewhere) since the last sync."""
        self._listeners.append(listener)

    def sync(self, *, force: bool = False) -> None:
        """Notice writes by other processes; at most once per ``consistency_interval``."""
        now = time.monotonic()
        if not force and now < self._next_check:
            return
        with self._sync_lock:
            self._next_check = now + self.consistency_interval
            generation = self.backend.generation()
            if generation == self._seen_generation:
                return
            changed: builtins.list[Record] = []
            for kind in self._watched_kinds:
                changed.extend(self.backend.list(kind, after_seq=self._seen_generation))
            self._seen_generation = max(self._seen_generation, generation)
        for listener in self._listeners:
            listener(changed)

    _watched_kinds: tuple[str, ...] = ()

    def watch(self, *kinds: str) -> None:
        """Include ``kinds`` in what :meth:`sync` reads back when the generation moves."""
        self._watched_kinds = tuple(sorted({*self._watched_kinds, *kinds}))

    def _notify(self, written: Sequence[Record]) -> None:
        # Our own writes are applied by the after-commit callbacks; just
        # remember the generation so sync does not read them back.
        with self._sync_lock:
            if written and written[0].seq == self._seen_generation + 1:
                self._seen_generation = written[0].seq
