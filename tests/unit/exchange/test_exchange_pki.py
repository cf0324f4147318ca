"""km.exchange: handshakes whose peers are verified by km.pki (chains, names, revocation)."""

from __future__ import annotations

import pytest

from keymgmt import KeyManager
from keymgmt.errors import PeerVerificationError, ReplayError
from keymgmt.exchange import PKIPeerVerifier
from keymgmt.pki import CertificateAuthority
from keymgmt.testing import FakeClock, handshake_pair, in_memory_manager

SERVER = "server.example"
CLIENT = "client.example"


@pytest.fixture
def root(km: KeyManager) -> CertificateAuthority:
    return km.pki.create_root_ca("root", key_type="ed25519")


def test_handshake_between_credentials_from_the_store_ca(
    km: KeyManager, root: CertificateAuthority
) -> None:
    server = km.exchange.credential(root, SERVER, client=False)
    client = km.exchange.credential(root, CLIENT, server=False)
    a, b = handshake_pair(
        km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(server)
    )
    assert (a.peer.identity, b.peer.identity) == (SERVER, CLIENT)
    assert a.session_id == b.session_id


def test_credentials_from_an_intermediate_carry_its_certificate(
    km: KeyManager, root: CertificateAuthority
) -> None:
    issuing = root.create_intermediate("issuing")
    server = km.exchange.credential(issuing, SERVER, client=False)
    assert len(server.chain) == 2
    client = km.exchange.credential(root, CLIENT, server=False)
    a, _ = handshake_pair(
        km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(server)
    )
    assert len(a.peer.chain) == 3


def test_ecdsa_root_uses_the_pki_fast_path(km: KeyManager) -> None:
    root = km.pki.create_root_ca("p256-root", key_type="ecdsa-p256")
    server = km.exchange.credential(root, SERVER, client=False)
    client = km.exchange.credential(root, CLIENT, server=False)
    a, _ = handshake_pair(
        km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(server)
    )
    assert a.peer.identity == SERVER


def test_revoked_server_is_refused_with_the_reason(
    km: KeyManager, root: CertificateAuthority
) -> None:
    server = km.exchange.credential(root, SERVER, client=False)
    client = km.exchange.credential(root, CLIENT, server=False)
    root.revoke(server.chain[0].serial_number, "key-compromise")
    with pytest.raises(PeerVerificationError, match="revoked") as info:
        handshake_pair(
            km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(server)
        )
    assert info.value.reason == "revoked"
    assert info.value.revocation_reason == "key-compromise"  # type: ignore[attr-defined]


def test_revoked_client_is_refused_by_the_responder(
    km: KeyManager, root: CertificateAuthority
) -> None:
    server = km.exchange.credential(root, SERVER, client=False)
    client = km.exchange.credential(root, CLIENT, server=False)
    root.revoke(client.chain[0].serial_number, "superseded")
    responder = km.exchange.responder(server)
    with pytest.raises(PeerVerificationError) as info:
        handshake_pair(km.exchange.initiator(client, server_identity=SERVER), responder)
    assert info.value.reason == "revoked"


def test_expired_peer_is_refused(
    km: KeyManager, root: CertificateAuthority, clock: FakeClock
) -> None:
    server = km.exchange.credential(root, SERVER, client=False)
    client = km.exchange.credential(root, CLIENT, server=False)
    clock.advance(days=91)  # the tls profiles last 90 days
    with pytest.raises(PeerVerificationError) as info:
        handshake_pair(
            km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(server)
        )
    assert info.value.reason == "expired"


def test_peer_from_another_store_ca_is_an_unknown_issuer(
    km: KeyManager, root: CertificateAuthority
) -> None:
    with in_memory_manager(seed=9) as other:
        rogue_root = other.pki.create_root_ca("rogue", key_type="ed25519")
        rogue = other.exchange.credential(rogue_root, SERVER, client=False)
    client = km.exchange.credential(root, CLIENT, server=False)
    with pytest.raises(PeerVerificationError) as info:
        handshake_pair(
            km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(rogue)
        )
    assert info.value.reason == "unknown-issuer"


def test_peer_with_another_name_is_a_name_mismatch(
    km: KeyManager, root: CertificateAuthority
) -> None:
    impostor = km.exchange.credential(root, "mallory.example", client=False)
    client = km.exchange.credential(root, CLIENT, server=False)
    with pytest.raises(PeerVerificationError) as info:
        handshake_pair(
            km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(impostor)
        )
    assert info.value.reason == "name-mismatch"


def test_responders_of_one_manager_share_the_replay_cache(
    km: KeyManager, root: CertificateAuthority
) -> None:
    server = km.exchange.credential(root, SERVER, client=False)
    client = km.exchange.credential(root, CLIENT, server=False)
    initiator = km.exchange.initiator(client, server_identity=SERVER)
    hello = initiator.start()
    first = km.exchange.responder(server)
    first.receive_data(hello)
    first.next_event()
    initiator.receive_data(first.data_to_send())
    initiator.next_event()
    first.receive_data(initiator.data_to_send())
    first.next_event()
    assert len(km.exchange.replay_cache) == 1
    second = km.exchange.responder(server)
    second.receive_data(hello)
    with pytest.raises(ReplayError):
        second.next_event()


def test_malformed_certificate_is_refused(km: KeyManager, root: CertificateAuthority) -> None:
    from keymgmt.exchange import PeerRole

    verifier = km.exchange.peer_verifier()
    assert isinstance(verifier, PKIPeerVerifier)
    with pytest.raises(PeerVerificationError) as info:
        verifier.verify_peer(
            [b"\x30\x03\x02\x01\x00"],
            expected_identity=None,
            role=PeerRole.SERVER,
            at=km.clock.now(),
        )
    assert info.value.reason == "malformed-certificate"
