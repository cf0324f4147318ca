"""The store's cheaper write path keeps its formats, its checks and its guarantees.

The write path encodes JSON with a C encoder built once, hashes audit
entries without building entry objects nobody receives, derives record AAD
from a per-kind prefix, and hands the backends a batch the transaction has
checked already (``CheckedBatch``). These tests pin each of those to the
documented formats with independent reference encoders (the stdlib's
``json``, ``hashlib``, ``base64`` and a bare AES-GCM), and check that the
validation moved into the transaction still refuses what the backends
refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from keymgmt import _codec
from keymgmt._store import Store, Txn
from keymgmt.audit import (
    AUDIT_HEAD,
    AUDIT_KIND,
    AuditEntry,
    AuditLog,
    encode_entry,
    entry_name,
)
from keymgmt.errors import InvalidArgumentError
from keymgmt.keyring import Keyring, RawMasterKey, record_aad
from keymgmt.storage import ANY, Backend, Delete, MemoryBackend, Put, SQLiteBackend
from keymgmt.storage._memory import CheckedBatch
from keymgmt.testing import FakeClock, SeededRandomness

MASTER = bytes(range(32))
DOMAIN = b"keymgmt/audit/v1\x00"


def reference_json(value: Any) -> bytes:
    """Canonical JSON as the format defines it, from the stdlib alone."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def store_key(keyring: Keyring) -> bytes:
    return keyring._keys[keyring._active].reveal()


def reference_seal(
    key: bytes, key_id: int, nonce: bytes, kind: str, name: str, data: bytes
) -> bytes:
    """``0x01 | key id | nonce | AES-256-GCM(data, aad = keymgmt/seal/v1 0 kind 0 name)``."""
    aad = b"keymgmt/seal/v1\x00" + kind.encode() + b"\x00" + name.encode()
    return struct.pack(">BI", 1, key_id) + nonce + AESGCM(key).encrypt(nonce, data, aad)


def reference_xaes_key(key: bytes, prefix: bytes) -> bytes:
    """XAES-256-GCM's derived key (C2SP), from the AES block function alone."""
    block = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    top = int.from_bytes(block.update(bytes(16)))
    k1 = ((top << 1) & ((1 << 128) - 1)) ^ (0x87 if top >> 127 else 0)
    m1 = int.from_bytes(b"\x00\x01X\x00" + prefix) ^ k1
    m2 = int.from_bytes(b"\x00\x02X\x00" + prefix) ^ k1
    return block.update(m1.to_bytes(16) + m2.to_bytes(16))


def reference_unseal(key: bytes, kind: str, name: str, sealed: bytes) -> bytes:
    """Format 1: AES-256-GCM under the store key; format 2: XAES-256-GCM under it."""
    aad = b"keymgmt/seal/v1\x00" + kind.encode() + b"\x00" + name.encode()
    if sealed[0] == 1:
        return AESGCM(key).decrypt(sealed[5:17], sealed[17:], aad)
    assert sealed[0] == 2
    return AESGCM(reference_xaes_key(key, sealed[5:17])).decrypt(sealed[17:29], sealed[29:], aad)


def make_store(backend: Backend, clock: FakeClock, rng: SeededRandomness, **kwargs: Any) -> Store:
    keyring = (
        Keyring.open(backend, RawMasterKey(MASTER), rng)
        if Keyring.exists(backend)
        else Keyring.initialize(backend, RawMasterKey(MASTER), rng)
    )
    return Store(backend=backend, keyring=keyring, clock=clock, randomness=rng, **kwargs)


def issue(name: str, **details: Any) -> Any:
    def run(txn: Txn) -> None:
        txn.put_json("cert", name, {"der": "AAAA", "subject": "CN=é", "n": 1, "x": None})
        txn.audit("pki.issue", f"cert:{name}", **details)

    return run


# -- canonical JSON ------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_dumps_writes_the_stdlib_canonical_json(value: dict[str, Any]) -> None:
    try:
        expected = reference_json(value)
    except UnicodeEncodeError:
        with pytest.raises(InvalidArgumentError):
            _codec.dumps(value)
        return
    assert _codec.dumps(value) == expected
    assert _codec.dumps_text(value).encode() == expected


def test_dumps_refuses_a_circular_value_and_keeps_working_afterwards() -> None:
    looped: dict[str, Any] = {"a": 1}
    looped["self"] = looped
    with pytest.raises(InvalidArgumentError, match="cannot encode as JSON: ValueError"):
        _codec.dumps(looped)
    shared = [1, 2]
    # The same list twice is not a cycle: nothing is left over from the failed call.
    assert _codec.dumps({"x": shared, "y": shared}) == b'{"x":[1,2],"y":[1,2]}'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"x": b"bytes"}, "cannot encode as JSON: TypeError"),
        ({"x": float("nan")}, "cannot encode as JSON: ValueError"),
        ({"x": "\ud800"}, "text must be valid Unicode"),
    ],
)
def test_dumps_refuses_what_json_cannot_carry_exactly(value: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        _codec.dumps(value)


@given(st.binary(max_size=80))
def test_b64e_is_urlsafe_base64_without_padding(data: bytes) -> None:
    assert _codec.b64e(data) == b64(data)
    assert _codec.b64d(_codec.b64e(data)) == data


# -- record AAD and sealing ------------------------------------------------------------

names = st.text(min_size=1, max_size=12)


@given(kind=names, name=names)
def test_record_aad_is_the_documented_bytes_or_the_documented_refusal(kind: str, name: str) -> None:
    try:
        expected = b"keymgmt/seal/v1\x00" + kind.encode() + b"\x00" + name.encode()
    except UnicodeEncodeError:
        with pytest.raises(InvalidArgumentError, match="valid Unicode"):
            record_aad(kind, name)
        return
    if "\x00" in kind or "\x00" in name:
        with pytest.raises(InvalidArgumentError, match="NUL"):
            record_aad(kind, name)
        return
    assert record_aad(kind, name) == expected
    assert record_aad(kind, name) == expected  # the remembered kind prefix


def test_record_aad_of_a_str_subclass_is_its_text() -> None:
    class Kind(str):
        pass

    assert record_aad(Kind("cert"), "a") == record_aad("cert", "a")


def test_a_sealed_record_opens_with_a_bare_aes_gcm_under_the_documented_aad(
    clock: FakeClock, rng: SeededRandomness
) -> None:
    backend = MemoryBackend()
    store = make_store(backend, clock, rng)
    store.transact(issue("a"))
    record = backend.get("cert", "a")
    assert record is not None
    plain = reference_unseal(store_key(store.keyring), "cert", "a", record.data)
    assert plain == reference_json({"der": "AAAA", "subject": "CN=é", "n": 1, "x": None})


def test_the_system_source_seals_with_fresh_nonces_that_open(rng: SeededRandomness) -> None:
    from keymgmt._random import SystemRandomness

    keyring = Keyring.initialize(MemoryBackend(), RawMasterKey(MASTER), SystemRandomness())
    first, second = keyring.seal("k", "n", b"x"), keyring.seal("k", "n", b"x")
    assert first[5:17] == second[5:17]  # one XAES nonce prefix per keyring, for a while
    assert first[17:29] != second[17:29]  # a fresh random second half each time
    assert keyring.unseal("k", "n", first) == keyring.unseal("k", "n", second) == b"x"


# -- audit entries -----------------------------------------------------------------------


def reference_entry_bytes(value: dict[str, Any]) -> tuple[bytes, bytes]:
    """(hash, stored form) of an entry body, from the stdlib alone."""
    body = {k: v for k, v in value.items() if k != "hash"}
    digest = hashlib.sha256(DOMAIN + reference_json(body)).digest()
    return digest, reference_json({**body, "hash": b64(digest)})


details_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12))


@given(
    seq=st.integers(min_value=1, max_value=2**63),
    micros=st.integers(min_value=-(2**62), max_value=2**62),
    prev=st.binary(min_size=32, max_size=32),
    texts=st.lists(st.text(max_size=16), min_size=4, max_size=4),
    details=st.dictionaries(st.text(max_size=8), details_values, max_size=4),
)
def test_encode_entry_matches_the_stdlib_reference(
    seq: int, micros: int, prev: bytes, texts: list[str], details: dict[str, Any]
) -> None:
    actor, operation, obj, outcome = texts
    body = {
        "actor": actor,
        "details": details,
        "object": obj,
        "operation": operation,
        "outcome": outcome,
        "prev": b64(prev),
        "seq": seq,
        "time": micros,
    }
    try:
        digest, stored = reference_entry_bytes(body)
    except UnicodeEncodeError:
        with pytest.raises(InvalidArgumentError, match="valid Unicode"):
            encode_entry(seq, micros, b64(prev), actor, operation, obj, outcome, details)
        return
    assert encode_entry(seq, micros, b64(prev), actor, operation, obj, outcome, details) == (
        digest,
        b64(digest),
        stored,
    )


def test_stored_audit_entries_and_head_are_the_documented_bytes(
    clock: FakeClock, rng: SeededRandomness
) -> None:
    backend = MemoryBackend()
    store = make_store(backend, clock, rng)
    store.transact(issue("a", profile="tls-server", subject="CN=é", n=3, ok=True, none=None))
    store.transact(issue("b"))
    prev = bytes(32)
    for record in backend.list(AUDIT_KIND):
        value = json.loads(record.data)
        digest, stored = reference_entry_bytes(value)
        assert record.data == stored
        assert value["prev"] == b64(prev)
        prev = digest
    head = backend.get(*AUDIT_HEAD)
    assert head is not None
    head_plain = reference_unseal(store_key(store.keyring), *AUDIT_HEAD, head.data)
    assert head_plain == reference_json({"hash": b64(prev), "seq": 2})
    assert AuditLog(store).verify().entries == 2


def test_a_store_written_in_the_reference_format_opens_verifies_and_extends(
    clock: FakeClock, rng: SeededRandomness
) -> None:
    """Records, entries and head written by the stdlib alone (as older keymgmt wrote them)."""
    backend = MemoryBackend()
    keyring = Keyring.initialize(backend, RawMasterKey(MASTER), rng)
    key = store_key(keyring)
    ops: list[Put | Delete] = []
    prev = bytes(32)
    for seq in (1, 2):
        body = {
            "actor": "local",
            "details": {"b": 1, "a": "é"},
            "object": f"cert:old{seq}",
            "operation": "pki.issue",
            "outcome": "ok",
            "prev": b64(prev),
            "seq": seq,
            "time": 1_893_456_000_000_000 + seq,
        }
        prev, stored = reference_entry_bytes(body)
        ops.append(Put(AUDIT_KIND, entry_name(seq), stored, 0))
        data = reference_json({"n": seq})
        ops.append(
            Put(
                "cert", f"old{seq}", reference_seal(key, 1, bytes(12), "cert", f"old{seq}", data), 0
            )
        )
    head = reference_json({"hash": b64(prev), "seq": 2})
    ops.append(Put(*AUDIT_HEAD, reference_seal(key, 1, b"\x01" * 12, *AUDIT_HEAD, head), 0))
    backend.commit(ops)

    store = make_store(backend, clock, rng)
    assert store.get_json("cert", "old1") == {"n": 1}
    assert AuditLog(store).verify().entries == 2
    store.transact(issue("new"))
    assert AuditLog(store).verify().entries == 3
    third = backend.get(AUDIT_KIND, entry_name(3))
    assert third is not None
    value = json.loads(third.data)
    assert value["prev"] == b64(prev)
    assert third.data == reference_entry_bytes(value)[1]


def test_audit_sinks_get_the_entries_the_log_holds(clock: FakeClock, rng: SeededRandomness) -> None:
    received: list[AuditEntry] = []
    store = make_store(MemoryBackend(), clock, rng, audit_sinks=[received.append])
    store.transact(issue("a", profile="p", n=1))

    def two(txn: Txn) -> None:
        issue("b")(txn)
        txn.audit("pki.note", "cert:b", outcome="denied", actor="alice")

    store.transact(two)
    assert received == list(AuditLog(store).entries())
    assert [(e.seq, e.actor, e.outcome) for e in received] == [
        (1, "local", "ok"),
        (2, "local", "ok"),
        (3, "alice", "denied"),
    ]
    assert received[1].prev_hash == received[0].hash
    assert received[2].prev_hash == received[1].hash


def test_a_store_with_sinks_writes_the_same_bytes_as_one_without(clock: FakeClock) -> None:
    plain, sunk = MemoryBackend(), MemoryBackend()
    make_store(plain, clock, SeededRandomness(7)).transact(issue("a", n=1))
    make_store(sunk, clock, SeededRandomness(7), audit_sinks=[lambda e: None]).transact(
        issue("a", n=1)
    )
    assert [r.data for r in plain.list(AUDIT_KIND)] == [r.data for r in sunk.list(AUDIT_KIND)]
    assert plain.get(*AUDIT_HEAD) == sunk.get(*AUDIT_HEAD)


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"key": b"secret"}, "audit detail 'key' must be str, int, bool or None, not bytes"),
        ({"ratio": 0.5}, "audit detail 'ratio' must be str, int, bool or None, not float"),
        ({"thing": object()}, "audit detail 'thing' must be str, int, bool or None, not object"),
    ],
)
def test_txn_audit_refuses_details_that_could_carry_secrets(
    clock: FakeClock, rng: SeededRandomness, details: dict[str, Any], message: str
) -> None:
    backend = MemoryBackend()
    store = make_store(backend, clock, rng)
    with pytest.raises(InvalidArgumentError) as info:
        store.transact(lambda txn: txn.audit("op", "obj", **details))
    assert str(info.value) == message
    assert backend.list(AUDIT_KIND) == []


@pytest.mark.parametrize("label", ["operation", "object", "outcome"])
@pytest.mark.parametrize("bad", ["", None, 3])
def test_txn_audit_refuses_an_empty_or_non_text_field(
    clock: FakeClock, rng: SeededRandomness, label: str, bad: Any
) -> None:
    store = make_store(MemoryBackend(), clock, rng)
    fields: dict[str, Any] = {"operation": "op", "object": "obj", "outcome": "ok", label: bad}
    with pytest.raises(InvalidArgumentError) as info:
        store.transact(lambda txn: txn.audit(**fields))
    assert str(info.value) == f"audit {label} must be a non-empty string"


# -- the checked batch -------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "memory":
        return MemoryBackend()
    return SQLiteBackend(tmp_path / "store.db")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "record kind and name must be non-empty strings"),
        (None, "record kind and name must be non-empty strings"),
        ("\ud800", "record kinds and names must be valid Unicode"),
    ],
)
def test_a_txn_refuses_a_delete_the_backend_would_refuse(
    any_backend: Backend, clock: FakeClock, rng: SeededRandomness, name: Any, message: str
) -> None:
    store = make_store(any_backend, clock, rng)
    generation = any_backend.generation()
    with pytest.raises(InvalidArgumentError, match=message):
        store.transact(lambda txn: txn.delete("cert", name))
    assert any_backend.generation() == generation


@pytest.mark.parametrize(
    ("kind", "name"), [("", "a"), ("cert", ""), ("cert", "a\x00b"), ("cert", "\udcff"), (3, "a")]
)
def test_a_txn_refuses_a_put_the_backend_would_refuse(
    any_backend: Backend, clock: FakeClock, rng: SeededRandomness, kind: Any, name: str
) -> None:
    store = make_store(any_backend, clock, rng)
    generation = any_backend.generation()
    with pytest.raises(InvalidArgumentError):
        store.transact(lambda txn: txn.put(kind, name, b"v"))
    assert any_backend.generation() == generation


@pytest.mark.parametrize(
    "operations",
    [
        [Put("", "a", b"v")],
        [Put("k", "a", "text")],  # type: ignore[arg-type]
        [Put("k", "a", b"v", expected=True)],
        [Put("k", "a", b"v"), Put("k", "a", b"w")],
        [Delete("k", "\ud800")],
        ["not an operation"],
    ],
)
def test_commit_still_checks_every_batch_that_is_not_the_stores(
    any_backend: Backend, operations: list[Any]
) -> None:
    for batch in (operations, tuple(operations)):
        with pytest.raises(InvalidArgumentError):
            any_backend.commit(batch)
    assert any_backend.generation() == 0


def test_a_checked_batch_commits_like_a_list(any_backend: Backend) -> None:
    written = any_backend.commit(CheckedBatch([Put("k", "a", b"v", 0), Put("k", "b", b"w", 0)]))
    assert [(r.name, r.data, r.revision) for r in written] == [("a", b"v", 1), ("b", b"w", 1)]
    again = any_backend.commit(CheckedBatch([Put("k", "a", b"x", 1), Delete("k", "b", 1)]))
    assert [(r.name, r.revision) for r in again] == [("a", 2)]
    assert any_backend.get("k", "b") is None
    assert any_backend.commit(CheckedBatch()) == []


def test_the_store_commits_a_checked_batch(clock: FakeClock, rng: SeededRandomness) -> None:
    seen: list[type] = []

    class Spy(MemoryBackend):
        def commit(self, operations: Any) -> Any:
            seen.append(type(operations))
            return super().commit(operations)

    store = make_store(Spy(), clock, rng)
    store.transact(issue("a"))
    store.transact_many([issue("b"), issue("c")])
    assert seen[-2:] == [CheckedBatch, CheckedBatch]


def test_compare_and_set_still_holds_on_the_checked_path(
    any_backend: Backend, clock: FakeClock, rng: SeededRandomness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("keymgmt._store.time.sleep", lambda _s: None)  # never sleep
    store = make_store(any_backend, clock, rng)
    store.transact(lambda txn: txn.put("cert", "a", b"1"))
    runs: list[bytes | None] = []

    def increment(txn: Txn) -> None:
        seen = txn.get("cert", "a")
        runs.append(seen)
        if len(runs) == 1:  # another writer gets in between the read and the commit
            any_backend.commit([Put("cert", "a", store.keyring.seal("cert", "a", b"2"), ANY)])
        txn.put("cert", "a", (seen or b"") + b"+")

    store.transact(increment)
    assert runs == [b"1", b"2"]  # re-run on the other writer's value: no lost update
    assert store.get("cert", "a") == b"2+"
    record = any_backend.get("cert", "a")
    assert record is not None
    assert record.revision == 3
