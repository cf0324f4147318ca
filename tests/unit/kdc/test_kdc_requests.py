"""Key requests end to end, and the attacks on them the KDC refuses."""

from __future__ import annotations

import pytest
from _kdc_support import StaticKeySource, minutes

from keymgmt import KeyManager, SecretBytes
from keymgmt.errors import (
    AccessDeniedError,
    DecryptionError,
    KeyMgmtError,
    KeyNotFoundError,
    KeyStateError,
    MalformedInputError,
    RemoteProtocolError,
    ReplayError,
    RevokedError,
    StaleMessageError,
)
from keymgmt.kdc import (
    InProcessTransport,
    KdcClient,
    KeyDistributionCenter,
    SymmetricCredential,
)
from keymgmt.kdc import _wire as w
from keymgmt.revocation import SubjectKind
from keymgmt.testing import FakeClock, SeededRandomness


def _last(km: KeyManager) -> tuple[str, str, str, dict[str, object]]:
    entry = km.audit.tail(1)[0]
    return entry.operation, entry.object, entry.outcome, dict(entry.details)


def test_granted_key_is_the_primary_version_with_an_expiry(
    client: KdcClient, transport: InProcessTransport, clock: FakeClock
) -> None:
    granted = client.fetch_key("payments", transport)
    assert (granted.key_name, granted.version, granted.algorithm) == ("payments", 1, "aes-256-gcm")
    assert granted.material.reveal() == bytes(range(32))
    assert granted.expires_at == clock.now() + minutes(15)


def test_grant_is_recorded_and_audited(
    km: KeyManager, kdc: KeyDistributionCenter, client: KdcClient, transport: InProcessTransport
) -> None:
    granted = client.fetch_key("payments", transport)
    (record,) = kdc.grants(key="payments#1")
    assert (record.principal, record.id, record.kind) == ("alice", granted.grant_id, "key")
    operation, obj, outcome, details = _last(km)
    assert (operation, obj, outcome) == ("kdc.grant-key", "payments#1", "ok")
    assert details["principal"] == "alice"


def test_replayed_request_is_refused_and_audited(
    km: KeyManager, client: KdcClient, transport: InProcessTransport
) -> None:
    request = client.key_request("payments")
    client.receive_key_reply(transport(request))
    with pytest.raises(ReplayError, match="seen before"):
        client.receive_key_reply(transport(request))
    assert _last(km)[2:] == ("denied", {"reason": "replay"})


def test_stale_request_is_refused(
    kdc: KeyDistributionCenter, alice: SymmetricCredential, clock: FakeClock
) -> None:
    late_clock = FakeClock(clock.now() - minutes(6))
    client = KdcClient(alice, clock=late_clock, randomness=SeededRandomness(2))
    with pytest.raises(StaleMessageError, match="outside the allowed skew"):
        client.fetch_key("payments", InProcessTransport(kdc))


def test_request_within_the_skew_is_served(
    kdc: KeyDistributionCenter, alice: SymmetricCredential, clock: FakeClock
) -> None:
    client = KdcClient(alice, clock=FakeClock(clock.now() + minutes(4)))
    assert client.fetch_key("payments", InProcessTransport(kdc)).version == 1


def test_unauthorized_key_is_denied_and_audited(
    km: KeyManager, client: KdcClient, transport: InProcessTransport
) -> None:
    with pytest.raises(AccessDeniedError, match="does not allow key 'reports'"):
        client.fetch_key("reports", transport)
    assert _last(km)[:3] == ("kdc.request", "principal:alice", "denied")
    assert _last(km)[3]["reason"] == "policy"


def test_unauthorized_principal_learns_nothing_about_missing_keys(
    client: KdcClient, transport: InProcessTransport
) -> None:
    with pytest.raises(AccessDeniedError):
        client.fetch_key("no-such-key", transport)


def test_authorized_but_missing_key_is_not_found(
    kdc: KeyDistributionCenter, client: KdcClient, transport: InProcessTransport
) -> None:
    kdc.grant("alice", keys=["missing"])
    with pytest.raises(KeyNotFoundError):
        client.fetch_key("missing", transport)


def test_revoked_principal_is_refused(
    kdc: KeyDistributionCenter, client: KdcClient, transport: InProcessTransport
) -> None:
    kdc.revoke("alice", "key-compromise")
    with pytest.raises(RevokedError, match="principal is revoked"):
        client.fetch_key("payments", transport)


def test_principal_revoked_directly_in_the_registry_is_refused(
    km: KeyManager, client: KdcClient, transport: InProcessTransport
) -> None:
    km.revocation.revoke(SubjectKind.PRINCIPAL, "alice")
    with pytest.raises(RevokedError):
        client.fetch_key("payments", transport)


def test_disabled_principal_is_refused_until_enabled(
    kdc: KeyDistributionCenter, client: KdcClient, transport: InProcessTransport
) -> None:
    kdc.disable("alice")
    with pytest.raises(AccessDeniedError, match="disabled"):
        client.fetch_key("payments", transport)
    kdc.enable("alice")
    assert client.fetch_key("payments", transport).version == 1


def test_revoked_key_version_is_never_distributed(
    km: KeyManager, client: KdcClient, transport: InProcessTransport
) -> None:
    km.revocation.revoke(SubjectKind.KEY, "payments#1", "key-compromise")
    with pytest.raises(RevokedError, match="payments#1 is revoked"):
        client.fetch_key("payments", transport)


def test_compromised_key_state_is_never_distributed(
    keys: StaticKeySource, client: KdcClient, transport: InProcessTransport
) -> None:
    keys.set_state("payments", "compromised")
    with pytest.raises(KeyStateError):
        client.fetch_key("payments", transport)


def test_unknown_principal_gets_the_same_answer_as_a_wrong_key(
    kdc: KeyDistributionCenter, clock: FakeClock
) -> None:
    transport = InProcessTransport(kdc)
    kdc.register("alice")
    stranger = SymmetricCredential(principal="mallory", key=_key(1), kdc_public_key=kdc.public_key)
    impostor = SymmetricCredential(principal="alice", key=_key(2), kdc_public_key=kdc.public_key)
    messages = []
    for credential in (stranger, impostor):
        with pytest.raises(RemoteProtocolError) as info:
            KdcClient(credential, clock=clock).fetch_key("payments", transport)
        messages.append(info.value.message)
    assert messages[0] == messages[1]


def test_reply_cannot_be_replayed_to_the_client(
    client: KdcClient, transport: InProcessTransport
) -> None:
    reply = transport(client.key_request("payments"))
    client.receive_key_reply(reply)
    with pytest.raises(RemoteProtocolError, match="no pending request"):
        client.receive_key_reply(reply)


def test_reply_to_another_client_does_not_open(
    kdc: KeyDistributionCenter, client: KdcClient, transport: InProcessTransport, clock: FakeClock
) -> None:
    carol = kdc.register("carol")
    kdc.grant("carol", keys=["payments"])
    other = KdcClient(carol, clock=clock)
    request = other.key_request("payments")
    client.key_request("payments")
    with pytest.raises(RemoteProtocolError):
        client.receive_key_reply(transport(request))


def test_every_tampered_request_byte_is_refused_with_an_error_reply(
    kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    request = client.key_request("payments")
    for index in range(len(request)):
        tampered = bytearray(request)
        tampered[index] ^= 0x01
        reply = kdc.handle(bytes(tampered))
        assert w.peek_type(reply) is w.MessageType.ERROR, index


def test_every_tampered_reply_byte_is_refused_by_the_client(
    kdc: KeyDistributionCenter, alice: SymmetricCredential, clock: FakeClock
) -> None:
    reference = KdcClient(alice, clock=clock, randomness=SeededRandomness(9))
    reply = kdc.handle(reference.key_request("payments"))
    for index in range(len(reply)):
        client = KdcClient(alice, clock=clock, randomness=SeededRandomness(9))
        client._pending.update(reference._pending)
        tampered = bytearray(reply)
        tampered[index] ^= 0x01
        with pytest.raises(KeyMgmtError):
            client.receive_key_reply(bytes(tampered))


def test_truncated_and_extended_replies_are_refused(
    client: KdcClient, transport: InProcessTransport
) -> None:
    reply = transport(client.key_request("payments"))
    for bad in (reply[:-1], reply + b"\x00", reply[:10]):
        with pytest.raises(MalformedInputError):
            client.receive_key_reply(bad)


def test_garbage_gets_a_malformed_error_and_an_audit_entry(
    km: KeyManager, kdc: KeyDistributionCenter
) -> None:
    client = KdcClient(
        SymmetricCredential(principal="x", key=_key(1), kdc_public_key=kdc.public_key)
    )
    reply = kdc.handle(b"GET / HTTP/1.1\r\n")
    with pytest.raises(MalformedInputError, match="bad magic"):
        client.receive_key_reply(reply)
    assert _last(km)[:3] == ("kdc.request", "kdc", "denied")


def test_request_under_an_unknown_protocol_version_is_refused(
    kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    request = bytearray(client.key_request("payments"))
    request[2] = 9
    with pytest.raises(MalformedInputError, match="version 9"):
        client.receive_key_reply(kdc.handle(bytes(request)))


def test_old_credential_stops_working_after_rotation(
    kdc: KeyDistributionCenter, alice: SymmetricCredential, clock: FakeClock
) -> None:
    client = KdcClient(alice, clock=clock)
    request = client.key_request("payments")
    kdc.rotate_credential("alice")
    with pytest.raises(RemoteProtocolError, match="could not be authenticated"):
        client.receive_key_reply(kdc.handle(request))


def test_client_refuses_a_reply_sealed_under_another_key(
    kdc: KeyDistributionCenter, alice: SymmetricCredential, clock: FakeClock
) -> None:
    client = KdcClient(alice, clock=clock)
    reply = kdc.handle(client.key_request("payments"))
    wrong = SymmetricCredential(principal="alice", key=_key(7), kdc_public_key=kdc.public_key)
    other = KdcClient(wrong, clock=clock)
    other._pending.update(client._pending)
    with pytest.raises(DecryptionError):
        other.receive_key_reply(reply)


def _key(n: int) -> SecretBytes:
    return SecretBytes(bytes([n]) * 32)


def test_request_replayed_to_another_kdc_process_is_refused(
    km: KeyManager, keys: StaticKeySource, client: KdcClient, transport: InProcessTransport
) -> None:
    request = client.key_request("payments")
    client.receive_key_reply(transport(request))
    fresh = KeyDistributionCenter(km._context, keys=keys)  # an empty replay cache
    with pytest.raises(ReplayError, match="seen before"):
        client.receive_key_reply(fresh.handle(request))


def test_ticket_request_replayed_to_another_kdc_process_is_refused(
    km: KeyManager,
    keys: StaticKeySource,
    client: KdcClient,
    transport: InProcessTransport,
    bob: SymmetricCredential,
) -> None:
    request = client.ticket_request("bob")
    client.receive_ticket_reply(transport(request))
    fresh = KeyDistributionCenter(km._context, keys=keys)
    with pytest.raises(ReplayError):
        client.receive_ticket_reply(fresh.handle(request))
