"""Revocation by serial and CRLs: numbers, reasons, caching, deltas, bulk build."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from keymgmt import KeyManager
from keymgmt.errors import InvalidArgumentError, NotFoundError
from keymgmt.pki import CertificateAuthority, CRLEntry, CRLIndex, build_crl, load_crl
from keymgmt.revocation import RevocationReason, SubjectKind
from keymgmt.testing import FakeClock

CSRMaker = Callable[..., x509.CertificateSigningRequest]


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_revoke_records_in_registry_with_issuer_and_serial(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "key-compromise")
    found = km.revocation.get(SubjectKind.CERTIFICATE, f"issuing:{cert.serial_number:x}")
    assert found is not None
    assert found.reason is RevocationReason.KEY_COMPROMISE


def test_revoke_accepts_hex_serial_and_invalidity_date(
    clock: FakeClock, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    when = clock.now() - _dt.timedelta(days=1)
    revocation = issuing.revoke(
        f"{cert.serial_number:X}", RevocationReason.KEY_COMPROMISE, invalidity_date=when
    )
    assert revocation.invalidity_date == when


def test_expired_certificate_can_be_revoked(
    clock: FakeClock, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr(), validity=_dt.timedelta(days=1))
    clock.advance(days=30)
    issuing.revoke(cert.serial_number, "privilege-withdrawn")
    assert issuing.get(cert.serial_number).revocation is not None


def test_revoking_unknown_serial_is_not_found(issuing: CertificateAuthority) -> None:
    with pytest.raises(NotFoundError, match="issued no certificate 2a"):
        issuing.revoke(42)


def test_revoking_with_unknown_reason_is_refused(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    with pytest.raises(InvalidArgumentError, match="unknown revocation reason"):
        issuing.revoke(cert.serial_number, "bored")


def test_crl_lists_revoked_with_reasons_and_is_signed(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    a = issuing.issue(make_csr())
    # Its own key: a key-compromise revokes every certificate of the key.
    other_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    b = issuing.issue(public_key=other_key, subject="b", names=["b.example.com"])
    issuing.revoke(a.serial_number, "key-compromise")
    issuing.revoke(b.serial_number)
    crl = issuing.crl()
    assert crl.is_signature_valid(issuing.certificate.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(a.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.key_compromise
    )
    plain = crl.get_revoked_certificate_by_serial_number(b.serial_number)
    assert plain is not None
    assert len(plain.extensions) == 0  # unspecified is omitted (RFC 5280 5.3.1)


def test_unchanged_crl_is_not_resigned_until_due(
    clock: FakeClock, issuing: CertificateAuthority
) -> None:
    first = issuing.crl(next_update=_dt.timedelta(hours=10))
    clock.advance(hours=1)
    assert _number(issuing.crl(next_update=_dt.timedelta(hours=10))) == _number(first)
    clock.advance(hours=5)
    assert _number(issuing.crl(next_update=_dt.timedelta(hours=10))) == _number(first) + 1


def test_revocation_makes_next_crl_new_with_higher_number(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    first = issuing.crl()
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number)
    second = issuing.crl()
    assert _number(second) > _number(first)
    assert second.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


def test_crl_has_this_and_next_update(clock: FakeClock, issuing: CertificateAuthority) -> None:
    crl = issuing.crl(next_update=_dt.timedelta(hours=6))
    assert crl.last_update_utc == clock.now()
    assert crl.next_update_utc == clock.now() + _dt.timedelta(hours=6)


def test_delta_crl_lists_only_new_revocations_against_base(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    old = issuing.issue(make_csr())
    issuing.revoke(old.serial_number)
    base = issuing.crl()
    new = issuing.issue(make_csr())
    issuing.revoke(new.serial_number, "superseded")
    delta = issuing.crl(delta=True)
    indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value
    assert indicator.crl_number == _number(base)
    assert [r.serial_number for r in delta] == [new.serial_number]
    assert _number(delta) > _number(base)


def test_delta_crl_needs_a_base(issuing: CertificateAuthority) -> None:
    with pytest.raises(InvalidArgumentError, match="complete CRL first"):
        issuing.crl(delta=True)


def test_crl_with_thousands_of_entries_builds_in_bulk(issuing: CertificateAuthority) -> None:
    now = _dt.datetime(2030, 1, 1, tzinfo=_dt.UTC)
    entries = [
        CRLEntry(
            i + 1, now, RevocationReason.KEY_COMPROMISE if i % 2 else RevocationReason.UNSPECIFIED
        )
        for i in range(5000)
    ]
    crl = build_crl(
        issuer=issuing.certificate,
        key=issuing._key(),
        entries=entries,
        number=7,
        this_update=now,
        next_update=now + _dt.timedelta(days=1),
    )
    index = CRLIndex(load_crl(crl.public_bytes(Encoding.DER)))
    assert len(index.entries) == 5000
    assert index.entries[2].reason is RevocationReason.KEY_COMPROMISE
    assert index.number == 7


def test_release_hold_removes_entry_from_next_crl(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "certificate-hold")
    assert issuing.crl().get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    issuing.release_hold(cert.serial_number)
    assert issuing.crl().get_revoked_certificate_by_serial_number(cert.serial_number) is None
