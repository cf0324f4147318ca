"""A grant never commits on a policy or principal record another process changed.

The granting process here has **not written since it opened**: its store
does not remember the audit head, so its commit reads the head afresh and
would not conflict with the other process's write. The grant's transaction
declares the cached policy and principal records it relied on
(``txn.expect``), so the commit conflicts and the re-run re-checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keymgmt import KeyManager
from keymgmt.errors import AccessDeniedError, KeyMgmtError, RevokedError
from keymgmt.kdc import InProcessTransport, KdcClient, SymmetricCredential
from keymgmt.keyring import KdfProfile
from keymgmt.revocation import SubjectKind
from keymgmt.testing import FakeClock, SeededRandomness


def _process(store_path: Path, clock: FakeClock) -> KeyManager:
    return KeyManager.open(
        store_path,
        passphrase="pw",
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=clock,
        consistency_interval=3600,  # no sync but the one a conflict forces
    )


def _setup(store_path: Path, clock: FakeClock) -> tuple[SymmetricCredential, SymmetricCredential]:
    with _process(store_path, clock) as setup:
        setup.keys.create("payments")
        alice = setup.kdc.register("alice")
        bob = setup.kdc.register("bob")
        setup.kdc.grant("alice", keys=["payments"], peers=["bob"])
        return alice, bob


def _reader(store_path: Path, clock: FakeClock) -> KeyManager:
    """A KDC process that has read (cached) the policy and principals, written nothing."""
    granting = _process(store_path, clock)
    assert granting.kdc.policy().allows_key("alice", "payments")
    granting.kdc.get("alice")
    granting.kdc.get("bob")
    return granting


def _alice(credential: SymmetricCredential, clock: FakeClock) -> KdcClient:
    return KdcClient(credential, clock=clock, randomness=SeededRandomness(1))


def test_a_process_that_has_not_written_refuses_a_key_withdrawn_elsewhere(
    store_path: Path, clock: FakeClock
) -> None:
    alice, _ = _setup(store_path, clock)
    with _reader(store_path, clock) as granting:
        with _process(store_path, clock) as other:
            other.kdc.withdraw("alice", keys=["payments"])
        with pytest.raises(AccessDeniedError):
            _alice(alice, clock).fetch_key("payments", InProcessTransport(granting.kdc))
        assert granting.kdc.grants(principal="alice") == []


def test_a_process_that_has_not_written_refuses_a_ticket_for_a_peer_withdrawn_elsewhere(
    store_path: Path, clock: FakeClock
) -> None:
    alice, _ = _setup(store_path, clock)
    with _reader(store_path, clock) as granting:
        with _process(store_path, clock) as other:
            other.kdc.withdraw("alice", peers=["bob"])
        with pytest.raises(AccessDeniedError):
            _alice(alice, clock).fetch_ticket("bob", InProcessTransport(granting.kdc))
        assert granting.kdc.grants(principal="alice") == []


def test_a_process_that_has_not_written_refuses_a_principal_disabled_elsewhere(
    store_path: Path, clock: FakeClock
) -> None:
    alice, _ = _setup(store_path, clock)
    with _reader(store_path, clock) as granting:
        with _process(store_path, clock) as other:
            other.kdc.disable("alice")
        with pytest.raises(KeyMgmtError, match="disabled"):
            _alice(alice, clock).fetch_key("payments", InProcessTransport(granting.kdc))
        assert granting.kdc.grants(principal="alice") == []


def test_a_process_that_has_not_written_refuses_a_principal_rotated_elsewhere(
    store_path: Path, clock: FakeClock
) -> None:
    alice, _ = _setup(store_path, clock)
    with _reader(store_path, clock) as granting:
        with _process(store_path, clock) as other:
            other.kdc.rotate_credential("alice")
        with pytest.raises(KeyMgmtError, match="authenticated"):
            _alice(alice, clock).fetch_key("payments", InProcessTransport(granting.kdc))
        assert granting.kdc.grants(principal="alice") == []


def test_a_process_that_has_not_written_gives_no_ticket_for_a_peer_disabled_elsewhere(
    store_path: Path, clock: FakeClock
) -> None:
    alice, _ = _setup(store_path, clock)
    with _reader(store_path, clock) as granting:
        with _process(store_path, clock) as other:
            other.kdc.disable("bob")
        with pytest.raises(KeyMgmtError):
            _alice(alice, clock).fetch_ticket("bob", InProcessTransport(granting.kdc))
        assert granting.kdc.grants(principal="alice") == []


def test_a_process_that_has_not_written_refuses_a_principal_revoked_elsewhere(
    store_path: Path, clock: FakeClock
) -> None:
    alice, _ = _setup(store_path, clock)
    with _reader(store_path, clock) as granting:
        with _process(store_path, clock) as other:
            other.revocation.revoke(SubjectKind.PRINCIPAL, "alice", "key-compromise")
        with pytest.raises(RevokedError):
            _alice(alice, clock).fetch_key("payments", InProcessTransport(granting.kdc))
        assert granting.kdc.grants(principal="alice") == []


def test_a_process_that_has_not_written_refuses_a_key_version_revoked_elsewhere(
    store_path: Path, clock: FakeClock
) -> None:
    alice, _ = _setup(store_path, clock)
    with _reader(store_path, clock) as granting:
        # The key store's cache is warm in the granting process too.
        assert granting.keys.get("payments").primary_version == 1
        with _process(store_path, clock) as other:
            other.revocation.revoke(SubjectKind.KEY, "payments#1", "key-compromise")
        with pytest.raises(RevokedError):
            _alice(alice, clock).fetch_key("payments", InProcessTransport(granting.kdc))
        assert granting.kdc.grants(principal="alice") == []


def test_a_batch_from_a_process_that_has_not_written_refuses_a_key_withdrawn_elsewhere(
    store_path: Path, clock: FakeClock
) -> None:
    alice, _ = _setup(store_path, clock)
    with _reader(store_path, clock) as granting:
        with _process(store_path, clock) as other:
            other.kdc.withdraw("alice", keys=["payments"])
        client = _alice(alice, clock)
        (reply,) = granting.kdc.handle_many([client.key_request("payments")])
        with pytest.raises(AccessDeniedError):
            client.receive_key_reply(reply)
        assert granting.kdc.grants(principal="alice") == []


def test_a_batch_from_a_process_that_has_not_written_refuses_a_principal_disabled_elsewhere(
    store_path: Path, clock: FakeClock
) -> None:
    alice, _ = _setup(store_path, clock)
    with _reader(store_path, clock) as granting:
        with _process(store_path, clock) as other:
            other.kdc.disable("alice")
        client = _alice(alice, clock)
        (reply,) = granting.kdc.handle_many([client.key_request("payments")])
        with pytest.raises(KeyMgmtError, match="disabled"):
            client.receive_key_reply(reply)
        assert granting.kdc.grants(principal="alice") == []


def test_a_grant_after_a_released_principal_hold_still_commits(
    store_path: Path, clock: FakeClock
) -> None:
    # A lifted hold leaves a marker record where the principal's revocation
    # was: the grant does not depend on that record being absent forever.
    alice, _ = _setup(store_path, clock)
    with _process(store_path, clock) as other:
        other.revocation.revoke(SubjectKind.PRINCIPAL, "alice", "certificate-hold")
        other.revocation.release_hold(SubjectKind.PRINCIPAL, "alice")
    with _reader(store_path, clock) as granting:
        granted = _alice(alice, clock).fetch_key("payments", InProcessTransport(granting.kdc))
        assert granted.version == 1
        assert len(granting.kdc.grants(principal="alice")) == 1


def test_a_policy_change_elsewhere_that_still_allows_the_key_lets_the_grant_commit(
    store_path: Path, clock: FakeClock
) -> None:
    alice, _ = _setup(store_path, clock)
    with _reader(store_path, clock) as granting:
        with _process(store_path, clock) as other:
            other.kdc.grant("alice", keys=["reports"])
            other.kdc.rotate_credential("bob")  # another principal's record: not read
        granted = _alice(alice, clock).fetch_key("payments", InProcessTransport(granting.kdc))
        assert granted.version == 1
        assert len(granting.kdc.grants(principal="alice")) == 1


def test_a_batch_after_a_released_principal_hold_still_commits(
    store_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, _ = _setup(store_path, clock)
    with _process(store_path, clock) as other:
        other.revocation.revoke(SubjectKind.PRINCIPAL, "alice", "certificate-hold")
        other.revocation.release_hold(SubjectKind.PRINCIPAL, "alice")
    with _reader(store_path, clock) as granting:
        kdc = granting.kdc
        rechecks: list[object] = []
        original = kdc._recheck

        def counting(*args: Any) -> Any:
            rechecks.append(args)
            return original(*args)

        monkeypatch.setattr(kdc, "_recheck", counting)
        client = _alice(alice, clock)
        for _ in range(2):
            replies = kdc.handle_many([client.key_request("payments") for _ in range(2)])
            assert [client.receive_key_reply(r).version for r in replies] == [1, 1]
        assert len(kdc.grants(principal="alice")) == 4
        # The first batch met the marker (one conflict, two grants re-checked);
        # the second expected the marker's revision and did not conflict.
        assert len(rechecks) == 2


def test_a_process_that_has_not_written_refuses_a_principal_whose_ca_key_was_compromised(
    store_path: Path, clock: FakeClock
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from keymgmt.kdc import CertificateCredential

    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    with _process(store_path, clock) as setup:
        setup.keys.create("payments")
        setup.pki.create_root_ca("root", key_type="ed25519")
        cert = setup.pki.ca("root").issue(
            public_key=private.public_key(),
            subject="client",
            names=["client"],
            profile="tls-client",
        )
        setup.kdc.register_certificate("client", cert)
        setup.kdc.grant("client", keys=["payments"])
        credential = CertificateCredential(
            principal="client", private_key=private, kdc_public_key=setup.kdc.public_key
        )
        key_ref = setup.pki.ca("root").key_ref
    with _process(store_path, clock) as granting:
        client = KdcClient(credential, clock=clock, randomness=SeededRandomness(2))
        granting.kdc.policy()
        granting.kdc.get("client")  # cached, its chain resolved; nothing written
        granting.pki.ca("root")
        with _process(store_path, clock) as other:
            other.compromise(key=key_ref)
        with pytest.raises(RevokedError, match="certificate"):
            client.fetch_key("payments", InProcessTransport(granting.kdc))
        assert granting.kdc.grants(principal="client") == []
