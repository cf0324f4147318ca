"""Sixth PKI review: OCSP for what a stolen CA key signs, issuance racing a CA state change."""

from __future__ import annotations

import datetime as _dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keymgmt import KeyManager
from keymgmt.pki import (
    OCSP_SIGNING,
    CertificateAuthority,
    CertStatus,
    OCSPResponder,
    build_ocsp_request,
    check_ocsp_response,
)
from keymgmt.revocation import RevocationReason

# -- OCSP answers ca-compromise for a serial the CA never recorded -------------------


def _forged(root: CertificateAuthority, now: _dt.datetime) -> x509.Certificate:
    """What a thief of the root's key makes: validly signed, never recorded."""
    stolen = root._key()
    return (
        x509.CertificateBuilder()
        .issuer_name(root.certificate.subject)
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil")]))
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(stolen, hashes.SHA256())  # type: ignore[arg-type]
    )


def _delegated_responder(ca: CertificateAuthority) -> OCSPResponder:
    responder_key = ec.generate_private_key(ec.SECP256R1())
    responder_cert = ca.issue(
        public_key=responder_key.public_key(), subject="OCSP responder", profile=OCSP_SIGNING
    )
    return ca.ocsp_responder(responder_cert=responder_cert, responder_key=responder_key)


def _status(
    responder: OCSPResponder, ca: CertificateAuthority, cert: x509.Certificate, km: KeyManager
) -> tuple[CertStatus, RevocationReason | None]:
    at = km.clock.now()
    response = responder.respond(build_ocsp_request(cert, ca.certificate), at=at)
    status = check_ocsp_response(response, cert=cert, issuer=ca.certificate, at=at)
    return status.status, status.reason


def test_ocsp_answers_unknown_for_an_unrecorded_serial_while_the_ca_key_is_sound(
    km: KeyManager, root: CertificateAuthority
) -> None:
    responder = _delegated_responder(root)
    forged = _forged(root, km.clock.now())
    assert _status(responder, root, forged, km) == (CertStatus.UNKNOWN, None)


def test_ocsp_answers_ca_compromise_for_a_forged_serial_once_the_ca_key_is_compromised(
    km: KeyManager, root: CertificateAuthority
) -> None:
    responder = _delegated_responder(root)
    forged = _forged(root, km.clock.now())
    km.compromise(key=root.key_ref)
    assert _status(responder, root, forged, km) == (
        CertStatus.REVOKED,
        RevocationReason.CA_COMPROMISE,
    )
