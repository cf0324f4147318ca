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
