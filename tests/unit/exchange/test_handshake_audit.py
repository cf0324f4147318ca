"""Handshakes run through ``km.exchange`` are audited; refusals are aggregated and bounded."""

from __future__ import annotations

import datetime as dt
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from keymgmt import KeyManager
from keymgmt.audit import AuditEntry
from keymgmt.errors import (
    HandshakeError,
    InvalidArgumentError,
    PeerVerificationError,
    RemoteProtocolError,
    ReplayError,
    StoreUnavailableError,
)
from keymgmt.exchange import (
    Credential,
    HandshakeAuditMode,
    HandshakeAuditPolicy,
    Initiator,
    Responder,
    Session,
)
from keymgmt.keyring import KdfProfile
from keymgmt.pki import CertificateAuthority
from keymgmt.testing import FakeClock, SeededRandomness, handshake_pair

SERVER = "server.example"
CLIENT = "client.example"


@pytest.fixture
def root(km: KeyManager) -> CertificateAuthority:
    return km.pki.create_root_ca("audit-root", key_type="ed25519")


@pytest.fixture
def creds(km: KeyManager, root: CertificateAuthority) -> tuple[Credential, Credential]:
    server = km.exchange.credential(root, SERVER, client=False)
    client = km.exchange.credential(root, CLIENT, server=False)
    return server, client


def _handshake(km: KeyManager, creds: tuple[Credential, Credential]) -> tuple[Session, Session]:
    server, client = creds
    return handshake_pair(
        km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(server)
    )


def _entries(km: KeyManager, outcome: str | None = None) -> list[AuditEntry]:
    return [
        e
        for e in km.audit.entries()
        if e.operation == "exchange.handshake" and outcome in (None, e.outcome)
    ]


def _garbage_hellos(km: KeyManager, creds: tuple[Credential, Credential], n: int) -> None:
    for _ in range(n):
        responder = km.exchange.responder(creds[0])
        responder.receive_data(b"\x01\x01\x00\x00\x01\x00")  # a one-byte ClientHello
        with pytest.raises(HandshakeError):
            responder.next_event()


@pytest.fixture
def count_writes(km: KeyManager) -> Iterator[list[int]]:
    store = km._store
    original = store.transact
    calls = [0]

    def counting(fn: Any) -> Any:
        calls[0] += 1
        return original(fn)

    store.transact = counting  # type: ignore[method-assign]
    yield calls
    store.transact = original  # type: ignore[method-assign]


# -- accepted ------------------------------------------------------------------------


def test_accepted_handshake_is_recorded_on_both_sides_with_names_and_suite(
    km: KeyManager, creds: tuple[Credential, Credential]
) -> None:
    _handshake(km, creds)
    km.exchange.flush_audit()
    entries = _entries(km, "accepted")
    assert sorted(e.details["role"] for e in entries) == ["initiator", "responder"]
    by_role = {e.details["role"]: e.details for e in entries}
    assert by_role["initiator"]["local"] == CLIENT
    assert by_role["initiator"]["peer"] == SERVER
    assert by_role["responder"]["local"] == SERVER
    assert by_role["responder"]["peer"] == CLIENT
    for details in by_role.values():
        assert details["group"] == "x25519"
        assert details["peer_key"] == "ed25519"
        assert details["at"] == km.clock.now().isoformat()
    assert by_role["initiator"]["hello"] == by_role["responder"]["hello"]
    assert by_role["initiator"]["transcript"] == by_role["responder"]["transcript"]
    assert by_role["responder"]["peer_serial"] == format(creds[1].chain[0].serial_number, "x")
    assert by_role["initiator"]["peer_serial"] == format(creds[0].chain[0].serial_number, "x")


def test_audit_entries_carry_no_session_secret(
    km: KeyManager, creds: tuple[Credential, Credential]
) -> None:
    client, _ = _handshake(km, creds)
    km.exchange.flush_audit()
    secrets = {
        client.session_id.hex(),
        client.export(b"probe").reveal().hex(),
        client._exporter.reveal().hex(),
        client._send.reveal().hex(),
        client._recv.reveal().hex(),
    }
    text = " ".join(str(v) for e in _entries(km) for v in e.details.values())
    assert not any(s in text for s in secrets)
    assert not any(s[:32] in text for s in secrets)


def test_batched_entries_wait_until_the_batch_is_full(
    km: KeyManager, creds: tuple[Credential, Credential]
) -> None:
    km.exchange.audit_policy = HandshakeAuditPolicy(batch_size=4)
    _handshake(km, creds)
    assert _entries(km) == []
    _handshake(km, creds)  # four sides: the batch is full
    assert len(_entries(km, "accepted")) == 4


def test_batched_entries_are_written_once_the_interval_has_passed(
    km: KeyManager, creds: tuple[Credential, Credential], clock: FakeClock
) -> None:
    _handshake(km, creds)
    assert _entries(km) == []
    clock.advance(seconds=11)
    _handshake(km, creds)
    # The first side to finish after the interval writes all that was pending.
    assert [e.details["role"] for e in _entries(km, "accepted")] == [
        "initiator",
        "responder",
        "initiator",
    ]


def test_closing_the_manager_writes_pending_entries(store_path: Path, clock: FakeClock) -> None:
    with KeyManager.open(
        store_path,
        passphrase="correct horse",
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=clock,
    ) as km:
        root = km.pki.create_root_ca("root", key_type="ed25519")
        server = km.exchange.credential(root, SERVER, client=False)
        client = km.exchange.credential(root, CLIENT, server=False)
        _handshake(km, (server, client))
        assert _entries(km) == []
    with KeyManager.open(
        store_path,
        passphrase="correct horse",
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=clock,
    ) as km:
        assert len(_entries(km, "accepted")) == 2


def test_each_mode_writes_at_completion(
    km: KeyManager, creds: tuple[Credential, Credential]
) -> None:
    km.exchange.audit_policy = HandshakeAuditPolicy(mode="each")
    _handshake(km, creds)
    assert len(_entries(km, "accepted")) == 2


def test_each_mode_fails_a_handshake_it_cannot_record(
    km: KeyManager, creds: tuple[Credential, Credential], monkeypatch: pytest.MonkeyPatch
) -> None:
    km.exchange.audit_policy = HandshakeAuditPolicy(mode=HandshakeAuditMode.EACH)
    server, client = creds
    initiator = km.exchange.initiator(client, server_identity=SERVER)
    responder = km.exchange.responder(server)
    responder.receive_data(initiator.start())
    responder.next_event()

    def broken(fn: Any) -> Any:
        raise StoreUnavailableError("the store is unavailable")

    monkeypatch.setattr(km._store, "transact", broken)
    initiator.receive_data(responder.data_to_send())
    with pytest.raises(StoreUnavailableError):
        initiator.next_event()
    assert initiator.state.value == "failed"
    assert initiator.data_to_send() == b""  # the ClientFinish is never sent
    monkeypatch.undo()
    km.exchange.flush_audit()
    (entry,) = _entries(km, "failed")
    assert entry.details["error"] == "StoreUnavailableError"


def test_batched_write_failure_keeps_the_entries_for_the_next_flush(
    km: KeyManager, creds: tuple[Credential, Credential]
) -> None:
    km.exchange.audit_policy = HandshakeAuditPolicy(batch_size=2)
    original = km._store.transact

    def broken(fn: Any) -> Any:
        raise StoreUnavailableError("the store is unavailable")

    km._store.transact = broken  # type: ignore[method-assign]
    _handshake(km, creds)  # completes although its batch could not be written
    km._store.transact = original  # type: ignore[method-assign]
    km.exchange.flush_audit()
    assert len(_entries(km, "accepted")) == 2


def test_off_mode_records_nothing(km: KeyManager, creds: tuple[Credential, Credential]) -> None:
    km.exchange.audit_policy = HandshakeAuditPolicy(mode="off")
    _handshake(km, creds)
    _garbage_hellos(km, creds, 3)
    km.exchange.flush_audit()
    assert _entries(km) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "sometimes"},
        {"batch_size": 0},
        {"batch_size": True},
        {"interval": dt.timedelta(0)},
        {"max_kinds": 0},
    ],
)
def test_bad_policy_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        HandshakeAuditPolicy(**kwargs)


def test_audit_policy_takes_only_a_policy(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError):
        km.exchange.audit_policy = "each"  # type: ignore[assignment]


# -- refused ---------------------------------------------------------------------------


def test_refusals_are_aggregated_into_one_entry_with_a_count(
    km: KeyManager, creds: tuple[Credential, Credential], clock: FakeClock
) -> None:
    _garbage_hellos(km, creds, 50)
    clock.advance(seconds=1)
    _garbage_hellos(km, creds, 1)
    km.exchange.flush_audit()
    (entry,) = _entries(km, "refused")
    assert entry.details["error"] == "HandshakeError"
    assert entry.details["reason"] == "truncated"
    assert entry.details["count"] == 51
    assert entry.details["role"] == "responder"
    assert entry.details["local"] == SERVER
    assert entry.details["last"] > entry.details["first"]


def test_refusal_flood_writes_nothing_until_the_interval_passes(
    km: KeyManager,
    creds: tuple[Credential, Credential],
    clock: FakeClock,
    count_writes: list[int],
) -> None:
    _garbage_hellos(km, creds, 200)
    assert count_writes[0] == 0
    clock.advance(seconds=10)
    _garbage_hellos(km, creds, 200)
    assert count_writes[0] == 1
    assert [e.details["count"] for e in _entries(km, "refused")] == [201]


def test_distinct_refusal_kinds_are_capped(
    km: KeyManager, creds: tuple[Credential, Credential], clock: FakeClock
) -> None:
    km.exchange.audit_policy = HandshakeAuditPolicy(max_kinds=1)
    _garbage_hellos(km, creds, 2)  # truncated
    for offset in (dt.timedelta(minutes=-10), dt.timedelta(minutes=10)):  # too-old, in-future
        initiator = km.exchange.initiator(creds[1], server_identity=SERVER)
        responder = km.exchange.responder(creds[0])
        responder.receive_data(initiator.start(at=clock.now() + offset))
        with pytest.raises(RemoteProtocolError):
            responder.next_event()
    km.exchange.flush_audit()
    reasons = sorted((e.details["reason"], e.details["count"]) for e in _entries(km, "refused"))
    assert reasons == [("other", 2), ("truncated", 2)]


def test_revoked_server_is_recorded_as_refused_with_the_reason(
    km: KeyManager, creds: tuple[Credential, Credential], root: CertificateAuthority
) -> None:
    server = creds[0]
    root.revoke(server.chain[0].serial_number, "key-compromise")
    with pytest.raises(PeerVerificationError):
        _handshake(km, creds)
    km.exchange.flush_audit()
    (entry,) = _entries(km, "refused")
    assert entry.details["role"] == "initiator"
    assert entry.details["peer"] == SERVER
    assert entry.details["error"] == "PeerVerificationError"
    assert entry.details["reason"] == "revoked"


class _Impostor(Credential):
    """Presents a genuine chain but signs with another key (a MITM replaying a certificate)."""

    def sign(self, data: bytes) -> bytes:
        return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32)).sign(data)


def test_certificate_presented_without_its_key_is_recorded_with_the_claimed_name(
    km: KeyManager, creds: tuple[Credential, Credential]
) -> None:
    server, client = creds
    impostor = _Impostor(server.chain, server.private_key)
    initiator = km.exchange.initiator(client, server_identity=SERVER)
    responder = km.exchange.responder(impostor)
    responder.receive_data(initiator.start())
    responder.next_event()
    initiator.receive_data(responder.data_to_send())
    with pytest.raises(HandshakeError) as info:
        initiator.next_event()
    assert info.value.reason == "bad-signature"
    km.exchange.flush_audit()
    (entry,) = _entries(km, "refused")
    assert entry.details["claimed"] == SERVER
    assert entry.details["reason"] == "bad-signature"


def test_handshakes_outside_the_manager_are_not_audited(
    km: KeyManager, creds: tuple[Credential, Credential]
) -> None:
    server, client = creds
    verifier = km.exchange.peer_verifier()
    handshake_pair(
        Initiator(
            credential=client,
            verifier=verifier,
            server_identity=SERVER,
            clock=km.clock,
            randomness=SeededRandomness(7),
        ),
        Responder(
            credential=server,
            verifier=verifier,
            replay_cache=km.exchange.replay_cache,
            clock=km.clock,
            randomness=SeededRandomness(8),
        ),
    )
    km.exchange.flush_audit()
    assert _entries(km) == []


def test_replayed_hello_is_recorded_as_a_refused_replay(
    km: KeyManager, creds: tuple[Credential, Credential]
) -> None:
    server, client = creds
    initiator = km.exchange.initiator(client, server_identity=SERVER)
    hello = initiator.start()
    responder = km.exchange.responder(server)
    responder.receive_data(hello)
    responder.next_event()
    initiator.receive_data(responder.data_to_send())
    initiator.next_event()
    responder.receive_data(initiator.data_to_send())
    responder.next_event()
    again = km.exchange.responder(server)
    again.receive_data(hello)
    with pytest.raises(ReplayError):
        again.next_event()
    km.exchange.flush_audit()
    (entry,) = _entries(km, "refused")
    assert (entry.details["error"], entry.details["role"]) == ("ReplayError", "responder")
    assert entry.details["hello"] == _entries(km, "accepted")[0].details["hello"]


def test_tampered_serverhello_is_recorded_as_refused_by_the_initiator(
    km: KeyManager, creds: tuple[Credential, Credential]
) -> None:
    server, client = creds
    initiator = km.exchange.initiator(client, server_identity=SERVER)
    responder = km.exchange.responder(server)
    responder.receive_data(initiator.start())
    responder.next_event()
    flight = bytearray(responder.data_to_send())
    flight[-1] ^= 1  # the sealed authentication's tag
    initiator.receive_data(bytes(flight))
    with pytest.raises(HandshakeError):
        initiator.next_event()
    km.exchange.flush_audit()
    (entry,) = _entries(km, "refused")
    assert (entry.details["role"], entry.details["peer"]) == ("initiator", SERVER)
    assert (entry.details["error"], entry.details["reason"]) == ("HandshakeError", "bad-seal")
    assert entry.details["group"] == "x25519"


def test_pending_audit_entries_do_not_keep_a_private_key_alive(
    km: KeyManager, root: CertificateAuthority, creds: tuple[Credential, Credential]
) -> None:
    # The audit keeps names and public certificates, never the credential
    # (its private key) of a handshake whose entry waits for the batch.
    client = km.exchange.credential(root, "transient.example", server=False)
    held = weakref.ref(client)
    handshake_pair(
        km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(creds[0])
    )
    del client
    gc.collect()
    assert held() is None
    km.exchange.flush_audit()
    assert {e.details["local"] for e in _entries(km, "accepted")} >= {"transient.example"}
