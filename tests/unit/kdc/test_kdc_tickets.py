"""Kerberos-style session keys: tickets, authenticators, and the attacks on them."""

from __future__ import annotations

import pytest
from _kdc_support import minutes

from keymgmt import KeyManager
from keymgmt.errors import (
    AccessDeniedError,
    DecryptionError,
    KeyMgmtError,
    KeyNotFoundError,
    LocalProtocolError,
    RemoteProtocolError,
    ReplayError,
    RevokedError,
    StaleMessageError,
)
from keymgmt.kdc import (
    InProcessTransport,
    KdcClient,
    KeyDistributionCenter,
    SessionTicket,
    SymmetricCredential,
    TicketReceiver,
)
from keymgmt.testing import FakeClock, SeededRandomness


@pytest.fixture
def ticket(
    client: KdcClient, transport: InProcessTransport, bob: SymmetricCredential
) -> SessionTicket:
    return client.fetch_ticket("bob", transport)


def test_both_sides_hold_the_same_session_key(
    client: KdcClient, receiver: TicketReceiver, ticket: SessionTicket
) -> None:
    request = client.ap_request(ticket)
    session = receiver.accept(request.data)
    assert session.session_key == ticket.session_key
    assert (session.client, session.service, session.ticket_id) == (
        "alice",
        "bob",
        ticket.ticket_id,
    )
    client.receive_ap_reply(request, session.reply)  # mutual authentication


def test_ticket_grant_is_recorded_and_audited(
    km: KeyManager, kdc: KeyDistributionCenter, ticket: SessionTicket
) -> None:
    (record,) = kdc.grants(principal="alice")
    assert (record.kind, record.peer, record.id) == ("ticket", "bob", ticket.ticket_id)
    entry = km.audit.tail(1)[0]
    assert (entry.operation, entry.object, entry.outcome) == ("kdc.grant-ticket", "alice>bob", "ok")


def test_replayed_authenticator_is_refused(
    client: KdcClient, receiver: TicketReceiver, ticket: SessionTicket
) -> None:
    request = client.ap_request(ticket)
    receiver.accept(request.data)
    with pytest.raises(ReplayError):
        receiver.accept(request.data)


def test_a_fresh_authenticator_on_the_same_ticket_is_accepted(
    client: KdcClient, receiver: TicketReceiver, ticket: SessionTicket
) -> None:
    receiver.accept(client.ap_request(ticket).data)
    assert receiver.accept(client.ap_request(ticket).data).client == "alice"


def test_ticket_for_another_service_is_refused(
    kdc: KeyDistributionCenter, client: KdcClient, ticket: SessionTicket, clock: FakeClock
) -> None:
    carol = TicketReceiver(kdc.register("carol"), clock=clock)
    with pytest.raises(RemoteProtocolError, match="ticket is for service 'bob', not 'carol'"):
        carol.accept(client.ap_request(ticket).data)


def test_ticket_relabelled_for_another_service_does_not_open(
    kdc: KeyDistributionCenter, client: KdcClient, ticket: SessionTicket, clock: FakeClock
) -> None:
    carol = TicketReceiver(kdc.register("carol"), clock=clock)
    forged = ticket.ticket.replace(b"bob", b"carol", 1)
    with pytest.raises(KeyMgmtError):
        carol.accept(client.ap_request(_with_ticket(ticket, forged)).data)


def test_expired_ticket_is_refused_by_the_service(
    client: KdcClient, receiver: TicketReceiver, ticket: SessionTicket, clock: FakeClock
) -> None:
    request = client.ap_request(ticket)
    clock.advance(minutes(61))
    with pytest.raises(StaleMessageError, match="ticket has expired"):
        receiver.accept(request.data)


def test_client_will_not_use_an_expired_ticket(
    client: KdcClient, ticket: SessionTicket, clock: FakeClock
) -> None:
    clock.advance(minutes(60))
    with pytest.raises(StaleMessageError, match="request a new one"):
        client.ap_request(ticket)


def test_stale_authenticator_is_refused(
    client: KdcClient, receiver: TicketReceiver, ticket: SessionTicket, clock: FakeClock
) -> None:
    request = client.ap_request(ticket)
    clock.advance(minutes(6))
    with pytest.raises(StaleMessageError):
        receiver.accept(request.data)


def test_ticket_stolen_without_its_session_key_is_useless(
    kdc: KeyDistributionCenter, receiver: TicketReceiver, ticket: SessionTicket, clock: FakeClock
) -> None:
    mallory = KdcClient(
        SymmetricCredential(
            principal="alice", key=ticket.session_key, kdc_public_key=kdc.public_key
        ),
        clock=clock,
    )
    forged = SessionTicket(
        client="alice",
        service="bob",
        session_key=type(ticket.session_key)(bytes(32)),
        issued_at=ticket.issued_at,
        expires_at=ticket.expires_at,
        ticket_id=ticket.ticket_id,
        ticket=ticket.ticket,
    )
    with pytest.raises(DecryptionError):
        receiver.accept(mallory.ap_request(forged).data)


def test_every_tampered_ap_request_byte_is_refused(
    client: KdcClient, bob: SymmetricCredential, ticket: SessionTicket, clock: FakeClock
) -> None:
    data = client.ap_request(ticket).data
    receiver = TicketReceiver(bob, clock=clock)
    for index in range(len(data)):
        tampered = bytearray(data)
        tampered[index] ^= 0x01
        with pytest.raises(KeyMgmtError):
            receiver.accept(bytes(tampered))
    assert receiver.accept(data).client == "alice"


def test_every_tampered_ap_reply_byte_is_refused(
    client: KdcClient, receiver: TicketReceiver, ticket: SessionTicket
) -> None:
    request = client.ap_request(ticket)
    reply = receiver.accept(request.data).reply
    for index in range(len(reply)):
        tampered = bytearray(reply)
        tampered[index] ^= 0x01
        with pytest.raises(KeyMgmtError):
            client.receive_ap_reply(request, bytes(tampered))


def test_ap_reply_for_another_authenticator_is_refused(
    client: KdcClient, receiver: TicketReceiver, ticket: SessionTicket
) -> None:
    first = client.ap_request(ticket)
    second = client.ap_request(ticket)
    reply = receiver.accept(first.data).reply
    with pytest.raises(RemoteProtocolError, match="another authenticator"):
        client.receive_ap_reply(second, reply)


def test_peer_not_in_the_policy_is_denied(
    kdc: KeyDistributionCenter, client: KdcClient, transport: InProcessTransport
) -> None:
    kdc.register("carol")
    with pytest.raises(AccessDeniedError, match="does not allow peer 'carol'"):
        client.fetch_ticket("carol", transport)


def test_unregistered_peer_is_not_found(
    kdc: KeyDistributionCenter, client: KdcClient, transport: InProcessTransport
) -> None:
    kdc.grant("alice", peers=["ghost"])
    with pytest.raises(KeyNotFoundError, match="no principal named 'ghost'"):
        client.fetch_ticket("ghost", transport)


def test_revoked_peer_gets_no_tickets(
    kdc: KeyDistributionCenter,
    client: KdcClient,
    transport: InProcessTransport,
    bob: SymmetricCredential,
) -> None:
    kdc.revoke("bob")
    with pytest.raises(RevokedError, match="'bob' is revoked"):
        client.fetch_ticket("bob", transport)


def test_service_refuses_a_client_on_the_revocation_list(
    kdc: KeyDistributionCenter,
    client: KdcClient,
    receiver: TicketReceiver,
    ticket: SessionTicket,
    transport: InProcessTransport,
) -> None:
    kdc.revoke("alice", "key-compromise")
    receiver.fetch_revocation_list(transport)
    with pytest.raises(RevokedError, match="'alice' is revoked"):
        receiver.accept(client.ap_request(ticket).data)


def test_ticket_under_the_old_service_key_fails_after_rotation(
    kdc: KeyDistributionCenter, client: KdcClient, ticket: SessionTicket, clock: FakeClock
) -> None:
    receiver = TicketReceiver(kdc.rotate_credential("bob"), clock=clock)
    with pytest.raises(DecryptionError):
        receiver.accept(client.ap_request(ticket).data)


def test_client_refuses_to_use_another_clients_ticket(
    kdc: KeyDistributionCenter, ticket: SessionTicket, clock: FakeClock
) -> None:
    carol = KdcClient(kdc.register("carol"), clock=clock)
    with pytest.raises(LocalProtocolError):
        carol.ap_request(ticket)


def test_receiver_needs_a_symmetric_credential() -> None:
    with pytest.raises(KeyMgmtError, match="symmetric credential"):
        TicketReceiver(object())  # type: ignore[arg-type]


def test_receivers_keep_separate_replay_caches(
    client: KdcClient, bob: SymmetricCredential, ticket: SessionTicket, clock: FakeClock
) -> None:
    request = client.ap_request(ticket)
    TicketReceiver(bob, clock=clock, randomness=SeededRandomness(1)).accept(request.data)
    # A second process of the same service has its own cache: documented limit.
    assert TicketReceiver(bob, clock=clock).accept(request.data).client == "alice"


def _with_ticket(ticket: SessionTicket, blob: bytes) -> SessionTicket:
    return SessionTicket(
        client=ticket.client,
        service=ticket.service,
        session_key=ticket.session_key,
        issued_at=ticket.issued_at,
        expires_at=ticket.expires_at,
        ticket_id=ticket.ticket_id,
        ticket=blob,
    )


def test_disabled_peer_gets_no_tickets(
    kdc: KeyDistributionCenter,
    client: KdcClient,
    transport: InProcessTransport,
    bob: SymmetricCredential,
) -> None:
    kdc.disable("bob")
    with pytest.raises(AccessDeniedError, match="'bob' is disabled"):
        client.fetch_ticket("bob", transport)
