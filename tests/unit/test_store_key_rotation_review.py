"""Store key rotation, review fixes: a rolled-back keyring record, paging, kinds()."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keymgmt import KeyManager, RawMasterKey
from keymgmt.errors import IntegrityError
from keymgmt.keyring import KEYRING_RECORD
from keymgmt.keyring._keyring import key_id_of
from keymgmt.storage import ANY, MemoryBackend, Put
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
