"""The store's write path: the remembered audit head and the one-pass audit encoding."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt import _codec
from keymgmt import _store as store_module
from keymgmt._store import Store, Txn
from keymgmt.audit import AUDIT_HEAD, AuditEntry, AuditLog
from keymgmt.errors import IntegrityError
from keymgmt.keyring import Keyring, RawMasterKey
from keymgmt.storage import ANY, MemoryBackend, Put, Record
from keymgmt.testing import FakeClock, SeededRandomness

MASTER = bytes(range(32))


class CountingBackend(MemoryBackend):
    """A memory backend that counts reads of the audit head."""

    def __init__(self) -> None:
        super().__init__()
        self.head_reads = 0

    def get(self, kind: str, name: str) -> Record | None:
        if (kind, name) == AUDIT_HEAD:
            self.head_reads += 1
        return super().get(kind, name)


def make_store(backend: MemoryBackend, clock: FakeClock, rng: SeededRandomness) -> Store:
    keyring = (
        Keyring.open(backend, RawMasterKey(MASTER), rng)
        if Keyring.exists(backend)
        else Keyring.initialize(backend, RawMasterKey(MASTER), rng)
    )
    return Store(backend=backend, keyring=keyring, clock=clock, randomness=rng)


def audited(name: str) -> Any:
    def run(txn: Txn) -> None:
        txn.put("thing", name, b"v")
        txn.audit("thing.create", name, size=1)

    return run


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without real sleeping (tests never sleep)."""
    monkeypatch.setattr(store_module.time, "sleep", lambda _s: None)


def test_the_audit_head_is_read_once_then_remembered_after_own_commits(
    clock: FakeClock, rng: SeededRandomness
) -> None:
    backend = CountingBackend()
    store = make_store(backend, clock, rng)
    for i in range(5):
        store.transact(audited(f"t{i}"))
    assert backend.head_reads == 1
    assert AuditLog(store).verify().entries == 5


def test_two_stores_appending_in_turn_keep_one_unbroken_chain(
    clock: FakeClock, rng: SeededRandomness, no_backoff: None
) -> None:
    backend = MemoryBackend()
    mine, theirs = make_store(backend, clock, rng), make_store(backend, clock, rng)
    for i in range(4):
        mine.transact(audited(f"m{i}"))
        theirs.transact(audited(f"t{i}"))
    report = AuditLog(mine).verify()
    assert report.entries == 8
    assert [e.object for e in AuditLog(mine).entries()] == [
        name for i in range(4) for name in (f"m{i}", f"t{i}")
    ]


def test_a_head_replaced_behind_the_stores_back_is_still_refused(
    clock: FakeClock, rng: SeededRandomness, no_backoff: None
) -> None:
    backend = MemoryBackend()
    store = make_store(backend, clock, rng)
    store.transact(audited("a"))
    head = backend.get(*AUDIT_HEAD)
    assert head is not None
    damaged = bytes([head.data[0]]) + bytes(b ^ 1 for b in head.data[1:])
    backend.commit([Put(*AUDIT_HEAD, damaged, ANY)])
    with pytest.raises(IntegrityError):
        store.transact(audited("b"))
    assert backend.get("thing", "b") is None


def test_a_failed_audited_write_leaves_the_remembered_head_usable(
    clock: FakeClock, rng: SeededRandomness
) -> None:
    backend = MemoryBackend()
    store = make_store(backend, clock, rng)
    store.transact(audited("a"))

    def failing(txn: Txn) -> None:
        txn.audit("thing.create", "x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.transact(failing)
    store.transact(audited("b"))
    assert AuditLog(store).verify().entries == 2


text = st.text(max_size=20)
details = st.dictionaries(
    st.text(max_size=8),
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12)),
    max_size=4,
)


@given(
    seq=st.integers(min_value=1, max_value=2**62),
    micros=st.integers(min_value=0, max_value=2**50),
    actor=text,
    operation=text,
    obj=text,
    outcome=text,
    details=details,
    prev=st.binary(min_size=32, max_size=32),
)
def test_the_one_pass_entry_encoding_equals_create_then_encode(
    seq: int,
    micros: int,
    actor: str,
    operation: str,
    obj: str,
    outcome: str,
    details: dict[str, Any],
    prev: bytes,
) -> None:
    at = _codec.from_micros(micros)
    fields: dict[str, Any] = {
        "seq": seq,
        "time": at,
        "actor": actor,
        "operation": operation,
        "object": obj,
        "outcome": outcome,
        "details": details,
        "prev_hash": prev,
    }
    try:
        expected = AuditEntry.create(**fields)
        expected_bytes: bytes | None = expected.encode()
    except Exception as exc:  # lone surrogates: both paths must refuse alike
        with pytest.raises(type(exc)):
            AuditEntry.chained(**fields)
        return
    entry, stored = AuditEntry.chained(**fields)
    assert entry == expected
    assert entry.hash == expected.hash
    assert stored == expected_bytes
    assert AuditEntry.decode(stored) == expected
    assert at.tzinfo is dt.UTC
