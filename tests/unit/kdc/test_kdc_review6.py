"""Regression tests for the sixth review of the KDC (one section per finding fixed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keymgmt import KeyManager
from keymgmt.errors import ReplayError, RevokedError
from keymgmt.kdc import InProcessTransport, KdcClient, KeyDistributionCenter
from keymgmt.kdc._server import GRANT_KIND
from keymgmt.keyring import KdfProfile
from keymgmt.revocation import SubjectKind
from keymgmt.testing import FakeClock, SeededRandomness


def _grant_records(km: KeyManager) -> int:
    return len(km._context.store.backend.list(GRANT_KIND))


# -- a principal revoked for good leaves no marker per refused request ---------------------


@pytest.mark.parametrize("reason", ["key-compromise", "unspecified", "superseded"])
def test_a_permanently_revoked_principals_requests_leave_no_records(
    km: KeyManager,
    kdc: KeyDistributionCenter,
    client: KdcClient,
    transport: InProcessTransport,
    reason: str,
) -> None:
    kdc.revoke("alice", reason)
    before = _grant_records(km)
    for _ in range(3):
        with pytest.raises(RevokedError, match="principal is revoked"):
            client.fetch_key("payments", transport)
    assert _grant_records(km) == before
    refusals = [e for e in km.audit.entries() if e.details.get("reason") == "principal-revoked"]
    assert len(refusals) == 3  # each refusal still audited


def test_a_permanently_revoked_principals_batched_requests_leave_no_records(
    km: KeyManager, kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    kdc.revoke("alice", "key-compromise")
    before = _grant_records(km)
    replies = kdc.handle_many([client.key_request("payments") for _ in range(3)])
    for reply in replies:
        with pytest.raises(RevokedError):
            client.receive_key_reply(reply)
    assert _grant_records(km) == before


def test_a_held_principals_refused_request_stays_refused_after_the_hold_is_lifted(
    km: KeyManager, kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    km.revocation.revoke(SubjectKind.PRINCIPAL, "alice", "certificate-hold")
    request = client.key_request("payments")
    with pytest.raises(RevokedError):
        client.receive_key_reply(kdc.handle(request))
    assert _grant_records(km) == 1  # the hold's refusal leaves its marker
    km.revocation.release_hold(SubjectKind.PRINCIPAL, "alice")
    fresh = KeyDistributionCenter(km._context, keys=kdc._keys)  # an empty replay cache
    with pytest.raises(ReplayError, match="seen before"):
        client.receive_key_reply(fresh.handle(request))
    assert kdc.grants(principal="alice") == []


# -- the same at commit time: a revocation another process committed meanwhile ----------


def _process(store_path: Path, clock: FakeClock) -> KeyManager:
    return KeyManager.open(
        store_path,
        passphrase="pw",
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=clock,
        consistency_interval=3600,  # no sync but the one a conflict forces
    )


@pytest.mark.parametrize(("reason", "markers"), [("key-compromise", 0), ("certificate-hold", 1)])
def test_a_revocation_found_at_commit_leaves_a_marker_only_for_a_hold(
    store_path: Path, clock: FakeClock, reason: str, markers: int
) -> None:
    with _process(store_path, clock) as setup:
        setup.keys.create("payments")
        alice = setup.kdc.register("alice")
        setup.kdc.grant("alice", keys=["payments"])
    with _process(store_path, clock) as granting:
        granting.kdc.get("alice")  # cached: the grant is decided on it
        assert granting.kdc.policy().allows_key("alice", "payments")
        with _process(store_path, clock) as other:
            other.revocation.revoke(SubjectKind.PRINCIPAL, "alice", reason)
        client = KdcClient(alice, clock=clock, randomness=SeededRandomness(1))
        with pytest.raises(RevokedError, match="principal is revoked"):
            client.fetch_key("payments", InProcessTransport(granting.kdc))
        assert _grant_records(granting) == markers
