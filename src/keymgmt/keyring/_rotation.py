"""Store key rotation: rotate, re-seal, retire.

The store key seals every record; the master key only wraps it. Rotating
the store key is what to do when a process's memory may have been read (a
core dump, a debugger, a swapped-out page): the master key never left the
token or can be changed too, but the store key was in memory. Three steps,
as Vault's ``operator rotate`` plus a re-encryption pass:

1. :meth:`StoreKeys.rotate` draws a new store key, wraps it under the
   master key (passphrase, key file, raw key or HSM) and makes it the
   current key, in one audited write of ``meta/keyring``. Old store keys
   stay: every sealed value names its key id, so whatever they sealed
   still unseals. Other processes take the new key in when their store
   syncs (``meta/keyring`` is watched) or when they first meet a value
   sealed under it; until then they seal under the old key, which is
   harmless (the next step moves those records too).
2. :meth:`StoreKeys.reseal` re-seals every record whose value names an
   older key, in bounded batches. Each batch is its own transaction: it
   reads each record (remembering its revision), writes the same plaintext
   sealed under the current key with compare-and-set, and appends one
   audit entry; a concurrent writer makes the batch run again on fresh
   data, and a crash loses nothing (records are either still under the old
   key or already under the new one). Running it again resumes: only
   records still under an older key are touched.
3. :meth:`StoreKeys.retire` destroys the wrapped copy of an old store key,
   in one audited write, and asks the backend to erase old copies of the
   keyring record (SQLite's WAL). It refuses
   (:class:`~keymgmt.errors.KeyStateError`) while any record still names
   the key, and it never retires the current key. After it, nothing can
   unseal what the retired key sealed: a leaked copy of that key opens
   nothing in the store, and values forged under it are refused.

Which records use which key is read from the sealed values' clear headers
(``0x02 | key id | ...``): counting costs no decryption. Every pass over
the store goes through the public ``Backend.kinds()`` and
``Backend.scan()``, one page of :data:`_PAGE` records at a time, so memory
stays bounded however big a record kind is, and reseal commits each batch
before it reads on. The ``audit``
records are not sealed and are skipped; the sealed audit head
(``meta/audit-head``) is re-sealed by every audited write, retirement's own
included, so it never holds a key back.

Other processes and the old key: every store commit that seals checks
``meta/keyring`` at the revision it had before the transaction's first
seal (:class:`~keymgmt._store.Txn`, a storage ``Check``). A transaction
that sealed under keys rotated or retired meanwhile conflicts; its store
refreshes the keyring (unwrapping the new key with the master key it
kept) and runs the transaction again. So no record is ever committed under
a key retired before that commit, and a process that has not seen a
rotation yet writes under the new key all the same; its reads unwrap the
new key when they first meet it, and its store takes in the change when it
syncs.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from keymgmt import _codec
from keymgmt.audit import AUDIT_KIND
from keymgmt.errors import (
    InvalidArgumentError,
    KeyMgmtError,
    KeyStateError,
    StoreUnavailableError,
)
from keymgmt.keyring._keyring import KEYRING_RECORD, Keyring, key_id_of
from keymgmt.keyring._sources import MasterKeySource
from keymgmt.storage import Backend, Record

if TYPE_CHECKING:
    from keymgmt._store import Store, Txn

__all__ = ["ResealReport", "StoreKeyInfo", "StoreKeyStatus", "StoreKeys", "record_kinds"]

_log = logging.getLogger("keymgmt")
#: Records re-sealed per transaction unless told otherwise.
DEFAULT_BATCH: Final = 100
_MAX_BATCH: Final = 10_000
#: Records read per page when passing over the store (memory stays bounded).
_PAGE: Final = 1000
# Passes over the store before reseal reports what is left (a writer that
# has not seen the rotation yet may keep sealing under the old key).
_PASSES: Final = 3

#: ``progress(done, total)``, called after each batch.
Progress = Callable[[int, int], None]


@attrs.frozen
class StoreKeyInfo:
    """One store key id and how many records name it.

    Attributes:
        key_id: the id in sealed values' headers.
        current: whether new seals use it.
        held: whether the store still holds it (false: retired or never
            made, and the records naming it cannot be unsealed).
        records: how many sealed records name it (not the sealed audit head,
            which every audited write re-seals under the current key).
    """

    key_id: int
    current: bool
    held: bool
    records: int


@attrs.frozen
class StoreKeyStatus:
    """The store keys and their use, from one pass over the store.

    Attributes:
        current: the id of the store key new seals use.
        keys: every key held or named by a record, by id.
        rotated_at: when the current key became current (None: never
            rotated).
    """

    current: int
    keys: tuple[StoreKeyInfo, ...]
    rotated_at: _dt.datetime | None = None

    @property
    def stale_records(self) -> int:
        """Records sealed under a key that is not the current one (what reseal moves)."""
        return sum(info.records for info in self.keys if not info.current)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "current": self.current,
            "rotated_at": None if self.rotated_at is None else self.rotated_at.isoformat(),
            "stale_records": self.stale_records,
            "keys": [attrs.asdict(info) for info in self.keys],
        }


@attrs.frozen
class ResealReport:
    """What :meth:`StoreKeys.reseal` did.

    Attributes:
        key_id: the current store key the records were re-sealed under.
        resealed: records re-sealed by this call.
        batches: transactions committed.
        remaining: records still under an older key that this store holds
            (the store key was rotated again meanwhile: run reseal again).
        unreadable: records naming a key the store does not hold (they
            cannot be re-sealed, nor read).
    """

    key_id: int
    resealed: int
    batches: int
    remaining: int
    unreadable: int

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return attrs.asdict(self)


def record_kinds(backend: Backend) -> builtins.list[str]:
    """Every record kind in ``backend``, sorted (:meth:`Backend.kinds`).

    Re-sealing and retiring must see every record, whatever part (or
    application) wrote it.

    Raises:
        StoreUnavailableError: the backend has no ``kinds()`` (a backend
            written for an older keymgmt).
        StoreError: the backend failed.
    """
    kinds = getattr(backend, "kinds", None)
    if not callable(kinds):
        raise StoreUnavailableError(
            f"{type(backend).__name__} cannot list its record kinds (add a kinds() method, "
            "see keymgmt.storage.Backend); re-sealing and retiring store keys need every record"
        )
    found: builtins.list[str] = kinds()
    return sorted(found)


def _pages(backend: Backend, kind: str, size: int = _PAGE) -> Iterator[builtins.list[Record]]:
    """The records of ``kind`` by name, ``size`` at a time (:meth:`Backend.scan`).

    A backend without ``scan`` (written for an older keymgmt) is read
    whole, with ``list``.
    """
    scan = getattr(backend, "scan", None)
    if not callable(scan):
        yield backend.list(kind)
        return
    after = ""
    while True:
        page: builtins.list[Record] = scan(kind, after=after, limit=size)
        if page:
            yield page
        if len(page) < size:
            return
        after = page[-1].name


def _sealed_records(backend: Backend) -> Iterator[Record]:
    """Every sealed record but the store's own (``meta``) records, a page at a time.

    Not the audit entries (not sealed), nor ``meta``: the keyring record is
    not sealed, and the sealed audit head is re-sealed by every audited
    write, retirement's own included. At most :data:`_PAGE` records are
    held at once, whatever the size of the store.
    """
    for kind in record_kinds(backend):
        if kind not in (AUDIT_KIND, KEYRING_RECORD[0]):
            for page in _pages(backend, kind):
                yield from page


class StoreKeys:
    """Rotate the store key, re-seal records under it, retire old keys.

    Reached as :meth:`keymgmt.KeyManager.rotate_store_key`,
    :meth:`~keymgmt.KeyManager.reseal`,
    :meth:`~keymgmt.KeyManager.retire_store_key` and
    :meth:`~keymgmt.KeyManager.store_key_status`; see the module docstring.
    Subscribes to the store so that this process takes in rotations and
    retirements made by others when it syncs.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        store.watch(KEYRING_RECORD[0])
        store.subscribe(self._changed)

    def __repr__(self) -> str:
        return f"StoreKeys(current={self._keyring.current_key_id})"

    @property
    def _keyring(self) -> Keyring:
        return self._store.keyring

    def _changed(self, records: Sequence[Record]) -> None:
        """Sync listener: take in ``meta/keyring`` as another process left it."""
        for record in records:
            if (record.kind, record.name) == KEYRING_RECORD:
                try:
                    self._keyring.refresh(record)
                except KeyMgmtError as exc:
                    # Not raised here: every cache's sync would fail with it.
                    # Unsealing a value under the key raises it where it matters.
                    _log.warning("keymgmt: cannot take in the rotated store key: %s", exc.message)

    # -- status -----------------------------------------------------------------

    def status(self) -> StoreKeyStatus:
        """The store keys and how many records each seals (one pass over the store).

        Raises:
            StoreError: the backend failed.
            StoreUnavailableError: as for :meth:`Keyring.refresh`.
            IntegrityError: the keyring record is damaged, edited or rolled back.
        """
        keyring = self._keyring
        keyring.refresh()
        counts = dict.fromkeys(keyring.key_ids, 0)
        for record in _sealed_records(self._store.backend):
            key_id = key_id_of(record.data)
            if key_id is not None:
                counts[key_id] = counts.get(key_id, 0) + 1
        held = set(keyring.key_ids)
        current = keyring.current_key_id
        return StoreKeyStatus(
            current=current,
            keys=tuple(
                StoreKeyInfo(key_id, key_id == current, key_id in held, count)
                for key_id, count in sorted(counts.items())
            ),
            rotated_at=keyring.rotated_at,
        )

    # -- rotate -------------------------------------------------------------------

    def rotate(self, *, master_key: MasterKeySource | None = None) -> int:
        """Make a new store key current; old keys keep unsealing. Returns its id.

        One write of ``meta/keyring`` with its audit entry
        (``store.rotate-store-key``). No record is re-encrypted: run
        :meth:`reseal` next.

        Args:
            master_key: also re-wrap every store key under this new master
                key source, in the same write (after a suspected memory
                dump: a new passphrase or HSM key *and* a new store key).
                Default: the master key the store was opened with.

        Raises:
            InvalidArgumentError: ``master_key`` is not a master key source.
            ConflictError: the master key was changed by another process
                since this store was opened (reopen it).
            KeyStateError: store key ids are exhausted.
            IntegrityError: the keyring record is damaged, edited or rolled
                back; nothing was written.
        """
        store = self._store
        keyring = self._keyring
        source = None
        if master_key is not None:
            candidate: object = master_key  # checked at run time: callers may be untyped
            if not isinstance(candidate, MasterKeySource):
                raise InvalidArgumentError(
                    "the master key must be a Passphrase, KeyFile, RawMasterKey or Pkcs11Key"
                )
            source = master_key.create(store.randomness)
        new_key = store.randomness.token_bytes(32)

        def run(txn: Txn) -> int:
            change = keyring.prepare_rotation(new_key, source, at=_codec.to_micros(txn.now))
            previous = change.active - 1  # the new id is the highest + 1 (as the store is now)
            txn._put_unsealed(
                change.put.kind, change.put.name, change.put.data, change.put.expected
            )
            details: dict[str, Any] = {"key_id": change.active, "previous": previous}
            if source is not None:
                details["master_key"] = str(source[0].get("type", "unknown"))
            txn.audit("store.rotate-store-key", "store", **details)
            txn.after_commit(lambda: keyring.apply(change))
            if source is not None:
                txn.after_commit(store.erase_residue)  # the keyring under the old master key
            return change.active

        return store.transact(run)

    # -- reseal -------------------------------------------------------------------

    def reseal(
        self, *, batch_size: int = DEFAULT_BATCH, progress: Progress | None = None
    ) -> ResealReport:
        """Re-seal every record under an older store key under the current one.

        Batches of ``batch_size`` records, each one transaction with
        compare-and-set and one ``store.reseal`` audit entry; safe to run
        while others write, and to run again after a crash (it resumes).

        Args:
            batch_size: records per transaction (1 to 10000).
            progress: called as ``progress(done, total)`` after each batch.

        Returns:
            What was done and what is left.

        Raises:
            InvalidArgumentError: a bad ``batch_size``, or a ``progress``
                that is not callable (nothing re-sealed).
            StoreError: the backend failed (batches committed before stay).
            IntegrityError: the keyring record was damaged or rolled back.
        """
        if type(batch_size) is not int or not 1 <= batch_size <= _MAX_BATCH:
            raise InvalidArgumentError(f"batch_size must be an int from 1 to {_MAX_BATCH}")
        if progress is not None and not callable(progress):
            # Refused before the first batch, not by a TypeError after it.
            raise InvalidArgumentError("progress must be callable as progress(done, total)")
        keyring = self._keyring
        keyring.refresh()
        resealed = batches = 0
        pending, unreadable = self._count_stale()
        for _pass in range(_PASSES):
            if not pending:
                break
            done = 0
            total = pending
            for names in self._stale_batches(batch_size):
                count = self._reseal_batch(names)
                if count:
                    batches += 1
                    resealed += count
                done += len(names)
                if progress is not None:
                    progress(min(done, total), total)
            keyring.refresh()
            pending, unreadable = self._count_stale()
        return ResealReport(
            key_id=keyring.current_key_id,
            resealed=resealed,
            batches=batches,
            remaining=pending,
            unreadable=unreadable,
        )

    def _count_stale(self) -> tuple[int, int]:
        """How many records are under a held, non-current key; how many name a key not held."""
        keyring = self._keyring
        current = keyring.current_key_id
        held = set(keyring.key_ids)
        stale = unreadable = 0
        for record in _sealed_records(self._store.backend):
            key_id = key_id_of(record.data)
            if key_id is None or key_id == current:
                continue
            if key_id in held:
                stale += 1
            elif key_id < current:
                unreadable += 1
        return stale, unreadable

    def _stale_batches(self, size: int) -> Iterator[builtins.list[tuple[str, str]]]:
        """The records under a held, non-current key, ``size`` names at a time.

        Read a page at a time as the batches are re-sealed, so neither the
        records nor their names are all held in memory at once.
        """
        current = self._keyring.current_key_id
        held = set(self._keyring.key_ids)
        names: builtins.list[tuple[str, str]] = []
        for record in _sealed_records(self._store.backend):
            key_id = key_id_of(record.data)
            if key_id is None or key_id == current or key_id not in held:
                continue
            names.append((record.kind, record.name))
            if len(names) == size:
                yield names
                names = []
        if names:
            yield names

    def _reseal_batch(self, names: Sequence[tuple[str, str]]) -> int:
        store = self._store
        keyring = self._keyring

        def run(txn: Txn) -> int:
            current = keyring.current_key_id
            count = 0
            for kind, name in names:
                record = store.backend.get(kind, name)
                if record is None or key_id_of(record.data) in (None, current):
                    continue  # deleted or re-sealed meanwhile
                plaintext = txn.get(kind, name)  # remembers the revision: compare-and-set
                if plaintext is None:
                    continue
                txn.put(kind, name, plaintext)
                count += 1
            if count:
                txn.audit("store.reseal", "store", key_id=current, records=count)
            return count

        return store.transact(run)

    # -- retire -------------------------------------------------------------------

    def retire(self, key_id: int) -> None:
        """Destroy old store key ``key_id``'s wrapped copy; refused while a record uses it.

        One write of ``meta/keyring`` with its audit entry
        (``store.retire-store-key``); then the backend's old copies of the
        keyring record are erased (:meth:`Store.erase_residue`: SQLite's
        WAL; PostgreSQL keeps replaced rows until ``VACUUM``).

        Raises:
            InvalidArgumentError: ``key_id`` is not an int.
            NotFoundError: the store holds no store key ``key_id``.
            KeyStateError: ``key_id`` is the current key, or records still
                use it (run :meth:`reseal`).
            StoreError: the backend failed; nothing was written.
            IntegrityError: the keyring record is damaged, edited or rolled
                back; nothing was written.
        """
        if type(key_id) is not int:
            raise InvalidArgumentError("a store key id is an int")
        store = self._store
        keyring = self._keyring
        keyring.refresh()

        def run(txn: Txn) -> None:
            change = keyring.prepare_retirement(key_id)
            users = 0
            first = ""
            for record in _sealed_records(store.backend):  # a page at a time
                if key_id_of(record.data) == key_id:
                    users += 1
                    first = first or f"{record.kind}/{record.name}"
            if users:
                raise KeyStateError(
                    f"store key {key_id} still seals {users} record(s) (first: "
                    f"{first}); re-seal them first (keymgmt store reseal)",
                    key_id=key_id,
                    records=users,
                )
            txn._put_unsealed(
                change.put.kind, change.put.name, change.put.data, change.put.expected
            )
            txn.audit("store.retire-store-key", "store", key_id=key_id)
            txn.after_commit(lambda: keyring.apply(change))
            txn.after_commit(store.erase_residue)  # the wrapped key in the WAL's old pages

        store.transact(run)
