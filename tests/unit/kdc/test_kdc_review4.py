"""Regression tests for the fourth review of the KDC (one section per finding fixed)."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _kdc_support import StaticKeySource
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from keymgmt import KeyManager
from keymgmt.errors import (
    AccessDeniedError,
    InvalidArgumentError,
    MalformedInputError,
    ReplayError,
    RevokedError,
    StaleMessageError,
)
from keymgmt.kdc import (
    CertificateCredential,
    InProcessTransport,
    KdcClient,
    KeyDistributionCenter,
    SymmetricCredential,
    TicketReceiver,
)
from keymgmt.kdc import _wire as w
from keymgmt.kdc._server import GRANT_KIND, GrantRecord
from keymgmt.keyring import KdfProfile
from keymgmt.revocation import SubjectKind
from keymgmt.testing import FakeClock, SeededRandomness

# -- a certificate revoked at its CA only reaches the KDC's list and its clients -------------


def _certificate_principal(
    km: KeyManager, clock: FakeClock, name: str = "client-b", seed: int = 0, ca_name: str = "root"
) -> tuple[KdcClient, x509.Certificate]:
    ca = km.pki.ca(ca_name)
    private = ed25519.Ed25519PrivateKey.from_private_bytes(
        bytes((seed + i) % 256 for i in range(32))
    )
    cert = ca.issue(
        public_key=private.public_key(), subject=name, names=[name], profile="tls-client"
    )
    km.kdc.register_certificate(name, cert)
    km.kdc.grant(name, keys=["payments"], peers=["svc"])
    credential = CertificateCredential(
        principal=name, private_key=private, kdc_public_key=km.kdc.public_key
    )
    return KdcClient(credential, clock=clock, randomness=SeededRandomness(name)), cert


@pytest.fixture
def pki_km(clock: FakeClock) -> Iterator[KeyManager]:
    km = KeyManager.in_memory(clock=clock, randomness=SeededRandomness("review4"))
    km.keys.create("payments")
    km.pki.create_root_ca("root", key_type="ed25519")
    yield km
    km.close()


def _list_of(km: KeyManager, clock: FakeClock, name: str = "svc") -> KdcClient:
    client = KdcClient(km.kdc.register(name), clock=clock, randomness=SeededRandomness(name))
    client.fetch_revocation_list(InProcessTransport(km.kdc))
    return client


def test_a_certificate_revoked_at_its_ca_puts_its_principal_on_the_kdc_list(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    _, cert = _certificate_principal(pki_km, clock)
    pki_km.pki.ca("root").revoke(cert.serial_number, "key-compromise")
    rl = _list_of(pki_km, clock).revocation_list
    assert rl is not None
    (entry,) = rl.entries
    assert (entry.kind, entry.subject, entry.reason) == ("principal", "client-b", "key-compromise")


def test_a_request_with_a_certificate_revoked_at_its_ca_is_refused_and_audited(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    client, cert = _certificate_principal(pki_km, clock)
    pki_km.pki.ca("root").revoke(cert.serial_number, "affiliation-changed")
    with pytest.raises(RevokedError, match="the principal's certificate is revoked"):
        client.fetch_key("payments", InProcessTransport(pki_km.kdc))
    (last,) = pki_km.audit.tail(1)
    assert (last.operation, last.outcome, last.details["reason"]) == (
        "kdc.request",
        "denied",
        "certificate-revoked",
    )
    assert last.details["revocation_reason"] == "affiliation-changed"
    assert pki_km.kdc.get("client-b").revoked


def test_a_receiver_refuses_a_ticket_of_a_client_whose_certificate_was_revoked_at_its_ca(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    client, cert = _certificate_principal(pki_km, clock)
    service = TicketReceiver(pki_km.kdc.register("svc"), clock=clock)
    ticket = client.fetch_ticket("svc", InProcessTransport(pki_km.kdc))
    pki_km.pki.ca("root").revoke(cert.serial_number, "key-compromise")
    service.fetch_revocation_list(InProcessTransport(pki_km.kdc))
    with pytest.raises(RevokedError, match="'client-b' is revoked"):
        service.accept(client.ap_request(ticket).data)


def test_a_client_stops_using_its_grants_once_its_own_certificate_is_revoked(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    client, cert = _certificate_principal(pki_km, clock)
    granted = client.fetch_key("payments", InProcessTransport(pki_km.kdc))
    client.fetch_revocation_list(InProcessTransport(pki_km.kdc))
    client.check_grant(granted)
    pki_km.pki.ca("root").revoke(cert.serial_number, "key-compromise")
    client.fetch_revocation_list(InProcessTransport(pki_km.kdc))
    with pytest.raises(RevokedError, match="'client-b' \\(this client\\) is revoked"):
        client.check_grant(granted)


def test_an_intermediate_ca_revoked_at_its_root_refuses_and_lists_the_principals_below_it(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    issuing = pki_km.pki.ca("root").create_intermediate("issuing", key_type="ed25519")
    client, _ = _certificate_principal(pki_km, clock, "client-i", seed=3, ca_name="issuing")
    client.fetch_key("payments", InProcessTransport(pki_km.kdc))
    pki_km.pki.ca("root").revoke(issuing.certificate.serial_number, "ca-compromise")
    with pytest.raises(RevokedError, match="the principal's certificate is revoked"):
        client.fetch_key("payments", InProcessTransport(pki_km.kdc))
    rl = _list_of(pki_km, clock).revocation_list
    assert rl is not None
    listed = {(e.kind, e.subject): e.reason for e in rl.entries}
    assert listed[("principal", "client-i")] == "ca-compromise"


def test_a_principal_under_a_renewed_intermediate_ca_whose_old_certificate_is_revoked_is_served(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    # The sub-CA presents its new certificate; the old one's revocation
    # (superseded) does not revoke what it issued, as km.pki.verify says.
    root = pki_km.pki.ca("root")
    issuing = root.create_intermediate("issuing", key_type="ed25519")
    client, _ = _certificate_principal(pki_km, clock, "client-i", seed=3, ca_name="issuing")
    listing = _list_of(pki_km, clock)
    client.fetch_key("payments", InProcessTransport(pki_km.kdc))  # cached, chain resolved
    root.renew(issuing.certificate.serial_number, revoke_old=True)
    assert client.fetch_key("payments", InProcessTransport(pki_km.kdc)).version == 1
    rl = listing.fetch_revocation_list(InProcessTransport(pki_km.kdc))
    assert not rl.is_revoked("principal", "client-i")
    pki_km.pki.ca("root").revoke(
        pki_km.pki.ca("issuing").certificate.serial_number, "ca-compromise"
    )
    with pytest.raises(RevokedError, match="the principal's certificate is revoked"):
        client.fetch_key("payments", InProcessTransport(pki_km.kdc))
    assert listing.fetch_revocation_list(InProcessTransport(pki_km.kdc)).is_revoked(
        "principal", "client-i"
    )


def test_a_released_certificate_hold_takes_the_principal_off_the_list(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    client, cert = _certificate_principal(pki_km, clock)
    ca = pki_km.pki.ca("root")
    ca.revoke(cert.serial_number, "certificate-hold")
    listing = _list_of(pki_km, clock)
    assert listing.revocation_list is not None
    assert listing.revocation_list.is_revoked("principal", "client-b")
    ca.release_hold(cert.serial_number)
    assert not listing.fetch_revocation_list(InProcessTransport(pki_km.kdc)).entries
    assert client.fetch_key("payments", InProcessTransport(pki_km.kdc)).version == 1


@pytest.mark.parametrize(
    ("own", "certificate", "listed"),
    [
        ("superseded", "key-compromise", "key-compromise"),
        ("key-compromise", "superseded", "key-compromise"),
        ("superseded", "affiliation-changed", "superseded"),
    ],
)
def test_a_principal_revoked_itself_and_at_its_ca_is_listed_once_with_the_stronger_reason(
    pki_km: KeyManager, clock: FakeClock, own: str, certificate: str, listed: str
) -> None:
    _, cert = _certificate_principal(pki_km, clock)
    pki_km.kdc.revoke("client-b", own)
    pki_km.pki.ca("root").revoke(cert.serial_number, certificate)
    rl = _list_of(pki_km, clock).revocation_list
    assert rl is not None
    assert [(e.kind, e.subject, e.reason) for e in rl.entries] == [
        ("principal", "client-b", listed)
    ]


def test_a_principal_registered_after_the_first_list_is_listed_when_its_certificate_goes(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    listing = _list_of(pki_km, clock)  # the table of certificate principals is loaded now
    _, cert = _certificate_principal(pki_km, clock, "client-c", seed=7)
    pki_km.pki.ca("root").revoke(cert.serial_number, "key-compromise")
    rl = listing.fetch_revocation_list(InProcessTransport(pki_km.kdc))
    assert rl.is_revoked("principal", "client-c")


def test_revoking_certificates_of_no_principal_does_not_re_encode_the_list(
    pki_km: KeyManager, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keymgmt.kdc import _protocol

    _certificate_principal(pki_km, clock)
    pki_km.kdc.revocation_list()
    builds: list[int] = []
    real = _protocol.revocation_list_body

    def counting(entries: object) -> bytes:
        builds.append(1)
        return real(entries)  # type: ignore[arg-type]

    monkeypatch.setattr(_protocol, "revocation_list_body", counting)
    for serial in range(1, 6):
        pki_km.revocation.revoke(SubjectKind.CERTIFICATE, f"root:{serial + 1000:x}")
        pki_km.kdc.revocation_list(nonce=bytes(16))
    assert builds == []


def _process(store_path: Path, clock: FakeClock) -> KeyManager:
    return KeyManager.open(
        store_path,
        passphrase="pw",
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=clock,
        consistency_interval=3600,
    )


def test_a_certificate_revoked_by_another_process_is_refused_and_listed(
    store_path: Path, clock: FakeClock
) -> None:
    with _process(store_path, clock) as first:
        first.keys.create("payments")
        first.pki.create_root_ca("root", key_type="ed25519")
        client, cert = _certificate_principal(first, clock)
        listing = _list_of(first, clock)
        client.fetch_key("payments", InProcessTransport(first.kdc))  # warm caches
        with _process(store_path, clock) as second:
            second.pki.ca("root").revoke(cert.serial_number, "key-compromise")
        # The first process has not synced (an hour's consistency interval):
        # its grant's commit conflicts, and the re-run sees the revocation.
        with pytest.raises(RevokedError, match="certificate is revoked"):
            client.fetch_key("payments", InProcessTransport(first.kdc))
        assert len(first.kdc.grants(principal="client-b")) == 1  # the warm-up's only
        assert listing.fetch_revocation_list(InProcessTransport(first.kdc)).is_revoked(
            "principal", "client-b"
        )


def test_a_principal_another_process_registers_is_listed_when_its_certificate_goes(
    store_path: Path, clock: FakeClock
) -> None:
    with _process(store_path, clock) as first:
        first.keys.create("payments")
        first.pki.create_root_ca("root", key_type="ed25519")
        listing = _list_of(first, clock)  # the first process's table is loaded now
        with _process(store_path, clock) as second:
            _, cert = _certificate_principal(second, clock, "client-c", seed=9)
            second.pki.ca("root").revoke(cert.serial_number, "key-compromise")
        rl = listing.fetch_revocation_list(InProcessTransport(first.kdc))
        assert rl.is_revoked("principal", "client-c")


# -- a key request replayed to another process after a rotation is refused ------------------


def test_a_key_request_replayed_to_another_process_after_a_rotation_is_refused(
    km: KeyManager, keys: StaticKeySource, client: KdcClient, transport: InProcessTransport
) -> None:
    request = client.key_request("payments")
    client.receive_key_reply(transport(request))
    keys.add("payments", b"z" * 32)
    fresh = KeyDistributionCenter(km._context, keys=keys)  # another process: empty cache
    with pytest.raises(ReplayError, match="seen before"):
        client.receive_key_reply(fresh.handle(request))
    assert [g.key_id for g in fresh.grants(principal="alice")] == ["payments#1"]


def test_a_batched_key_request_replayed_after_a_rotation_is_refused(
    km: KeyManager, keys: StaticKeySource, client: KdcClient, transport: InProcessTransport
) -> None:
    request = client.key_request("payments")
    client.receive_key_reply(transport(request))
    keys.add("payments", b"z" * 32)
    fresh = KeyDistributionCenter(km._context, keys=keys)
    (reply,) = fresh.handle_many([request])
    with pytest.raises(ReplayError):
        client.receive_key_reply(reply)
    assert len(fresh.grants(key="payments")) == 1


def test_grants_written_under_the_version_named_records_are_still_found(
    km: KeyManager, kdc: KeyDistributionCenter, client: KdcClient, transport: InProcessTransport
) -> None:
    # Records written before this change are named key:<name>#<version>:<id>.
    granted = client.fetch_key("payments", transport)
    (new,) = kdc.grants(key="payments#1")
    old = GrantRecord(
        id="ab" * 16,
        kind="key",
        principal="carol",
        issued_at=new.issued_at,
        expires_at=new.expires_at,
        key_name="payments",
        version=1,
    )
    km._store.transact(lambda txn: txn.put(GRANT_KIND, f"key:payments#1:{old.id}", old.to_bytes()))
    assert {g.principal for g in kdc.grants(key="payments#1")} == {"alice", "carol"}
    assert {g.principal for g in kdc.grants(key="payments")} == {"alice", "carol"}
    assert kdc.grants(key="payments#2") == []
    report = kdc.compromise(key="payments#1")
    assert report.recipients == ("alice", "carol")
    assert granted.grant_id == new.id


# -- a credential file others may read is refused, as OpenSSH refuses such keys --------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_credential_file_readable_by_group_or_others_is_refused(
    kdc: KeyDistributionCenter, tmp_path: Path
) -> None:
    path = tmp_path / "alice.cred"
    kdc.register("alice", write_to=path)
    path.chmod(0o640)
    with pytest.raises(InvalidArgumentError, match=r"readable by group or others \(mode 0640\)"):
        SymmetricCredential.from_file(path)
    path.chmod(0o600)
    assert SymmetricCredential.from_file(path).principal == "alice"


# -- a credential file's fields are strings, not whatever str() makes of them -----------------


@pytest.mark.parametrize("field", ["principal", "key", "kdc_public_key"])
@pytest.mark.parametrize("value", [5, None, ["alice"]], ids=["int", "null", "list"])
def test_a_credential_file_with_a_non_string_field_is_malformed(
    kdc: KeyDistributionCenter, tmp_path: Path, field: str, value: object
) -> None:
    import json

    path = tmp_path / "alice.cred"
    kdc.register("alice", write_to=path)
    document = json.loads(path.read_text())
    document[field] = value
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    with pytest.raises(MalformedInputError, match="not a keymgmt KDC credential file"):
        SymmetricCredential.from_file(path)


# -- a key or principal revocation rebuilds the list without a pass over the certificates -----


class _NoPass(dict[str, object]):
    """A registry index that refuses to be walked (lookups are fine)."""

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the registry index was walked")

    def items(self) -> Any:
        raise AssertionError("the registry index was walked")


def test_a_key_revocation_rebuilds_the_list_without_walking_the_certificates(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    _certificate_principal(pki_km, clock)
    registry = pki_km.revocation
    for serial in range(1, 1001):
        registry.revoke(SubjectKind.CERTIFICATE, f"root:{serial + 5000:x}")
    pki_km.kdc.revocation_list()
    registry._entries = _NoPass(registry._entries)  # type: ignore[assignment]
    registry.revoke(SubjectKind.KEY, "payments#1", "key-compromise")
    registry.revoke(SubjectKind.PRINCIPAL, "mallory")
    listing = _list_of(pki_km, clock)
    assert listing.revocation_list is not None
    assert listing.revocation_list.key_revoked("payments", 1)
    assert listing.revocation_list.is_revoked("principal", "mallory")


# -- a refused request replayed to another process after a policy change is refused ----------


def test_a_refused_request_replayed_to_another_process_after_a_policy_change_is_refused(
    km: KeyManager, keys: StaticKeySource, kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    kdc.withdraw("alice", keys=["payments"])
    request = client.key_request("payments")
    assert w.peek_type(kdc.handle(request)) is w.MessageType.ERROR
    kdc.grant("alice", keys=["payments"])
    other = KeyDistributionCenter(km._context, keys=keys)  # another process: empty cache
    with pytest.raises(ReplayError, match="seen before"):
        client.receive_key_reply(other.handle(request))
    assert other.grants() == []


def test_a_refused_ticket_request_replayed_in_a_batch_after_the_peer_appeared_is_refused(
    km: KeyManager, keys: StaticKeySource, kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    request = client.ticket_request("bob")  # no principal bob yet: not-found
    (reply,) = kdc.handle_many([request])
    assert w.peek_type(reply) is w.MessageType.ERROR
    kdc.register("bob")
    other = KeyDistributionCenter(km._context, keys=keys)
    (replayed,) = other.handle_many([request])
    with pytest.raises(ReplayError):
        client.receive_ticket_reply(replayed)
    assert other.grants(principal="alice") == []


def test_refused_requests_are_no_grants_in_listings_or_compromise_reports(
    kdc: KeyDistributionCenter, client: KdcClient, transport: InProcessTransport
) -> None:
    kdc.withdraw("alice", keys=["payments"])
    with pytest.raises(AccessDeniedError):
        client.fetch_key("payments", transport)
    kdc.grant("alice", keys=["payments"])
    granted = client.fetch_key("payments", transport)
    assert [g.id for g in kdc.grants()] == [granted.grant_id]
    assert [g.id for g in kdc.grants(key="payments")] == [granted.grant_id]
    report = kdc.compromise(principal="alice")
    assert [g.id for g in report.key_grants] == [granted.grant_id]


# -- a disabled principal's request replayed after it is enabled again is refused -------------


def test_a_disabled_principals_request_replayed_after_it_is_enabled_is_refused(
    kdc: KeyDistributionCenter, client: KdcClient, transport: InProcessTransport
) -> None:
    kdc.disable("alice")
    request = client.key_request("payments")
    with pytest.raises(AccessDeniedError, match="disabled"):
        client.receive_key_reply(transport(request))
    kdc.enable("alice")
    with pytest.raises(ReplayError, match="seen before"):
        client.receive_key_reply(transport(request))
    assert kdc.grants() == []


def test_a_request_stamped_too_far_ahead_is_a_replay_once_it_would_be_fresh(
    kdc: KeyDistributionCenter, alice: SymmetricCredential, clock: FakeClock
) -> None:
    ahead = FakeClock(clock.now() + _dt.timedelta(minutes=7))
    client = KdcClient(alice, clock=ahead, randomness=SeededRandomness("ahead"))
    request = client.key_request("payments")
    transport = InProcessTransport(kdc)
    with pytest.raises(StaleMessageError):
        client.receive_key_reply(transport(request))
    clock.advance(_dt.timedelta(minutes=6))  # the stamp is within the skew now
    with pytest.raises(ReplayError):
        client.receive_key_reply(transport(request))
    assert kdc.grants() == []


def test_an_old_request_replayed_after_its_window_writes_no_marker(
    kdc: KeyDistributionCenter, client: KdcClient, clock: FakeClock
) -> None:
    request = client.key_request("payments")
    client.receive_key_reply(kdc.handle(request))
    records = len(kdc._store.backend.list(GRANT_KIND))
    clock.advance(_dt.timedelta(minutes=10))
    with pytest.raises(StaleMessageError):
        client.receive_key_reply(kdc.handle(request))
    assert len(kdc._store.backend.list(GRANT_KIND)) == records
