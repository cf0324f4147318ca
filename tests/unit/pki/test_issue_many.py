"""Batch issuance: many certificates, one audited transaction, all or none."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from keymgmt import KeyManager
from keymgmt.errors import (
    InvalidArgumentError,
    InvalidSignatureError,
    RevokedError,
)
from keymgmt.pki import CODE_SIGNING, TLS_CLIENT, CertificateAuthority, IssueRequest
from keymgmt.revocation import RevocationReason

CSRMaker = Callable[..., x509.CertificateSigningRequest]


def _snapshot(km: KeyManager) -> tuple[int, int]:
    store = km._context.store
    return store.backend.generation(), len(km.audit.tail(1000))


def test_issue_many_issues_each_request_with_its_own_profile_and_names(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    certs = issuing.issue_many(
        [
            IssueRequest(csr=make_csr("a", ("a.example.com",))),
            IssueRequest(public_key=key, subject="client-b", profile=TLS_CLIENT),
            IssueRequest(public_key=key, subject="signer", profile=CODE_SIGNING, names=[]),
        ]
    )
    assert [c.subject.rfc4514_string() for c in certs] == ["CN=a", "CN=client-b", "CN=signer"]
    san = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example.com"]
    eku = certs[1].extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    for cert in certs:
        cert.verify_directly_issued_by(issuing.certificate)
    assert len({c.serial_number for c in certs}) == 3


def test_issue_many_records_and_audits_every_certificate_in_one_commit(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    generation = km._context.store.backend.generation()
    certs = issuing.issue_many([IssueRequest(csr=make_csr(f"n{i}")) for i in range(5)])
    assert km._context.store.backend.generation() == generation + 1
    assert sorted(i.serial for i in issuing.issued()) == sorted(c.serial_number for c in certs)
    audited = [e.object for e in km.audit.tail(10) if e.operation == "pki.issue"]
    assert audited[-5:] == [f"cert:issuing:{c.serial_number:x}" for c in certs]
    assert km.audit.verify().entries >= 5  # raises when the chain breaks


def test_a_bad_request_names_its_index_and_nothing_is_issued(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    before = _snapshot(km)
    good = IssueRequest(csr=make_csr())
    with pytest.raises(InvalidArgumentError, match="request 1: ") as caught:
        issuing.issue_many([good, IssueRequest(public_key=None, csr=None), good])
    assert caught.value.request_index == 1  # type: ignore[attr-defined]
    assert _snapshot(km) == before
    assert issuing.issued() == []


def test_a_csr_with_a_bad_signature_refuses_the_whole_batch(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    der = bytearray(make_csr().public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01
    before = _snapshot(km)
    with pytest.raises(InvalidSignatureError):
        issuing.issue_many([IssueRequest(csr=make_csr()), IssueRequest(csr=bytes(der))])
    assert _snapshot(km) == before


def test_anything_but_issue_requests_is_refused(issuing: CertificateAuthority) -> None:
    with pytest.raises(InvalidArgumentError, match="not an IssueRequest"):
        issuing.issue_many([{"subject": "x"}])  # type: ignore[list-item]


def test_batches_are_bounded(issuing: CertificateAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    request = IssueRequest(public_key=key, subject="x", names=["x.example"])
    with pytest.raises(InvalidArgumentError, match="at most 10000"):
        issuing.issue_many([request] * 10_001)


def test_an_empty_batch_issues_nothing(km: KeyManager, issuing: CertificateAuthority) -> None:
    before = _snapshot(km)
    assert issuing.issue_many([]) == []
    assert _snapshot(km) == before


def test_a_revoked_ca_cannot_issue_a_batch(
    root: CertificateAuthority, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    root.revoke(issuing.certificate.serial_number, RevocationReason.KEY_COMPROMISE)
    with pytest.raises(RevokedError):
        issuing.issue_many([IssueRequest(csr=make_csr())])
