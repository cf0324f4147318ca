"""Store key rotation: rotate, re-seal, retire (memory and SQLite, one and two managers)."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from keymgmt import KeyManager, Passphrase, RawMasterKey, _codec
from keymgmt.errors import (
    IntegrityError,
    InvalidArgumentError,
    KeyMgmtError,
    KeyStateError,
    NotFoundError,
    StoreUnavailableError,
    WrongPassphraseError,
)
from keymgmt.keyring import (
    KEYRING_RECORD,
    KdfProfile,
    Keyring,
    ResealReport,
    StoreKeyInfo,
    StoreKeyStatus,
)
from keymgmt.keyring._keyring import key_id_of
from keymgmt.keyring._rotation import record_kinds
from keymgmt.storage import ANY, Backend, Check, MemoryBackend, Put
from keymgmt.testing import FakeClock, SeededRandomness

CHEAP = KdfProfile.TESTING_ONLY_INSECURE
MASTER = bytes(range(32))

Opener = Callable[[], KeyManager]


@pytest.fixture(params=["memory", "sqlite"])
def opener(request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path) -> Opener:
    """Open a manager on one store (each call another 'process'): memory or SQLite."""
    if request.param == "memory":
        backend = MemoryBackend()

        def open_memory() -> KeyManager:
            return KeyManager(
                backend=backend,
                master_key=RawMasterKey(MASTER),
                clock=clock,
                randomness=SeededRandomness(7),
                consistency_interval=0,
            )

        return open_memory
    path = tmp_path / "store.db"

    def open_sqlite() -> KeyManager:
        return KeyManager.open(
            path, passphrase="pw", kdf_profile=CHEAP, clock=clock, consistency_interval=0
        )

    return open_sqlite


@pytest.fixture
def km(opener: Opener) -> Iterator[KeyManager]:
    manager = opener()
    yield manager
    if "Memory" not in repr(manager):  # a memory store's managers share one backend
        manager.close()


def _put(km: KeyManager, name: str, value: bytes) -> None:
    km._store.transact(lambda txn: txn.put("note", name, value))


def _get(km: KeyManager, name: str) -> bytes | None:
    return km._store.get("note", name)


def _key_id(km: KeyManager, kind: str, name: str) -> int | None:
    record = km._store.backend.get(kind, name)
    assert record is not None
    return key_id_of(record.data)


def _keyring_record(km: KeyManager) -> bytes:
    record = km._store.backend.get(*KEYRING_RECORD)
    assert record is not None
    return record.data


def _keyring_json(km: KeyManager) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(_keyring_record(km))
    return value


def _snapshot(km: KeyManager) -> dict[tuple[str, str], bytes]:
    backend = km._store.backend
    return {(r.kind, r.name): r.data for kind in record_kinds(backend) for r in backend.list(kind)}


def _rotated_and_resealed(km: KeyManager) -> int:
    key_id = km.rotate_store_key()
    km.reseal()
    return key_id


# -- rotate ------------------------------------------------------------------------------


def test_rotate_makes_a_new_current_key_that_new_seals_use(km: KeyManager) -> None:
    _put(km, "before", b"old")
    assert km.rotate_store_key() == 2
    _put(km, "after", b"new")
    assert _key_id(km, "note", "before") == 1
    assert _key_id(km, "note", "after") == 2


def test_records_sealed_under_the_old_key_still_read_after_rotate(km: KeyManager) -> None:
    km.keys.create("payments")
    ciphertext = km.encrypt("payments", b"hello")
    _put(km, "n", b"value")
    km.rotate_store_key()
    assert _get(km, "n") == b"value"
    assert km.decrypt(ciphertext) == b"hello"


def test_rotate_is_audited_with_ids_only(km: KeyManager) -> None:
    km.rotate_store_key()
    entry = km.audit.tail(1)[0]
    assert (entry.operation, entry.object) == ("store.rotate-store-key", "store")
    assert entry.details == {"key_id": 2, "previous": 1}
    assert km.audit.verify().entries == 2


def test_the_rotated_keyring_record_has_format_2_and_a_mac(km: KeyManager) -> None:
    assert _keyring_json(km)["format"] == 1
    km.rotate_store_key()
    value = _keyring_json(km)
    assert value["format"] == 2
    assert sorted(value["keys"]) == ["1", "2"]
    assert value["active"] == 2
    assert len(_codec.b64d(value["mac"])) == 32


def test_a_rotated_store_reopens_and_reads_both_keys(opener: Opener) -> None:
    first = opener()
    _put(first, "a", b"under 1")
    first.rotate_store_key()
    _put(first, "b", b"under 2")
    again = opener()
    assert (_get(again, "a"), _get(again, "b")) == (b"under 1", b"under 2")
    assert again._store.keyring.current_key_id == 2


def test_rotate_twice_gives_increasing_ids(km: KeyManager) -> None:
    assert (km.rotate_store_key(), km.rotate_store_key()) == (2, 3)
    assert km._store.keyring.key_ids == (1, 2, 3)


def test_rotate_with_a_bare_string_master_key_is_refused_and_changes_nothing(
    km: KeyManager,
) -> None:
    before = _keyring_record(km)
    with pytest.raises(InvalidArgumentError, match="Passphrase, KeyFile, RawMasterKey"):
        km.rotate_store_key(master_key="new passphrase")  # type: ignore[arg-type]
    assert _keyring_record(km) == before


def test_rotate_with_a_new_master_key_rewraps_every_key(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "s.db"
    with KeyManager.open(path, passphrase="old", kdf_profile=CHEAP, clock=clock) as km:
        _put(km, "n", b"v")
        km.rotate_store_key(master_key=Passphrase("new", CHEAP))
        assert km.audit.tail(1)[0].details == {
            "key_id": 2,
            "previous": 1,
            "master_key": "passphrase",
        }
    with pytest.raises(WrongPassphraseError):
        KeyManager.open(path, passphrase="old")
    with KeyManager.open(path, passphrase="new") as km:
        assert _get(km, "n") == b"v"
        assert km._store.keyring.key_ids == (1, 2)


def test_change_master_key_after_rotation_keeps_every_store_key(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "s.db"
    with KeyManager.open(path, passphrase="old", kdf_profile=CHEAP, clock=clock) as km:
        _put(km, "a", b"1")
        km.rotate_store_key()
        _put(km, "b", b"2")
        km.change_master_key(Passphrase("new", CHEAP))
        km.rotate_store_key()  # wrapped under the new master key it now holds
    with KeyManager.open(path, passphrase="new") as km:
        assert (_get(km, "a"), _get(km, "b")) == (b"1", b"2")
        assert km._store.keyring.key_ids == (1, 2, 3)


def test_the_wrong_passphrase_after_rotation_fails_and_leaves_the_store(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "s.db"
    with KeyManager.open(path, passphrase="right", kdf_profile=CHEAP, clock=clock) as km:
        _put(km, "n", b"v")
        km.rotate_store_key()
        before = _snapshot(km)
    with pytest.raises(WrongPassphraseError):
        KeyManager.open(path, passphrase="wrong")
    with KeyManager.open(path, passphrase="right") as km:
        assert _snapshot(km) == before
        assert _get(km, "n") == b"v"


# -- status ------------------------------------------------------------------------------


def test_status_counts_the_records_each_key_seals(km: KeyManager) -> None:
    _put(km, "a", b"1")
    _put(km, "b", b"2")
    km.rotate_store_key()
    _put(km, "c", b"3")
    status = km.store_key_status()
    assert isinstance(status, StoreKeyStatus)
    assert status.current == 2
    # (the sealed audit head is not counted: every audited write re-seals it)
    assert status.keys == (
        StoreKeyInfo(key_id=1, current=False, held=True, records=2),
        StoreKeyInfo(key_id=2, current=True, held=True, records=1),
    )
    assert status.stale_records == 2
    assert status.as_dict()["stale_records"] == 2


# -- reseal ------------------------------------------------------------------------------


def test_reseal_moves_every_record_to_the_current_key(km: KeyManager) -> None:
    km.keys.create("payments")
    ciphertext = km.encrypt("payments", b"hello")
    for index in range(5):
        _put(km, f"n{index}", bytes([index]))
    km.rotate_store_key()
    report = km.reseal()
    assert isinstance(report, ResealReport)
    assert (report.key_id, report.remaining, report.unreadable) == (2, 0, 0)
    assert report.resealed == km.store_key_status().keys[-1].records
    assert km.store_key_status().stale_records == 0
    assert [_get(km, f"n{index}") for index in range(5)] == [bytes([i]) for i in range(5)]
    assert km.decrypt(ciphertext) == b"hello"


def test_reseal_works_in_batches_and_reports_progress(km: KeyManager) -> None:
    for index in range(5):
        _put(km, f"n{index}", b"x")
    km.rotate_store_key()
    calls: list[tuple[int, int]] = []
    report = km.reseal(batch_size=2, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert (report.resealed, report.batches) == (5, 3)
    entries = [e for e in km.audit.tail(3) if e.operation == "store.reseal"]
    assert [e.details for e in entries] == [
        {"key_id": 2, "records": 2},
        {"key_id": 2, "records": 2},
        {"key_id": 2, "records": 1},
    ]


def test_reseal_with_nothing_to_do_writes_nothing(km: KeyManager) -> None:
    _put(km, "n", b"x")
    entries = km.audit.verify().entries
    report = km.reseal()
    assert report == ResealReport(key_id=1, resealed=0, batches=0, remaining=0, unreadable=0)
    assert km.audit.verify().entries == entries


def test_reseal_resumes_after_a_crash_between_batches(km: KeyManager) -> None:
    for index in range(6):
        _put(km, f"n{index}", bytes([index]))
    km.rotate_store_key()

    def crash(done: int, total: int) -> None:
        raise KeyboardInterrupt  # the process dies after its first batch committed

    with pytest.raises(KeyboardInterrupt):
        km.reseal(batch_size=2, progress=crash)
    assert km.store_key_status().stale_records == 4
    report = km.reseal(batch_size=2)
    assert report.resealed == 4
    assert [_get(km, f"n{index}") for index in range(6)] == [bytes([i]) for i in range(6)]


@pytest.mark.parametrize("size", [0, -1, 10_001, 2.5, True, "3"])
def test_reseal_refuses_a_bad_batch_size(km: KeyManager, size: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        km.reseal(batch_size=size)


def test_a_write_racing_a_reseal_batch_is_kept(opener: Opener) -> None:
    a, b = opener(), opener()
    _put(a, "n", b"first")
    a.rotate_store_key()
    backend = a._store.backend
    real_commit = backend.commit
    raced: list[bool] = []

    def commit_after_another_writer(operations: Any) -> Any:
        if not raced and any(getattr(op, "kind", None) == "note" for op in operations):
            raced.append(True)
            b._store.transact(_overwrite)
        return real_commit(operations)

    backend.commit = commit_after_another_writer  # type: ignore[method-assign]
    try:
        if b._store.backend is backend:  # one MemoryBackend: b's write must not recurse
            b._store.backend = _Passthrough(backend, real_commit)
        report = a.reseal()
    finally:
        backend.commit = real_commit  # type: ignore[method-assign]
    assert raced
    assert _get(a, "n") == b"second"
    assert report.remaining == 0
    assert a.store_key_status().stale_records == 0


def _overwrite(txn: Any) -> None:
    assert txn.get("note", "n") is not None  # read, then write: compare-and-set
    txn.put("note", "n", b"second")


class _Passthrough:
    """A backend that commits with the original method (for the race test's other writer)."""

    def __init__(self, backend: Backend, commit: Any) -> None:
        self._backend = backend
        self.commit = commit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


# -- retire ------------------------------------------------------------------------------


def test_retire_destroys_the_old_key_after_reseal(km: KeyManager, clock: FakeClock) -> None:
    _put(km, "n", b"v")
    _rotated_and_resealed(km)
    km.retire_store_key(1)
    assert sorted(_keyring_json(km)["keys"]) == ["2"]
    assert km._store.keyring.key_ids == (2,)
    assert [info.key_id for info in km.store_key_status().keys] == [2]
    assert _get(km, "n") == b"v"
    entry = km.audit.tail(1)[0]
    assert (entry.operation, entry.details) == ("store.retire-store-key", {"key_id": 1})
    km.audit.verify()


def test_a_store_with_a_retired_key_reopens(opener: Opener, clock: FakeClock) -> None:
    km = opener()
    _put(km, "n", b"v")
    _rotated_and_resealed(km)
    km.retire_store_key(1)
    again = opener()
    assert _get(again, "n") == b"v"
    assert again._store.keyring.key_ids == (2,)


def test_retire_refuses_the_current_key_and_changes_nothing(km: KeyManager) -> None:
    before = _snapshot(km)
    with pytest.raises(KeyStateError, match="store key 1 is the current store key") as info:
        km.retire_store_key(1)
    assert info.value.key_id == 1  # type: ignore[attr-defined]
    assert _snapshot(km) == before


def test_retire_refuses_an_unknown_key_and_changes_nothing(km: KeyManager) -> None:
    km.rotate_store_key()
    before = _snapshot(km)
    with pytest.raises(NotFoundError, match=r"no store key 7 \(keys: 1, 2\)"):
        km.retire_store_key(7)
    assert _snapshot(km) == before


@pytest.mark.parametrize("key_id", ["1", 1.0, None, True])
def test_retire_refuses_a_key_id_that_is_not_an_int(km: KeyManager, key_id: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="a store key id is an int"):
        km.retire_store_key(key_id)


def test_retire_refuses_while_records_use_the_key(km: KeyManager, clock: FakeClock) -> None:
    _put(km, "a", b"1")
    _put(km, "b", b"2")
    km.rotate_store_key()
    before = _snapshot(km)
    with pytest.raises(KeyStateError, match=r"store key 1 still seals 2 record\(s\)") as info:
        km.retire_store_key(1)
    assert info.value.records == 2  # type: ignore[attr-defined]
    assert "keymgmt store reseal" in info.value.message
    assert _snapshot(km) == before


def test_a_value_sealed_under_a_retired_key_no_longer_unseals(
    km: KeyManager, clock: FakeClock
) -> None:
    _put(km, "n", b"v")
    old = km._store.backend.get("note", "n")
    assert old is not None
    _rotated_and_resealed(km)
    km.retire_store_key(1)
    km._store.backend.commit([Put("note", "n", old.data, ANY)])  # put back from a backup
    with pytest.raises(IntegrityError, match="names store key 1, which this store does not hold"):
        _get(km, "n")


# -- the keyring record cannot be edited to undo a rotation ------------------------------


def _edit_keyring(km: KeyManager, **changes: Any) -> None:
    value = _keyring_json(km)
    value.update(changes)
    km._store.backend.commit([Put(*KEYRING_RECORD, _codec.dumps(value), ANY)])


def _reopen(km: KeyManager) -> Keyring:
    return Keyring.open(km._store.backend, RawMasterKey(MASTER), SeededRandomness())


@pytest.fixture
def memory_km(clock: FakeClock) -> KeyManager:
    return KeyManager(
        backend=MemoryBackend(), master_key=RawMasterKey(MASTER), clock=clock, randomness=None
    )


def test_pointing_the_record_back_at_an_old_key_is_refused(memory_km: KeyManager) -> None:
    memory_km.rotate_store_key()
    _edit_keyring(memory_km, active=1)
    with pytest.raises(IntegrityError, match="damaged"):
        _reopen(memory_km)


def test_putting_a_retired_wrapped_key_back_is_refused(
    memory_km: KeyManager, clock: FakeClock
) -> None:
    wrapped_one = _keyring_json(memory_km)["keys"]["1"]
    _rotated_and_resealed(memory_km)
    memory_km.retire_store_key(1)
    keys = _keyring_json(memory_km)["keys"]
    _edit_keyring(memory_km, keys={**keys, "1": wrapped_one})
    with pytest.raises(IntegrityError, match="failed authentication"):
        _reopen(memory_km)


def test_stripping_the_mac_by_claiming_format_1_is_refused(memory_km: KeyManager) -> None:
    memory_km.rotate_store_key()
    _edit_keyring(memory_km, format=1)
    with pytest.raises(IntegrityError, match="damaged"):
        _reopen(memory_km)


def test_an_edited_mac_is_refused(memory_km: KeyManager) -> None:
    memory_km.rotate_store_key()
    _edit_keyring(memory_km, mac=_codec.b64e(bytes(32)))
    with pytest.raises(IntegrityError, match="failed authentication"):
        _reopen(memory_km)


def test_an_edited_rotation_time_is_refused(memory_km: KeyManager) -> None:
    memory_km.rotate_store_key()
    _edit_keyring(memory_km, rotated=0)
    with pytest.raises(IntegrityError, match="failed authentication"):
        _reopen(memory_km)


# -- two managers on one store (two processes) -------------------------------------------


def test_another_manager_reads_records_under_a_key_rotated_elsewhere(opener: Opener) -> None:
    a, b = opener(), opener()
    a.rotate_store_key()
    _put(a, "n", b"sealed under 2")
    assert _get(b, "n") == b"sealed under 2"  # b unwraps key 2 when it meets it
    assert b._store.keyring.current_key_id == 2


def test_another_manager_seals_under_the_new_key_after_it_syncs(opener: Opener) -> None:
    a, b = opener(), opener()
    a.rotate_store_key()
    b.sync()
    assert b._store.keyring.current_key_id == 2
    _put(b, "n", b"v")
    assert _key_id(b, "note", "n") == 2


def test_a_manager_that_has_not_seen_a_rotation_writes_under_the_new_key(
    opener: Opener,
) -> None:
    a, b = opener(), opener()
    a.rotate_store_key()
    assert b._store.keyring.current_key_id == 1
    runs: list[int] = []

    def write(txn: Any) -> None:
        runs.append(b._store.keyring.current_key_id)
        txn.put("note", "n", b"from b")

    b._store.transact(write)
    # Sealed under key 1, its commit found meta/keyring moved: sealed again under 2.
    assert runs == [1, 2]
    assert _key_id(b, "note", "n") == 2
    assert _get(a, "n") == b"from b"


def test_a_write_from_a_manager_that_missed_a_retirement_lands_readable(
    opener: Opener,
) -> None:
    a, b = opener(), opener()
    _put(a, "n", b"v")
    _rotated_and_resealed(a)
    a.retire_store_key(1)
    assert b._store.keyring.key_ids == (1,)  # b has seen none of it
    _put(b, "late", b"from b")
    assert _key_id(b, "note", "late") == 2
    assert b._store.keyring.key_ids == (2,)
    assert _get(a, "late") == b"from b"
    assert _get(opener(), "late") == b"from b"


def test_a_group_commit_sealed_before_a_rotation_elsewhere_runs_again(opener: Opener) -> None:
    a, b = opener(), opener()
    a.rotate_store_key()
    outcomes = b._store.transact_many(
        [lambda txn, n=name: txn.put("note", n, n.encode()) for name in ("x", "y")]
    )
    assert outcomes == [None, None]
    assert (_key_id(a, "note", "x"), _key_id(a, "note", "y")) == (2, 2)


def test_another_manager_forgets_a_key_retired_elsewhere(opener: Opener, clock: FakeClock) -> None:
    a, b = opener(), opener()
    _put(a, "n", b"v")
    _rotated_and_resealed(a)
    assert _get(b, "n") == b"v"
    a.retire_store_key(1)
    b.sync()
    assert b._store.keyring.key_ids == (2,)


def test_a_rotation_under_a_master_key_this_process_lacks_says_reopen(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "s.db"
    kwargs: dict[str, Any] = {"kdf_profile": CHEAP, "clock": clock, "consistency_interval": 0}
    with (
        KeyManager.open(path, passphrase="old", **kwargs) as a,
        KeyManager.open(path, passphrase="old", **kwargs) as b,
    ):
        a.rotate_store_key(master_key=Passphrase("new", CHEAP))
        _put(a, "n", b"v")
        with pytest.raises(StoreUnavailableError, match="reopen the store"):
            _get(b, "n")
        with pytest.raises(StoreUnavailableError, match="reopen the store"):
            _put(b, "from-b", b"would be sealed under a key b cannot know is current")
        assert a._store.get("note", "from-b") is None
    with KeyManager.open(path, passphrase="new") as again:
        assert _get(again, "n") == b"v"


# -- no secret leaks -----------------------------------------------------------------------


def test_no_store_key_reaches_audit_repr_or_errors(km: KeyManager, clock: FakeClock) -> None:
    _put(km, "n", b"v")
    _rotated_and_resealed(km)
    keyring = km._store.keyring
    secrets = [key.reveal() for key in keyring._keys.values()]
    texts = [json.dumps(e.as_dict(), default=str) for e in km.audit.tail(50)]
    texts += [repr(keyring), repr(km.store_key_status()), repr(km._store_keys)]
    texts.append(repr(keyring.prepare_retirement(1)))
    for key_id in (2, 9):  # the current key, an unknown one
        with pytest.raises(KeyMgmtError) as info:
            km.retire_store_key(key_id)
        texts.append(str(info.value))
    for secret in secrets:
        for text in texts:
            assert secret.hex() not in text
            assert _codec.b64e(secret) not in text
            assert repr(secret) not in text


def test_a_keyring_change_cannot_be_pickled(km: KeyManager) -> None:
    change = km._store.keyring.prepare_rotation(bytes(32))
    assert "SecretBytes" not in repr(change)
    assert "[1, 2]" in repr(change)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(change)


def test_retire_erases_the_wrapped_old_key_from_the_sqlite_files(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "s.db"
    with KeyManager.open(path, passphrase="pw", kdf_profile=CHEAP, clock=clock) as km:
        wrapped_one = _codec.b64d(_keyring_json(km)["keys"]["1"])
        _put(km, "n", b"v")
        _rotated_and_resealed(km)
        km.retire_store_key(1)
        on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("s.db"))
        assert _codec.b64e(wrapped_one).encode() not in on_disk


# -- the commit's keyring check ----------------------------------------------------------


class _Recording(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[Any]] = []

    def commit(self, operations: Any) -> Any:
        self.batches.append(list(operations))
        return super().commit(operations)


def _keyring_checks(batch: list[Any]) -> list[Check]:
    return [op for op in batch if isinstance(op, Check) and (op.kind, op.name) == KEYRING_RECORD]


def test_a_sealing_commit_checks_the_keyring_revision_it_sealed_under(clock: FakeClock) -> None:
    backend = _Recording()
    km = KeyManager(backend=backend, master_key=RawMasterKey(MASTER), clock=clock)
    _put(km, "n", b"v")
    assert _keyring_checks(backend.batches[-1]) == [Check(*KEYRING_RECORD, 1)]
    km.rotate_store_key()  # writes meta/keyring itself: its put's revision is the check
    assert _keyring_checks(backend.batches[-1]) == []
    _put(km, "m", b"v")
    assert _keyring_checks(backend.batches[-1]) == [Check(*KEYRING_RECORD, 2)]


def test_a_commit_that_seals_nothing_has_no_keyring_check(clock: FakeClock) -> None:
    backend = _Recording()
    km = KeyManager(backend=backend, master_key=RawMasterKey(MASTER), clock=clock)
    _put(km, "n", b"v")
    km._store.transact(lambda txn: txn.delete("note", "n"))  # not audited: nothing sealed
    assert _keyring_checks(backend.batches[-1]) == []


def test_rotating_from_a_manager_behind_another_rotation_takes_the_next_id(opener: Opener) -> None:
    a, b = opener(), opener()
    assert a.rotate_store_key() == 2
    assert b._store.keyring.current_key_id == 1  # b has not seen it
    assert b.rotate_store_key() == 3
    assert b.audit.tail(1)[0].details == {"key_id": 3, "previous": 2}
    assert a._store.get("note", "x") is None
    _put(a, "x", b"v")  # a's commit finds meta/keyring moved: sealed under 3
    assert _key_id(a, "note", "x") == 3
