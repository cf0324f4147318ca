"""A certificate principal under a CA whose signing key is compromised is refused.

The KDC checks a certificate principal's certificate with ``km.pki.verify``
on its requests, which refuses whatever a CA with a compromised key signed
(``ca-compromise``): a root has no parent to revoke its certificate.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from keymgmt import KeyManager
from keymgmt.errors import KeyMgmtError
from keymgmt.kdc import CertificateCredential, InProcessTransport, KdcClient
from keymgmt.revocation import SubjectKind
from keymgmt.testing import FakeClock, SeededRandomness


@pytest.fixture
def pki_km(clock: FakeClock) -> Iterator[KeyManager]:
    km = KeyManager.in_memory(clock=clock, randomness=SeededRandomness("ca-key"))
    km.keys.create("payments")
    km.pki.create_root_ca("root", key_type="ed25519")
    yield km
    km.close()


def _principal(km: KeyManager, clock: FakeClock, ca_name: str) -> KdcClient:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    cert = km.pki.ca(ca_name).issue(
        public_key=private.public_key(), subject="client", names=["client"], profile="tls-client"
    )
    km.kdc.register_certificate("client", cert)
    km.kdc.grant("client", keys=["payments"])
    credential = CertificateCredential(
        principal="client", private_key=private, kdc_public_key=km.kdc.public_key
    )
    return KdcClient(credential, clock=clock, randomness=SeededRandomness("client"))


def test_a_principal_under_a_root_whose_key_is_compromised_is_refused(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    # A root has no parent to revoke its certificate: only its key's
    # compromise says that nothing it signed vouches any more.
    client = _principal(pki_km, clock, "root")
    transport = InProcessTransport(pki_km.kdc)
    client.fetch_key("payments", transport)
    pki_km.compromise(key=pki_km.pki.ca("root").key_ref)
    with pytest.raises(KeyMgmtError, match="certificate"):
        client.fetch_key("payments", transport)


def test_a_principal_two_levels_under_a_compromised_root_is_refused(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    pki_km.pki.ca("root").create_intermediate("issuing", key_type="ed25519")
    client = _principal(pki_km, clock, "issuing")
    transport = InProcessTransport(pki_km.kdc)
    client.fetch_key("payments", transport)
    pki_km.compromise(key=pki_km.pki.ca("root").key_ref)
    with pytest.raises(KeyMgmtError, match="certificate"):
        client.fetch_key("payments", transport)


def test_a_ca_key_retired_without_a_compromise_leaves_its_principals_served(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    client = _principal(pki_km, clock, "root")
    transport = InProcessTransport(pki_km.kdc)
    key_ref = pki_km.pki.ca("root").key_ref
    # e.g. superseded: what it signed stays valid
    pki_km.revocation.revoke(SubjectKind.KEY, key_ref, "superseded")
    assert client.fetch_key("payments", transport).version == 1


# -- the signed revocation list names them (reason ca-compromise) ---------------------


def _listing(km: KeyManager, clock: FakeClock) -> KdcClient:
    return KdcClient(km.kdc.register("svc"), clock=clock, randomness=SeededRandomness("svc"))


def test_a_principal_under_a_root_whose_key_is_compromised_is_on_the_revocation_list(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    _principal(pki_km, clock, "root")
    listing = _listing(pki_km, clock)
    transport = InProcessTransport(pki_km.kdc)
    assert not listing.fetch_revocation_list(transport).is_revoked("principal", "client")
    pki_km.compromise(key=pki_km.pki.ca("root").key_ref)
    (entry,) = [
        e for e in listing.fetch_revocation_list(transport).entries if e.kind == "principal"
    ]
    assert (entry.subject, entry.reason) == ("client", "ca-compromise")


def test_a_principal_two_levels_under_a_compromised_root_is_on_the_revocation_list(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    pki_km.pki.ca("root").create_intermediate("issuing", key_type="ed25519")
    _principal(pki_km, clock, "issuing")
    listing = _listing(pki_km, clock)
    transport = InProcessTransport(pki_km.kdc)
    listing.fetch_revocation_list(transport)  # cached before the compromise
    pki_km.revocation.revoke(SubjectKind.KEY, pki_km.pki.ca("root").key_ref, "key-compromise")
    assert listing.fetch_revocation_list(transport).is_revoked("principal", "client")


def test_a_receiver_refuses_a_ticket_of_a_client_under_a_compromised_ca(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    from keymgmt.errors import RevokedError
    from keymgmt.kdc import TicketReceiver

    client = _principal(pki_km, clock, "root")
    pki_km.kdc.grant("client", peers=["svc"])
    service = TicketReceiver(pki_km.kdc.register("svc"), clock=clock)
    transport = InProcessTransport(pki_km.kdc)
    ticket = client.fetch_ticket("svc", transport)
    pki_km.compromise(key=pki_km.pki.ca("root").key_ref)
    service.fetch_revocation_list(transport)
    with pytest.raises(RevokedError):
        service.accept(client.ap_request(ticket).data)


def test_a_ca_key_retired_without_a_compromise_leaves_its_principals_off_the_list(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    _principal(pki_km, clock, "root")
    listing = _listing(pki_km, clock)
    pki_km.revocation.revoke(SubjectKind.KEY, pki_km.pki.ca("root").key_ref, "superseded")
    rl = listing.fetch_revocation_list(InProcessTransport(pki_km.kdc))
    assert not rl.is_revoked("principal", "client")


def test_a_ca_key_compromise_outranks_a_milder_revocation_of_the_certificate(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    _principal(pki_km, clock, "root")
    cert = pki_km.kdc.get("client")
    assert cert.certificate_serial is not None
    pki_km.pki.ca("root").revoke(int(cert.certificate_serial, 16), "superseded")
    pki_km.compromise(key=pki_km.pki.ca("root").key_ref)
    rl = _listing(pki_km, clock).fetch_revocation_list(InProcessTransport(pki_km.kdc))
    (entry,) = [e for e in rl.entries if e.kind == "principal"]
    assert entry.reason == "ca-compromise"


def test_a_ca_key_compromise_is_looked_up_once_per_ca_and_scans_no_registry(
    pki_km: KeyManager, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(5):
        private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([index + 1] * 32))
        name = f"client{index}"
        cert = pki_km.pki.ca("root").issue(
            public_key=private.public_key(), subject=name, names=[name], profile="tls-client"
        )
        pki_km.kdc.register_certificate(name, cert)
    listing = _listing(pki_km, clock)
    transport = InProcessTransport(pki_km.kdc)
    listing.fetch_revocation_list(transport)
    asked: list[str] = []
    subjects = pki_km.kdc._certificate_subjects
    assert subjects is not None
    original = subjects.key_compromise

    def counting(ca: str) -> tuple[str, int] | None:
        asked.append(ca)
        return original(ca)

    def no_scan(*_: object) -> None:
        raise AssertionError("the registry was scanned")

    monkeypatch.setattr(subjects, "key_compromise", counting)
    monkeypatch.setattr(type(pki_km.revocation), "__iter__", no_scan)
    pki_km.revocation.revoke(SubjectKind.KEY, pki_km.pki.ca("root").key_ref, "key-compromise")
    rl = listing.fetch_revocation_list(transport)
    assert sorted(e.subject for e in rl.entries if e.kind == "principal") == [
        f"client{index}" for index in range(5)
    ]
    assert asked == ["root"]
    listing.fetch_revocation_list(transport)  # nothing changed: cached, nothing asked
    assert asked == ["root"]


def test_a_principal_under_a_compromised_ca_shows_as_revoked(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    _principal(pki_km, clock, "root")
    pki_km.compromise(key=pki_km.pki.ca("root").key_ref)
    assert pki_km.kdc.get("client").revoked
