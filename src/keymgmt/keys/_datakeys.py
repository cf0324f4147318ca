"""The data-key issuance log: which data keys were made under a key version, by whom, when.

Every data key :meth:`KeyStore.generate_data_key
<keymgmt.keys.KeyStore.generate_data_key>` hands out (and every data key
:meth:`~keymgmt.keys.KeyStore.rewrap` moves, logged under the version it
moves to) is logged: the wrapped key's id, the key name and version, the
requesting actor, the time. ``km.compromise`` lists, from this log, the data
keys generated under each exposed version: the stored envelopes an attacker
holding that version can open. How an issuance is written is the
:class:`DataKeyLogPolicy`'s ``mode`` (``km.keys.data_key_log_policy``):

* ``each`` (the default): the issuance is committed to the store **before**
  the data key is returned, in its own transaction, which also checks the
  version's record and its revocation entries (at the revisions the key
  store cached with what they said, ``txn.expect``; read in the
  transaction when it runs again after a conflict): a version compromised
  meanwhile (here or in another process) refuses the data key
  (``RevokedError``) instead of handing out one the report would miss,
  and a compromise committed meanwhile conflicts with the write and runs
  again. So every data key returned is named by a later compromise report
  of its version, whichever process made it and whether or not that
  process was killed afterwards. If the write fails, the call fails (the
  data key is never returned). Cost: one store commit per data key (a
  durable ``fsync`` on SQLite), shared by concurrent callers
  (:class:`GroupCommit`); see docs/keys.md for measurements.
* ``batched``: the issuance is appended, in memory, to this process's
  pending list and written with the key store's usage flush (the same
  transaction that adds use counts and ``key.usage`` entries) — and at the
  latest once ``batch_size`` issuances are pending or the oldest has waited
  ``interval`` (both checked at each issuance, on the manager's clock), at
  ``data_keys_issued``, before a compromise response of this process and at
  ``km.close()``. A process killed meanwhile loses the record of its pending
  data keys (at most ``batch_size``; from the last ``interval`` before its
  last issuance, however long it then idled), and a compromise report made
  by *another* process before this one flushed does not name them. For
  throughput where the report may be incomplete.

There is no ``off``: a compromise report without a log would say "no data
keys" for a version that made millions. In ``each`` mode the log is written
ahead of the version's use count (counts stay batched); a crash loses
unflushed counts, never logged issuances.

A data key is named by its **id**: the first 128 bits of a BLAKE2b hash of
the wrapped data key (:func:`data_key_id`, also :attr:`DataKey.id
<keymgmt.model.DataKey.id>`). Whoever stores a wrapped data key can compute
its id, so a compromise report's list of ids says which stored envelopes were
under an exposed version without keymgmt keeping the wrapped keys. The id
reveals nothing about the data key (the wrapped key is a ciphertext under a
random nonce).

Records (sealed by the keyring):

``datakey`` / ``<name>#<version>:<first entry's time, 16 hex>-<chunk, 4 hex>-<first id>``
    ``{"key": name, "version": v, "ids": ..., "times": ..., "actors": [...],
    "who": ...}``: the entries packed (a flush may write 65,536 of them):
    ``ids`` the 16-byte ids concatenated, ``times`` little-endian int64
    microseconds since the epoch, ``who`` little-endian uint16 indexes into
    ``actors``; all base64. At most :data:`CHUNK` entries per record;
    prefix-searchable by ``<name>#<version>:``.
"""

from __future__ import annotations

import array
import builtins
import datetime as _dt
import enum
import hashlib
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import attrs

from keymgmt import _codec
from keymgmt._store import Store, Txn
from keymgmt._validators import enum_member, positive_int, positive_timedelta
from keymgmt.errors import IntegrityError, RevokedError

__all__ = [
    "CHUNK",
    "DATA_KEY_KIND",
    "DataKeyIssue",
    "DataKeyLog",
    "DataKeyLogMode",
    "DataKeyLogPolicy",
    "GroupCommit",
    "data_key_id",
]

DATA_KEY_KIND: Final = "datakey"
#: The most issuances one record holds.
CHUNK: Final = 4096

#: (key name, version, wrapped data key, actor or None, time) of one issuance.
Pending = tuple[str, int, bytes, str | None, _dt.datetime]


_ID_SIZE: Final = 16
_PERSON: Final = b"keymgmt-datakey"


class DataKeyLogMode(enum.StrEnum):
    """How data-key issuances are written (see :mod:`keymgmt.keys._datakeys`)."""

    EACH = "each"
    BATCHED = "batched"


def _mode(value: DataKeyLogMode | str) -> DataKeyLogMode:
    return enum_member(DataKeyLogMode, value, "data-key log mode")


@attrs.frozen(kw_only=True)
class DataKeyLogPolicy:
    """How ``km.keys`` logs the data keys it hands out (see :mod:`keymgmt.keys._datakeys`).

    Attributes:
        mode: ``each`` (default: logged durably before the data key is
            returned) or ``batched`` (logged in memory, written in batches).
        batch_size: (``batched``) pending issuances that trigger a write.
        interval: (``batched``) how long the oldest pending issuance may
            wait, checked at each issuance.

    Raises:
        InvalidArgumentError: an unknown mode, or a non-positive size or interval.
    """

    mode: DataKeyLogMode = attrs.field(default=DataKeyLogMode.EACH, converter=_mode)
    batch_size: int = attrs.field(default=1024, validator=positive_int)
    interval: _dt.timedelta = attrs.field(
        default=_dt.timedelta(seconds=10), validator=positive_timedelta
    )


def data_key_id(wrapped: bytes | bytearray | memoryview) -> str:
    """The id of a wrapped data key: 128 bits of BLAKE2b, 32 hex digits."""
    return hashlib.blake2b(bytes(wrapped), digest_size=_ID_SIZE, person=_PERSON).hexdigest()


@attrs.frozen(kw_only=True)
class DataKeyIssue:
    """One data key generated under a key version (never the key itself).

    Attributes:
        id: :func:`data_key_id` of the wrapped data key.
        key_name: the key it was wrapped under.
        version: that key's version.
        actor: who asked for it (the audit actor at the time).
        issued_at: when (the manager's clock).
    """

    id: str
    key_name: str
    version: int
    actor: str
    issued_at: _dt.datetime

    @property
    def key_id(self) -> str:
        """``"name#version"``."""
        return f"{self.key_name}#{self.version}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "id": self.id,
            "key": self.key_id,
            "actor": self.actor,
            "issued_at": self.issued_at.isoformat(),
        }


class DataKeyLog:
    """This process's pending issuances, and how they are written and read.

    Appending is lock-free (one ``list.append``); :meth:`take` and
    :meth:`put_back` are called by the key store's flush under its lock.
    """

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending: builtins.list[Pending] = []

    def take(self) -> builtins.list[Pending]:
        """Remove and return every pending issuance (the flush writes them)."""
        pending = self.pending
        taken = pending[: len(pending)]
        del pending[: len(taken)]  # appends made meanwhile stay
        return taken

    def put_back(self, taken: builtins.list[Pending]) -> None:
        """Return issuances whose flush failed to the front of the queue."""
        self.pending[:0] = taken

    @staticmethod
    def stage(txn: Txn, issued: Sequence[Pending], default_actor: str, *, part: int = 0) -> None:
        """Stage records for ``issued`` in the flush's transaction.

        Packed, not one JSON object per entry: a flush may carry 65,536
        issuances, and this is what the hot path pays for, amortized.
        ``part`` is added to the chunk numbers in the record names (``each``
        mode numbers the issuances of one clock tick, so they list in order).
        """
        groups: dict[tuple[str, int], builtins.list[Pending]] = {}
        for entry in issued:
            groups.setdefault((entry[0], entry[1]), []).append(entry)
        blake2b = hashlib.blake2b
        for (name, version), entries in sorted(groups.items()):
            for start in range(0, len(entries), CHUNK):
                chunk = entries[start : start + CHUNK]
                ids = b"".join(
                    blake2b(e[2], digest_size=_ID_SIZE, person=_PERSON).digest() for e in chunk
                )
                times = array.array("q", [_codec.to_micros(e[4]) for e in chunk])
                actors: dict[str, int] = {}
                who = array.array(
                    "H", [actors.setdefault(e[3] or default_actor, len(actors)) for e in chunk]
                )
                # Named by the first entry's time, the chunk's place in this
                # flush, then the first id: records list in issuance order
                # (two flushes in the same microsecond: in id order), and two
                # flushes never pick one name. The name is taken only when
                # entries come back after a flush whose commit landed though
                # it was reported failed (PostgreSQL can do that): if that
                # record holds them all, they are logged; otherwise the
                # chunk goes under the next free "-<n>" name (readers drop
                # repeated ids), so the log never gets stuck on that name.
                first = ids[:_ID_SIZE].hex()
                chunk_number = (start // CHUNK + part) & 0xFFFF
                base = f"{name}#{version}:{times[0]:016x}-{chunk_number:04x}-{first}"
                record_name, attempt = base, 0
                while (existing := txn.get_json(DATA_KEY_KIND, record_name)) is not None:
                    if _holds(existing, ids):
                        break
                    attempt += 1
                    record_name = f"{base}-{attempt}"
                if existing is not None:
                    continue
                txn.put_json(
                    DATA_KEY_KIND,
                    record_name,
                    {
                        "key": name,
                        "version": version,
                        "ids": _codec.b64e(ids),
                        "times": _codec.b64e(_little(times).tobytes()),
                        "actors": list(actors),
                        "who": _codec.b64e(_little(who).tobytes()),
                    },
                )


class _Slot:
    """One caller's issuance waiting for its group's commit."""

    __slots__ = ("done", "entry", "error")

    def __init__(self, entry: Pending) -> None:
        self.entry = entry
        self.done = False
        self.error: BaseException | None = None


#: Raises RevokedError when (name, version) must not hand out data keys, checked
#: inside txn: by the caller's cached revisions (``txn.expect``) when the last
#: argument is True (the transaction's first run), else by reading the records.
Refuse = Callable[[Txn, str, int, bool], None]


class GroupCommit:
    """``each`` mode's writer: concurrent callers' issuances share one commit.

    A caller queues its issuance; if no commit is in flight it becomes the
    leader and commits every queued issuance in one transaction (each
    distinct version checked once), else it waits for the commit that takes
    its issuance. Every caller returns only once its own issuance is
    committed (or raises: the whole group's error, or ``RevokedError`` for
    its version alone). One thread alone pays one commit per data key; N
    threads waiting on a durable commit share the next one (group commit).
    """

    __slots__ = ("_cond", "_queue", "_tick", "_writing")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: builtins.list[_Slot] = []
        self._writing = False
        self._tick: tuple[int, int] | None = None  # (time in µs, part) of the last group

    def write(self, store: Store, entry: Pending, refuse: Refuse, actor: str) -> None:
        """Commit ``entry`` (with whatever else is queued) before returning.

        Raises:
            RevokedError: ``refuse`` refused the entry's version (not logged).
            KeyMgmtError: the commit failed (nothing of the group logged).
        """
        slot = _Slot(entry)
        batch: builtins.list[_Slot] = []
        part = 0
        with self._cond:
            self._queue.append(slot)
            self._cond.notify_all()  # (lets a test see who is queued)
            while self._writing and not slot.done:
                self._cond.wait()
            if not slot.done:
                self._writing = True
                batch, self._queue = self._queue, []
                at = _codec.to_micros(batch[0].entry[4])
                tick = self._tick
                part = tick[1] + 1 if tick is not None and tick[0] == at else 0
                self._tick = (at, part)
        if not slot.done:
            try:
                self._commit(store, batch, refuse, actor, part)
            except BaseException as exc:
                for waiting in batch:
                    waiting.error = exc
            finally:
                with self._cond:
                    self._writing = False
                    for waiting in batch:
                        waiting.done = True
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error

    @staticmethod
    def _commit(
        store: Store, batch: Sequence[_Slot], refuse: Refuse, actor: str, part: int
    ) -> None:
        runs = 0

        def run(txn: Txn) -> dict[tuple[str, int], RevokedError]:
            # The first run checks the versions by the key store's cached
            # revisions; a run after a conflict (one of them was stale)
            # reads the records, so a stale cache costs one conflict, never
            # a refusal missed or a loop of conflicts.
            nonlocal runs
            runs += 1
            cached = runs == 1
            refused: dict[tuple[str, int], RevokedError] = {}
            for name, version in dict.fromkeys((s.entry[0], s.entry[1]) for s in batch):
                try:
                    refuse(txn, name, version, cached)
                except RevokedError as exc:
                    refused[name, version] = exc
            logged = [s.entry for s in batch if (s.entry[0], s.entry[1]) not in refused]
            DataKeyLog.stage(txn, logged, actor, part=part)
            return refused

        refused = store.transact(run)
        for waiting in batch:
            waiting.error = refused.get((waiting.entry[0], waiting.entry[1]))


def _holds(record: dict[str, Any], ids: bytes) -> bool:
    """Whether a stored record already logs every id of ``ids`` (packed)."""
    try:
        stored = _codec.b64d(record["ids"])
    except (KeyError, TypeError, ValueError):
        return False
    logged = {stored[i : i + _ID_SIZE] for i in range(0, len(stored), _ID_SIZE)}
    return all(ids[i : i + _ID_SIZE] in logged for i in range(0, len(ids), _ID_SIZE))


def _little(values: array.array[int]) -> array.array[int]:
    """``values`` in little-endian order (the stored byte order)."""
    if sys.byteorder == "big":  # pragma: no cover - little-endian machines only in CI
        values = array.array(values.typecode, values)
        values.byteswap()
    return values


def _prefix(name: str, version: int | None) -> str:
    return f"{name}#" if version is None else f"{name}#{version}:"


def _decode(values: Iterable[dict[str, Any]]) -> builtins.list[DataKeyIssue]:
    out: builtins.list[DataKeyIssue] = []
    try:
        for value in values:
            name, version = str(value["key"]), int(value["version"])
            ids = _codec.b64d(value["ids"])
            times = _little(array.array("q", _codec.b64d(value["times"])))
            who = _little(array.array("H", _codec.b64d(value["who"])))
            actors = [str(a) for a in value["actors"]]
            if len(ids) != _ID_SIZE * len(times) or len(who) != len(times):
                raise ValueError("lengths differ")
            out.extend(
                DataKeyIssue(
                    id=ids[i * _ID_SIZE : (i + 1) * _ID_SIZE].hex(),
                    key_name=name,
                    version=version,
                    actor=actors[who[i]],
                    issued_at=_codec.from_micros(times[i]),
                )
                for i in range(len(times))
            )
    except (KeyError, TypeError, ValueError, IndexError):
        raise IntegrityError("a data-key log record is malformed") from None
    out.sort(key=lambda i: (i.version, i.issued_at))  # stable: issuance order
    unique: dict[str, DataKeyIssue] = {}
    for issue in out:
        unique.setdefault(issue.id, issue)  # a chunk logged twice (see DataKeyLog.stage)
    return list(unique.values())


def issued(store: Store, name: str, version: int | None = None) -> builtins.list[DataKeyIssue]:
    """The logged data keys of ``name`` (one version, or all), oldest first."""
    return _decode(v for _, v in store.list_json(DATA_KEY_KIND, prefix=_prefix(name, version)))


def issued_in(txn: Txn, name: str, version: int | None = None) -> builtins.list[DataKeyIssue]:
    """As :func:`issued`, read inside a transaction."""
    return _decode(
        _codec.loads(data) for _, data in txn.list(DATA_KEY_KIND, prefix=_prefix(name, version))
    )
