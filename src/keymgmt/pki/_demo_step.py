"""The PKI step of ``keymgmt demo``: a CA hierarchy, issuance, revocation everywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keymgmt.errors import CertificateRevokedError, CertificateVerificationError
from keymgmt.pki._ocsp import build_ocsp_request, check_ocsp_response
from keymgmt.pki._verify import Purpose

if TYPE_CHECKING:
    from keymgmt.cli._demo import Demo

__all__ = ["step_pki"]


def step_pki(d: Demo) -> None:
    """Root and intermediate CA, a CSR that asks to be a CA, verify, revoke, CRL, OCSP."""
    km = d.km
    root = km.pki.create_root_ca("demo-root")
    issuing = root.create_intermediate("demo-issuing", permitted_names=["example.com"])
    d.say(
        f"Root CA {root.name!r} and intermediate {issuing.name!r} (P-256); their private keys "
        f"are managed key pairs ({issuing.key_ref}), sealed in the store."
    )
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("www.example.com")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert = issuing.issue(csr, profile="tls-server")
    is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    if is_ca:
        raise AssertionError("demo: a CSR made itself a CA")
    d.proves("a CSR asking for CA:TRUE got a TLS server certificate with CA:FALSE")
    path = km.pki.verify(cert, purpose=Purpose.TLS_SERVER, name="www.example.com")
    d.proves(
        f"the chain verifies ({len(path.chain)} certificates, engine {path.engine}, "
        f"revocation from the {path.revocation[0].value} for each)"
    )
    d.expect_failure(
        "the same certificate for another host name",
        lambda: km.pki.verify(cert, purpose=Purpose.TLS_SERVER, name="evil.example.org"),
        CertificateVerificationError,
    )
    issuing.revoke(cert.serial_number, "key-compromise")
    d.expect_failure(
        "the certificate after its key was reported compromised",
        lambda: km.pki.verify(cert, purpose=Purpose.TLS_SERVER, name="www.example.com"),
        CertificateRevokedError,
    )
    crl = issuing.crl()
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        raise AssertionError("demo: the CRL misses the revoked certificate")
    d.proves(f"CRL number {number} lists it with reason keyCompromise (built in bulk, on demand)")
    nonce = b"demo-nonce-01234"
    request = build_ocsp_request(cert, issuing.certificate, nonce=nonce)
    status = check_ocsp_response(
        issuing.ocsp_respond(request),
        cert=cert,
        issuer=issuing.certificate,
        at=km.clock.now(),
        nonce=nonce,
    )
    reason = status.reason.value if status.reason else "-"
    d.proves(f"the OCSP responder says {status.status.value} ({reason}), nonce echoed")
    ed_root = km.pki.create_root_ca("demo-ed25519", key_type="ed25519")
    ed_cert = ed_root.issue(public_key=key.public_key(), subject="ed-client", profile="tls-client")
    ed_path = km.pki.verify(ed_cert, purpose=Purpose.TLS_CLIENT, name="ed-client")
    d.proves(f"an Ed25519 CA's certificate verifies too (engine {ed_path.engine})")
