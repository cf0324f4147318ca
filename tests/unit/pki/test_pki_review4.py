"""Fourth PKI review: each test failed before its fix."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keymgmt import KeyManager
from keymgmt.errors import CertificateRevokedError, CertificateVerificationError
from keymgmt.pki import TLS_CLIENT, CertificateAuthority, VerificationFailure
from keymgmt.revocation import RevocationReason, SubjectKind


def _client(issuing: CertificateAuthority, *names: str) -> object:
    return issuing.issue(
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        subject="svc",
        names=list(names),
        profile=TLS_CLIENT,
    )


# -- expected names: URI paths and e-mail local parts are case-sensitive (RFC 5280 7.4, 7.5)


@pytest.mark.parametrize(
    ("issued", "expected"),
    [
        ("spiffe://example.org/ns/Admin", "spiffe://example.org/ns/admin"),
        ("https://example.org/Users/alice", "https://example.org/users/alice"),
        ("Admin@example.org", "admin@example.org"),
    ],
)
def test_a_uri_path_or_mailbox_differing_in_case_is_another_identity(
    km: KeyManager, issuing: CertificateAuthority, issued: str, expected: str
) -> None:
    cert = _client(issuing, issued)
    with pytest.raises(CertificateVerificationError) as info:
        km.pki.verify(cert, purpose="tls-client", name=expected)  # type: ignore[arg-type]
    assert info.value.reason is VerificationFailure.NAME_MISMATCH  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("issued", "expected"),
    [
        ("spiffe://example.org/ns/Admin", "SPIFFE://Example.ORG/ns/Admin"),
        ("https://example.org:8443/a?b#c", "HTTPS://EXAMPLE.org:8443/a?b#c"),
        ("Admin@example.org", "Admin@EXAMPLE.org"),
        ("svc.example.org", "SVC.Example.org."),
    ],
)
def test_uri_scheme_and_host_and_mail_domains_match_without_regard_to_case(
    km: KeyManager, issuing: CertificateAuthority, issued: str, expected: str
) -> None:
    cert = _client(issuing, issued)
    path = km.pki.verify(cert, purpose="tls-client", name=expected)  # type: ignore[arg-type]
    assert path.leaf == cert


@pytest.mark.parametrize(
    "common_name", ["spiffe://example.org/ns/Admin", "Admin@example.org", "ADMIN@EXAMPLE.ORG"]
)
def test_a_common_name_spelling_a_uri_or_mailbox_compares_as_that_form(
    km: KeyManager, issuing: CertificateAuthority, common_name: str
) -> None:
    cert = issuing.issue(
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        subject=common_name,
        names=["svc.example.org"],
        profile=TLS_CLIENT,
    )
    expected = common_name.lower()
    with pytest.raises(CertificateVerificationError) as info:
        km.pki.verify(cert, purpose="tls-client", name=expected)
    assert info.value.reason is VerificationFailure.NAME_MISMATCH  # type: ignore[attr-defined]


def test_a_plain_common_name_still_matches_without_regard_to_case(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    cert = issuing.issue(
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        subject="Client-B",
        names=["svc.example.org"],
        profile=TLS_CLIENT,
    )
    assert km.pki.verify(cert, purpose="tls-client", name="client-b").leaf == cert


# -- a CA whose key the store knows is compromised vouches for nothing -------------


def _leaf(ca: CertificateAuthority) -> Any:
    return ca.issue(
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        subject="svc",
        names=["svc.example.org"],
    )


def test_a_chain_under_a_root_whose_key_is_compromised_is_refused(
    km: KeyManager, root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    leaf = _leaf(issuing)
    km.pki.verify(leaf, purpose="tls-server", name="svc.example.org")  # warms the verifier
    km.compromise(key=root.key_ref)
    with pytest.raises(CertificateRevokedError) as info:
        km.pki.verify(leaf, purpose="tls-server", name="svc.example.org")
    assert info.value.reason is RevocationReason.CA_COMPROMISE  # type: ignore[attr-defined]


def test_a_certificate_signed_with_a_compromised_ca_key_is_refused_even_if_unrecorded(
    km: KeyManager, root: CertificateAuthority
) -> None:
    # What a thief of the root's key makes: validly signed, never recorded.
    stolen = root._key()
    now = km.clock.now()
    forged = (
        x509.CertificateBuilder()
        .issuer_name(root.certificate.subject)
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil")]))
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(stolen.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(stolen, hashes.SHA256())  # type: ignore[arg-type]
    )
    km.pki.verify(forged, at=now)  # the registry knows no revocation for it: accepted ...
    km.compromise(key=root.key_ref)
    with pytest.raises(CertificateRevokedError):  # ... until the key is known compromised
        km.pki.verify(forged, at=now)


def test_a_ca_key_revoked_for_another_reason_leaves_what_it_signed_valid(
    km: KeyManager, root: CertificateAuthority
) -> None:
    leaf = _leaf(root)
    km.revocation.revoke(SubjectKind.KEY, root.key_ref, RevocationReason.CESSATION_OF_OPERATION)
    assert km.pki.verify(leaf, purpose="tls-server").leaf == leaf
