"""Regression tests for the issuance-side findings of the PKI security review (issue #5)."""

from __future__ import annotations

import datetime as _dt
import ipaddress
import math
import warnings
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from keymgmt import KeyManager
from keymgmt.errors import (
    AlreadyExistsError,
    CertificateError,
    CertificateRevokedError,
    InvalidArgumentError,
    RevokedError,
    StoreUnavailableError,
    UnsupportedAlgorithmError,
)
from keymgmt.pki import (
    OCSP_SIGNING,
    TLS_CLIENT,
    CertificateAuthority,
    CertStatus,
    IssueRequest,
    build_ocsp_request,
    check_ocsp_response,
    export_private_key,
    parse_names,
)
from keymgmt.pki._ca import CA_KIND
from keymgmt.pki._keyindex import KEY_CERT_KIND, KEY_INDEX_KIND
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
    batch = [
        IssueRequest(public_key=_other_key(), subject="ok", names=["ok.example"]),
        IssueRequest(csr=make_csr()),
    ]
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


def test_a_compromise_found_by_one_ca_stops_every_ca_of_the_store(
    root: CertificateAuthority, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    other = root.create_intermediate("other-issuing")
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "key-compromise")
    with pytest.raises(RevokedError, match="'issuing' revoked this public key") as refused:
        other.issue(make_csr())
    assert refused.value.ca == "other-issuing"  # type: ignore[attr-defined]
    assert refused.value.revoked_by == "issuing"  # type: ignore[attr-defined]


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
    indexed = {name for name, _ in km._store.list_json(KEY_CERT_KIND)}
    assert km._store.list_json(KEY_INDEX_KIND) == []  # a clean key has no head
    issuing.revoke(cert.serial_number, "key-compromise")
    marks = [
        record["compromised"]
        for name, record in km._store.list_json(KEY_INDEX_KIND)
        if name.startswith("issuing:")
    ]
    assert any(name.startswith("issuing:") for name in indexed)  # the issuance indexed the key
    assert [m["reason"] for m in marks if m] == ["key-compromise"]


def test_issuing_for_a_key_writes_one_small_record_whatever_it_already_has(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    for _ in range(5):
        issuing.issue(public_key=key, subject="same-key", names=["same.example"])
    records = [
        (name, record)
        for name, record in km._store.list_json(KEY_CERT_KIND)
        if name.startswith("issuing:")
    ]
    assert len(records) == 5
    assert all(set(record) == {"not_after"} for _, record in records)
    heads = [r for name, r in km._store.list_json(KEY_INDEX_KIND) if name.startswith("issuing:")]
    assert heads == []  # no per-key record to rewrite: the head exists once marked


def test_an_issuance_racing_a_compromise_revocation_re_runs_into_the_refusal(
    km: KeyManager, issuing: CertificateAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from keymgmt.pki import _keyindex

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    first = issuing.issue(public_key=key, subject="k", names=["k.example"])
    original = _keyindex.stage_key_head
    raced: list[bool] = []

    def racing(txn: object, *args: object) -> None:
        original(txn, *args)  # type: ignore[arg-type]  # this issuance has read "not compromised" ...
        if not raced:  # ... and another process revokes the key for compromise now
            raced.append(True)
            issuing.revoke(first.serial_number, "key-compromise")

    monkeypatch.setattr(_keyindex, "stage_key_head", racing)
    with pytest.raises(RevokedError, match="revoked this public key for key-compromise"):
        issuing.issue(public_key=key, subject="k", names=["k.example"])
    assert raced
    assert all(c.revocation is not None for c in issuing.issued())


# -- finding 2: revoking a key's certificate revokes the key's other ones ------------


def test_revoking_a_renewed_sub_ca_for_compromise_revokes_its_earlier_certificate(
    clock: FakeClock, root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    old = issuing.certificate
    current = root.get(root.renew(old.serial_number).serial_number)
    clock.advance(60)
    root.revoke(current.serial, "key-compromise")
    earlier = root.get(old.serial_number).revocation
    assert earlier is not None
    assert earlier.reason is RevocationReason.KEY_COMPROMISE
    crl_serials = {entry.serial_number for entry in root.crl()}
    assert {old.serial_number, current.serial} <= crl_serials


@pytest.mark.parametrize(
    ("reason", "spreads"),
    [
        ("unspecified", False),
        ("superseded", False),
        ("affiliation-changed", False),
        ("cessation-of-operation", True),
        ("certificate-hold", True),
        ("ca-compromise", True),
    ],
)
def test_which_reasons_on_a_sub_ca_certificate_reach_its_other_certificates(
    clock: FakeClock,
    root: CertificateAuthority,
    issuing: CertificateAuthority,
    reason: str,
    spreads: bool,
) -> None:
    old = issuing.certificate
    current = root.renew(old.serial_number)
    clock.advance(60)
    root.revoke(old.serial_number, reason)  # e.g. retiring the old certificate
    assert (root.get(current.serial_number).revocation is not None) is spreads


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


def test_a_repeated_compromise_revoke_audits_the_other_certificates_once(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    issuing.issue(make_csr())
    second = issuing.issue(make_csr())
    issuing.revoke(second.serial_number, "key-compromise")
    issuing.revoke(second.serial_number, "key-compromise")
    audited = [e for e in km.audit.tail(20) if e.operation == "pki.revoke-same-key"]
    assert len(audited) == 1


def test_a_compromise_revokes_the_keys_expired_certificates_too(
    clock: FakeClock, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    # A relying party checking a signature made in the past (a timestamped
    # code signature, a lagging clock) must find the expired one revoked.
    short = issuing.issue(make_csr(), validity=_dt.timedelta(days=1))
    clock.advance(days=2)
    current = issuing.issue(make_csr())
    issuing.revoke(current.serial_number, "key-compromise")
    spread = issuing.get(short.serial_number).revocation
    assert spread is not None
    assert spread.reason is RevocationReason.KEY_COMPROMISE


def test_a_sub_ca_cessation_leaves_its_expired_certificates_alone(
    clock: FakeClock, root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    old = issuing.certificate
    short = root.renew(old.serial_number, validity=_dt.timedelta(days=1))
    clock.advance(days=2)
    root.revoke(old.serial_number, "cessation-of-operation")
    assert root.get(short.serial_number).revocation is None


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
        for kind in (KEY_INDEX_KIND, KEY_CERT_KIND):
            for name, _ in txn.list(kind, prefix="issuing:"):  # type: ignore[attr-defined]
                txn.delete(kind, name)  # type: ignore[attr-defined]

    km._store.transact(forget_index)
    km.pki._invalidate()
    legacy = km.pki.ca("issuing")
    assert not legacy._key_indexed
    legacy.revoke(second.serial_number, "key-compromise")
    spread = legacy.get(first.serial_number).revocation
    assert spread is not None
    assert spread.reason is RevocationReason.KEY_COMPROMISE


# -- finding 6: names copied from a CSR are checked like typed ones -----------------


def _csr_with(
    key: ec.EllipticCurvePrivateKey, *names: x509.GeneralName
) -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .sign(key, hashes.SHA256())
    )


@pytest.fixture
def constrained(root: CertificateAuthority) -> CertificateAuthority:
    """An issuing CA permitted example.com and excluded from 10.0.0.0/8."""
    return root.create_intermediate(
        "constrained", permitted_names=["example.com"], excluded_names=["10.0.0.0/8"]
    )


def test_csr_dns_name_with_a_nul_does_not_pass_a_permitted_subtree(
    constrained: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    csr = _csr_with(leaf_key, x509.DNSName("evil.com\x00.example.com"))
    with pytest.raises(InvalidArgumentError, match="invalid subject alternative name DNS:"):
        constrained.issue(csr)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "*",
        "a b.example.com",
        "x" * 300,
        "a..example.com",
        "-a.example.com",
        "a-.example.com",
        "under_score.example.com",
        "www.example.com.",
        "*.*.example.com",
        "www.*.example.com",
        "*.com",
        "10.0.0.1",
        ("x" * 64) + ".example.com",
    ],
)
def test_malformed_csr_dns_names_are_refused(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey, name: str
) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid subject alternative name DNS:"):
        issuing.issue(_csr_with(leaf_key, x509.DNSName(name)))


@pytest.mark.parametrize("name", ["*.example.com", "xn--bcher-kva.example", "a-b.example.com"])
def test_well_formed_csr_dns_names_are_copied(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey, name: str
) -> None:
    cert = issuing.issue(_csr_with(leaf_key, x509.DNSName(name)))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [name]


def test_csr_dns_names_are_lowercased(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(_csr_with(leaf_key, x509.DNSName("WWW.Example.COM")))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.com"]


def test_csr_ip_network_cannot_slip_past_an_excluded_range(
    constrained: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    csr = _csr_with(
        leaf_key,
        x509.DNSName("www.example.com"),
        x509.IPAddress(ipaddress.ip_network("10.0.0.0/8")),
    )
    with pytest.raises(InvalidArgumentError, match="a network, not one address"):
        constrained.issue(csr)


def test_csr_ip_address_outside_the_excluded_range_is_copied(
    constrained: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    address = ipaddress.ip_address("192.0.2.7")
    csr = _csr_with(leaf_key, x509.DNSName("www.example.com"), x509.IPAddress(address))
    san = constrained.issue(csr).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.IPAddress) == [address]


@pytest.mark.parametrize(
    "name",
    [
        x509.OtherName(x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x03a@b"),
        x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),
        x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")])),
    ],
)
def test_csr_names_of_other_forms_are_refused_by_default(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey, name: x509.GeneralName
) -> None:
    with pytest.raises(InvalidArgumentError, match="the profile allows no"):
        issuing.issue(_csr_with(leaf_key, name), profile=TLS_CLIENT)


def test_a_profile_that_lists_directory_names_copies_them(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    name = x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")]))
    profile = TLS_CLIENT.evolve(name="tls-client-dn", name_forms={"dns", "directory-name"})
    cert = issuing.issue(_csr_with(leaf_key, name), profile=profile)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [name]


def test_a_profile_with_an_unknown_name_form_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown subject alternative name forms: x400"):
        TLS_CLIENT.evolve(name_forms={"dns", "x400"})


@pytest.mark.parametrize(
    "name",
    [
        x509.RFC822Name("a b@example.com"),
        x509.RFC822Name("@example.com"),
        x509.RFC822Name("me@exa_mple.com"),
        x509.UniformResourceIdentifier("https://user@www.example.com/"),
        x509.UniformResourceIdentifier("https://evil.example\\.example.com/"),
        x509.UniformResourceIdentifier("https://www.example.com/a b"),
        x509.UniformResourceIdentifier("//www.example.com/"),
    ],
)
def test_malformed_csr_emails_and_uris_are_refused(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey, name: x509.GeneralName
) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid subject alternative name"):
        issuing.issue(_csr_with(leaf_key, name), profile=TLS_CLIENT)


@pytest.mark.parametrize(
    "name",
    [
        "x" * 300,
        "evil.com\x00.example.com",
        "a_b.example.com",
        "10.0.0.0/8",
        "a b@example.com",
        "b\u00fccher.example",
    ],
)
def test_typed_names_get_the_same_checks(name: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid subject alternative name"):
        parse_names([name])


def test_typed_general_names_get_the_same_checks() -> None:
    with pytest.raises(InvalidArgumentError, match="a network, not one address"):
        parse_names([x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))])


# -- finding 9: the subject is checked before it is signed ----------------------------


def _csr_named(
    key: ec.EllipticCurvePrivateKey, subject: x509.Name, *names: x509.GeneralName
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(key, hashes.SHA256())


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def test_an_empty_subject_without_names_is_refused(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    with pytest.raises(InvalidArgumentError, match="an empty subject needs at least one"):
        issuing.issue(_csr_named(leaf_key, x509.Name([])), profile=TLS_CLIENT)


def test_an_empty_subject_makes_the_names_critical(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(_csr_named(leaf_key, x509.Name([]), x509.DNSName("a.example.com")))
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


def test_an_empty_subject_makes_the_names_critical_in_a_batch_too(
    issuing: CertificateAuthority,
) -> None:
    request = IssueRequest(public_key=_other_key(), subject=x509.Name([]), names=["a.example.com"])
    (cert,) = issuing.issue_many([request])
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


def test_a_named_subject_keeps_the_names_non_critical(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    assert not cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


def test_a_subject_equal_to_the_issuer_is_refused(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    csr = _csr_named(leaf_key, issuing.certificate.subject, x509.DNSName("a.example.com"))
    with pytest.raises(InvalidArgumentError, match="is the issuing CA's own name"):
        issuing.issue(csr)


def test_a_common_name_with_a_nul_is_refused(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    csr = _csr_named(leaf_key, _name((NameOID.COMMON_NAME, "admin\x00.evil")))
    with pytest.raises(InvalidArgumentError, match="CN contains a control character"):
        issuing.issue(csr, profile=TLS_CLIENT)


def test_a_csr_common_name_over_64_characters_is_refused(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    with warnings.catch_warnings():  # cryptography warns about the bound it does not enforce
        warnings.simplefilter("ignore")
        long_cn = x509.NameAttribute(NameOID.COMMON_NAME, "a" * 200, _validate=False)
        csr = _csr_named(leaf_key, x509.Name([long_cn]))
    with pytest.raises(InvalidArgumentError, match=r"<= 64|1-64 characters"):
        issuing.issue(csr, profile=TLS_CLIENT)


def test_an_organization_over_its_bound_is_refused(issuing: CertificateAuthority) -> None:
    subject = _name((NameOID.COMMON_NAME, "svc"), (NameOID.ORGANIZATION_NAME, "o" * 65))
    with pytest.raises(InvalidArgumentError, match="the subject's O must be 1-64 characters"):
        issuing.issue(public_key=_other_key(), subject=subject, profile=TLS_CLIENT)


def test_a_subject_email_outside_the_rfc822_constraint_is_refused(
    root: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    ca = root.create_intermediate("mail", permitted_names=[x509.RFC822Name("example.com")])
    csr = _csr_named(leaf_key, _name((NameOID.EMAIL_ADDRESS, "root@evil.test")))
    with pytest.raises(InvalidArgumentError, match=r"root@evil\.test is outside the name"):
        ca.issue(csr, profile=TLS_CLIENT)


def test_a_subject_email_inside_the_rfc822_constraint_is_issued(
    root: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    ca = root.create_intermediate("mail", permitted_names=[x509.RFC822Name("example.com")])
    subject = _name((NameOID.EMAIL_ADDRESS, "me@example.com"))
    assert ca.issue(_csr_named(leaf_key, subject), profile=TLS_CLIENT).subject == subject


def test_a_subject_outside_a_directory_name_constraint_is_refused(
    root: CertificateAuthority,
) -> None:
    allowed = x509.DirectoryName(_name((NameOID.ORGANIZATION_NAME, "Example")))
    ca = root.create_intermediate("dn", permitted_names=[allowed])
    subject = _name((NameOID.ORGANIZATION_NAME, "Other"), (NameOID.COMMON_NAME, "svc"))
    with pytest.raises(InvalidArgumentError, match="O=Other is outside the name constraints"):
        ca.issue(public_key=_other_key(), subject=subject, profile=TLS_CLIENT)


# -- finding 11: weak RSA subject keys ----------------------------------------------

_SMALL_PRIMES = math.prod(p for p in range(2, 752) if all(p % d for d in range(2, p)))


def _rsa_public(e: int, n: int) -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(e, n).public_key()


def _clean_modulus() -> int:
    """An odd 2048-bit number without prime factors below 752 (no key generated)."""
    n = (1 << 2047) + 1
    while math.gcd(n, _SMALL_PRIMES) != 1:
        n += 2
    return n


@pytest.mark.parametrize("e", [3, 17, 65535, 1 << 256 | 1])
def test_rsa_keys_with_a_weak_public_exponent_are_refused(
    issuing: CertificateAuthority, e: int
) -> None:
    key = _rsa_public(e, _clean_modulus())
    with pytest.raises(UnsupportedAlgorithmError, match=f"RSA public exponent {e} refused"):
        issuing.issue(public_key=key, subject="weak", profile=TLS_CLIENT)


def test_rsa_keys_with_an_even_modulus_are_refused(issuing: CertificateAuthority) -> None:
    key = _rsa_public(65537, (1 << 2047) | (1 << 100))
    with pytest.raises(UnsupportedAlgorithmError, match="it is even"):
        issuing.issue(public_key=key, subject="weak", profile=TLS_CLIENT)


def test_rsa_keys_with_a_small_prime_factor_are_refused(issuing: CertificateAuthority) -> None:
    n = 751 * (((1 << 2047) // 751) | 1)
    assert n.bit_length() == 2048
    with pytest.raises(UnsupportedAlgorithmError, match="prime factor below 752"):
        issuing.issue(public_key=_rsa_public(65537, n), subject="weak", profile=TLS_CLIENT)


def test_rsa_keys_without_small_factors_are_certified(issuing: CertificateAuthority) -> None:
    key = _rsa_public(65537, _clean_modulus())
    cert = issuing.issue(public_key=key, subject="ok", profile=TLS_CLIENT)
    assert cert.public_key() == key


# -- finding 12: a refused CA creation leaves no key and no bricked name -------------


def test_a_refused_intermediate_leaves_no_key(km: KeyManager, root: CertificateAuthority) -> None:
    with pytest.raises(InvalidArgumentError, match="validity must be positive"):
        root.create_intermediate("child", validity=_dt.timedelta(seconds=-1))
    assert "pki-ca-child" not in {info.name for info in km.keys.list()}


def test_an_intermediate_of_an_expired_ca_leaves_no_key(km: KeyManager, clock: FakeClock) -> None:
    short = km.pki.create_root_ca("short", validity=_dt.timedelta(days=1))
    clock.advance(days=2)
    with pytest.raises(CertificateError, match="has expired"):
        short.create_intermediate("child")
    assert "pki-ca-child" not in {info.name for info in km.keys.list()}


def test_a_root_past_year_9999_is_refused_before_its_key_is_made(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError, match="would end after 9999-12-31"):
        km.pki.create_root_ca("big", validity=_dt.timedelta(days=999_999_999))
    assert "pki-ca-big" not in {info.name for info in km.keys.list()}


def test_a_creation_that_failed_after_making_the_key_can_be_retried(
    km: KeyManager, root: CertificateAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise StoreUnavailableError("the store went away")

    with monkeypatch.context() as patch:
        patch.setattr(CertificateAuthority, "_issue", unavailable)
        with pytest.raises(StoreUnavailableError):
            root.create_intermediate("child")
    assert "pki-ca-child" in {info.name for info in km.keys.list()}  # left behind
    child = root.create_intermediate("child")
    assert child.key_ref == "pki-ca-child#2"  # fresh material, not the leftover version
    assert km.keys.public_key("pki-ca-child", 2).key == child.certificate.public_key()


def test_a_leftover_key_of_another_algorithm_is_not_taken_over(
    km: KeyManager, root: CertificateAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise StoreUnavailableError("the store went away")

    with monkeypatch.context() as patch:  # a failed creation in this process ...
        patch.setattr(CertificateAuthority, "_issue", unavailable)
        with pytest.raises(StoreUnavailableError):
            root.create_intermediate("child")
    with pytest.raises(AlreadyExistsError, match="is not a ed25519 CA key"):
        root.create_intermediate("child", key_type="ed25519")  # ... of another algorithm


def test_a_key_made_elsewhere_is_never_taken_over(
    km: KeyManager, root: CertificateAuthority
) -> None:
    # Another process's creation of the same CA has made its key and not yet
    # committed the CA record: rotating that key would leave its CA pointing
    # at a deactivated version.
    km.keys.create("pki-ca-child", "ecdsa-p256", usage="sign-verify")
    with pytest.raises(AlreadyExistsError, match="another creation of CA 'child' is in progress"):
        root.create_intermediate("child")
    assert [v.version for v in km.keys.get("pki-ca-child").versions] == [1]


# -- finding 13 (issuance part): out-of-range times and passphrases are typed errors -


def test_an_intermediate_validity_past_9999_is_clipped_to_the_parent(
    root: CertificateAuthority,
) -> None:
    child = root.create_intermediate("child", validity=_dt.timedelta(days=999_999_999))
    assert child.certificate.not_valid_after_utc == root.certificate.not_valid_after_utc


def test_a_leaf_validity_past_9999_is_clipped_to_the_ca(issuing: CertificateAuthority) -> None:
    cert = issuing.issue(
        public_key=_other_key(),
        subject="x",
        profile=TLS_CLIENT,
        validity=_dt.timedelta(days=999_999_999),
    )
    assert cert.not_valid_after_utc == issuing.certificate.not_valid_after_utc


def test_a_not_before_in_year_9999_is_an_invalid_argument(issuing: CertificateAuthority) -> None:
    with pytest.raises(InvalidArgumentError, match="ends before it starts"):
        issuing.issue(
            public_key=_other_key(),
            subject="x",
            profile=TLS_CLIENT,
            not_before=_dt.datetime(9999, 12, 31, tzinfo=_dt.UTC),
        )


def test_a_crl_next_update_past_9999_is_an_invalid_argument(
    issuing: CertificateAuthority,
) -> None:
    with pytest.raises(InvalidArgumentError, match="CRL's next update would end after"):
        issuing.crl(next_update=_dt.timedelta(days=999_999_999), force=True)


def test_a_root_renewal_past_9999_is_an_invalid_argument(root: CertificateAuthority) -> None:
    with pytest.raises(InvalidArgumentError, match="would end after 9999-12-31"):
        root.renew_root(validity=_dt.timedelta(days=999_999_999))


def test_a_pkcs8_passphrase_over_1023_bytes_is_an_invalid_argument() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidArgumentError, match="at most 1023 bytes"):
        export_private_key(key, "p" * 1024)


# -- finding 14: a delegated OCSP responder is checked when it is configured ---------


@pytest.fixture
def responder_key() -> ec.EllipticCurvePrivateKey:
    """A delegated responder's key."""
    return ec.generate_private_key(ec.SECP256R1())


def test_a_responder_certificate_from_another_ca_is_refused(
    root: CertificateAuthority,
    issuing: CertificateAuthority,
    responder_key: ec.EllipticCurvePrivateKey,
) -> None:
    cert = root.issue(public_key=responder_key.public_key(), subject="r", profile=OCSP_SIGNING)
    with pytest.raises(InvalidArgumentError, match="not issued by the CA 'issuing'"):
        issuing.ocsp_responder(responder_cert=cert, responder_key=responder_key)


def test_a_responder_certificate_without_the_ocsp_signing_eku_is_refused(
    issuing: CertificateAuthority, responder_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(public_key=responder_key.public_key(), subject="r", profile=TLS_CLIENT)
    with pytest.raises(InvalidArgumentError, match="lacks the OCSPSigning EKU"):
        issuing.ocsp_responder(responder_cert=cert, responder_key=responder_key)


def test_a_responder_key_that_does_not_match_is_refused(
    issuing: CertificateAuthority, responder_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(public_key=responder_key.public_key(), subject="r", profile=OCSP_SIGNING)
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidArgumentError, match="does not match the responder certificate"):
        issuing.ocsp_responder(responder_cert=cert, responder_key=other)


def test_an_expired_responder_certificate_is_refused(
    clock: FakeClock, issuing: CertificateAuthority, responder_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(
        public_key=responder_key.public_key(),
        subject="r",
        profile=OCSP_SIGNING,
        validity=_dt.timedelta(days=1),
    )
    clock.advance(days=2)
    with pytest.raises(InvalidArgumentError, match="is not valid now"):
        issuing.ocsp_responder(responder_cert=cert, responder_key=responder_key)


def test_a_revoked_responder_certificate_is_refused(
    issuing: CertificateAuthority, responder_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(public_key=responder_key.public_key(), subject="r", profile=OCSP_SIGNING)
    issuing.revoke(cert.serial_number, "cessation-of-operation")
    with pytest.raises(RevokedError, match=r"revoked \(cessation-of-operation\)"):
        issuing.ocsp_responder(responder_cert=cert, responder_key=responder_key)


def test_a_well_configured_delegated_responder_answers(
    clock: FakeClock, issuing: CertificateAuthority, responder_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(public_key=responder_key.public_key(), subject="r", profile=OCSP_SIGNING)
    leaf = issuing.issue(public_key=_other_key(), subject="leaf", profile=TLS_CLIENT)
    responder = issuing.ocsp_responder(responder_cert=cert, responder_key=responder_key)
    response = responder.respond(build_ocsp_request(leaf, issuing.certificate), at=clock.now())
    status = check_ocsp_response(response, cert=leaf, issuer=issuing.certificate, at=clock.now())
    assert status.status is CertStatus.GOOD


# -- finding 8: a delta CRL says removeFromCRL for a released hold -------------------


def test_a_delta_crl_lists_a_released_hold_as_remove_from_crl(
    clock: FakeClock, issuing: CertificateAuthority
) -> None:
    cert = issuing.issue(public_key=_other_key(), subject="held", profile=TLS_CLIENT)
    issuing.revoke(cert.serial_number, "certificate-hold")
    issuing.crl()
    clock.advance(60)
    issuing.release_hold(cert.serial_number)
    delta = issuing.crl(delta=True)
    entry = delta.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.remove_from_crl
    assert delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).critical
    assert delta.is_signature_valid(issuing.certificate.public_key())  # type: ignore[arg-type]


def test_a_relying_party_with_base_and_delta_sees_the_released_hold(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = root.issue(public_key=_other_key(), subject="held", profile=TLS_CLIENT)
    root.revoke(cert.serial_number, "certificate-hold")
    base = root.crl()
    clock.advance(60)
    root.release_hold(cert.serial_number)
    delta = root.crl(delta=True)
    relying_party = in_memory_manager(clock=clock)
    path = relying_party.pki.verify(cert, trust_anchors=[root.certificate], crls=[base, delta])
    assert path.chain[0] == cert


def test_a_delta_crl_keeps_new_revocations_beside_the_removals(
    clock: FakeClock, issuing: CertificateAuthority
) -> None:
    held = issuing.issue(public_key=_other_key(), subject="held", profile=TLS_CLIENT)
    other = issuing.issue(public_key=_other_key(), subject="other", profile=TLS_CLIENT)
    issuing.revoke(held.serial_number, "certificate-hold")
    issuing.crl()
    issuing.release_hold(held.serial_number)
    issuing.revoke(other.serial_number, "superseded")
    delta = issuing.crl(delta=True)
    reasons = {
        r.serial_number: r.extensions.get_extension_for_class(x509.CRLReason).value.reason
        for r in delta
    }
    assert reasons == {
        held.serial_number: x509.ReasonFlags.remove_from_crl,
        other.serial_number: x509.ReasonFlags.superseded,
    }


# -- coverage of the checks' other branches ------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "spiffe://trust.example/ns/prod/sa/web",
        "https://192.0.2.1:8443/path",
        "https://[2001:db8::1]/",
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    ],
)
def test_well_formed_uris_are_copied(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey, uri: str
) -> None:
    name = x509.UniformResourceIdentifier(uri)
    cert = issuing.issue(_csr_with(leaf_key, name), profile=TLS_CLIENT)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [name]


@pytest.mark.parametrize(
    "uri", ["https://www.example.com:99999/", "https://[zz::1]/", "https:", "1http://x.example/"]
)
def test_uris_with_a_bad_port_literal_or_scheme_are_refused(uri: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid subject alternative name URI"):
        parse_names([x509.UniformResourceIdentifier(uri)])


def test_email_domains_are_lowercased(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(_csr_with(leaf_key, x509.RFC822Name("Me@Example.COM")), profile=TLS_CLIENT)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["Me@example.com"]


def test_a_responder_certificate_without_any_eku_is_refused(
    issuing: CertificateAuthority, responder_key: ec.EllipticCurvePrivateKey
) -> None:
    profile = OCSP_SIGNING.evolve(name="no-eku", extended_key_usage=())
    cert = issuing.issue(public_key=responder_key.public_key(), subject="r", profile=profile)
    with pytest.raises(InvalidArgumentError, match="lacks the OCSPSigning EKU"):
        issuing.ocsp_responder(responder_cert=cert, responder_key=responder_key)


def test_a_responder_certificate_without_digital_signature_is_refused(
    issuing: CertificateAuthority, responder_key: ec.EllipticCurvePrivateKey
) -> None:
    profile = OCSP_SIGNING.evolve(name="no-ds", key_usage={"content_commitment"})
    cert = issuing.issue(public_key=responder_key.public_key(), subject="r", profile=profile)
    with pytest.raises(InvalidArgumentError, match="lacks digitalSignature"):
        issuing.ocsp_responder(responder_cert=cert, responder_key=responder_key)


def test_a_delta_with_removals_keeps_invalidity_dates_and_reports_progress(
    clock: FakeClock, issuing: CertificateAuthority
) -> None:
    held = issuing.issue(public_key=_other_key(), subject="held", profile=TLS_CLIENT)
    lost = issuing.issue(public_key=_other_key(), subject="lost", profile=TLS_CLIENT)
    issuing.revoke(held.serial_number, "certificate-hold")
    issuing.crl()
    clock.advance(60)
    issuing.release_hold(held.serial_number)
    when = clock.now() - _dt.timedelta(days=1)
    issuing.revoke(lost.serial_number, "key-compromise", invalidity_date=when)
    seen: list[tuple[int, int]] = []
    delta = issuing.crl(delta=True, progress=lambda done, total: seen.append((done, total)))
    entry = delta.get_revoked_certificate_by_serial_number(lost.serial_number)
    assert entry is not None
    invalidity = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
    assert invalidity.invalidity_date_utc == when.replace(microsecond=0)
    assert seen == [(2, 2)]


def test_a_legacy_scan_finds_expired_certificates_and_skips_other_keys(
    km: KeyManager, clock: FakeClock, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    expired = issuing.issue(make_csr(), validity=_dt.timedelta(days=1))
    clock.advance(days=2)
    other = issuing.issue(public_key=_other_key(), subject="x", names=["x.example.com"])
    current = issuing.issue(make_csr())

    def forget_index(txn: object) -> None:
        record = txn.get_json(CA_KIND, "issuing")  # type: ignore[attr-defined]
        del record["key_index"]
        txn.put_json(CA_KIND, "issuing", record)  # type: ignore[attr-defined]

    km._store.transact(forget_index)
    km.pki._invalidate()
    km.pki.ca("issuing").revoke(current.serial_number, "key-compromise")
    assert issuing.get(expired.serial_number).revocation is not None  # expired: revoked too
    assert issuing.get(other.serial_number).revocation is None


def test_releasing_a_sub_ca_hold_leaves_its_other_revoked_certificates_revoked(
    root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    old = issuing.certificate
    new = root.renew(old.serial_number, revoke_old=True)  # old: superseded
    root.revoke(new.serial_number, "certificate-hold")
    root.release_hold(new.serial_number)
    superseded = root.get(old.serial_number).revocation
    assert superseded is not None
    assert superseded.reason is RevocationReason.SUPERSEDED


def test_the_key_index_survives_reopening_a_sqlite_store(
    open_sqlite_km: Callable[[], KeyManager], make_csr: CSRMaker
) -> None:
    with open_sqlite_km() as km:
        ca = km.pki.create_root_ca("root")
        first = ca.issue(make_csr())
        second = ca.issue(make_csr())
    with open_sqlite_km() as km:
        ca = km.pki.ca("root")
        ca.revoke(second.serial_number, "key-compromise")
        spread = ca.get(first.serial_number).revocation
        assert spread is not None
        assert spread.reason is RevocationReason.KEY_COMPROMISE
        with pytest.raises(RevokedError, match="revoked this public key"):
            ca.issue(make_csr())


def test_a_sub_ca_whose_key_the_key_store_revoked_is_not_renewed(
    km: KeyManager, root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    name, _, version = issuing.key_ref.rpartition("#")
    km.keys.revoke(name, int(version), reason="key-compromise")
    serial = next(i.serial for i in root.issued() if i.child_ca == issuing.name)
    before = len(root.issued())
    with pytest.raises(RevokedError, match="is revoked"):
        root.renew(serial)
    assert len(root.issued()) == before


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    head = bytes([size]) if size < 0x80 else bytes([0x82]) + size.to_bytes(2, "big")
    return bytes([tag]) + head + body


def test_a_csr_object_with_a_duplicate_extension_is_a_malformed_input(
    issuing: CertificateAuthority,
) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from keymgmt.errors import MalformedInputError

    key = ec.generate_private_key(ec.SECP256R1())
    made = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "svc")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("a.example")]), False)
        .add_extension(x509.IssuerAlternativeName([x509.DNSName("b.example")]), False)
        .sign(key, hashes.SHA256())
    )
    # Turn the issuerAltName OID (2.5.29.18) into a second subjectAltName
    # (2.5.29.17) and sign the result again: a valid signature over a CSR
    # with two subjectAltName extensions.
    tbs = made.tbs_certrequest_bytes.replace(b"\x06\x03\x55\x1d\x12", b"\x06\x03\x55\x1d\x11")
    algorithm = bytes.fromhex("300a06082a8648ce3d040302")  # ecdsa-with-SHA256
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    csr = x509.load_der_x509_csr(der)
    with pytest.raises(MalformedInputError, match="malformed certificate signing request"):
        issuing.issue(csr)


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("crl_url", "http://crl.exämple/ca.crl"),
        ("crl_url", "not a url"),
        ("crl_url", ""),
        ("ocsp_url", "ftp://ocsp.example"),
        ("ocsp_url", "ldap://ocsp.example"),
        ("crl_url", "https://user:secret@crl.example/ca.crl"),
    ],
)
def test_a_ca_url_every_certificate_could_not_carry_is_refused_before_the_key(
    km: KeyManager, field: str, url: str
) -> None:
    with pytest.raises(InvalidArgumentError):
        km.pki.create_root_ca("urls", **{field: url})  # type: ignore[arg-type]
    assert "pki-ca-urls" not in {info.name for info in km.keys.list()}


def test_http_and_ldap_ca_urls_are_taken(km: KeyManager) -> None:
    ca = km.pki.create_root_ca(
        "urls", crl_url="ldap://dir.example/cn=ca", ocsp_url="http://ocsp.example"
    )
    assert (ca.crl_url, ca.ocsp_url) == ("ldap://dir.example/cn=ca", "http://ocsp.example")


def test_a_refused_uri_with_user_information_never_shows_it(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        km.pki.create_root_ca("urls", crl_url="https://user:s3cret@crl.example/ca.crl")
    assert "s3cret" not in str(info.value)
    assert "s3cret" not in repr(vars(info.value))


def test_releasing_a_sub_ca_hold_is_one_transaction(
    root: CertificateAuthority, issuing: CertificateAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = issuing.certificate
    new = root.renew(old.serial_number)
    root.revoke(new.serial_number, "certificate-hold")  # holds the old one too
    registry = root._ctx.revocation
    original = registry.stage_release_hold
    calls: list[str] = []

    def fails_on_the_sibling(txn: object, kind: object, subject: str, **kwargs: object) -> bool:
        calls.append(subject)
        if len(calls) > 1:
            raise StoreUnavailableError("the store went away")
        return original(txn, kind, subject, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(registry, "stage_release_hold", fails_on_the_sibling)
    with pytest.raises(StoreUnavailableError):
        root.release_hold(new.serial_number)
    monkeypatch.undo()
    held = root.get(new.serial_number).revocation
    assert held is not None  # nothing was released: not the certificate, not its sibling
    assert held.reason is RevocationReason.CERTIFICATE_HOLD
    root.release_hold(new.serial_number)
    assert root.get(new.serial_number).revocation is None
    assert root.get(old.serial_number).revocation is None
