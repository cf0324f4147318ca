"""Fifth PKI review: a permitted mailbox's local part is case-sensitive, and the fixes after it."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from keymgmt import KeyManager
from keymgmt.errors import (
    CertificateRevokedError,
    CertificateVerificationError,
    InvalidArgumentError,
    RevokedError,
    StoreError,
)
from keymgmt.pki import (
    OCSP_SIGNING,
    TLS_CLIENT,
    CertificateAuthority,
    CertificateVerifier,
    CertStatus,
    IssueRequest,
    OCSPResponder,
    OCSPStatus,
    VerificationFailure,
    _keyindex,
    build_ocsp_request,
    check_ocsp_response,
)
from keymgmt.pki._pathval import name_allowed
from keymgmt.pki._signer import sign_certificate
from keymgmt.revocation import RevocationReason
from keymgmt.testing import FakeClock

# -- RFC 5280 4.2.1.10 / 7.5: a mailbox's local part is case-sensitive --------------

_ONE_MAILBOX = x509.NameConstraints(
    permitted_subtrees=[x509.RFC822Name("Alice@Example.com")], excluded_subtrees=None
)


@pytest.mark.parametrize(
    ("mailbox", "ok"),
    [
        ("Alice@Example.com", True),
        ("Alice@example.COM", True),  # the domain compares without regard to case
        ("alice@Example.com", False),
        ("ALICE@example.com", False),
        ("Bob@Example.com", False),
    ],
)
def test_a_permitted_mailbox_matches_its_local_part_exactly(mailbox: str, ok: bool) -> None:
    assert name_allowed(_ONE_MAILBOX, x509.RFC822Name(mailbox)) is ok


def test_an_excluded_mailbox_still_excludes_every_spelling_of_its_local_part() -> None:
    # Fail closed: excluding more than RFC 5280 asks never admits a name.
    nc = x509.NameConstraints(
        permitted_subtrees=None, excluded_subtrees=[x509.RFC822Name("Alice@example.com")]
    )
    assert name_allowed(nc, x509.RFC822Name("alice@EXAMPLE.com")) is False
    assert name_allowed(nc, x509.RFC822Name("bob@example.com")) is True


def _mail_ca(root: CertificateAuthority) -> CertificateAuthority:
    return root.create_intermediate("mail", permitted_names=["email:Alice@example.com"])


def _issue_to(ca: CertificateAuthority, mailbox: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return ca.issue(
        public_key=key, subject="CN=a", names=[f"email:{mailbox}"], profile="tls-client"
    )


def test_a_ca_refuses_to_issue_another_spelling_of_its_permitted_mailbox(
    root: CertificateAuthority,
) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^alice@example\.com is outside the name"):
        _issue_to(_mail_ca(root), "alice@example.com")


def test_a_ca_issues_its_permitted_mailbox_with_the_domain_in_another_case(
    km: KeyManager, root: CertificateAuthority
) -> None:
    cert = _issue_to(_mail_ca(root), "Alice@EXAMPLE.com")
    km.pki.verify(cert, purpose="tls-client")


def _resigned(
    cert: x509.Certificate, ca: CertificateAuthority, san: x509.GeneralName
) -> x509.Certificate:
    """``cert`` with ``san`` as its only SAN, signed with ``ca``'s key (never recorded)."""
    extensions = [
        x509.Extension(ext.oid, ext.critical, x509.SubjectAlternativeName([san]))
        if isinstance(ext.value, x509.SubjectAlternativeName)
        else ext
        for ext in cert.extensions
    ]
    builder = x509.CertificateBuilder(
        issuer_name=cert.issuer,
        subject_name=cert.subject,
        public_key=cert.public_key(),
        serial_number=cert.serial_number + 1,
        not_valid_before=cert.not_valid_before_utc,
        not_valid_after=cert.not_valid_after_utc,
        extensions=extensions,
    )
    return sign_certificate(ca._key(), builder)


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ed25519"])
def test_verify_refuses_another_spelling_of_a_permitted_mailbox(
    km: KeyManager, key_type: str
) -> None:
    # P-256: the fast path refuses it, and the RFC 5280 validator it falls
    # back to must too; Ed25519: that validator alone decides.
    root = km.pki.create_root_ca("mail-root", key_type=key_type)
    ca = root.create_intermediate(
        "mail", key_type=key_type, permitted_names=["email:Alice@example.com"]
    )
    good = _issue_to(ca, "Alice@example.com")
    km.pki.verify(good, purpose="tls-client")
    with pytest.raises(CertificateVerificationError, match="outside a CA's permitted") as refused:
        km.pki.verify(
            _resigned(good, ca, x509.RFC822Name("alice@example.com")), purpose="tls-client"
        )
    assert refused.value.reason is VerificationFailure.NAME_CONSTRAINTS  # type: ignore[attr-defined]


# -- the key index without write-back, two processes on one SQLite file ------------


def _p256() -> ec.EllipticCurvePublicKey:
    return ec.generate_private_key(ec.SECP256R1()).public_key()


@pytest.fixture
def two_processes(
    open_sqlite_km: Callable[[], KeyManager],
) -> Iterator[tuple[KeyManager, KeyManager]]:
    """Two managers on one SQLite file (each another process's view), a CA made by the first."""
    with open_sqlite_km() as first:
        first.pki.create_root_ca("root")
        with open_sqlite_km() as second:
            yield first, second


def test_an_issuance_whose_key_another_process_compromised_meanwhile_is_refused(
    two_processes: tuple[KeyManager, KeyManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer, revoker = two_processes
    key = _p256()
    first = issuer.pki.ca("root").issue(public_key=key, subject="CN=k", names=["k.example"])
    original = _keyindex.stage_key_head
    reads: list[str] = []

    def head_then_compromise(txn: Any, ca: str, fp: str) -> None:
        reads.append(fp)
        original(txn, ca, fp)  # the issuance read the key's head (clean) ...
        if len(reads) == 1:  # ... and the other process revokes the key before the commit
            revoker.pki.ca("root").revoke(first.serial_number, "key-compromise")

    monkeypatch.setattr(_keyindex, "stage_key_head", head_then_compromise)
    with pytest.raises(RevokedError, match="revoked this public key for key-compromise"):
        issuer.pki.ca("root").issue(public_key=key, subject="CN=k", names=["k.example"])
    assert len(reads) == 2  # the commit conflicted on the head; the re-run refused
    assert [c.serial for c in issuer.pki.ca("root").issued()] == [first.serial_number]


def test_a_compromise_revocation_racing_another_process_issuance_revokes_its_certificate(
    two_processes: tuple[KeyManager, KeyManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer, revoker = two_processes
    key = _p256()
    first = issuer.pki.ca("root").issue(public_key=key, subject="CN=k", names=["k.example"])
    original = _keyindex.unexpired_serials
    raced: list[x509.Certificate] = []

    def listed_then_issued(txn: Any, *args: Any, **kwargs: Any) -> list[int]:
        found = original(txn, *args, **kwargs)  # the revocation listed the key's certificates
        if not raced:  # ... and the other process certifies the key again before its commit
            raced.append(
                issuer.pki.ca("root").issue(public_key=key, subject="CN=k", names=["k.example"])
            )
        return found

    monkeypatch.setattr(_keyindex, "unexpired_serials", listed_then_issued)
    revoker.pki.ca("root").revoke(first.serial_number, "key-compromise")
    issuer.sync()
    revocation = issuer.pki.ca("root").get(raced[0].serial_number).revocation
    assert revocation is not None
    assert revocation.reason is RevocationReason.KEY_COMPROMISE


# -- the canonical JSON writer on odd input -----------------------------------------


@pytest.mark.parametrize("name", [5, None, b"tls-client"])
def test_a_profile_whose_name_is_not_text_is_refused_when_made(name: object) -> None:
    # Issuance writes the name into the record as JSON text directly: a
    # non-str name escaped as a TypeError there (before, _codec wrote 5 as a number).
    with pytest.raises(InvalidArgumentError, match=r"^a profile name must be a str"):
        TLS_CLIENT.evolve(name=name)


# -- a delegated OCSP responder after its CA's key was compromised ------------------


def _delegated_responder(ca: CertificateAuthority) -> OCSPResponder:
    responder_key = ec.generate_private_key(ec.SECP256R1())
    responder_cert = ca.issue(
        public_key=responder_key.public_key(), subject="OCSP responder", profile=OCSP_SIGNING
    )
    return ca.ocsp_responder(responder_cert=responder_cert, responder_key=responder_key)


def _ocsp_status(
    responder: OCSPResponder, ca: CertificateAuthority, cert: x509.Certificate, km: KeyManager
) -> OCSPStatus:
    response = responder.respond(build_ocsp_request(cert, ca.certificate), at=km.clock.now())
    return check_ocsp_response(response, cert=cert, issuer=ca.certificate, at=km.clock.now())


def test_a_delegated_responder_answers_ca_compromise_once_its_roots_key_is_compromised(
    km: KeyManager, root: CertificateAuthority, clock: FakeClock
) -> None:
    # km.pki.verify refuses the leaf from then on (ca-compromise); a responder
    # made before kept answering "good" for it, signed by a key nobody revoked.
    leaf = _issue_to(root, "ops@example.com")
    responder = _delegated_responder(root)
    assert _ocsp_status(responder, root, leaf, km).status is CertStatus.GOOD
    clock.advance(_dt.timedelta(minutes=5))
    km.compromise(key=root.key_ref)
    status = _ocsp_status(responder, root, leaf, km)
    assert status.status is CertStatus.REVOKED
    assert status.reason is RevocationReason.CA_COMPROMISE
    assert status.revoked_at == km.pki.key_compromise("root").revoked_at  # type: ignore[union-attr]


def test_a_delegated_responder_still_answers_good_after_its_cas_key_was_superseded(
    km: KeyManager, root: CertificateAuthority
) -> None:
    leaf = _issue_to(root, "ops@example.com")
    responder = _delegated_responder(root)
    name, _, version = root.key_ref.partition("#")
    km.keys.revoke(name, int(version), reason="superseded")
    assert _ocsp_status(responder, root, leaf, km).status is CertStatus.GOOD


# -- serial uniqueness inside one issue_many batch ----------------------------------


def test_issue_many_never_gives_two_certificates_of_one_batch_the_same_serial(
    km: KeyManager, root: CertificateAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second record of a repeated serial replaced the first in the
    # transaction: the first certificate was returned but never recorded.
    serials = iter([1 << 100, 1 << 100, (1 << 100) + 1])
    monkeypatch.setattr(km.pki, "_serial", lambda: next(serials))
    certs = root.issue_many(
        [
            IssueRequest(public_key=_p256(), subject="CN=a", names=["a.example"]),
            IssueRequest(public_key=_p256(), subject="CN=b", names=["b.example"]),
        ]
    )
    assert [c.serial_number for c in certs] == [1 << 100, (1 << 100) + 1]
    for cert in certs:
        assert root.get(cert.serial_number).certificate == cert


# -- an expected mailbox or URI is never matched by a DNS name spelling it ----------


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ed25519"])
@pytest.mark.parametrize(
    ("dns", "expected"),
    [
        ("ceo@other.com", "ceo@other.com"),  # outside the CA's mailbox constraint
        ("alice@example.com", "Alice@example.com"),  # another local part
        ("https://other.com/admin", "https://other.com/admin"),
    ],
)
def test_an_expected_mailbox_or_uri_is_not_matched_by_a_dns_name_spelling_it(
    km: KeyManager, key_type: str, dns: str, expected: str
) -> None:
    # A DNS SAN is not under a CA's mailbox (or URI) constraints, and compared
    # without regard to case: it named whatever mailbox or URI it spelled.
    root = km.pki.create_root_ca("dns-root", key_type=key_type)
    ca = root.create_intermediate(
        "dns-mail", key_type=key_type, permitted_names=[x509.RFC822Name("example.com")]
    )
    good = _issue_to(ca, "Alice@example.com")
    forged = _resigned(good, ca, x509.DNSName(dns))
    with pytest.raises(CertificateVerificationError, match="the certificate is not for") as info:
        km.pki.verify(forged, purpose="tls-client", name=expected)
    assert info.value.reason is VerificationFailure.NAME_MISMATCH  # type: ignore[attr-defined]


def test_an_expected_host_name_is_still_matched_by_a_dns_name_for_a_client(
    km: KeyManager, root: CertificateAuthority
) -> None:
    cert = root.issue(
        public_key=_p256(), subject="CN=c", names=["Client.Example.com"], profile="tls-client"
    )
    assert km.pki.verify(cert, purpose="tls-client", name="client.example.COM").leaf == cert


# -- a CA under a CA whose key is compromised signs nothing -------------------------


def test_a_ca_under_a_root_whose_key_is_compromised_refuses_to_issue(
    km: KeyManager, root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    # km.pki.verify refuses all of it (ca-compromise on the CA's own
    # certificate): the CA issued, recorded and audited certificates that
    # could never verify, and made sub-CAs under it.
    km.compromise(key=root.key_ref)
    before = len(issuing.issued())
    with pytest.raises(RevokedError, match=r"^the CA 'issuing' is under the CA 'root' whose key"):
        _issue_to(issuing, "ops@example.com")
    assert len(issuing.issued()) == before


def test_a_ca_under_a_root_whose_key_was_superseded_still_issues(
    km: KeyManager, root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    name, _, version = root.key_ref.partition("#")
    km.keys.revoke(name, int(version), reason="superseded")
    cert = _issue_to(issuing, "ops@example.com")
    assert km.pki.verify(cert, purpose="tls-client").leaf == cert


def test_a_roots_own_certificate_is_refused_once_its_key_is_compromised(
    km: KeyManager, root: CertificateAuthority
) -> None:
    assert km.pki.verify(root.certificate).chain == (root.certificate,)
    km.compromise(key=root.key_ref)
    with pytest.raises(CertificateRevokedError) as info:
        km.pki.verify(root.certificate)
    assert info.value.reason is RevocationReason.CA_COMPROMISE  # type: ignore[attr-defined]


def test_a_foreign_trust_anchor_verified_alone_needs_no_revocation_status(
    km: KeyManager, root: CertificateAuthority
) -> None:
    with KeyManager.in_memory() as other:
        foreign = other.pki.create_root_ca("foreign").certificate
    path = km.pki.verify(foreign, trust_anchors=[foreign])
    assert path.chain == (foreign,)
    assert path.revocation == ()


def test_a_callers_revocation_callback_is_never_asked_about_a_trust_anchor(
    km: KeyManager, root: CertificateAuthority
) -> None:
    asked: list[tuple[x509.Certificate, x509.Certificate]] = []

    def registry(issuer: x509.Certificate, cert: x509.Certificate) -> None:
        asked.append((issuer, cert))

    verifier = CertificateVerifier(trust_anchors=[root.certificate], registry=registry)
    verifier.verify(root.certificate, at=km.clock.now())
    assert asked == []


# -- renew(revoke_old=True) is one transaction --------------------------------------


def test_a_renewal_whose_old_certificate_cannot_be_revoked_records_no_new_one(
    km: KeyManager, root: CertificateAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The new certificate was committed first and the old one revoked in a
    # second transaction: when that failed, renew() raised with the new
    # certificate recorded (and audited) but never returned.
    old = _issue_to(root, "ops@example.com")
    stage = km.revocation.stage

    def failing(txn: Any, kind: Any, subject: str, reason: Any = None, **kwargs: Any) -> Any:
        if reason is RevocationReason.SUPERSEDED:
            raise StoreError("the disk is full")
        return stage(txn, kind, subject, reason, **kwargs)

    monkeypatch.setattr(km.revocation, "stage", failing)
    with pytest.raises(StoreError):
        root.renew(old.serial_number, revoke_old=True)
    assert [c.serial for c in root.issued()] == [old.serial_number]


def test_a_renewal_revokes_the_old_certificate_as_superseded_with_the_new_one(
    km: KeyManager, root: CertificateAuthority
) -> None:
    old = _issue_to(root, "ops@example.com")
    new = root.renew(old.serial_number, revoke_old=True)
    revocation = root.get(old.serial_number).revocation
    assert revocation is not None
    assert revocation.reason is RevocationReason.SUPERSEDED
    assert root.get(new.serial_number).revocation is None


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ed25519"])
def test_an_expected_urn_is_not_matched_by_a_dns_name_in_another_case(
    km: KeyManager, key_type: str
) -> None:
    # A URI without an authority (no "://") was taken for a host name.
    root = km.pki.create_root_ca("urn-root", key_type=key_type)
    good = root.issue(
        public_key=_p256(), subject="CN=c", names=["URI:urn:example:Admin"], profile="tls-client"
    )
    assert km.pki.verify(good, purpose="tls-client", name="urn:example:Admin").leaf == good
    forged = _resigned(good, root, x509.DNSName("urn:example:admin"))
    with pytest.raises(CertificateVerificationError, match="the certificate is not for"):
        km.pki.verify(forged, purpose="tls-client", name="urn:example:Admin")


def test_an_expected_urn_compares_with_a_common_name_as_a_uri(
    km: KeyManager, root: CertificateAuthority
) -> None:
    cert = root.issue(public_key=_p256(), subject="CN=urn:example:admin", profile="tls-client")
    assert km.pki.verify(cert, purpose="tls-client", name="URN:example:admin").leaf == cert
    with pytest.raises(CertificateVerificationError, match="the certificate is not for"):
        km.pki.verify(cert, purpose="tls-client", name="urn:example:Admin")


def test_an_expected_ipv6_address_still_matches_an_ip_name(
    km: KeyManager, root: CertificateAuthority
) -> None:
    cert = root.issue(public_key=_p256(), subject="CN=c", names=["fe80::1"], profile="tls-client")
    assert km.pki.verify(cert, purpose="tls-client", name="FE80::1").leaf == cert
