"""Fourth PKI review: each test failed before its fix."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from keymgmt import KeyManager
from keymgmt.errors import CertificateVerificationError
from keymgmt.pki import TLS_CLIENT, CertificateAuthority, VerificationFailure


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
