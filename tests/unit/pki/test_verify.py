"""km.pki.verify: path validation with revocation, both engines, typed reasons."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from keymgmt import KeyManager
from keymgmt.errors import (
    CertificateRevokedError,
    CertificateVerificationError,
    InvalidArgumentError,
)
from keymgmt.pki import (
    NOT_OURS,
    TLS_CLIENT,
    TLS_SERVER,
    CertificateAuthority,
    CertificateVerifier,
    Purpose,
    RevocationPolicy,
    RevocationSource,
    VerificationFailure,
    build_ocsp_request,
)
from keymgmt.revocation import RevocationReason
from keymgmt.testing import FakeClock, in_memory_manager

CSRMaker = Callable[..., x509.CertificateSigningRequest]


def _reason(info: pytest.ExceptionInfo[CertificateVerificationError]) -> object:
    return info.value.reason  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("key_type", "engine"),
    [
        ("ecdsa-p256", "cryptography"),
        ("ecdsa-p384", "cryptography"),
        ("rsa-2048", "cryptography"),
        ("ed25519", "keymgmt-eddsa"),
    ],
)
def test_every_ca_key_type_verifies(
    km: KeyManager, make_csr: CSRMaker, key_type: str, engine: str
) -> None:
    root = km.pki.create_root_ca("root", key_type=key_type)
    sub = root.create_intermediate("sub", key_type=key_type)
    cert = sub.issue(make_csr())
    path = km.pki.verify(cert, purpose=Purpose.TLS_SERVER, name="www.example.com")
    assert path.engine == engine
    assert path.chain == (cert, sub.certificate, root.certificate)
    assert path.revocation == (RevocationSource.REGISTRY, RevocationSource.REGISTRY)


def test_revoked_leaf_is_refused_with_serial_reason_and_date(
    km: KeyManager, clock: FakeClock, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, RevocationReason.KEY_COMPROMISE)
    with pytest.raises(CertificateRevokedError, match="was revoked") as info:
        km.pki.verify(cert)
    err = info.value
    assert err.serial == cert.serial_number  # type: ignore[attr-defined]
    assert err.reason is RevocationReason.KEY_COMPROMISE  # type: ignore[attr-defined]
    assert err.revoked_at == clock.now()  # type: ignore[attr-defined]
    assert err.failure is VerificationFailure.REVOKED  # type: ignore[attr-defined]


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ed25519"])
def test_revoked_intermediate_refuses_its_leaves(
    km: KeyManager, make_csr: CSRMaker, key_type: str
) -> None:
    root = km.pki.create_root_ca("root", key_type=key_type)
    sub = root.create_intermediate("sub", key_type=key_type)
    cert = sub.issue(make_csr())
    root.revoke(sub.certificate.serial_number, "cessation-of-operation")
    with pytest.raises(CertificateRevokedError) as info:
        km.pki.verify(cert)
    assert info.value.serial == sub.certificate.serial_number  # type: ignore[attr-defined]


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ed25519"])
def test_expired_certificate_says_expired(
    km: KeyManager, clock: FakeClock, make_csr: CSRMaker, key_type: str
) -> None:
    root = km.pki.create_root_ca("root", key_type=key_type)
    cert = root.issue(make_csr(), validity=_dt.timedelta(days=1))
    clock.advance(days=2)
    with pytest.raises(CertificateVerificationError, match="expired") as info:
        km.pki.verify(cert)
    assert _reason(info) is VerificationFailure.EXPIRED


def test_verification_at_a_past_time_accepts_then_valid_cert(
    km: KeyManager, clock: FakeClock, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr(), validity=_dt.timedelta(days=1))
    then = clock.now() + _dt.timedelta(hours=1)
    clock.advance(days=2)
    assert km.pki.verify(cert, at=then).leaf == cert


def test_client_certificate_is_wrong_usage_for_server(
    km: KeyManager, issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(public_key=leaf_key.public_key(), subject="alice", profile=TLS_CLIENT)
    with pytest.raises(CertificateVerificationError) as info:
        km.pki.verify(cert, purpose=Purpose.CODE_SIGNING)
    assert _reason(info) is VerificationFailure.WRONG_USAGE


def test_client_certificate_matches_common_name(
    km: KeyManager, issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(public_key=leaf_key.public_key(), subject="alice", profile=TLS_CLIENT)
    path = km.pki.verify(cert, purpose=Purpose.TLS_CLIENT, name="alice")
    assert path.name == "alice"


@pytest.mark.parametrize("purpose", [Purpose.TLS_SERVER, Purpose.TLS_CLIENT])
def test_name_mismatch_is_reported(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker, purpose: Purpose
) -> None:
    profile = "tls-server" if purpose is Purpose.TLS_SERVER else "tls-client"
    cert = issuing.issue(make_csr(), profile=profile)
    with pytest.raises(CertificateVerificationError) as info:
        km.pki.verify(cert, purpose=purpose, name="evil.example.org")
    assert _reason(info) is VerificationFailure.NAME_MISMATCH


def test_unknown_issuer_is_reported(km: KeyManager, make_csr: CSRMaker) -> None:
    km.pki.create_root_ca("root")
    with in_memory_manager(seed=9) as other:
        foreign = other.pki.create_root_ca("elsewhere").issue(make_csr())
    with pytest.raises(CertificateVerificationError) as info:
        km.pki.verify(foreign)
    assert _reason(info) is VerificationFailure.UNKNOWN_ISSUER


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ed25519"])
def test_name_constraints_are_enforced(km: KeyManager, make_csr: CSRMaker, key_type: str) -> None:
    root = km.pki.create_root_ca("root", key_type=key_type)
    sub = root.create_intermediate("sub", key_type=key_type, permitted_names=["example.com"])
    ok = sub.issue(make_csr(names=("www.example.com",)))
    # issue() refuses names outside the constraints; go underneath it to get a bad one.
    csr = make_csr(names=("www.example.org",))
    bad = sub._issue(
        profile=TLS_SERVER,
        subject=csr.subject,
        public_key=csr.public_key(),  # type: ignore[arg-type]
        names=[x509.DNSName("www.example.org")],
        validity=None,
        not_before=None,
    )
    km.pki.verify(ok)
    with pytest.raises(CertificateVerificationError) as info:
        km.pki.verify(bad)
    assert _reason(info) is VerificationFailure.NAME_CONSTRAINTS


def test_naive_time_is_refused(km: KeyManager, root: CertificateAuthority) -> None:
    with pytest.raises(InvalidArgumentError, match="naive"):
        km.pki.verify(root.certificate, at=_dt.datetime(2030, 1, 1))


# -- foreign trust anchors: revocation from CRLs and OCSP -----------------------------


@pytest.fixture
def foreign() -> tuple[KeyManager, CertificateAuthority, CertificateAuthority]:
    other = in_memory_manager(seed=5)
    root = other.pki.create_root_ca("froot")
    return other, root, root.create_intermediate("fsub")


def test_foreign_chain_without_status_fails_closed(
    km: KeyManager,
    make_csr: CSRMaker,
    foreign: tuple[KeyManager, CertificateAuthority, CertificateAuthority],
) -> None:
    _, root, sub = foreign
    cert = sub.issue(make_csr())
    with pytest.raises(CertificateVerificationError, match="no revocation status") as info:
        km.pki.verify(cert, intermediates=[sub.certificate], trust_anchors=[root.certificate])
    assert _reason(info) is VerificationFailure.REVOCATION_UNKNOWN


def test_foreign_chain_soft_fail_accepts_unknown_status(
    km: KeyManager,
    make_csr: CSRMaker,
    foreign: tuple[KeyManager, CertificateAuthority, CertificateAuthority],
) -> None:
    _, root, sub = foreign
    cert = sub.issue(make_csr())
    path = km.pki.verify(
        cert,
        intermediates=[sub.certificate],
        trust_anchors=[root.certificate],
        policy=RevocationPolicy.SOFT_FAIL,
    )
    assert path.revocation == (RevocationSource.UNKNOWN, RevocationSource.UNKNOWN)


def test_foreign_chain_with_crls_checks_every_certificate(
    km: KeyManager,
    make_csr: CSRMaker,
    foreign: tuple[KeyManager, CertificateAuthority, CertificateAuthority],
) -> None:
    _, root, sub = foreign
    good = sub.issue(make_csr())
    # Its own key: a key-compromise revokes every certificate of the key.
    other_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    bad = sub.issue(public_key=other_key, subject="www", names=["www.example.com"])
    sub.revoke(bad.serial_number, "key-compromise")
    crls = [sub.crl(), root.crl()]
    kwargs = {"intermediates": [sub.certificate], "trust_anchors": [root.certificate], "crls": crls}
    path = km.pki.verify(good, **kwargs)  # type: ignore[arg-type]
    assert path.revocation == (RevocationSource.CRL, RevocationSource.CRL)
    with pytest.raises(CertificateRevokedError) as info:
        km.pki.verify(bad, **kwargs)  # type: ignore[arg-type]
    assert info.value.reason is RevocationReason.KEY_COMPROMISE  # type: ignore[attr-defined]


def test_delta_crl_revocation_is_honoured(
    km: KeyManager,
    make_csr: CSRMaker,
    foreign: tuple[KeyManager, CertificateAuthority, CertificateAuthority],
) -> None:
    _, root, sub = foreign
    cert = sub.issue(make_csr())
    base = sub.crl()
    sub.revoke(cert.serial_number, "superseded")
    delta = sub.crl(delta=True)
    with pytest.raises(CertificateRevokedError):
        km.pki.verify(
            cert,
            intermediates=[sub.certificate],
            trust_anchors=[root.certificate],
            crls=[base, delta, root.crl()],
        )


def test_stale_crl_is_no_source(
    km: KeyManager,
    clock: FakeClock,
    make_csr: CSRMaker,
    foreign: tuple[KeyManager, CertificateAuthority, CertificateAuthority],
) -> None:
    _, root, sub = foreign
    cert = sub.issue(make_csr())
    crls = [sub.crl(), root.crl()]
    with pytest.raises(CertificateVerificationError) as info:
        km.pki.verify(
            cert,
            intermediates=[sub.certificate],
            trust_anchors=[root.certificate],
            crls=crls,
            at=clock.now() + _dt.timedelta(days=3),
        )
    assert _reason(info) is VerificationFailure.REVOCATION_UNKNOWN


def test_foreign_chain_with_ocsp_responses(
    km: KeyManager,
    make_csr: CSRMaker,
    foreign: tuple[KeyManager, CertificateAuthority, CertificateAuthority],
) -> None:
    _other, root, sub = foreign
    cert = sub.issue(make_csr())
    responses = [
        sub.ocsp_respond(build_ocsp_request(cert, sub.certificate)),
        root.ocsp_respond(build_ocsp_request(sub.certificate, root.certificate)),
    ]
    path = km.pki.verify(
        cert,
        intermediates=[sub.certificate],
        trust_anchors=[root.certificate],
        ocsp_responses=responses,
    )
    assert path.revocation == (RevocationSource.OCSP, RevocationSource.OCSP)
    sub.revoke(cert.serial_number, "privilege-withdrawn")
    revoked = [sub.ocsp_respond(build_ocsp_request(cert, sub.certificate)), responses[1]]
    with pytest.raises(CertificateRevokedError):
        km.pki.verify(
            cert,
            intermediates=[sub.certificate],
            trust_anchors=[root.certificate],
            ocsp_responses=revoked,
        )


def test_certificate_on_hold_is_refused_until_released(
    km: KeyManager, issuing: CertificateAuthority, make_csr: CSRMaker
) -> None:
    cert = issuing.issue(make_csr())
    issuing.revoke(cert.serial_number, "certificate-hold")
    with pytest.raises(CertificateRevokedError):
        km.pki.verify(cert)
    issuing.release_hold(cert.serial_number)
    assert km.pki.verify(cert).leaf == cert


def test_verifier_needs_trust_anchors() -> None:
    with pytest.raises(InvalidArgumentError, match="trust anchor"):
        CertificateVerifier(trust_anchors=[])


def test_ed25519_foreign_chain_with_crls(km: KeyManager, make_csr: CSRMaker) -> None:
    other = in_memory_manager(seed=6)
    root = other.pki.create_root_ca("eroot", key_type="ed25519")
    sub = root.create_intermediate("esub", key_type="ed25519")
    cert = sub.issue(make_csr())
    kwargs = {"intermediates": [sub.certificate], "trust_anchors": [root.certificate]}
    path = km.pki.verify(cert, crls=[sub.crl(), root.crl()], **kwargs)  # type: ignore[arg-type]
    assert path.engine == "keymgmt-eddsa"
    assert path.revocation == (RevocationSource.CRL, RevocationSource.CRL)
    sub.revoke(cert.serial_number, "key-compromise")
    with pytest.raises(CertificateRevokedError):
        km.pki.verify(cert, crls=[sub.crl(), root.crl()], **kwargs)  # type: ignore[arg-type]


# -- a store-less verifier with its own revocation lookup -----------------------------


def test_store_less_verifier_asks_its_lookup_for_every_certificate_below_the_anchor(
    make_csr: CSRMaker,
    foreign: tuple[KeyManager, CertificateAuthority, CertificateAuthority],
) -> None:
    other, root, sub = foreign
    cert = sub.issue(make_csr())
    asked: list[tuple[int, int]] = []

    def lookup(issuer: x509.Certificate, checked: x509.Certificate) -> None:
        asked.append((issuer.serial_number, checked.serial_number))

    verifier = CertificateVerifier(trust_anchors=[root.certificate], registry=lookup)
    path = verifier.verify(cert, intermediates=[sub.certificate], at=other.clock.now())
    assert asked == [
        (sub.certificate.serial_number, cert.serial_number),
        (root.certificate.serial_number, sub.certificate.serial_number),
    ]
    assert path.revocation == (RevocationSource.REGISTRY, RevocationSource.REGISTRY)


def test_a_lookup_answering_a_reason_revokes_whatever_the_time(
    make_csr: CSRMaker,
    foreign: tuple[KeyManager, CertificateAuthority, CertificateAuthority],
) -> None:
    other, root, sub = foreign
    cert = sub.issue(make_csr())
    verifier = CertificateVerifier(
        trust_anchors=[root.certificate],
        registry=lambda issuer, checked: RevocationReason.SUPERSEDED if checked == cert else None,
    )
    with pytest.raises(CertificateRevokedError) as info:
        verifier.verify(cert, intermediates=[sub.certificate], at=other.clock.now())
    assert info.value.reason is RevocationReason.SUPERSEDED  # type: ignore[attr-defined]
    assert info.value.serial == cert.serial_number  # type: ignore[attr-defined]


def test_a_lookup_without_a_say_leaves_the_status_to_crls(
    make_csr: CSRMaker,
    foreign: tuple[KeyManager, CertificateAuthority, CertificateAuthority],
) -> None:
    other, root, sub = foreign
    cert = sub.issue(make_csr())
    verifier = CertificateVerifier(
        trust_anchors=[root.certificate], registry=lambda issuer, checked: NOT_OURS
    )
    with pytest.raises(CertificateVerificationError) as info:
        verifier.verify(cert, intermediates=[sub.certificate], at=other.clock.now())
    assert _reason(info) is VerificationFailure.REVOCATION_UNKNOWN
    path = verifier.verify(
        cert, intermediates=[sub.certificate], crls=[root.crl(), sub.crl()], at=other.clock.now()
    )
    assert path.revocation == (RevocationSource.CRL, RevocationSource.CRL)
