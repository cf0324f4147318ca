"""OCSP: the sans-IO responder and the client-side check."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from keymgmt import KeyManager
from keymgmt.errors import CertificateVerificationError, MalformedInputError
from keymgmt.pki import (
    OCSP_SIGNING,
    CertificateAuthority,
    CertStatus,
    OCSPResponder,
    build_ocsp_request,
    check_ocsp_response,
)
from keymgmt.revocation import RevocationReason
from keymgmt.testing import FakeClock

CSRMaker = Callable[..., x509.CertificateSigningRequest]


@pytest.fixture
def leaf(issuing: CertificateAuthority, make_csr: CSRMaker) -> x509.Certificate:
    return issuing.issue(make_csr())


def _ask(
    ca: CertificateAuthority, cert: x509.Certificate, clock: FakeClock, nonce: bytes | None = None
) -> CertStatus:
    response = ca.ocsp_respond(build_ocsp_request(cert, ca.certificate, nonce=nonce))
    return check_ocsp_response(
        response, cert=cert, issuer=ca.certificate, at=clock.now(), nonce=nonce
    ).status


def test_issued_certificate_is_good(
    clock: FakeClock, issuing: CertificateAuthority, leaf: x509.Certificate
) -> None:
    assert _ask(issuing, leaf, clock) is CertStatus.GOOD


def test_revoked_certificate_is_revoked_with_reason_and_time(
    clock: FakeClock, issuing: CertificateAuthority, leaf: x509.Certificate
) -> None:
    issuing.revoke(leaf.serial_number, "affiliation-changed")
    response = issuing.ocsp_respond(build_ocsp_request(leaf, issuing.certificate))
    status = check_ocsp_response(response, cert=leaf, issuer=issuing.certificate, at=clock.now())
    assert status.status is CertStatus.REVOKED
    assert status.reason is RevocationReason.AFFILIATION_CHANGED
    assert status.revoked_at == clock.now()


def test_certificate_not_issued_here_is_unknown(
    clock: FakeClock, root: CertificateAuthority, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    other = root.create_intermediate("other")
    foreign = other.issue(make_csr())
    # Ask issuing about a serial it never issued, with issuing's own issuer hashes.
    fake = x509.CertificateBuilder(
        issuer_name=issuing.certificate.subject,
        subject_name=foreign.subject,
        public_key=foreign.public_key(),
        serial_number=foreign.serial_number,
        not_valid_before=foreign.not_valid_before_utc,
        not_valid_after=foreign.not_valid_after_utc,
    ).sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    response = issuing.ocsp_respond(build_ocsp_request(fake, issuing.certificate))
    parsed = ocsp.load_der_ocsp_response(response)
    assert parsed.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def test_nonce_is_echoed(
    clock: FakeClock, issuing: CertificateAuthority, leaf: x509.Certificate
) -> None:
    assert _ask(issuing, leaf, clock, nonce=b"0123456789abcdef") is CertStatus.GOOD


def test_response_without_our_nonce_is_refused(
    clock: FakeClock, issuing: CertificateAuthority, leaf: x509.Certificate
) -> None:
    response = issuing.ocsp_respond(build_ocsp_request(leaf, issuing.certificate))
    with pytest.raises(CertificateVerificationError, match="nonce") as info:
        check_ocsp_response(
            response, cert=leaf, issuer=issuing.certificate, at=clock.now(), nonce=b"x" * 16
        )
    assert info.value.reason == "ocsp-nonce"  # type: ignore[attr-defined]


def test_stale_response_is_refused(
    clock: FakeClock, issuing: CertificateAuthority, leaf: x509.Certificate
) -> None:
    response = issuing.ocsp_respond(build_ocsp_request(leaf, issuing.certificate))
    with pytest.raises(CertificateVerificationError, match="stale"):
        check_ocsp_response(
            response,
            cert=leaf,
            issuer=issuing.certificate,
            at=clock.now() + _dt.timedelta(days=2),
        )


def test_response_signed_by_another_ca_is_refused(
    clock: FakeClock,
    root: CertificateAuthority,
    issuing: CertificateAuthority,
    leaf: x509.Certificate,
) -> None:
    request = build_ocsp_request(leaf, issuing.certificate)
    # The sans-IO responder itself: issuing.ocsp_responder() refuses such a responder.
    forged = OCSPResponder(
        issuer=issuing.certificate,
        key=root._key(),
        lookup=lambda serial: (CertStatus.GOOD, None),
        responder_cert=root.certificate,
    ).respond(request, at=clock.now())
    with pytest.raises(CertificateVerificationError) as info:
        check_ocsp_response(forged, cert=leaf, issuer=issuing.certificate, at=clock.now())
    assert info.value.reason == "ocsp-bad-signature"  # type: ignore[attr-defined]


def test_delegated_responder_is_accepted(
    clock: FakeClock, issuing: CertificateAuthority, leaf: x509.Certificate
) -> None:
    responder_key = ec.generate_private_key(ec.SECP256R1())
    responder_cert = issuing.issue(
        public_key=responder_key.public_key(), subject="OCSP responder", profile=OCSP_SIGNING
    )
    responder = issuing.ocsp_responder(responder_cert=responder_cert, responder_key=responder_key)
    response = responder.respond(build_ocsp_request(leaf, issuing.certificate), at=clock.now())
    status = check_ocsp_response(response, cert=leaf, issuer=issuing.certificate, at=clock.now())
    assert status.status is CertStatus.GOOD


def test_ocsp_signing_certificates_carry_ocsp_nocheck(issuing: CertificateAuthority) -> None:
    responder_key = ec.generate_private_key(ec.SECP256R1())
    cert = issuing.issue(
        public_key=responder_key.public_key(), subject="OCSP responder", profile=OCSP_SIGNING
    )
    nocheck = cert.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert not nocheck.critical


def test_a_delegated_responder_without_ocsp_nocheck_is_not_trusted(
    clock: FakeClock, issuing: CertificateAuthority, leaf: x509.Certificate
) -> None:
    # Its own revocation status is nothing the client can learn, so a
    # responder certificate without id-pkix-ocsp-nocheck fails closed.
    responder_key = ec.generate_private_key(ec.SECP256R1())
    now = clock.now()
    builder = x509.CertificateBuilder(
        issuer_name=issuing.certificate.subject,
        subject_name=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "responder")]),
        public_key=responder_key.public_key(),
        serial_number=x509.random_serial_number(),
        not_valid_before=now - _dt.timedelta(minutes=1),
        not_valid_after=now + _dt.timedelta(days=1),
        extensions=[
            x509.Extension(
                x509.ExtendedKeyUsage.oid,
                False,
                x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.OCSP_SIGNING]),
            )
        ],
    )
    responder_cert = builder.sign(issuing._key(), hashes.SHA256())  # type: ignore[arg-type]
    responder = issuing.ocsp_responder(responder_cert=responder_cert, responder_key=responder_key)
    response = responder.respond(build_ocsp_request(leaf, issuing.certificate), at=now)
    with pytest.raises(CertificateVerificationError) as info:
        check_ocsp_response(response, cert=leaf, issuer=issuing.certificate, at=now)
    assert info.value.reason == "ocsp-bad-signature"  # type: ignore[attr-defined]


def test_malformed_request_gets_malformed_request_response(
    issuing: CertificateAuthority,
) -> None:
    response = issuing.ocsp_respond(b"\x30\x03\x02\x01")
    assert ocsp.load_der_ocsp_response(response).response_status is (
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )


def test_request_for_another_issuer_is_unauthorized(
    root: CertificateAuthority, issuing: CertificateAuthority, leaf: x509.Certificate
) -> None:
    response = root.ocsp_respond(build_ocsp_request(leaf, issuing.certificate))
    assert ocsp.load_der_ocsp_response(response).response_status is (
        ocsp.OCSPResponseStatus.UNAUTHORIZED
    )


def test_unsuccessful_response_is_refused_by_client(
    clock: FakeClock, issuing: CertificateAuthority, leaf: x509.Certificate
) -> None:
    response = issuing.ocsp_respond(b"junk")
    with pytest.raises(CertificateVerificationError, match="malformed_request"):
        check_ocsp_response(response, cert=leaf, issuer=issuing.certificate, at=clock.now())


def test_garbage_response_is_malformed(
    clock: FakeClock, issuing: CertificateAuthority, leaf: x509.Certificate
) -> None:
    with pytest.raises(MalformedInputError, match="malformed OCSP response"):
        check_ocsp_response(b"\x00\x01", cert=leaf, issuer=issuing.certificate, at=clock.now())


def test_responder_is_sans_io_and_answers_at_given_time(
    km: KeyManager, issuing: CertificateAuthority, leaf: x509.Certificate
) -> None:
    at = _dt.datetime(2030, 6, 1, tzinfo=_dt.UTC)
    response = issuing.ocsp_responder().respond(
        build_ocsp_request(leaf, issuing.certificate), at=at
    )
    assert ocsp.load_der_ocsp_response(response).this_update_utc == at
