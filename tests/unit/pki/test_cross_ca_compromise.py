"""A key compromise reaches every CA of the store, not only the one that found it.

A compromise is a fact about a private key: once one CA revokes a
certificate for ``key-compromise``, the key's certificates at the store's
other CAs are revoked too (expired ones included), and no CA certifies it
again. Other reasons stay with the one certificate.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm
from keymgmt.errors import CertificateRevokedError, RevokedError
from keymgmt.pki import CertificateAuthority, IssueRequest
from keymgmt.revocation import RevocationReason, SubjectKind
from keymgmt.testing import FakeClock

CSRMaker = Callable[..., x509.CertificateSigningRequest]


@pytest.fixture
def other_root(km: KeyManager) -> CertificateAuthority:
    """A second, unrelated root CA in the same store."""
    return km.pki.create_root_ca("other-root")


def _status(km: KeyManager, ca: CertificateAuthority, cert: x509.Certificate) -> object:
    return km.revocation.get(SubjectKind.CERTIFICATE, f"{ca.name}:{cert.serial_number:x}")


def test_compromise_at_one_root_revokes_the_same_key_at_another_root(
    km: KeyManager,
    issuing: CertificateAuthority,
    other_root: CertificateAuthority,
    make_csr: CSRMaker,
) -> None:
    mine = issuing.issue(make_csr())
    theirs = other_root.issue(make_csr())
    issuing.revoke(mine.serial_number, "key-compromise")
    revoked = _status(km, other_root, theirs)
    assert revoked is not None
    assert revoked.reason is RevocationReason.KEY_COMPROMISE  # type: ignore[attr-defined]
    with pytest.raises(CertificateRevokedError):
        km.pki.verify(theirs, purpose="tls-server", name="www.example.com")


def test_the_other_ca_refuses_the_key_in_every_issuing_path(
    issuing: CertificateAuthority,
    other_root: CertificateAuthority,
    make_csr: CSRMaker,
) -> None:
    mine = issuing.issue(make_csr())
    issuing.revoke(mine.serial_number, "key-compromise")
    with pytest.raises(RevokedError):
        other_root.issue(make_csr())
    with pytest.raises(RevokedError):
        other_root.issue(
            public_key=mine.public_key(),  # type: ignore[arg-type]
            subject="www",
            names=["www.example.com"],
        )
    with pytest.raises(RevokedError):
        other_root.issue_many([IssueRequest(csr=make_csr())])
    assert other_root.issued() == []


def test_the_other_cas_crl_lists_the_certificate_with_the_reason_and_date(
    km: KeyManager,
    clock: FakeClock,
    issuing: CertificateAuthority,
    other_root: CertificateAuthority,
    make_csr: CSRMaker,
) -> None:
    theirs = other_root.issue(make_csr())
    before = other_root.crl()
    mine = issuing.issue(make_csr())
    when = clock.now() - _dt.timedelta(hours=1)
    issuing.revoke(mine.serial_number, "key-compromise", invalidity_date=when)
    after = other_root.crl()
    assert before.get_revoked_certificate_by_serial_number(theirs.serial_number) is None
    entry = after.get_revoked_certificate_by_serial_number(theirs.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise
    invalidity = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
    assert invalidity.invalidity_date_utc == when.replace(microsecond=0)


def test_the_other_cas_expired_certificate_of_the_key_is_revoked_too(
    km: KeyManager,
    clock: FakeClock,
    issuing: CertificateAuthority,
    other_root: CertificateAuthority,
    make_csr: CSRMaker,
) -> None:
    old = other_root.issue(make_csr(), validity=_dt.timedelta(days=1))
    clock.advance(_dt.timedelta(days=2))
    mine = issuing.issue(make_csr())
    issuing.revoke(mine.serial_number, "key-compromise")
    assert _status(km, other_root, old) is not None


def test_each_revocation_at_another_ca_is_audited_naming_where_it_was_found(
    km: KeyManager,
    issuing: CertificateAuthority,
    other_root: CertificateAuthority,
    make_csr: CSRMaker,
) -> None:
    theirs = other_root.issue(make_csr())
    mine = issuing.issue(make_csr())
    issuing.revoke(mine.serial_number, "key-compromise")
    spread = [e for e in km.audit.entries() if e.operation == "pki.revoke-same-key"]
    assert [e.object for e in spread] == [f"cert:other-root:{theirs.serial_number:x}"]
    assert spread[0].details["revoked_at_ca"] == "issuing"
    assert spread[0].details["revoked_with"] == f"{mine.serial_number:x}"


@pytest.mark.parametrize(
    "reason", ["superseded", "affiliation-changed", "cessation-of-operation", "certificate-hold"]
)
def test_other_reasons_stay_with_the_one_certificate(
    km: KeyManager,
    issuing: CertificateAuthority,
    other_root: CertificateAuthority,
    make_csr: CSRMaker,
    reason: str,
) -> None:
    theirs = other_root.issue(make_csr())
    mine = issuing.issue(make_csr())
    issuing.revoke(mine.serial_number, reason)
    assert _status(km, other_root, theirs) is None
    assert other_root.issue(make_csr()).public_key() == mine.public_key()


def test_an_unrelated_key_at_the_other_ca_is_untouched(
    km: KeyManager,
    issuing: CertificateAuthority,
    other_root: CertificateAuthority,
    make_csr: CSRMaker,
) -> None:
    unrelated_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    unrelated = other_root.issue(public_key=unrelated_key, subject="api", names=["api.example.com"])
    mine = issuing.issue(make_csr())
    issuing.revoke(mine.serial_number, "key-compromise")
    assert _status(km, other_root, unrelated) is None


def test_the_compromise_playbook_for_a_certificate_reaches_the_other_ca(
    km: KeyManager,
    issuing: CertificateAuthority,
    other_root: CertificateAuthority,
    make_csr: CSRMaker,
) -> None:
    theirs = other_root.issue(make_csr())
    mine = issuing.issue(make_csr())
    km.compromise(certificate=mine)
    assert _status(km, other_root, theirs) is not None
    with pytest.raises(RevokedError):
        other_root.issue(make_csr())


# -- a managed key pair compromised in the key store ------------------------------


def _certify_key_pair(
    km: KeyManager, ca: CertificateAuthority, name: str = "signer"
) -> x509.Certificate:
    public = km.keys.public_key(name).key
    return ca.issue(public_key=public, subject="www", names=["www.example.com"])  # type: ignore[arg-type]


def test_compromising_a_key_pair_revokes_its_certificates_at_every_ca(
    km: KeyManager,
    issuing: CertificateAuthority,
    other_root: CertificateAuthority,
) -> None:
    km.keys.create("signer", Algorithm.ECDSA_P256)
    mine = _certify_key_pair(km, issuing)
    theirs = _certify_key_pair(km, other_root)
    report = km.compromise(key="signer#1")
    for ca, cert in ((issuing, mine), (other_root, theirs)):
        revoked = _status(km, ca, cert)
        assert revoked is not None
        assert revoked.reason is RevocationReason.KEY_COMPROMISE  # type: ignore[attr-defined]
        assert f"certificate:{ca.name}:{cert.serial_number:x}" in report.revoked


def test_after_a_key_pair_compromise_no_ca_certifies_its_public_key(
    km: KeyManager,
    issuing: CertificateAuthority,
    other_root: CertificateAuthority,
) -> None:
    km.keys.create("signer", Algorithm.ECDSA_P256)
    public = km.keys.public_key("signer").key
    km.compromise(key="signer#1")
    for ca in (issuing, other_root):
        with pytest.raises(RevokedError, match="signer#1") as refused:
            ca.issue(public_key=public, subject="www", names=["www.example.com"])  # type: ignore[arg-type]
        assert refused.value.revoked_by == "signer#1"  # type: ignore[attr-defined]
    # the rotated-in version is a new key pair: it can be certified
    assert _certify_key_pair(km, issuing).public_key() != public


def test_a_key_pair_compromise_is_audited_per_certificate_naming_the_key(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    km.keys.create("signer", Algorithm.ECDSA_P256)
    cert = _certify_key_pair(km, issuing)
    km.compromise(key="signer#1")
    spread = [e for e in km.audit.entries() if e.operation == "pki.revoke-same-key"]
    assert [e.object for e in spread] == [f"cert:issuing:{cert.serial_number:x}"]
    assert spread[0].details["compromised_key"] == "signer#1"


def test_a_symmetric_key_compromise_touches_no_ca(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    km.keys.create("aes", Algorithm.AES_256_GCM)
    cert = issuing.issue(make_csr())
    report = km.compromise(key="aes#1")
    assert report.revoked == ("key:aes#1",)
    assert _status(km, issuing, cert) is None


def test_compromising_a_sub_cas_key_in_the_key_store_revokes_its_certificate(
    km: KeyManager, root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    key_id = issuing.key_ref
    report = km.compromise(key=key_id)
    cert = issuing.certificate
    assert f"certificate:root:{cert.serial_number:x}" in report.revoked
    with pytest.raises(CertificateRevokedError):
        km.pki.verify(cert, purpose="any")
