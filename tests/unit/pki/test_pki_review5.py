"""Fifth PKI review: a permitted mailbox's local part is case-sensitive, and the fixes after it."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from keymgmt import KeyManager
from keymgmt.errors import CertificateVerificationError, InvalidArgumentError
from keymgmt.pki import CertificateAuthority, VerificationFailure
from keymgmt.pki._pathval import name_allowed
from keymgmt.pki._signer import sign_certificate

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


def _resigned(cert: x509.Certificate, ca: CertificateAuthority, mailbox: str) -> x509.Certificate:
    """``cert`` naming ``mailbox`` instead, signed with ``ca``'s key (never recorded)."""
    extensions = [
        x509.Extension(
            ext.oid, ext.critical, x509.SubjectAlternativeName([x509.RFC822Name(mailbox)])
        )
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
        km.pki.verify(_resigned(good, ca, "alice@example.com"), purpose="tls-client")
    assert refused.value.reason is VerificationFailure.NAME_CONSTRAINTS  # type: ignore[attr-defined]
