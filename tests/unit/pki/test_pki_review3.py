"""Regression tests for the third PKI review (issue #5): OCSP, CRLs, export, CLI."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from keymgmt.errors import CertificateRevokedError
from keymgmt.pki import TLS_CLIENT, CertificateAuthority, build_ocsp_request
from keymgmt.revocation import RevocationReason
from keymgmt.testing import FakeClock, in_memory_manager


def _other_key() -> ec.EllipticCurvePublicKey:
    return ec.generate_private_key(ec.SECP256R1()).public_key()


def _client(ca: CertificateAuthority, subject: str = "held") -> x509.Certificate:
    return ca.issue(public_key=_other_key(), subject=subject, profile=TLS_CLIENT)


# -- a delta CRL older than the complete CRL must not be combined with it -----------


def _hold_release_hold(
    clock: FakeClock, root: CertificateAuthority, cert: x509.Certificate
) -> tuple[
    x509.CertificateRevocationList,
    x509.CertificateRevocationList,
    x509.CertificateRevocationList,
]:
    """CRL 1 (on hold), delta 2 (hold released), then on hold again."""
    root.revoke(cert.serial_number, "certificate-hold")
    complete = root.crl()
    clock.advance(60)
    root.release_hold(cert.serial_number)
    released = root.crl(delta=True)
    clock.advance(60)
    root.revoke(cert.serial_number, "certificate-hold")
    return complete, released, root.crl(delta=True)


def test_an_older_delta_crl_does_not_lift_a_hold_on_a_newer_complete_crl(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = _client(root)
    _, released, _ = _hold_release_hold(clock, root, cert)
    newer = root.crl(force=True)  # number 4, lists the hold again; the delta is number 2
    relying_party = in_memory_manager(clock=clock)
    with pytest.raises(CertificateRevokedError) as info:
        relying_party.pki.verify(cert, trust_anchors=[root.certificate], crls=[newer, released])
    assert info.value.reason is RevocationReason.CERTIFICATE_HOLD


@pytest.mark.parametrize("order", ["oldest-first", "newest-first"])
def test_only_the_newest_delta_crl_counts_whatever_the_order(
    clock: FakeClock, root: CertificateAuthority, order: str
) -> None:
    cert = _client(root)
    complete, released, held_again = _hold_release_hold(clock, root, cert)
    deltas = [released, held_again] if order == "oldest-first" else [held_again, released]
    relying_party = in_memory_manager(clock=clock)
    with pytest.raises(CertificateRevokedError):
        relying_party.pki.verify(cert, trust_anchors=[root.certificate], crls=[complete, *deltas])


def test_a_newer_delta_crl_still_lifts_a_released_hold(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = _client(root)
    root.revoke(cert.serial_number, "certificate-hold")
    complete = root.crl()
    clock.advance(60)
    root.release_hold(cert.serial_number)
    released = root.crl(delta=True)
    relying_party = in_memory_manager(clock=clock)
    path = relying_party.pki.verify(
        cert, trust_anchors=[root.certificate], crls=[released, complete]
    )
    assert path.chain[0] == cert


# -- OCSP: a 'good' response does not outvote a 'revoked' one -------------------------


@pytest.mark.parametrize("order", ["good-first", "revoked-first"])
def test_a_good_ocsp_response_does_not_hide_a_later_revocation(
    clock: FakeClock, root: CertificateAuthority, order: str
) -> None:
    cert = _client(root, "leaf")
    good = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    clock.advance(60)
    root.revoke(cert.serial_number, "key-compromise")
    revoked = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    responses = [good, revoked] if order == "good-first" else [revoked, good]
    relying_party = in_memory_manager(clock=clock)
    with pytest.raises(CertificateRevokedError) as info:
        relying_party.pki.verify(cert, trust_anchors=[root.certificate], ocsp_responses=responses)
    assert info.value.reason is RevocationReason.KEY_COMPROMISE


def test_a_newer_good_ocsp_response_lifts_an_older_hold(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = _client(root, "leaf")
    root.revoke(cert.serial_number, "certificate-hold")
    held = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    clock.advance(60)
    root.release_hold(cert.serial_number)
    good = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    relying_party = in_memory_manager(clock=clock)
    path = relying_party.pki.verify(
        cert, trust_anchors=[root.certificate], ocsp_responses=[held, good]
    )
    assert path.chain[0] == cert


def test_a_good_ocsp_response_older_than_a_hold_does_not_lift_it(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = _client(root, "leaf")
    good = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    clock.advance(60)
    root.revoke(cert.serial_number, "certificate-hold")
    held = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    relying_party = in_memory_manager(clock=clock)
    with pytest.raises(CertificateRevokedError):
        relying_party.pki.verify(
            cert, trust_anchors=[root.certificate], ocsp_responses=[good, held]
        )
