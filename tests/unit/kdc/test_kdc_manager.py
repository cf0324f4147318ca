"""The KDC on the façade: named keys from km.keys, certificates from km.pki, km.compromise."""

from __future__ import annotations

from pathlib import Path

import pytest
from _kdc_support import minutes
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keymgmt import KeyManager
from keymgmt.errors import (
    CertificateVerificationError,
    InvalidArgumentError,
    InvalidSignatureError,
    KeyStateError,
    MalformedInputError,
    NotFoundError,
    RemoteProtocolError,
    RevokedError,
    StaleMessageError,
)
from keymgmt.kdc import (
    CertificateCredential,
    InProcessTransport,
    KdcClient,
    SymmetricCredential,
    TicketReceiver,
)
from keymgmt.model import KeyState
from keymgmt.testing import FakeClock, SeededRandomness


@pytest.fixture
def setup(km: KeyManager, clock: FakeClock) -> tuple[KdcClient, KdcClient, InProcessTransport]:
    km.keys.create("payments")
    alice = km.kdc.register("alice")
    bob = km.kdc.register("bob")
    km.kdc.grant("alice", keys=["payments"], peers=["bob"])
    km.kdc.grant("bob", keys=["payments"])
    transport = InProcessTransport(km.kdc)
    return (
        KdcClient(alice, clock=clock, randomness=SeededRandomness("a")),
        KdcClient(bob, clock=clock, randomness=SeededRandomness("b")),
        transport,
    )


Setup = tuple[KdcClient, KdcClient, InProcessTransport]


def test_granted_key_decrypts_what_the_key_store_encrypted(km: KeyManager, setup: Setup) -> None:
    alice, _, transport = setup
    granted = alice.fetch_key("payments", transport)
    assert granted.version == km.keys.get("payments").primary_version
    aead = AESGCM(granted.material.reveal())
    nonce = bytes(12)
    assert aead.decrypt(nonce, aead.encrypt(nonce, b"hello", None), None) == b"hello"


def test_rotation_hands_out_the_new_primary(km: KeyManager, setup: Setup) -> None:
    alice, _, transport = setup
    km.keys.rotate("payments")
    assert alice.fetch_key("payments", transport).version == 2


def test_suspended_primary_is_not_distributed(km: KeyManager, setup: Setup) -> None:
    alice, _, transport = setup
    km.keys.suspend("payments", 1)
    with pytest.raises(KeyStateError):
        alice.fetch_key("payments", transport)


def test_compromised_primary_is_not_distributed(km: KeyManager, setup: Setup) -> None:
    alice, _, transport = setup
    km.keys.revoke("payments", 1, reason="key-compromise")
    with pytest.raises(RevokedError):
        alice.fetch_key("payments", transport)


def test_asymmetric_keys_are_not_distributed(km: KeyManager, setup: Setup) -> None:
    alice, _, transport = setup
    km.keys.create("signer", algorithm="ed25519")
    km.kdc.grant("alice", keys=["signer"])
    with pytest.raises(KeyStateError):
        alice.fetch_key("signer", transport)


def test_compromise_of_a_key_version_rotates_and_reports_recipients(
    km: KeyManager, setup: Setup
) -> None:
    alice, bob, transport = setup
    alice.fetch_key("payments", transport)
    bob.fetch_key("payments", transport)
    km.generate_data_key("payments")
    report = km.compromise(key="payments#1")
    assert report.subject == "key:payments#1"
    assert report.rotated == ("payments#2",)
    assert report.exposed_key_versions == ("payments#1",)
    assert report.recipients == ("alice", "bob")
    assert len(report.key_grants) == 2
    assert report.data_keys == (("payments#1", 1),)
    assert km.keys.get("payments").versions[0].state is KeyState.COMPROMISED
    entry = km.audit.tail(1)[0]
    assert (entry.operation, entry.object) == ("kdc.compromise", "key:payments#1")


def test_after_compromise_the_kdc_hands_out_the_new_version(km: KeyManager, setup: Setup) -> None:
    alice, _, transport = setup
    km.compromise(key="payments#1")
    assert alice.fetch_key("payments", transport).version == 2


def test_client_learns_of_revocation_from_the_signed_list(km: KeyManager, setup: Setup) -> None:
    alice, _, transport = setup
    granted = alice.fetch_key("payments", transport)
    alice.fetch_revocation_list(transport)
    alice.check_grant(granted)
    km.compromise(key="payments#1")
    listed = alice.fetch_revocation_list(transport)
    assert listed.key_revoked("payments", 1)
    with pytest.raises(RevokedError, match="payments#1 is revoked"):
        alice.check_grant(granted)


def test_grants_expire_so_clients_ask_again(setup: Setup, clock: FakeClock) -> None:
    alice, _, transport = setup
    granted = alice.fetch_key("payments", transport)
    alice.fetch_revocation_list(transport)
    clock.advance(minutes(15))
    with pytest.raises(StaleMessageError, match="request the key again"):
        alice.check_grant(granted)


def test_check_grant_needs_a_current_revocation_list(setup: Setup, clock: FakeClock) -> None:
    alice, _, transport = setup
    granted = alice.fetch_key("payments", transport)
    with pytest.raises(StaleMessageError, match="no current revocation list"):
        alice.check_grant(granted)


def test_compromise_of_a_principal_exposes_what_it_received(km: KeyManager, setup: Setup) -> None:
    alice, bob, transport = setup
    alice.fetch_key("payments", transport)
    ticket = alice.fetch_ticket("bob", transport)
    report = km.compromise(principal="alice")
    assert report.exposed_key_versions == ("payments#1",)
    assert [t.id for t in report.tickets] == [ticket.ticket_id]
    assert report.rotated == ("payments#2",)
    assert "principal:alice" in report.revoked
    assert set(report.recipients) == {"alice", "bob"}
    with pytest.raises(RevokedError):
        alice.fetch_key("payments", transport)
    assert bob.fetch_key("payments", transport).version == 2


def test_compromise_without_cascade_only_revokes_the_principal(
    km: KeyManager, setup: Setup
) -> None:
    alice, _, transport = setup
    alice.fetch_key("payments", transport)
    report = km.compromise(principal="alice", cascade=False)
    assert report.rotated == ()
    assert report.exposed_key_versions == ("payments#1",)
    assert km.keys.get("payments").primary_version == 1


def test_compromise_needs_exactly_one_subject(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        km.compromise()
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        km.compromise(key="a#1", principal="b")


def test_compromise_of_an_unknown_principal_is_not_found(km: KeyManager) -> None:
    with pytest.raises(NotFoundError):
        km.compromise(principal="ghost")


def test_compromise_is_idempotent(km: KeyManager, setup: Setup) -> None:
    km.compromise(key="payments#1")
    again = km.compromise(key="payments#1")
    assert again.rotated == ()


# -- certificate principals ------------------------------------------------------


@pytest.fixture
def client_b(km: KeyManager, clock: FakeClock) -> tuple[KdcClient, x509.Certificate]:
    km.keys.create("payments")
    ca = km.pki.create_root_ca("root", key_type="ed25519")
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    cert = ca.issue(
        public_key=private.public_key(),
        subject="client-b",
        names=["client-b"],
        profile="tls-client",
    )
    km.kdc.register_certificate("client-b", cert)
    km.kdc.grant("client-b", keys=["payments"], peers=["svc"])
    credential = CertificateCredential(
        principal="client-b", private_key=private, kdc_public_key=km.kdc.public_key
    )
    return KdcClient(credential, clock=clock, randomness=SeededRandomness("cb")), cert


def test_certificate_principal_gets_a_key_over_a_signed_reply(
    km: KeyManager, client_b: tuple[KdcClient, x509.Certificate]
) -> None:
    client, _ = client_b
    granted = client.fetch_key("payments", InProcessTransport(km.kdc))
    assert granted.version == 1
    (record,) = km.kdc.grants(principal="client-b")
    assert record.auth == "certificate"


def test_certificate_principal_gets_tickets(
    km: KeyManager, client_b: tuple[KdcClient, x509.Certificate], clock: FakeClock
) -> None:
    client, _ = client_b
    service = TicketReceiver(km.kdc.register("svc"), clock=clock)
    ticket = client.fetch_ticket("svc", InProcessTransport(km.kdc))
    assert service.accept(client.ap_request(ticket).data).client == "client-b"


def test_revoked_certificate_is_refused(
    km: KeyManager, client_b: tuple[KdcClient, x509.Certificate]
) -> None:
    client, cert = client_b
    km.pki.ca("root").revoke(cert.serial_number, "key-compromise")
    with pytest.raises(RevokedError, match="the principal's certificate is revoked"):
        client.fetch_key("payments", InProcessTransport(km.kdc))


def test_expired_certificate_is_refused(
    km: KeyManager, client_b: tuple[KdcClient, x509.Certificate], clock: FakeClock
) -> None:
    client, cert = client_b
    clock.set(cert.not_valid_after_utc + minutes(1))
    with pytest.raises(RemoteProtocolError, match="certificate does not verify"):
        client.fetch_key("payments", InProcessTransport(km.kdc))


def test_certificate_naming_someone_else_cannot_register(
    km: KeyManager, client_b: tuple[KdcClient, x509.Certificate]
) -> None:
    _, cert = client_b
    with pytest.raises(InvalidArgumentError, match="does not name principal 'mallory'"):
        km.kdc.register_certificate("mallory", cert)


def test_certificate_without_any_ca_in_the_store_cannot_register(km: KeyManager) -> None:
    with pytest.raises(CertificateVerificationError, match="no CA"):
        km.kdc.register_certificate("rogue", _self_signed(km, "rogue"))


def test_certificate_from_a_foreign_ca_cannot_register(km: KeyManager) -> None:
    km.pki.create_root_ca("root", key_type="ed25519")
    with pytest.raises(CertificateVerificationError):
        km.kdc.register_certificate("rogue", _self_signed(km, "rogue"))


def _self_signed(km: KeyManager, common_name: str) -> x509.Certificate:
    import datetime as _dt

    from cryptography.x509.oid import NameOID

    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = km.clock.now()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=1))
        .sign(key, None)
    )


def test_compromise_of_a_certificate_revokes_it_publishes_a_crl_and_revokes_holders(
    km: KeyManager, client_b: tuple[KdcClient, x509.Certificate]
) -> None:
    client, cert = client_b
    transport = InProcessTransport(km.kdc)
    client.fetch_key("payments", transport)
    report = km.compromise(certificate=cert)
    serial = format(cert.serial_number, "x")
    assert report.subject == f"certificate:root:{serial}"
    assert report.crl == f"root:{serial} crl=1"
    assert report.revoked == (f"certificate:root:{serial}", "principal:client-b")
    assert len(report.not_exposed) == 1  # forward-secret reply
    assert report.exposed_key_versions == ()
    crl = km.pki.ca("root").crl()
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    with pytest.raises(RevokedError):
        client.fetch_key("payments", transport)


def test_symmetric_and_certificate_credentials_are_distinct_types(km: KeyManager) -> None:
    credential = km.kdc.register("alice")
    assert isinstance(credential, SymmetricCredential)


def test_low_order_reply_share_gets_an_error_reply_not_an_exception(
    km: KeyManager, client_b: tuple[KdcClient, x509.Certificate], clock: FakeClock
) -> None:
    from keymgmt.kdc import _protocol as p
    from keymgmt.kdc._wire import MessageType

    client, _ = client_b
    credential = client.credential
    assert isinstance(credential, CertificateCredential)
    request = p.build_request(
        MessageType.KEY_REQUEST,
        "client-b",
        target="payments",
        nonce=bytes(16),
        timestamp=clock.now(),
        randomness=SeededRandomness(5),
        signing_key=credential.private_key,
        reply_share=bytes(32),  # the all-zero (low-order) X25519 point
    )
    with pytest.raises(MalformedInputError, match="not a usable X25519 public key"):
        p.raise_if_error(km.kdc.handle(request))


def test_symmetric_principal_cannot_switch_to_signatures(
    km: KeyManager, setup: Setup, clock: FakeClock
) -> None:
    from keymgmt.kdc import _protocol as p
    from keymgmt.kdc._wire import MessageType

    request = p.build_request(
        MessageType.KEY_REQUEST,
        "alice",
        target="payments",
        nonce=bytes(range(16)),
        timestamp=clock.now(),
        randomness=SeededRandomness(5),
        signing_key=ed25519.Ed25519PrivateKey.generate(),
        reply_share=bytes(range(32)),
    )
    with pytest.raises(RemoteProtocolError, match="could not be authenticated"):
        p.raise_if_error(km.kdc.handle(request))


def test_kdc_on_a_sqlite_store_is_shared_with_another_manager(
    sqlite_km: KeyManager, store_path: Path, clock: FakeClock
) -> None:
    sqlite_km.keys.create("payments")
    alice = sqlite_km.kdc.register("alice")
    sqlite_km.kdc.grant("alice", keys=["payments"])
    first = KdcClient(alice, clock=clock).fetch_key("payments", InProcessTransport(sqlite_km.kdc))
    with KeyManager.open(
        store_path, passphrase="correct horse battery staple", clock=clock, consistency_interval=0
    ) as other:
        assert other.kdc.public_key == sqlite_km.kdc.public_key
        second = KdcClient(alice, clock=clock).fetch_key("payments", InProcessTransport(other.kdc))
        assert second.material == first.material
        assert {g.id for g in other.kdc.grants(key="payments#1")} == {
            first.grant_id,
            second.grant_id,
        }
        other.kdc.revoke("alice")
    sqlite_km.sync()
    with pytest.raises(RevokedError):
        KdcClient(alice, clock=clock).fetch_key("payments", InProcessTransport(sqlite_km.kdc))


def test_compromise_by_key_name_takes_its_primary_version(km: KeyManager, setup: Setup) -> None:
    km.keys.rotate("payments")
    report = km.compromise(key="payments")
    assert report.exposed_key_versions == ("payments#2",)
    assert report.rotated == ("payments#3",)


def test_compromise_refuses_a_malformed_version(km: KeyManager, setup: Setup) -> None:
    with pytest.raises(InvalidArgumentError, match="expected name#version"):
        km.compromise(key="payments#one")


def test_every_tampered_signed_request_byte_gets_an_error_reply(
    km: KeyManager, client_b: tuple[KdcClient, x509.Certificate]
) -> None:
    from keymgmt.kdc._wire import MessageType, peek_type

    client, _ = client_b
    request = client.key_request("payments")
    for index in range(len(request)):
        tampered = bytearray(request)
        tampered[index] ^= 0x01
        assert peek_type(km.kdc.handle(bytes(tampered))) is MessageType.ERROR, index


def test_every_tampered_signed_reply_byte_is_refused(
    km: KeyManager, client_b: tuple[KdcClient, x509.Certificate]
) -> None:
    from keymgmt.errors import KeyMgmtError

    client, _ = client_b
    reply = km.kdc.handle(client.key_request("payments"))
    for index in range(len(reply)):
        tampered = bytearray(reply)
        tampered[index] ^= 0x01
        with pytest.raises(KeyMgmtError):
            client.receive_key_reply(bytes(tampered))
    assert client.receive_key_reply(reply).version == 1


def test_certificate_principal_cannot_be_a_ticket_service(
    km: KeyManager, client_b: tuple[KdcClient, x509.Certificate], clock: FakeClock
) -> None:
    alice = KdcClient(km.kdc.register("alice"), clock=clock)
    km.kdc.grant("alice", peers=["client-b"])
    with pytest.raises(RemoteProtocolError, match="no symmetric key to seal tickets under"):
        alice.fetch_ticket("client-b", InProcessTransport(km.kdc))


def test_grant_ends_when_the_key_expires(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("short", expiry_date=clock.now() + minutes(5))
    alice = km.kdc.register("alice")
    km.kdc.grant("alice", keys=["short"])
    granted = KdcClient(alice, clock=clock).fetch_key("short", InProcessTransport(km.kdc))
    assert granted.expires_at == clock.now() + minutes(5)


def test_kdc_signing_key_is_a_managed_key_pair(km: KeyManager, setup: Setup) -> None:
    info = km.keys.get("kdc-signing")
    assert info.algorithm.value == "ed25519"
    assert km.kdc.public_key == km.keys.public_key("kdc-signing").raw()


def test_compromised_kdc_signing_key_is_rotated_and_old_pins_fail(
    km: KeyManager, setup: Setup, clock: FakeClock
) -> None:
    alice, _, transport = setup
    old_pin = km.kdc.public_key
    report = km.compromise(key="kdc-signing#1")
    assert report.rotated == ("kdc-signing#2",)
    assert km.kdc.public_key != old_pin
    with pytest.raises(InvalidSignatureError):
        alice.fetch_revocation_list(transport)  # alice still pins the old key
    repinned = km.kdc.rotate_credential("alice")
    assert repinned.kdc_public_key == km.kdc.public_key
    KdcClient(repinned, clock=clock).fetch_revocation_list(transport)


def test_kdc_that_cannot_sign_answers_unavailable(km: KeyManager, setup: Setup) -> None:
    alice, _, transport = setup
    km.kdc.public_key  # noqa: B018 - creates the signing key
    km.keys.revoke("kdc-signing", 1, reason="key-compromise")
    with pytest.raises(RemoteProtocolError, match="refused"):
        alice.fetch_revocation_list(transport)
