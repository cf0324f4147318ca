"""The KDC's ``keymgmt demo`` step: the seed's system end to end.

Client A gets a key from the key server and encrypts; Client B gets a
certificate and verifies it; A and B share a session key through a ticket;
then a key and a certificate are compromised and every part refuses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keymgmt.errors import (
    AccessDeniedError,
    CertificateRevokedError,
    KeyStateError,
    ReplayError,
    RevokedError,
)
from keymgmt.kdc._client import KdcClient, TicketReceiver
from keymgmt.kdc._events import CertificateCredential, SymmetricCredential
from keymgmt.kdc._transport import InProcessTransport

if TYPE_CHECKING:
    from keymgmt.cli._demo import Demo

__all__ = ["step_kdc"]

_KEY = "kdc-demo"


def step_kdc(d: Demo) -> None:
    """Key server, Client A, Client B, tickets, compromise: the seed end to end."""
    km = d.km
    km.keys.create(_KEY)
    transport = InProcessTransport(km.kdc)

    # Client A: a symmetric principal, its credential in a 0600 file.
    cred_file = d.workdir / "client-a.cred"
    km.kdc.register("client-a", write_to=cred_file)
    km.kdc.grant("client-a", keys=[_KEY])
    d.say(f"Client A is registered with the key server; its credential is in {cred_file.name}.")
    client_a = KdcClient(SymmetricCredential.from_file(cred_file), clock=km.clock)
    request = client_a.key_request(_KEY)
    granted = client_a.receive_key_reply(transport(request))
    nonce = bytes(12)
    message = AESGCM(granted.material.reveal()).encrypt(nonce, b"quarterly numbers", b"demo")
    d.proves(
        f"Client A got {granted.key_id} (authenticated request, nonce-bound reply, "
        f"usable until {granted.expires_at:%H:%M}) and encrypted with it"
    )
    stored = km.encrypt(_KEY, b"ledger", {"demo": "kdc"})
    d.expect_failure(
        "the same request replayed",
        lambda: client_a.receive_key_reply(transport(request)),
        ReplayError,
    )
    d.expect_failure(
        "a key the policy does not grant",
        lambda: client_a.fetch_key("payroll", transport),
        AccessDeniedError,
    )

    # Client B: a certificate from the PKI, verified, then registered.
    ca = km.pki.create_root_ca("kdc-demo-root", key_type="ed25519")
    b_key = ed25519.Ed25519PrivateKey.generate()
    cert = ca.issue(
        public_key=b_key.public_key(), subject="client-b", names=["client-b"], profile="tls-client"
    )
    km.pki.verify(cert, purpose="tls-client", name="client-b")
    km.kdc.register_certificate("client-b", cert)
    km.kdc.grant("client-b", keys=[_KEY], peers=["client-a"])
    d.proves(f"Client B got certificate {cert.serial_number:x} from the CA and it verifies")
    client_b = KdcClient(
        CertificateCredential(
            principal="client-b", private_key=b_key, kdc_public_key=km.kdc.public_key
        ),
        clock=km.clock,
    )
    b_granted = client_b.fetch_key(_KEY, transport)
    plain = AESGCM(b_granted.material.reveal()).decrypt(nonce, message, b"demo")
    d.proves(f"Client B (signed request, forward-secret reply) decrypted A's message: {plain!r}")

    # A and B share a session key: B gets a ticket for A and presents it.
    service_a = TicketReceiver(SymmetricCredential.from_file(cred_file), clock=km.clock)
    ticket = client_b.fetch_ticket("client-a", transport)
    ap = client_b.ap_request(ticket)
    session = service_a.accept(ap.data)
    client_b.receive_ap_reply(ap, session.reply)
    assert session.session_key == ticket.session_key
    d.proves("A and B hold the same session key (ticket + authenticator, mutual authentication)")
    d.expect_failure("the authenticator replayed", lambda: service_a.accept(ap.data), ReplayError)

    # Compromise: the key version, then B's certificate.
    client_a.fetch_revocation_list(transport)
    client_a.check_grant(granted)
    report = km.compromise(key=granted.key_id)
    d.say(
        f"{granted.key_id} is compromised: revoked, rotated to {', '.join(report.rotated)}; "
        f"it had been handed to {', '.join(report.recipients)}."
    )
    client_a.fetch_revocation_list(transport)
    d.expect_failure(
        "Client A using its old grant (signed revocation list)",
        lambda: client_a.check_grant(granted),
        RevokedError,
    )
    d.expect_failure(
        f"the key store decrypting under {granted.key_id}",
        lambda: km.decrypt(stored, {"demo": "kdc"}),
        KeyStateError,
    )
    fresh = client_a.fetch_key(_KEY, transport)
    d.proves(f"the key server now hands out {fresh.key_id} only")
    cert_report = km.compromise(certificate=cert)
    d.say(f"Client B's certificate is compromised; new CRL: {cert_report.crl}.")
    d.expect_failure(
        "verifying B's certificate",
        lambda: km.pki.verify(cert, purpose="tls-client"),
        CertificateRevokedError,
    )
    d.expect_failure(
        "Client B asking the key server",
        lambda: client_b.fetch_key(_KEY, transport),
        RevokedError,
    )
    audit = km.audit.verify()
    d.proves(f"every grant, refusal and compromise is in the audit chain ({audit.entries} entries)")
