"""The algorithm policy covers CRLs and OCSP responses, not only certificates."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from keymgmt import KeyManager
from keymgmt.errors import CertificateVerificationError
from keymgmt.pki import CertificateAuthority, VerificationFailure, check_ocsp_response
from keymgmt.testing import FakeClock, in_memory_manager

CSRMaker = Callable[..., x509.CertificateSigningRequest]


@pytest.fixture
def foreign() -> tuple[KeyManager, CertificateAuthority]:
    other = in_memory_manager(seed=7)
    return other, other.pki.create_root_ca("weak-root")


def _crl(ca: CertificateAuthority, now: _dt.datetime, digest: hashes.HashAlgorithm) -> object:
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=ca.certificate.subject,
        last_update=now,
        next_update=now + _dt.timedelta(days=1),
        extensions=[
            x509.Extension(
                x509.AuthorityKeyIdentifier.oid,
                False,
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            ),
            x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(1)),
        ],
    )
    return builder.sign(ca._key(), digest)  # type: ignore[arg-type]


@pytest.mark.parametrize("digest", [hashes.SHA256(), hashes.SHA224()], ids=["sha256", "sha224"])
def test_a_crl_counts_as_a_status_source_only_under_the_algorithm_policy(
    km: KeyManager,
    clock: FakeClock,
    make_csr: CSRMaker,
    foreign: tuple[KeyManager, CertificateAuthority],
    digest: hashes.HashAlgorithm,
) -> None:
    _, root = foreign
    cert = root.issue(make_csr())
    crl = _crl(root, clock.now(), digest)
    if isinstance(digest, hashes.SHA256):
        km.pki.verify(cert, trust_anchors=[root.certificate], crls=[crl])  # type: ignore[list-item]
        return
    with pytest.raises(CertificateVerificationError) as info:
        km.pki.verify(cert, trust_anchors=[root.certificate], crls=[crl])  # type: ignore[list-item]
    assert info.value.reason is VerificationFailure.REVOCATION_UNKNOWN  # type: ignore[attr-defined]


def test_an_ocsp_response_signed_below_the_algorithm_policy_is_refused(
    clock: FakeClock, make_csr: CSRMaker, foreign: tuple[KeyManager, CertificateAuthority]
) -> None:
    _, root = foreign
    cert = root.issue(make_csr())
    now = clock.now()
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=root.certificate,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now,
            next_update=now + _dt.timedelta(hours=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, root.certificate)
    )
    good = response.sign(root._key(), hashes.SHA256())  # type: ignore[arg-type]
    check_ocsp_response(good, cert=cert, issuer=root.certificate, at=now)
    weak = response.sign(root._key(), hashes.SHA224())  # type: ignore[arg-type]
    with pytest.raises(CertificateVerificationError, match="sha224, below the algorithm policy"):
        check_ocsp_response(weak, cert=cert, issuer=root.certificate, at=now)


@pytest.fixture(scope="module")
def rsa_root() -> tuple[KeyManager, CertificateAuthority]:
    other = in_memory_manager(seed=11)
    return other, other.pki.create_root_ca("pss-root", key_type="rsa-2048")


def _pss_leaf(
    root: CertificateAuthority,
    digest: hashes.SHA256 | hashes.SHA384,
    mgf: hashes.HashAlgorithm,
    salt: int,
) -> x509.Certificate:
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    template = root.issue(
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        subject="pss-leaf",
        names=["pss.example"],
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(template.subject)
        .issuer_name(template.issuer)
        .public_key(template.public_key())
        .serial_number(template.serial_number)
        .not_valid_before(template.not_valid_before_utc)
        .not_valid_after(template.not_valid_after_utc)
    )
    for extension in template.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(
        root._key(),  # type: ignore[arg-type]
        digest,
        rsa_padding=padding.PSS(mgf=padding.MGF1(mgf), salt_length=salt),
    )


@pytest.mark.parametrize(
    ("digest", "mgf", "salt", "accepted"),
    [
        (hashes.SHA256(), hashes.SHA256(), 32, True),
        (hashes.SHA384(), hashes.SHA384(), 48, True),
        (hashes.SHA256(), hashes.SHA256(), 20, False),
        (hashes.SHA256(), hashes.SHA256(), 0, False),
        (hashes.SHA256(), hashes.SHA384(), 32, False),
    ],
    ids=["sha256-salt32", "sha384-salt48", "salt20", "salt0", "mgf-mismatch"],
)
def test_rsa_pss_signatures_need_mgf1_and_salt_matching_the_hash(
    rsa_root: tuple[KeyManager, CertificateAuthority],
    digest: hashes.SHA256 | hashes.SHA384,
    mgf: hashes.HashAlgorithm,
    salt: int,
    accepted: bool,
) -> None:
    other, root = rsa_root
    leaf = _pss_leaf(root, digest, mgf, salt)
    if accepted:
        other.pki.verify(leaf, trust_anchors=[root.certificate])
        return
    with pytest.raises(CertificateVerificationError, match="signature algorithm outside") as info:
        other.pki.verify(leaf, trust_anchors=[root.certificate])
    assert info.value.reason is VerificationFailure.BAD_SIGNATURE  # type: ignore[attr-defined]
