"""Regression tests for the fifth review of the KDC (one section per finding fixed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from keymgmt import KeyManager
from keymgmt.errors import RevokedError
from keymgmt.kdc import CertificateCredential, InProcessTransport, KdcClient
from keymgmt.testing import FakeClock, SeededRandomness


@pytest.fixture
def pki_km(clock: FakeClock) -> Iterator[KeyManager]:
    km = KeyManager.in_memory(clock=clock, randomness=SeededRandomness("review5"))
    km.keys.create("payments")
    km.pki.create_root_ca("root", key_type="ed25519")
    yield km
    km.close()


def _certificate_principal(
    km: KeyManager, clock: FakeClock, ca_name: str, name: str = "client-i"
) -> tuple[KdcClient, x509.Certificate]:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(3, 35)))
    cert = km.pki.ca(ca_name).issue(
        public_key=private.public_key(), subject=name, names=[name], profile="tls-client"
    )
    km.kdc.register_certificate(name, cert)
    km.kdc.grant(name, keys=["payments"])
    credential = CertificateCredential(
        principal=name, private_key=private, kdc_public_key=km.kdc.public_key
    )
    return KdcClient(credential, clock=clock, randomness=SeededRandomness(name)), cert


# -- a compromise of a CA certificate above outranks a milder revocation below -------------


def test_an_intermediate_compromise_outranks_the_certificates_own_milder_revocation(
    pki_km: KeyManager, clock: FakeClock
) -> None:
    root = pki_km.pki.ca("root")
    issuing = root.create_intermediate("issuing", key_type="ed25519")
    client, cert = _certificate_principal(pki_km, clock, "issuing")
    issuing.revoke(cert.serial_number, "superseded")
    root.revoke(issuing.certificate.serial_number, "ca-compromise")
    listing = KdcClient(pki_km.kdc.register("svc"), clock=clock)
    rl = listing.fetch_revocation_list(InProcessTransport(pki_km.kdc))
    listed = {(e.kind, e.subject): e.reason for e in rl.entries}
    assert listed[("principal", "client-i")] == "ca-compromise"
    with pytest.raises(RevokedError):
        client.fetch_key("payments", InProcessTransport(pki_km.kdc))
    (entry,) = [
        e for e in pki_km.audit.entries() if e.details.get("reason") == "certificate-revoked"
    ]
    assert entry.details["revocation_reason"] == "ca-compromise"
