"""KeyManager: constructors, lifecycle, master key changes, thread safety."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import pytest

from keymgmt import KeyManager, RevocationReason, SubjectKind
from keymgmt.audit import AuditEntry
from keymgmt.errors import (
    ConflictError,
    InvalidArgumentError,
    StoreError,
    StoreUnavailableError,
    WrongPassphraseError,
)
from keymgmt.keyring import KEYRING_RECORD, KdfProfile, KeyFile, Keyring, Passphrase, RawMasterKey
from keymgmt.storage import MemoryBackend, Record, SQLiteBackend
from keymgmt.testing import FakeClock, SeededRandomness, in_memory_manager

CHEAP = KdfProfile.TESTING_ONLY_INSECURE
KEY = SubjectKind.KEY


def open_cheap(path: Path, passphrase: str = "pw", **kwargs: object) -> KeyManager:
    return KeyManager.open(path, passphrase=passphrase, kdf_profile=CHEAP, **kwargs)  # type: ignore[arg-type]


# -- constructors ------------------------------------------------------------------


def test_in_memory_starts_with_one_audited_event(clock: FakeClock) -> None:
    with KeyManager.in_memory(clock=clock) as km:
        (entry,) = km.audit.entries()
        assert (entry.operation, entry.object, entry.time) == ("store.init", "store", clock.now())
        assert entry.details == {"backend": "MemoryBackend"}


def test_in_memory_manager_helper_is_deterministic() -> None:
    a, b = in_memory_manager(seed=5), in_memory_manager(seed=5)
    assert a.audit.verify().head_hash == b.audit.verify().head_hash
    a.close()
    b.close()


def test_open_creates_a_sqlite_store_and_reopens_it(store_path: Path) -> None:
    with open_cheap(store_path) as km:
        km.revocation.revoke(KEY, "k#1")
    assert store_path.exists()
    with open_cheap(store_path) as km:
        assert km.revocation.is_revoked(KEY, "k#1")
        assert [e.operation for e in km.audit.entries()] == ["store.init", "revoke"]


def test_open_without_create_refuses_a_missing_store(store_path: Path) -> None:
    with pytest.raises(StoreUnavailableError):
        open_cheap(store_path, create=False)
    assert not store_path.exists()


def test_open_without_create_refuses_an_uninitialized_store(store_path: Path) -> None:
    SQLiteBackend(store_path).close()
    with pytest.raises(StoreUnavailableError, match="not initialized"):
        open_cheap(store_path, create=False)


@pytest.mark.parametrize(
    "sources",
    [
        {},
        {"passphrase": "pw", "master_key": RawMasterKey(bytes(32))},
        {"passphrase": "pw", "key_file": "k"},
        {"key_file": "k", "master_key": RawMasterKey(bytes(32))},
    ],
    ids=["none", "passphrase+master_key", "passphrase+key_file", "key_file+master_key"],
)
def test_open_needs_exactly_one_master_key_source(
    store_path: Path, sources: dict[str, object]
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        KeyManager.open(store_path, **sources)  # type: ignore[arg-type]
    assert info.value.message == "give exactly one of passphrase=, key_file= or master_key="
    assert not store_path.exists()


def test_open_with_a_key_file(store_path: Path, tmp_path: Path) -> None:
    key_path = tmp_path / "master.key"
    KeyFile.generate(key_path)
    with KeyManager.open(store_path, key_file=key_path) as km:
        km.revocation.revoke(KEY, "k#1")
    with KeyManager.open(store_path, key_file=key_path) as km:
        assert km.revocation.is_revoked(KEY, "k#1")
    with pytest.raises(WrongPassphraseError):
        KeyManager.open(store_path, passphrase="pw")


def test_open_with_a_master_key_source(store_path: Path) -> None:
    with KeyManager.open(store_path, master_key=RawMasterKey(bytes(range(32)))) as km:
        assert km.audit.verify().entries == 1


def test_a_failed_open_releases_the_file(store_path: Path) -> None:
    open_cheap(store_path).close()
    with pytest.raises(WrongPassphraseError):
        open_cheap(store_path, passphrase="wrong")
    with open_cheap(store_path) as km:
        km.revocation.revoke(KEY, "k#1")


def test_a_store_initialized_concurrently_is_opened_not_refused() -> None:
    # Another process initializes the store between our "exists?" check and
    # our own initialization: the manager opens what it created.
    backend = MemoryBackend()
    rng = SeededRandomness(1)
    Keyring.initialize(backend, RawMasterKey(bytes(32)), rng)
    real_get = backend.get
    hidden = [True]

    def get(kind: str, name: str) -> Record | None:
        if (kind, name) == KEYRING_RECORD and hidden[0]:
            hidden[0] = False
            return None
        return real_get(kind, name)

    backend.get = get  # type: ignore[method-assign]
    with KeyManager(backend=backend, master_key=RawMasterKey(bytes(32)), randomness=rng) as km:
        assert km.audit.verify().entries == 0  # the other process's store; not re-initialized


def test_actor_and_sinks_reach_the_audit_log(clock: FakeClock) -> None:
    received: list[AuditEntry] = []
    with KeyManager.in_memory(
        clock=clock, actor="svc-billing", audit_sinks=[received.append]
    ) as km:
        km.revocation.revoke(KEY, "k#1")
    assert [(e.operation, e.actor) for e in received] == [
        ("store.init", "svc-billing"),
        ("revoke", "svc-billing"),
    ]


def test_the_clock_is_the_injected_one(clock: FakeClock) -> None:
    with KeyManager.in_memory(clock=clock) as km:
        assert km.clock is clock
        clock.advance(days=2)
        revoked = km.revocation.revoke(KEY, "k#1")
        assert revoked.revoked_at == clock.now()


# -- lifecycle -----------------------------------------------------------------------


def test_close_is_idempotent_and_the_repr_says_so(km: KeyManager) -> None:
    assert repr(km).startswith("KeyManager(MemoryBackend(")
    assert repr(km).endswith(", open)")
    km.close()
    km.close()
    assert repr(km).endswith("closed)")


def test_using_a_closed_manager_is_a_store_error(km: KeyManager) -> None:
    km.close()
    with pytest.raises(StoreError, match="closed"):
        km.revocation.revoke(KEY, "k#1")


def test_the_context_manager_closes_even_on_error(store_path: Path) -> None:
    with pytest.raises(RuntimeError), open_cheap(store_path) as km:
        raise RuntimeError("boom")
    assert repr(km).endswith("closed)")


def test_a_manager_cannot_be_pickled(km: KeyManager) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(km)


# -- changing the master key ------------------------------------------------------------


def test_changing_the_passphrase_loses_nothing(store_path: Path) -> None:
    with open_cheap(store_path, "old") as km:
        km.revocation.revoke(KEY, "k#1", RevocationReason.KEY_COMPROMISE)
        km._store.transact(lambda txn: txn.put("note", "n", b"kept"))
        km.change_master_key(Passphrase("new", CHEAP))
        assert km._store.get("note", "n") == b"kept"  # the open manager carries on
    with pytest.raises(WrongPassphraseError):
        open_cheap(store_path, "old")
    with open_cheap(store_path, "new") as km:
        assert km.revocation.is_revoked(KEY, "k#1")
        assert km._store.get("note", "n") == b"kept"
        assert km.audit.verify().entries == 3
        assert km.audit.tail(1)[0].operation == "store.change-master-key"


def test_changing_the_master_key_twice_in_one_session(store_path: Path) -> None:
    with open_cheap(store_path, "one") as km:
        km.change_master_key(Passphrase("two", CHEAP))
        km.change_master_key(RawMasterKey(bytes(range(32))))
    with KeyManager.open(store_path, master_key=RawMasterKey(bytes(range(32)))) as km:
        assert km.audit.verify().entries == 3


def test_a_concurrent_master_key_change_is_a_conflict(store_path: Path) -> None:
    with open_cheap(store_path, "old") as a, open_cheap(store_path, "old") as b:
        a.change_master_key(Passphrase("from-a", CHEAP))
        with pytest.raises(ConflictError, match="changed elsewhere"):
            b.change_master_key(Passphrase("from-b", CHEAP))
        entries = b.audit.verify().entries
    assert entries == 2
    with open_cheap(store_path, "from-a") as km:
        assert km.audit.tail(1)[0].operation == "store.change-master-key"


# -- threads -----------------------------------------------------------------------------


def test_one_manager_is_safe_to_share_between_threads(store_path: Path) -> None:
    errors: list[BaseException] = []
    with open_cheap(store_path, consistency_interval=0) as km:

        def work(worker: int) -> None:
            try:
                for i in range(10):
                    km.revocation.revoke(KEY, f"w{worker}#{i}")
                    assert km.revocation.is_revoked(KEY, f"w{worker}#{i}")
                    km.audit.tail(3)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(km.revocation) == 40
        assert km.audit.verify().entries == 41
