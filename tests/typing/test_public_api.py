"""Typing test: the foundation's public API as users write it, checked by mypy --strict.

``assert_type`` pins the types mypy infers; the functions also run under
pytest (they are cheap), so the examples stay true at run time too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, assert_type

import keymgmt
from keymgmt import (
    AuditEntry,
    AuditLog,
    AuditReport,
    Clock,
    KdfProfile,
    KeyManager,
    KeyMgmtError,
    Passphrase,
    Randomness,
    RawMasterKey,
    Revocation,
    RevocationReason,
    SecretBytes,
    SubjectKind,
)
from keymgmt._store import Store, Txn
from keymgmt.errors import AuditChainError, ConflictError, IntegrityError, StoreError
from keymgmt.keyring import Keyring, MasterKeySource
from keymgmt.revocation import RevocationRegistry
from keymgmt.storage import ANY, Backend, Delete, MemoryBackend, Put, Record, SQLiteBackend
from keymgmt.testing import FakeClock, SeededRandomness, in_memory_manager


def test_secret_bytes_api() -> None:
    secret = SecretBytes(b"k" * 32)
    assert_type(secret.reveal(), bytes)
    assert_type(len(secret), int)
    assert_type(secret == SecretBytes(b"x"), bool)


def test_manager_constructors_and_parts(tmp_path: Path) -> None:
    clock = FakeClock()
    rng: Randomness = SeededRandomness(1)
    with KeyManager.in_memory(clock=clock, randomness=rng) as km:
        assert_type(km, KeyManager)
        assert_type(km.clock, Clock)
        assert_type(km.audit, AuditLog)
        assert_type(km.revocation, RevocationRegistry)
    source: MasterKeySource = Passphrase("pw", KdfProfile.TESTING_ONLY_INSECURE)
    with KeyManager.open(tmp_path / "s.db", master_key=source) as km2:
        km2.change_master_key(RawMasterKey(bytes(32)))
        km2.sync()
    manager = in_memory_manager(seed=3)
    assert_type(manager, KeyManager)
    manager.close()


def test_audit_api() -> None:
    with in_memory_manager() as km:
        report = km.audit.verify()
        assert_type(report, AuditReport)
        assert_type(report.entries, int)
        assert_type(report.head_hash, bytes)
        entries = km.audit.entries(start=1)
        assert_type(entries, Iterator[AuditEntry])
        last = km.audit.tail(1)
        assert_type(last, list[AuditEntry])
        assert_type(last[0].time, dt.datetime)
        assert_type(last[0].as_dict(), dict[str, Any])


def test_revocation_api() -> None:
    with in_memory_manager() as km:
        registry = km.revocation
        revoked = registry.revoke(SubjectKind.KEY, "k#1", RevocationReason.KEY_COMPROMISE)
        assert_type(revoked, Revocation)
        assert_type(revoked.revoked_at, dt.datetime)
        assert_type(revoked.invalidity_date, dt.datetime | None)
        assert_type(registry.is_revoked(SubjectKind.KEY, "k#1"), bool)
        assert_type(registry.get(SubjectKind.KEY, "k#1"), Revocation | None)
        assert_type(registry.list(SubjectKind.KEY), list[Revocation])
        assert_type(RevocationReason.KEY_COMPROMISE.code, int)
        registry.revoke(SubjectKind.CERTIFICATE, "ca:01", "certificate-hold")
        registry.release_hold(SubjectKind.CERTIFICATE, "ca:01")


def test_store_transactions_api() -> None:
    with in_memory_manager() as km:
        store: Store = km._store

        def write(txn: Txn) -> int:
            assert_type(txn.now, dt.datetime)
            assert_type(txn.get("thing", "a"), bytes | None)
            assert_type(txn.get_json("thing", "b"), dict[str, Any] | None)
            assert_type(txn.list("thing"), list[tuple[str, bytes]])
            txn.put("thing", "a", b"1")
            txn.put_json("thing", "b", {"n": 1})
            txn.audit("thing.write", "a", size=1, ok=True, note=None)
            txn.after_commit(lambda: None)
            return 7

        result = store.transact(write)
        assert_type(result, int)
        assert_type(store.get("thing", "a"), bytes | None)
        keyring: Keyring = store.keyring
        sealed = keyring.seal("thing", "x", b"data")
        assert_type(keyring.unseal("thing", "x", sealed), bytes)


def test_backend_protocol_api(tmp_path: Path) -> None:
    backends: list[Backend] = [MemoryBackend(), SQLiteBackend(tmp_path / "b.db")]
    for backend in backends:
        written = backend.commit([Put("k", "n", b"v", 0), Put("k", "m", b"w", ANY)])
        assert_type(written, list[Record])
        assert_type(backend.get("k", "n"), Record | None)
        assert_type(backend.list("k", prefix="n", after_seq=0), list[Record])
        assert_type(backend.generation(), int)
        backend.commit([Delete("k", "m")])
        backend.close()


def test_errors_are_typed() -> None:
    errors: list[type[KeyMgmtError]] = [
        AuditChainError,
        ConflictError,
        IntegrityError,
        StoreError,
        keymgmt.WrongPassphraseError,
        keymgmt.InvalidArgumentError,
    ]
    assert all(issubclass(e, KeyMgmtError) for e in errors)
    try:
        SecretBytes("text")  # type: ignore[arg-type]
    except keymgmt.InvalidArgumentError as exc:
        assert_type(exc.message, str)
