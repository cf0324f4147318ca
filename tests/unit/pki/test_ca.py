"""CAs: creation, issuance from CSRs and public keys, renewal, listing, sealing."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm
from keymgmt.errors import (
    AlreadyExistsError,
    CertificateError,
    InvalidArgumentError,
    InvalidSignatureError,
    KeyStateError,
    MalformedInputError,
    NotFoundError,
    RevokedError,
    UnsupportedAlgorithmError,
)
from keymgmt.keyring import KdfProfile
from keymgmt.pki import CODE_SIGNING, TLS_CLIENT, CertificateAuthority
from keymgmt.revocation import RevocationReason
from keymgmt.testing import FakeClock

CSRMaker = Callable[..., x509.CertificateSigningRequest]


def _ext(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.ExtensionType:
    return cert.extensions.get_extension_for_class(cls).value


@pytest.mark.parametrize(
    "key_type",
    ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa-2048"],
)
def test_root_ca_is_self_signed_ca_with_requested_key_type(km: KeyManager, key_type: str) -> None:
    root = km.pki.create_root_ca("root", key_type=key_type)
    cert = root.certificate
    cert.verify_directly_issued_by(cert)
    bc = _ext(cert, x509.BasicConstraints)
    assert isinstance(bc, x509.BasicConstraints)
    assert bc.ca is True
    assert root.key_type is Algorithm(key_type)
    ku = _ext(cert, x509.KeyUsage)
    assert isinstance(ku, x509.KeyUsage)
    assert ku.key_cert_sign
    assert ku.crl_sign


@pytest.mark.slow
@pytest.mark.parametrize("key_type", ["rsa-3072", "rsa-4096"])
def test_root_ca_supports_large_rsa_keys(km: KeyManager, key_type: str) -> None:
    root = km.pki.create_root_ca("root", key_type=key_type)
    assert root.key_type is Algorithm(key_type)


def test_root_ca_refuses_non_signing_algorithm(km: KeyManager) -> None:
    with pytest.raises(UnsupportedAlgorithmError, match="cannot sign certificates"):
        km.pki.create_root_ca("root", key_type="aes-256-gcm")


def test_ca_names_are_unique(km: KeyManager, root: CertificateAuthority) -> None:
    with pytest.raises(AlreadyExistsError, match="exists already"):
        km.pki.create_root_ca("root")


def test_invalid_ca_name_is_refused(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid CA name"):
        km.pki.create_root_ca("Root CA")


def test_unknown_ca_is_not_found(km: KeyManager) -> None:
    with pytest.raises(NotFoundError, match="no CA named 'nope'"):
        km.pki.ca("nope")


def test_ca_private_key_is_a_sealed_managed_key_pair(km: KeyManager) -> None:
    root = km.pki.create_root_ca("root", key_type="ed25519")
    assert root.key_ref == "pki-ca-root#1"
    info = km.keys.get("pki-ca-root")
    assert info.algorithm is Algorithm.ED25519
    key = km.pki._keys.load(root.key_ref)
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    for kind in ("key", "keyver", "pki-ca"):
        for record in km._backend.list(kind):
            assert raw not in record.data


def test_suspended_ca_key_cannot_issue(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    km.keys.suspend("pki-ca-issuing", 1)
    with pytest.raises(KeyStateError, match="suspended and cannot sign"):
        issuing.issue(make_csr())


def test_ca_key_survives_a_fresh_manager_on_the_same_store(
    sqlite_km: KeyManager, store_path: Path, clock: FakeClock
) -> None:
    sqlite_km.pki.create_root_ca("root")
    passphrase = "correct horse battery staple"  # tests/conftest.py's sqlite_km
    with KeyManager.open(
        store_path, passphrase=passphrase, kdf_profile=KdfProfile.TESTING_ONLY_INSECURE, clock=clock
    ) as fresh:
        root = fresh.pki.ca("root")
        cert = root.issue(
            public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
            subject="client",
            profile=TLS_CLIENT,
        )
    cert.verify_directly_issued_by(root.certificate)


def test_intermediate_is_signed_by_parent_with_path_length_zero(
    root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    issuing.certificate.verify_directly_issued_by(root.certificate)
    bc = _ext(issuing.certificate, x509.BasicConstraints)
    assert isinstance(bc, x509.BasicConstraints)
    assert (bc.ca, bc.path_length) == (True, 0)
    assert issuing.parent == "root"
    assert issuing.chain == [issuing.certificate, root.certificate]


def test_intermediate_with_path_length_zero_cannot_create_sub_ca(
    issuing: CertificateAuthority,
) -> None:
    with pytest.raises(InvalidArgumentError, match="path length 0"):
        issuing.create_intermediate("deeper")


def test_intermediate_carries_name_constraints(root: CertificateAuthority) -> None:
    sub = root.create_intermediate("sub", permitted_names=["example.com", "10.0.0.0/8"])
    nc = _ext(sub.certificate, x509.NameConstraints)
    assert isinstance(nc, x509.NameConstraints)
    assert nc.permitted_subtrees is not None
    assert x509.DNSName("example.com") in nc.permitted_subtrees


def test_issue_from_csr_keeps_subject_and_names(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    assert cert.subject.rfc4514_string() == "CN=www"
    san = _ext(cert, x509.SubjectAlternativeName)
    assert isinstance(san, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == ["www.example.com"]
    cert.verify_directly_issued_by(issuing.certificate)


def test_csr_cannot_make_itself_a_ca(issuing: CertificateAuthority, make_csr: CSRMaker) -> None:
    csr = make_csr(
        extra=(
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            ),
        )
    )
    cert = issuing.issue(csr)
    bc = _ext(cert, x509.BasicConstraints)
    ku = _ext(cert, x509.KeyUsage)
    assert isinstance(bc, x509.BasicConstraints)
    assert bc.ca is False
    assert isinstance(ku, x509.KeyUsage)
    assert not ku.key_cert_sign


def test_csr_with_bad_signature_is_refused(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    der = bytearray(make_csr().public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01
    with pytest.raises(InvalidSignatureError):
        issuing.issue(bytes(der))


def test_truncated_csr_is_malformed(issuing: CertificateAuthority, make_csr: CSRMaker) -> None:
    der = make_csr().public_bytes(serialization.Encoding.DER)
    with pytest.raises(MalformedInputError, match="malformed certificate signing request"):
        issuing.issue(der[:40])


def test_ca_profile_is_refused_by_issue(issuing: CertificateAuthority, make_csr: CSRMaker) -> None:
    with pytest.raises(InvalidArgumentError, match="create_intermediate"):
        issuing.issue(make_csr(), profile="intermediate-ca")


def test_tls_server_needs_a_name(issuing: CertificateAuthority, make_csr: CSRMaker) -> None:
    with pytest.raises(InvalidArgumentError, match="at least one subject alternative name"):
        issuing.issue(make_csr(names=()))


def test_issue_for_public_key_needs_subject(issuing: CertificateAuthority) -> None:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    with pytest.raises(InvalidArgumentError, match="subject= is required"):
        issuing.issue(public_key=key, profile=CODE_SIGNING)


def test_issue_for_public_key_uses_profile_eku(issuing: CertificateAuthority) -> None:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    cert = issuing.issue(public_key=key, subject="CN=signer,O=Example", profile=CODE_SIGNING)
    eku = _ext(cert, x509.ExtendedKeyUsage)
    assert isinstance(eku, x509.ExtendedKeyUsage)
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]


def test_issued_certificates_carry_crl_and_ocsp_urls(
    root: CertificateAuthority, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cdp = _ext(issuing.certificate, x509.CRLDistributionPoints)
    assert isinstance(cdp, x509.CRLDistributionPoints)
    cert = issuing.issue(make_csr())
    aia = _ext(cert, x509.AuthorityInformationAccess)
    assert isinstance(aia, x509.AuthorityInformationAccess)
    assert aia[0].access_location.value == "http://ocsp.example"


def test_subject_and_authority_key_identifiers_chain(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    aki = _ext(cert, x509.AuthorityKeyIdentifier)
    ski = _ext(issuing.certificate, x509.SubjectKeyIdentifier)
    assert isinstance(aki, x509.AuthorityKeyIdentifier)
    assert isinstance(ski, x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ski.digest


def test_validity_is_clipped_to_the_issuer(root: CertificateAuthority, make_csr: CSRMaker) -> None:
    short = root.create_intermediate("short", validity=_dt.timedelta(days=10))
    cert = short.issue(make_csr(), validity=_dt.timedelta(days=365))
    assert cert.not_valid_after_utc == short.certificate.not_valid_after_utc


def test_expired_ca_cannot_issue(
    clock: FakeClock, root: CertificateAuthority, make_csr: CSRMaker
) -> None:
    short = root.create_intermediate("short", validity=_dt.timedelta(days=1))
    clock.advance(days=2)
    with pytest.raises(CertificateError, match="has expired"):
        short.issue(make_csr())


def test_serials_are_random_and_long(issuing: CertificateAuthority, make_csr: CSRMaker) -> None:
    serials = {issuing.issue(make_csr()).serial_number for _ in range(5)}
    assert len(serials) == 5
    assert all(s >= 1 << 64 for s in serials)


def test_issuance_is_audited_and_listed(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    entries = [e for e in km.audit.tail(5) if e.operation == "pki.issue"]
    assert entries[-1].object == f"cert:issuing:{cert.serial_number:x}"
    listed = issuing.issued()
    assert [i.serial for i in listed] == [cert.serial_number]
    assert listed[0].profile == "tls-server"
    assert listed[0].certificate == cert


def test_renew_keeps_subject_key_and_names_with_new_serial(
    clock: FakeClock, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    old = issuing.issue(make_csr())
    clock.advance(days=60)
    new = issuing.renew(old.serial_number, revoke_old=True)
    assert new.serial_number != old.serial_number
    assert new.subject == old.subject
    assert new.public_key() == old.public_key()
    assert new.not_valid_after_utc > old.not_valid_after_utc
    assert issuing.get(old.serial_number).revocation is not None
    assert issuing.get(old.serial_number).revocation.reason is RevocationReason.SUPERSEDED  # type: ignore[union-attr]


def test_revoked_intermediate_cannot_issue(
    root: CertificateAuthority, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    root.revoke(issuing.certificate.serial_number, RevocationReason.CESSATION_OF_OPERATION)
    with pytest.raises(RevokedError, match="is revoked"):
        issuing.issue(make_csr())


def test_ca_compromise_revokes_the_ca_key_version(
    km: KeyManager, root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    from keymgmt.revocation import SubjectKind

    root.revoke(issuing.certificate.serial_number, RevocationReason.CA_COMPROMISE)
    assert km.revocation.is_revoked(SubjectKind.KEY, issuing.key_ref)
    with pytest.raises(RevokedError):
        km.keys.sign("pki-ca-issuing", b"anything")


def test_list_cas_puts_roots_first(
    km: KeyManager, root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    assert [c.name for c in km.pki.list_cas()] == ["root", "issuing"]
    assert km.pki.trust_anchors() == [root.certificate]


def test_renewed_intermediate_keeps_key_and_its_leaves_still_verify(
    km: KeyManager,
    clock: FakeClock,
    root: CertificateAuthority,
    issuing: CertificateAuthority,
    make_csr: CSRMaker,
) -> None:
    leaf = issuing.issue(make_csr())
    clock.advance(days=30)
    renewed = root.renew(issuing.certificate.serial_number)
    fresh = km.pki.ca("issuing")
    assert fresh.certificate == renewed
    assert renewed.public_key() == issuing.certificate.public_key()
    assert renewed.serial_number != issuing.certificate.serial_number
    assert km.pki.verify(leaf).chain[1] == renewed
    assert fresh.issue(make_csr()).issuer == renewed.subject


def test_root_renewal_keeps_key_and_extends_validity(
    km: KeyManager, clock: FakeClock, root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    old = root.certificate
    clock.advance(days=100)
    new = root.renew_root()
    assert new.public_key() == old.public_key()
    assert new.not_valid_after_utc > old.not_valid_after_utc
    assert km.pki.trust_anchors() == [new]
    issuing.certificate.verify_directly_issued_by(new)


def test_only_roots_renew_themselves(issuing: CertificateAuthority) -> None:
    with pytest.raises(InvalidArgumentError, match="is not a root"):
        issuing.renew_root()


def test_issue_refuses_names_outside_the_ca_name_constraints(
    root: CertificateAuthority, make_csr: CSRMaker
) -> None:
    sub = root.create_intermediate("sub", permitted_names=["example.com"])
    with pytest.raises(InvalidArgumentError, match=r"www\.example\.org is outside the name"):
        sub.issue(make_csr(names=("www.example.org",)))


def test_issue_refuses_absurd_number_of_names(
    issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    names = tuple(f"h{i}.example.com" for i in range(101))
    with pytest.raises(InvalidArgumentError, match="too many subject alternative names"):
        issuing.issue(make_csr(names=names))
