"""Store key rotation, review fixes: a rolled-back keyring record, paging, kinds()."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from keymgmt import KeyManager, RawMasterKey
from keymgmt._store import Txn
from keymgmt.errors import IntegrityError, InvalidArgumentError
from keymgmt.keyring import KEYRING_RECORD, KdfProfile, _rotation
from keymgmt.keyring._keyring import key_id_of
from keymgmt.storage import ANY, Backend, MemoryBackend, Operation, Put, Record
from keymgmt.testing import FakeClock, SeededRandomness

MASTER = bytes(range(32))


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def km(backend: MemoryBackend, clock: FakeClock) -> Iterator[KeyManager]:
    with KeyManager(
        backend=backend,
        master_key=RawMasterKey(MASTER),
        clock=clock,
        randomness=SeededRandomness(7),
        consistency_interval=0,
    ) as manager:
        yield manager


def _put(km: KeyManager, name: str, value: bytes) -> None:
    km._store.transact(lambda txn: txn.put("note", name, value))


def _keyring_data(backend: MemoryBackend) -> bytes:
    record = backend.get(*KEYRING_RECORD)
    assert record is not None
    return record.data


def _put_back(backend: MemoryBackend, data: bytes) -> None:
    """Someone who can write the database puts an older keyring record back."""
    backend.commit([Put(*KEYRING_RECORD, data, ANY)])


# -- a rolled-back keyring record ----------------------------------------------------------


def test_running_process_refuses_a_keyring_record_rolled_back_before_the_rotation(
    km: KeyManager, backend: MemoryBackend
) -> None:
    before = _keyring_data(backend)  # format 1: key 1 only, current
    km.rotate_store_key()
    _put_back(backend, before)
    with pytest.raises(IntegrityError, match="went back"):
        km._store.keyring.refresh()
    assert km._store.keyring.current_key_id == 2


def test_write_after_a_keyring_rollback_never_seals_under_the_old_key(
    km: KeyManager, backend: MemoryBackend
) -> None:
    before = _keyring_data(backend)
    km.rotate_store_key()
    _put_back(backend, before)
    with pytest.raises(IntegrityError):
        _put(km, "n", b"secret")
    assert backend.get("note", "n") is None


def test_running_process_refuses_a_keyring_record_that_brings_a_retired_key_back(
    km: KeyManager, backend: MemoryBackend
) -> None:
    _put(km, "n", b"v")
    km.rotate_store_key()
    km.reseal()
    with_key_1 = _keyring_data(backend)  # keys 1 and 2, key 2 current (genuine MAC)
    km.retire_store_key(1)
    _put_back(backend, with_key_1)
    with pytest.raises(IntegrityError, match="went back"):
        km._store.keyring.refresh()
    assert km._store.keyring.key_ids == (2,)


def test_sync_after_a_keyring_rollback_keeps_the_current_key(
    km: KeyManager, backend: MemoryBackend
) -> None:
    before = _keyring_data(backend)
    km.rotate_store_key()
    _put_back(backend, before)
    km._store.sync()  # the listener logs the refusal; it does not take the record in
    assert km._store.keyring.current_key_id == 2
    record = backend.get("note", "x")
    assert record is None
    sealed = km._store.keyring.seal("note", "x", b"v")
    assert key_id_of(sealed) == 2


# -- enumeration through the public protocol, a page at a time ---------------------------


class _Wrapped:
    """A backend that forwards the public protocol only (no private attributes)."""

    def __init__(self, inner: MemoryBackend) -> None:
        self._inner = inner
        self.pages: list[tuple[str, int, int]] = []  # (kind, limit, records returned)
        self.listed: list[str] = []

    def get(self, kind: str, name: str) -> Record | None:
        return self._inner.get(kind, name)

    def list(self, kind: str, *, prefix: str = "", after_seq: int = 0) -> list[Record]:
        self.listed.append(kind)
        return self._inner.list(kind, prefix=prefix, after_seq=after_seq)

    def commit(self, operations: Sequence[Operation]) -> list[Record]:
        return self._inner.commit(operations)

    def kinds(self) -> list[str]:
        return self._inner.kinds()

    def scan(self, kind: str, *, after: str = "", limit: int) -> list[Record]:
        page = self._inner.scan(kind, after=after, limit=limit)
        self.pages.append((kind, limit, len(page)))
        return page

    def generation(self) -> int:
        return self._inner.generation()

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def wrapped() -> _Wrapped:
    return _Wrapped(MemoryBackend())


@pytest.fixture
def wrapped_km(wrapped: _Wrapped, clock: FakeClock) -> Iterator[KeyManager]:
    with KeyManager(
        backend=wrapped,
        master_key=RawMasterKey(MASTER),
        clock=clock,
        randomness=SeededRandomness(7),
        consistency_interval=0,
    ) as manager:
        yield manager


def test_wrapped_backend_satisfies_the_protocol(wrapped: _Wrapped) -> None:
    assert isinstance(wrapped, Backend)


def test_reseal_and_retire_work_on_any_backend_through_the_public_protocol(
    wrapped_km: KeyManager,
) -> None:
    _put(wrapped_km, "n", b"v")
    wrapped_km.rotate_store_key()
    assert wrapped_km.reseal().resealed == 1
    wrapped_km.retire_store_key(1)
    assert [info.key_id for info in wrapped_km.store_key_status().keys] == [2]
    assert wrapped_km._store.get("note", "n") == b"v"


def test_reseal_reads_each_kind_a_bounded_page_at_a_time(
    wrapped_km: KeyManager, wrapped: _Wrapped
) -> None:
    names = [f"n{index:04}" for index in range(_rotation._PAGE * 2 + 5)]
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]

        def write(txn: Txn, chunk: list[str] = chunk) -> None:
            for name in chunk:
                txn.put("note", name, b"x")

        wrapped_km._store.transact(write)
    wrapped_km.rotate_store_key()
    wrapped.listed.clear()
    report = wrapped_km.reseal(batch_size=_rotation._MAX_BATCH)
    assert (report.resealed, report.remaining) == (len(names), 0)
    assert "note" not in wrapped.listed  # never the whole kind at once
    note_pages = [(limit, found) for kind, limit, found in wrapped.pages if kind == "note"]
    assert note_pages
    assert all(limit == _rotation._PAGE for limit, _ in note_pages)
    assert {found for _, found in note_pages} == {_rotation._PAGE, 5}


def test_reseal_commits_a_batch_before_reading_the_next_page(
    wrapped_km: KeyManager, wrapped: _Wrapped
) -> None:
    def write(txn: Txn) -> None:
        for index in range(_rotation._PAGE + 1):
            txn.put("note", f"n{index:04}", b"x")

    wrapped_km._store.transact(write)
    wrapped_km.rotate_store_key()
    events: list[str] = []
    scan, commit = wrapped.scan, wrapped.commit

    def scan_and_note(kind: str, *, after: str = "", limit: int) -> list[Record]:
        if kind == "note" and after:
            events.append("next page")
        return scan(kind, after=after, limit=limit)

    def commit_and_note(operations: Sequence[Operation]) -> list[Record]:
        events.append("commit")
        return commit(operations)

    wrapped.scan = scan_and_note  # type: ignore[method-assign]
    wrapped.commit = commit_and_note  # type: ignore[method-assign]
    wrapped_km.reseal(batch_size=10)
    # counting pass: a next page, no commit; re-sealing pass: batches, the next page, batches
    first_commit = events.index("commit")
    assert "next page" in events[first_commit:]
    assert events[-1] == "commit" or "commit" in events[events.index("next page", first_commit) :]


# -- bad input leaves the store unchanged ---------------------------------------------------


@pytest.mark.parametrize("progress", ["nope", 3, object()])
def test_reseal_refuses_a_progress_that_is_not_callable_before_any_batch(
    km: KeyManager, backend: MemoryBackend, progress: object
) -> None:
    for index in range(3):
        _put(km, f"n{index}", b"x")
    km.rotate_store_key()
    generation = backend.generation()
    with pytest.raises(InvalidArgumentError, match="progress must be callable"):
        km.reseal(batch_size=1, progress=progress)  # type: ignore[arg-type]
    assert backend.generation() == generation
    assert km.store_key_status().stale_records == 3


# -- a keyring record edited in place (same revision) -----------------------------------------


def _sqlite_manager(path: Path, clock: FakeClock) -> KeyManager:
    return KeyManager.open(
        path, passphrase="pw", kdf_profile=KdfProfile.TESTING_ONLY_INSECURE, clock=clock
    )


def _edit_keyring_in_place(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Someone who can write the file edits meta/keyring, revision and all left as they were."""
    with closing(sqlite3.connect(path)) as conn, conn:
        (data,) = conn.execute(
            "SELECT data FROM records WHERE kind = 'meta' AND name = 'keyring'"
        ).fetchone()
        value = json.loads(data)
        edit(value)
        conn.execute(
            "UPDATE records SET data = ? WHERE kind = 'meta' AND name = 'keyring'",
            (json.dumps(value).encode(),),
        )


@pytest.mark.parametrize("operation", ["rotate", "retire"])
def test_rotation_and_retirement_refuse_a_keyring_edited_in_place_to_bring_a_retired_key_back(
    tmp_path: Path, clock: FakeClock, operation: str
) -> None:
    path = tmp_path / "store.db"
    with _sqlite_manager(path, clock) as km:
        _put(km, "n", b"v")
        km.rotate_store_key()
        km.rotate_store_key()
        km.reseal()
        old = json.loads(km._store.backend.get(*KEYRING_RECORD).data)  # type: ignore[union-attr]
        km.retire_store_key(1)
        # The attacker put key 1's wrapped copy (from a backup) back, the MAC left as it was.
        _edit_keyring_in_place(path, lambda value: value["keys"].update({"1": old["keys"]["1"]}))
        before = km._store.backend.get(*KEYRING_RECORD)
        act: Callable[[], object] = (
            km.rotate_store_key if operation == "rotate" else lambda: km.retire_store_key(2)
        )
        with pytest.raises(IntegrityError, match="failed authentication"):
            act()
        assert km._store.backend.get(*KEYRING_RECORD) == before
    with pytest.raises(IntegrityError):  # a fresh open refuses the edited record too
        _sqlite_manager(path, clock)
