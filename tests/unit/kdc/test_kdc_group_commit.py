"""handle_many: a batch of requests answered with one store write (group commit)."""

from __future__ import annotations

import pytest
from _kdc_support import StaticKeySource

from keymgmt import KeyManager
from keymgmt.errors import AccessDeniedError, ReplayError, StoreError
from keymgmt.kdc import (
    InProcessTransport,
    KdcClient,
    KeyDistributionCenter,
    SymmetricCredential,
)


def test_a_batch_is_answered_like_single_requests_with_one_commit(
    km: KeyManager,
    kdc: KeyDistributionCenter,
    client: KdcClient,
    transport: InProcessTransport,
) -> None:
    requests = [client.key_request("payments") for _ in range(3)]
    before = km._context.store.backend.generation()
    replies = transport.many(requests)
    assert km._context.store.backend.generation() == before + 1
    granted = [client.receive_key_reply(reply) for reply in replies]
    assert {g.grant_id for g in granted} == {r.id for r in kdc.grants(key="payments#1")}
    assert len(granted) == 3
    assert [e.operation for e in km.audit.tail(3)] == ["kdc.grant-key"] * 3
    assert transport.transcript == list(zip(requests, replies, strict=True))


def test_a_refused_request_in_a_batch_gets_its_error_and_is_audited_in_the_same_write(
    km: KeyManager, kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    denied = client.key_request("reports")  # not allowed by the policy
    allowed = client.key_request("payments")
    before = km._context.store.backend.generation()
    refusal, reply = kdc.handle_many([denied, allowed])
    assert km._context.store.backend.generation() == before + 1
    with pytest.raises(AccessDeniedError):
        client.receive_key_reply(refusal)
    assert client.receive_key_reply(reply).key_name == "payments"
    outcomes = {(e.operation, e.outcome) for e in km.audit.tail(2)}
    assert outcomes == {("kdc.grant-key", "ok"), ("kdc.request", "denied")}


def test_the_same_request_twice_in_one_batch_is_granted_once(
    kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    request = client.key_request("payments")
    first, second = kdc.handle_many([request, request])
    client.receive_key_reply(first)
    with pytest.raises(ReplayError):
        client.receive_key_reply(second)
    assert len(kdc.grants(key="payments#1")) == 1


def test_a_request_granted_by_another_kdc_process_is_refused_at_the_batch_commit(
    km: KeyManager, keys: StaticKeySource, kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    request = client.key_request("payments")
    other = client.key_request("payments")
    client.receive_key_reply(kdc.handle(request))
    fresh = KeyDistributionCenter(km._context, keys=keys)  # an empty replay cache
    replayed, granted = fresh.handle_many([request, other])
    with pytest.raises(ReplayError, match="seen before"):
        client.receive_key_reply(replayed)
    assert client.receive_key_reply(granted).key_name == "payments"
    assert len(kdc.grants(key="payments#1")) == 2
    denied = [e for e in km.audit.tail(2) if e.outcome == "denied"]
    assert [dict(e.details)["reason"] for e in denied] == ["replay"]


def test_no_reply_leaves_a_batch_whose_write_fails(
    km: KeyManager,
    kdc: KeyDistributionCenter,
    client: KdcClient,
    alice: SymmetricCredential,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests = [client.key_request("payments") for _ in range(2)]

    def failing_commit(operations: object) -> object:
        raise StoreError("disk full")

    monkeypatch.setattr(km._context.store.backend, "commit", failing_commit)
    with pytest.raises(StoreError):
        kdc.handle_many(requests)
    monkeypatch.undo()
    assert kdc.grants(key="payments#1") == []


def test_an_empty_batch_writes_nothing(km: KeyManager, kdc: KeyDistributionCenter) -> None:
    before = km._context.store.backend.generation()
    assert kdc.handle_many([]) == []
    assert km._context.store.backend.generation() == before


def test_ticket_and_key_requests_share_one_batch(
    km: KeyManager,
    kdc: KeyDistributionCenter,
    client: KdcClient,
    bob: SymmetricCredential,
) -> None:
    ticket_request = client.ticket_request("bob")
    key_request = client.key_request("payments")
    before = km._context.store.backend.generation()
    ticket_reply, key_reply = kdc.handle_many([ticket_request, key_request])
    assert km._context.store.backend.generation() == before + 1
    assert client.receive_ticket_reply(ticket_reply).service == "bob"
    assert client.receive_key_reply(key_reply).key_name == "payments"
    assert {e.operation for e in km.audit.tail(2)} == {"kdc.grant-ticket", "kdc.grant-key"}
