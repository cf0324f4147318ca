"""Sixth PKI review: OCSP for what a stolen CA key signs, issuance racing a CA state change."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keymgmt import KeyManager
from keymgmt.errors import KeyStateError, RevokedError
from keymgmt.pki import (
    OCSP_SIGNING,
    CertificateAuthority,
    CertStatus,
    IssueRequest,
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


# -- issuance: the CA's state changed by another process just before the commit ------


@pytest.fixture
def two_processes(
    open_sqlite_km: Callable[[], KeyManager],
) -> Iterator[tuple[KeyManager, KeyManager]]:
    """Two managers on one SQLite file (each another process's view), a root and an intermediate."""
    with open_sqlite_km() as first:
        first.pki.create_root_ca("root")
        first.pki.ca("root").create_intermediate("issuing")
        with open_sqlite_km() as second:
            yield first, second


def _p256() -> ec.EllipticCurvePublicKey:
    return ec.generate_private_key(ec.SECP256R1()).public_key()


def _race(
    monkeypatch: pytest.MonkeyPatch, ca: CertificateAuthority, change: Callable[[], object]
) -> list[int]:
    """Run ``change`` (another process's) right after ``ca``'s first state check passes."""
    original = ca._key
    checks: list[int] = []

    def checked_then_changed() -> Any:
        key = original()
        checks.append(1)
        if len(checks) == 1:
            change()
        return key

    monkeypatch.setattr(ca, "_key", checked_then_changed)
    return checks


def _issue(ca: CertificateAuthority) -> x509.Certificate:
    return ca.issue(public_key=_p256(), subject="CN=k", names=["k.example"])


def test_an_issuance_whose_ca_key_another_process_suspended_meanwhile_is_refused(
    two_processes: tuple[KeyManager, KeyManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer, other = two_processes
    ca = issuer.pki.ca("issuing")
    first = _issue(ca)  # warms the CA's caches
    name, _, version = ca.key_ref.partition("#")
    _race(monkeypatch, ca, lambda: other.keys.suspend(name, int(version)))
    with pytest.raises(KeyStateError, match="suspended"):
        _issue(ca)
    assert [c.serial for c in ca.issued()] == [first.serial_number]


def test_a_batch_whose_ca_key_another_process_retired_meanwhile_is_refused(
    two_processes: tuple[KeyManager, KeyManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer, other = two_processes
    ca = issuer.pki.ca("issuing")
    first = _issue(ca)
    name, _, version = ca.key_ref.partition("#")
    _race(monkeypatch, ca, lambda: other.keys.revoke(name, int(version), reason="superseded"))
    requests = [IssueRequest(public_key=_p256(), subject="CN=b", names=["b.example"])]
    with pytest.raises(RevokedError):
        ca.issue_many(requests)
    assert [c.serial for c in ca.issued()] == [first.serial_number]


def test_an_issuance_whose_ca_certificate_another_process_revoked_meanwhile_is_refused(
    two_processes: tuple[KeyManager, KeyManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer, other = two_processes
    ca = issuer.pki.ca("issuing")
    first = _issue(ca)
    serial = ca.certificate.serial_number
    _race(monkeypatch, ca, lambda: other.pki.ca("root").revoke(serial, "cessation-of-operation"))
    with pytest.raises(RevokedError, match="is revoked"):
        _issue(ca)
    assert [c.serial for c in ca.issued()] == [first.serial_number]


def test_an_issuance_racing_an_unrelated_write_still_commits(
    two_processes: tuple[KeyManager, KeyManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer, other = two_processes
    ca = issuer.pki.ca("issuing")
    _issue(ca)
    checks = _race(monkeypatch, ca, lambda: other.keys.create("unrelated"))
    assert _issue(ca).serial_number in {c.serial for c in ca.issued()}
    assert len(checks) >= 1
