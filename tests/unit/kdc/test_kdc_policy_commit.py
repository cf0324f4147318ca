"""Access withdrawn by another process is honoured at the grant's commit, not a sync later."""

from __future__ import annotations

from pathlib import Path

import pytest

from keymgmt import KeyManager
from keymgmt.errors import AccessDeniedError
from keymgmt.kdc import InProcessTransport, KdcClient
from keymgmt.keyring import KdfProfile
from keymgmt.testing import FakeClock, SeededRandomness


def _process(store_path: Path, clock: FakeClock) -> KeyManager:
    return KeyManager.open(
        store_path,
        passphrase="pw",
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=clock,
        consistency_interval=3600,  # no sync but the one a conflict forces
    )


def test_a_key_withdrawn_by_another_process_is_not_granted_by_one_that_has_not_synced(
    store_path: Path, clock: FakeClock
) -> None:
    with _process(store_path, clock) as first:
        first.keys.create("payments")
        alice = KdcClient(first.kdc.register("alice"), clock=clock, randomness=SeededRandomness(1))
        first.kdc.grant("alice", keys=["payments"])
        transport = InProcessTransport(first.kdc)
        alice.fetch_key("payments", transport)  # warm: the policy is cached here
        with _process(store_path, clock) as second:
            second.kdc.withdraw("alice", keys=["payments"])
        with pytest.raises(AccessDeniedError):
            alice.fetch_key("payments", transport)
        assert len(first.kdc.grants(principal="alice")) == 1  # the warm-up's only


def test_a_peer_withdrawn_by_another_process_gets_no_ticket_from_one_that_has_not_synced(
    store_path: Path, clock: FakeClock
) -> None:
    with _process(store_path, clock) as first:
        alice = KdcClient(first.kdc.register("alice"), clock=clock, randomness=SeededRandomness(1))
        first.kdc.register("bob")
        first.kdc.grant("alice", peers=["bob"])
        transport = InProcessTransport(first.kdc)
        alice.fetch_ticket("bob", transport)
        with _process(store_path, clock) as second:
            second.kdc.withdraw("alice", peers=["bob"])
        with pytest.raises(AccessDeniedError):
            alice.fetch_ticket("bob", transport)
        assert len(first.kdc.grants(principal="alice")) == 1


def test_a_batched_key_request_after_a_withdrawal_elsewhere_is_refused(
    store_path: Path, clock: FakeClock
) -> None:
    with _process(store_path, clock) as first:
        first.keys.create("payments")
        alice = KdcClient(first.kdc.register("alice"), clock=clock, randomness=SeededRandomness(1))
        first.kdc.grant("alice", keys=["payments"])
        transport = InProcessTransport(first.kdc)
        alice.fetch_key("payments", transport)
        with _process(store_path, clock) as second:
            second.kdc.withdraw("alice", keys=["payments"])
        (reply,) = first.kdc.handle_many([alice.key_request("payments")])
        with pytest.raises(AccessDeniedError):
            alice.receive_key_reply(reply)
        assert len(first.kdc.grants(principal="alice")) == 1
