"""The audit chain: entries, tail, and verify() finding tampering and saying where."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt import _codec
from keymgmt._store import Store
from keymgmt.audit import AUDIT_HEAD, AUDIT_KIND, AuditEntry, AuditLog, entry_name, genesis
from keymgmt.errors import AuditChainError, IntegrityError, InvalidArgumentError
from keymgmt.keyring import Keyring, RawMasterKey
from keymgmt.storage import ANY, Delete, MemoryBackend, Put
from keymgmt.testing import FakeClock, SeededRandomness

MASTER = bytes(range(32))


def make_log(n: int, sinks: list[AuditEntry] | None = None) -> tuple[Store, AuditLog]:
    backend = MemoryBackend()
    rng = SeededRandomness(n)
    keyring = Keyring.initialize(backend, RawMasterKey(MASTER), rng)
    store = Store(
        backend=backend,
        keyring=keyring,
        clock=FakeClock(),
        randomness=rng,
        consistency_interval=0,
        audit_sinks=[sinks.append] if sinks is not None else [],
    )
    for i in range(1, n + 1):
        store.audit(f"op{i}", f"obj{i}", actor=f"actor{i % 3}", index=i, flag=i % 2 == 0)
    return store, AuditLog(store)


def stored(store: Store, seq: int) -> dict[str, object]:
    record = store.backend.get(AUDIT_KIND, entry_name(seq))
    assert record is not None
    value: dict[str, object] = json.loads(record.data)
    return value


def overwrite(store: Store, seq: int, value: dict[str, object]) -> None:
    store.backend.commit([Put(AUDIT_KIND, entry_name(seq), _codec.dumps(value), ANY)])


def rehash(value: dict[str, object]) -> dict[str, object]:
    body = {k: v for k, v in value.items() if k != "hash"}
    return {**body, "hash": _codec.b64e(AuditEntry.compute_hash(body))}


def chain_error(log: AuditLog) -> AuditChainError:
    with pytest.raises(AuditChainError) as info:
        log.verify()
    return info.value


# -- reading ---------------------------------------------------------------------


def test_an_empty_log_verifies() -> None:
    _, log = make_log(0)
    report = log.verify()
    assert (report.entries, report.head_hash) == (0, genesis())


def test_entries_are_numbered_and_linked() -> None:
    _, log = make_log(3)
    entries = list(log.entries())
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == genesis()
    assert entries[1].prev_hash == entries[0].hash
    assert entries[2].prev_hash == entries[1].hash
    assert log.verify().head_hash == entries[2].hash


def test_an_entry_records_who_what_outcome_and_details() -> None:
    store, log = make_log(0)
    store.audit("key.create", "payments", outcome="denied", actor="alice", size=256, ok=False)
    (entry,) = log.entries()
    assert entry.as_dict() == {
        "seq": 1,
        "time": "2030-01-01T00:00:00+00:00",
        "actor": "alice",
        "operation": "key.create",
        "object": "payments",
        "outcome": "denied",
        "details": {"size": 256, "ok": False},
    }


def test_the_default_actor_is_the_stores() -> None:
    store, log = make_log(0)
    store.audit("op", "obj")
    assert next(iter(log.entries())).actor == "local"


def test_entries_from_a_start_number() -> None:
    _, log = make_log(5)
    assert [e.seq for e in log.entries(start=4)] == [4, 5]
    assert list(log.entries(start=9)) == []


@pytest.mark.parametrize(
    ("count", "expected"), [(0, []), (2, [4, 5]), (5, [1, 2, 3, 4, 5]), (9, [1, 2, 3, 4, 5])]
)
def test_tail_returns_the_last_entries_oldest_first(count: int, expected: list[int]) -> None:
    _, log = make_log(5)
    assert [e.seq for e in log.tail(count)] == expected


def test_tail_refuses_a_negative_count() -> None:
    _, log = make_log(1)
    with pytest.raises(InvalidArgumentError, match="count"):
        log.tail(-1)


def test_the_entry_repr_leaves_out_the_hashes() -> None:
    _, log = make_log(1)
    text = repr(next(iter(log.entries())))
    assert "prev_hash" not in text
    assert "hash=" not in text


def test_a_malformed_stored_entry_is_an_integrity_error_when_read() -> None:
    store, log = make_log(2)
    store.backend.commit([Put(AUDIT_KIND, entry_name(2), b"{not json", ANY)])
    with pytest.raises(IntegrityError):
        list(log.entries())


def test_sinks_get_only_committed_entries() -> None:
    sink: list[AuditEntry] = []
    store, log = make_log(2, sink)

    def fails(txn: object) -> None:
        store_txn = txn
        store_txn.audit("never", "x")  # type: ignore[attr-defined]
        raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        store.transact(fails)
    assert [e.operation for e in sink] == ["op1", "op2"]
    assert sink == list(log.entries())


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.none()),
        max_size=5,
    )
)
def test_allowed_details_survive_encoding_exactly(details: dict[str, object]) -> None:
    entry = AuditEntry.create(
        seq=1,
        time=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        actor="a",
        operation="op",
        object="obj",
        outcome="ok",
        details=details,
        prev_hash=genesis(),
    )
    decoded = AuditEntry.decode(entry.encode())
    assert decoded == entry
    assert AuditEntry.compute_hash(decoded._body()) == entry.hash


@given(st.one_of(st.binary(), st.floats(), st.lists(st.integers()), st.builds(bytearray)))
def test_details_never_hold_bytes_or_other_objects(value: object) -> None:
    store, _ = make_log(0)
    with pytest.raises(InvalidArgumentError, match="must be str, int, bool or None"):
        store.audit("op", "obj", detail=value)
    assert store.backend.list(AUDIT_KIND) == []


# -- tampering: verify() says where ---------------------------------------------------

sizes = st.integers(min_value=1, max_value=8)


@given(sizes, st.data())
def test_an_edited_entry_is_found_at_its_position(n: int, data: st.DataObject) -> None:
    store, log = make_log(n)
    i = data.draw(st.integers(1, n), label="edited")
    field = data.draw(st.sampled_from(["actor", "operation", "object", "outcome", "time"]))
    value = stored(store, i)
    value[field] = 12345 if field == "time" else "tampered"
    overwrite(store, i, value)
    error = chain_error(log)
    assert error.position == i  # type: ignore[attr-defined]
    assert error.message == f"audit entry {i} was edited (hash mismatch)"


@given(sizes, st.data())
def test_an_edited_entry_with_a_recomputed_hash_breaks_the_next_link(
    n: int, data: st.DataObject
) -> None:
    store, log = make_log(n)
    i = data.draw(st.integers(1, n), label="edited")
    overwrite(store, i, rehash({**stored(store, i), "outcome": "denied"}))
    error = chain_error(log)
    if i < n:
        assert error.position == i + 1  # type: ignore[attr-defined]
        assert f"audit entry {i + 1} does not follow entry {i}" in error.message
    else:
        assert error.position == n  # type: ignore[attr-defined]
        assert "does not match the sealed head" in error.message


@given(sizes, st.data())
def test_a_deleted_entry_is_found(n: int, data: st.DataObject) -> None:
    store, log = make_log(n)
    i = data.draw(st.integers(1, n), label="deleted")
    store.backend.commit([Delete(AUDIT_KIND, entry_name(i))])
    error = chain_error(log)
    assert error.position == i  # type: ignore[attr-defined]
    if i < n:
        assert f"audit entry {i} is missing or out of order" in error.message
    else:
        assert "truncated" in error.message


@given(st.integers(min_value=2, max_value=8), st.data())
def test_reordered_entries_are_found_at_the_first_moved_one(n: int, data: st.DataObject) -> None:
    store, log = make_log(n)
    i = data.draw(st.integers(1, n - 1), label="first")
    j = data.draw(st.integers(i + 1, n), label="second")
    a, b = stored(store, i), stored(store, j)
    overwrite(store, i, b)
    overwrite(store, j, a)
    error = chain_error(log)
    assert error.position == i  # type: ignore[attr-defined]
    assert f"found entry {j}" in error.message


@given(st.integers(min_value=2, max_value=8), st.data())
def test_renumbered_entries_after_a_deletion_are_found(n: int, data: st.DataObject) -> None:
    # The attacker deletes entry i and shifts the later ones down, renumbering
    # them and recomputing their hashes: the prev link at i breaks.
    store, log = make_log(n)
    i = data.draw(st.integers(1, n - 1), label="deleted")
    later = [stored(store, s) for s in range(i + 1, n + 1)]
    store.backend.commit([Delete(AUDIT_KIND, entry_name(n))])
    for offset, value in enumerate(later):
        overwrite(store, i + offset, rehash({**value, "seq": i + offset}))
    error = chain_error(log)
    assert error.position == i  # type: ignore[attr-defined]


@given(sizes, st.data())
def test_truncation_is_found_where_the_log_now_ends(n: int, data: st.DataObject) -> None:
    store, log = make_log(n)
    k = data.draw(st.integers(1, n), label="removed")
    store.backend.commit([Delete(AUDIT_KIND, entry_name(s)) for s in range(n - k + 1, n + 1)])
    error = chain_error(log)
    assert error.position == n - k + 1  # type: ignore[attr-defined]
    assert error.message == (
        f"the audit log ends at entry {n - k} but its sealed head names entry {n} "
        f"(entries {n - k + 1}..{n} were removed: truncated)"
    )


@given(sizes, st.binary(min_size=1, max_size=80))
def test_an_edited_head_is_found(n: int, garbage: bytes) -> None:
    store, log = make_log(n)
    store.backend.commit([Put(*AUDIT_HEAD, garbage, ANY)])
    error = chain_error(log)
    assert error.position is None  # type: ignore[attr-defined]
    assert error.message == "the sealed audit head fails authentication (it was edited or replaced)"


@given(sizes)
def test_a_head_sealed_for_another_record_is_refused(n: int) -> None:
    store, log = make_log(n)
    forged = store.keyring.seal("meta", "other", _codec.dumps({"seq": 0, "hash": ""}))
    store.backend.commit([Put(*AUDIT_HEAD, forged, ANY)])
    assert chain_error(log).position is None  # type: ignore[attr-defined]


@given(sizes)
def test_a_deleted_head_is_found(n: int) -> None:
    store, log = make_log(n)
    store.backend.commit([Delete(*AUDIT_HEAD)])
    assert chain_error(log).message == (
        f"the sealed audit head is missing but the log holds {n} entries"
    )


@given(sizes)
def test_an_entry_appended_outside_keymgmt_is_found(n: int) -> None:
    store, log = make_log(n)
    last = stored(store, n)
    extra = rehash({**last, "seq": n + 1, "prev": last["hash"]})
    overwrite(store, n + 1, extra)
    error = chain_error(log)
    assert error.position == n + 1  # type: ignore[attr-defined]
    assert "not covered by the sealed head" in error.message


def test_a_malformed_entry_is_reported_at_its_position() -> None:
    store, log = make_log(3)
    store.backend.commit([Put(AUDIT_KIND, entry_name(2), b"[]", ANY)])
    error = chain_error(log)
    assert error.position == 2  # type: ignore[attr-defined]
    assert "malformed" in error.message
