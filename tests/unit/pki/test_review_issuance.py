"""Regression tests for the issuance-side findings of the PKI security review (issue #5)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from keymgmt import KeyManager
from keymgmt.errors import CertificateRevokedError, RevokedError
from keymgmt.pki import CertificateAuthority, IssueRequest
from keymgmt.pki._ca import CA_KIND
from keymgmt.pki._keyindex import KEY_INDEX_KIND
from keymgmt.revocation import RevocationReason
from keymgmt.testing import FakeClock, in_memory_manager

CSRMaker = Callable[..., x509.CertificateSigningRequest]


def _other_key() -> ec.EllipticCurvePublicKey:
    return ec.generate_private_key(ec.SECP256R1()).public_key()


# -- finding 1: a key revoked for compromise is never certified again ---------------


def test_renew_refuses_a_leaf_revoked_for_key_compromise(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "key-compromise")
    message = r"is revoked \(key-compromise\): its key is compromised"
    with pytest.raises(RevokedError, match=message):
        issuing.renew(cert.serial_number)


def test_renew_refusal_names_the_reason_and_serial(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "ca-compromise")
    with pytest.raises(RevokedError) as info:
        issuing.renew(cert.serial_number)
    assert info.value.reason is RevocationReason.CA_COMPROMISE  # type: ignore[attr-defined]
    assert info.value.serial == cert.serial_number  # type: ignore[attr-defined]


def test_renew_refuses_a_certificate_on_hold_until_it_is_released(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "certificate-hold")
    with pytest.raises(RevokedError, match=r"\(certificate-hold\): it is on hold"):
        issuing.renew(cert.serial_number)
    issuing.release_hold(cert.serial_number)
    assert issuing.renew(cert.serial_number).public_key() == cert.public_key()


def test_renew_leaves_nothing_issued_when_refused(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "key-compromise")
    with pytest.raises(RevokedError):
        issuing.renew(cert.serial_number)
    assert [i.serial for i in issuing.issued()] == [cert.serial_number]


def test_issue_refuses_a_new_csr_for_a_key_revoked_for_compromise(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "key-compromise")
    with pytest.raises(RevokedError, match="revoked this public key for key-compromise"):
        issuing.issue(make_csr(cn="again", names=("again.example.com",)))


def test_issue_for_a_public_key_revoked_for_compromise_is_refused(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "key-compromise")
    with pytest.raises(RevokedError):
        issuing.issue(public_key=cert.public_key(), subject="www", names=["www.example.com"])  # type: ignore[arg-type]


def test_issue_many_names_the_request_with_a_compromised_key(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "key-compromise")
    batch = [IssueRequest(public_key=_other_key(), subject="ok"), IssueRequest(csr=make_csr())]
    with pytest.raises(RevokedError, match=r"^request 1: ") as info:
        issuing.issue_many(batch)
    assert info.value.request_index == 1  # type: ignore[attr-defined]
    assert len(issuing.issued()) == 1


def test_other_revocation_reasons_do_not_block_the_key(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "affiliation-changed")
    assert issuing.issue(make_csr()).public_key() == cert.public_key()


def test_the_compromised_key_mark_belongs_to_the_ca_that_revoked(
    root: CertificateAuthority, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    other = root.create_intermediate("other-issuing")
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "key-compromise")
    assert other.issue(make_csr()).public_key() == cert.public_key()


def test_renew_refuses_a_sub_ca_revoked_for_key_compromise(
    root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    serial = issuing.certificate.serial_number
    root.revoke(serial, "key-compromise")
    with pytest.raises(RevokedError, match=r"\(key-compromise\)"):
        root.renew(serial)


def test_compromise_mark_is_written_with_the_revocation(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    before = {name for name, _ in km._store.list_json(KEY_INDEX_KIND)}
    issuing.revoke(cert.serial_number, "key-compromise")
    marks = [
        record["compromised"]
        for name, record in km._store.list_json(KEY_INDEX_KIND)
        if name.startswith("issuing:")
    ]
    assert before  # the issuance indexed the key
    assert [m["reason"] for m in marks if m] == ["key-compromise"]


# -- finding 2: revoking a key's certificate revokes the key's other ones ------------


def test_revoking_a_renewed_sub_ca_for_compromise_revokes_its_earlier_certificate(
    clock: FakeClock, root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    old = issuing.certificate
    root.renew(old.serial_number)
    current = root.get(root.issued()[-1].serial)
    clock.advance(60)
    root.revoke(current.serial, "key-compromise")
    earlier = root.get(old.serial_number).revocation
    assert earlier is not None
    assert earlier.reason is RevocationReason.KEY_COMPROMISE
    crl_serials = {entry.serial_number for entry in root.crl()}
    assert {old.serial_number, current.serial} <= crl_serials


def test_earlier_sub_ca_certificate_fails_verification_after_compromise(
    km: KeyManager,
    clock: FakeClock,
    root: CertificateAuthority,
    issuing: CertificateAuthority,
    make_csr: CSRMaker,
) -> None:
    old = issuing.certificate
    leaf = issuing.issue(make_csr())
    leaf_crl = issuing.crl()
    new = root.renew(old.serial_number)
    clock.advance(60)
    root.revoke(new.serial_number, "key-compromise")
    relying_party = in_memory_manager(clock=clock)  # knows only the root and the old sub-CA
    with pytest.raises(CertificateRevokedError) as info:
        relying_party.pki.verify(
            leaf,
            intermediates=[old],
            trust_anchors=[root.certificate],
            crls=[root.crl(), leaf_crl],
        )
    assert info.value.serial == old.serial_number  # type: ignore[attr-defined]


def test_leaf_compromise_revokes_every_unexpired_certificate_of_the_key_with_its_date(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    first = issuing.issue(make_csr())
    second = issuing.issue(make_csr(cn="api", names=("api.example.com",)))
    unrelated = issuing.issue(public_key=_other_key(), subject="x", names=["x.example.com"])
    when = _dt.datetime(2029, 12, 1, tzinfo=_dt.UTC)
    issuing.revoke(second.serial_number, "key-compromise", invalidity_date=when)
    spread = issuing.get(first.serial_number).revocation
    assert spread is not None
    assert (spread.reason, spread.invalidity_date) == (RevocationReason.KEY_COMPROMISE, when)
    assert issuing.get(unrelated.serial_number).revocation is None
    audited = [e for e in km.audit.tail(10) if e.operation == "pki.revoke-same-key"]
    assert [e.object for e in audited] == [f"cert:issuing:{first.serial_number:x}"]
    assert audited[0].details["revoked_with"] == f"{second.serial_number:x}"


def test_expired_certificates_of_the_key_are_not_revoked_again(
    clock: FakeClock, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    short = issuing.issue(make_csr(), validity=_dt.timedelta(days=1))
    clock.advance(days=2)
    current = issuing.issue(make_csr())
    issuing.revoke(current.serial_number, "key-compromise")
    assert issuing.get(short.serial_number).revocation is None


def test_superseding_a_sub_ca_certificate_leaves_the_renewed_one_valid(
    km: KeyManager, root: CertificateAuthority, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    new = root.renew(issuing.certificate.serial_number, revoke_old=True)
    assert root.get(new.serial_number).revocation is None
    leaf = km.pki.ca("issuing").issue(make_csr())
    assert km.pki.verify(leaf).chain[1] == new


def test_ceasing_a_sub_ca_revokes_all_its_certificates(
    root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    old = issuing.certificate
    new = root.renew(old.serial_number)
    root.revoke(new.serial_number, "cessation-of-operation")
    spread = root.get(old.serial_number).revocation
    assert spread is not None
    assert spread.reason is RevocationReason.CESSATION_OF_OPERATION


def test_a_leaf_revoked_for_a_routine_reason_leaves_its_key_s_others_alone(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    first = issuing.issue(make_csr())
    second = issuing.issue(make_csr())
    issuing.revoke(second.serial_number, "affiliation-changed")
    assert issuing.get(first.serial_number).revocation is None


def test_hold_on_a_sub_ca_holds_its_other_certificates_and_release_lifts_both(
    root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    old = issuing.certificate
    new = root.renew(old.serial_number)
    root.revoke(new.serial_number, "certificate-hold")
    held = root.get(old.serial_number).revocation
    assert held is not None
    assert held.reason is RevocationReason.CERTIFICATE_HOLD
    root.release_hold(new.serial_number)
    assert root.get(old.serial_number).revocation is None
    assert root.get(new.serial_number).revocation is None


def test_a_ca_created_before_the_key_index_is_scanned_on_compromise(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    first = issuing.issue(make_csr())
    second = issuing.issue(make_csr())

    def forget_index(txn: object) -> None:  # what a store written before the index holds
        record = txn.get_json(CA_KIND, "issuing")  # type: ignore[attr-defined]
        del record["key_index"]
        txn.put_json(CA_KIND, "issuing", record)  # type: ignore[attr-defined]
        for name, _ in txn.list(KEY_INDEX_KIND, prefix="issuing:"):  # type: ignore[attr-defined]
            txn.delete(KEY_INDEX_KIND, name)  # type: ignore[attr-defined]

    km._store.transact(forget_index)
    km.pki._invalidate()
    legacy = km.pki.ca("issuing")
    assert not legacy._key_indexed
    legacy.revoke(second.serial_number, "key-compromise")
    spread = legacy.get(first.serial_number).revocation
    assert spread is not None
    assert spread.reason is RevocationReason.KEY_COMPROMISE
