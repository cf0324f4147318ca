"""Which CRLs may speak for a certificate (RFC 5280 6.3.3 b): adversarial cases.

A distribution point without a cRLIssuer names a CRL of the certificate's
own issuer; only a point that names a cRLIssuer lets another CA's (indirect)
CRL speak. Another CA's CRL must never make a revoked certificate look
good, alone or beside the real one.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from keymgmt.errors import CertificateRevokedError, CertificateVerificationError
from keymgmt.pki import NOT_OURS, CertificateVerifier, VerificationFailure
from keymgmt.testing._pki import key_usage
from keymgmt.testing._pki import name as _name

NOW = _dt.datetime(2030, 1, 1, tzinfo=_dt.UTC)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = True,
    extensions: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - _dt.timedelta(days=1))
        .not_valid_after(NOW + _dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(key_usage(ca=True), critical=True)
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _crl(
    issuer: str,
    key: ec.EllipticCurvePrivateKey,
    number: int,
    revoked: Sequence[int] = (),
    idp: x509.IssuingDistributionPoint | None = None,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name(issuer))
        .last_update(NOW - _dt.timedelta(hours=1))
        .next_update(NOW + _dt.timedelta(days=1))
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    if idp is not None:
        builder = builder.add_extension(idp, critical=True)
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(NOW - _dt.timedelta(hours=2))
            .build()
        )
    return builder.sign(key, hashes.SHA256())


class World:
    """A root, the leaf's issuer "sub", another CA "x", and a leaf whose CDP names both."""

    def __init__(self) -> None:
        keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("root", "sub", "x", "leaf")}
        self.keys = keys
        self.root = _cert("root", keys["root"], "root", keys["root"])
        self.sub = _cert("sub", keys["sub"], "root", keys["root"])
        self.x = _cert("x", keys["x"], "root", keys["root"])
        points = x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    full_name=[x509.UniformResourceIdentifier("http://sub.example/crl")],
                    relative_name=None,
                    reasons=None,
                    crl_issuer=None,
                ),
                x509.DistributionPoint(
                    full_name=None,
                    relative_name=None,
                    reasons=None,
                    crl_issuer=[x509.DirectoryName(_name("x"))],
                ),
            ]
        )
        self.leaf = _cert("leaf", keys["leaf"], "sub", keys["sub"], ca=False, extensions=[points])

    def verify(self, crls: Sequence[x509.CertificateRevocationList]) -> object:
        leaf = self.leaf
        verifier = CertificateVerifier(
            trust_anchors=[self.root],
            intermediates=[self.x],
            # The CAs are known good; the leaf's status must come from the CRLs.
            registry=lambda issuer, cert: NOT_OURS if cert == leaf else None,
        )
        return verifier.verify(leaf, intermediates=[self.sub], crls=crls, at=NOW)


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def test_the_issuers_crl_revokes_the_leaf(world: World) -> None:
    revoking = _crl("sub", world.keys["sub"], 1, [world.leaf.serial_number])
    with pytest.raises(CertificateRevokedError):
        world.verify([revoking])


def test_another_cas_direct_crl_does_not_speak_for_the_leaf(world: World) -> None:
    # x's own (direct) CRL lists x's certificates, not sub's: the leaf's
    # status stays unknown, and REQUIRE refuses.
    unrelated = _crl("x", world.keys["x"], 5)
    with pytest.raises(CertificateVerificationError) as caught:
        world.verify([unrelated])
    assert getattr(caught.value, "reason", None) is VerificationFailure.REVOCATION_UNKNOWN


def test_another_cas_crl_cannot_hide_the_revocation_on_the_issuers_crl(world: World) -> None:
    revoking = _crl("sub", world.keys["sub"], 1, [world.leaf.serial_number])
    unrelated = _crl("x", world.keys["x"], 5)  # a higher CRL number
    with pytest.raises(CertificateRevokedError):
        world.verify([revoking, unrelated])


def test_an_indirect_crl_of_the_named_crl_issuer_speaks_for_the_leaf(world: World) -> None:
    indirect = x509.IssuingDistributionPoint(
        full_name=None,
        relative_name=None,
        only_contains_user_certs=False,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=True,
        only_contains_attribute_certs=False,
    )
    good = _crl("x", world.keys["x"], 5, idp=indirect)
    assert world.verify([good]) is not None


def _indirect() -> x509.IssuingDistributionPoint:
    return x509.IssuingDistributionPoint(
        full_name=None,
        relative_name=None,
        only_contains_user_certs=False,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=True,
        only_contains_attribute_certs=False,
    )


def _entry(
    serial: int,
    issuer: str,
    reason: x509.ReasonFlags,
    revoked_at: _dt.datetime,
) -> x509.RevokedCertificate:
    return (
        x509.RevokedCertificateBuilder()
        .serial_number(serial)
        .revocation_date(revoked_at)
        .add_extension(x509.CertificateIssuer([x509.DirectoryName(_name(issuer))]), critical=True)
        .add_extension(x509.CRLReason(reason), critical=False)
        .build()
    )


def _indirect_crl(
    world: World,
    number: int,
    entries: Sequence[x509.RevokedCertificate],
    *,
    delta_of: int | None = None,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name("x"))
        .last_update(NOW - _dt.timedelta(hours=1))
        .next_update(NOW + _dt.timedelta(days=1))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(_indirect(), critical=True)
    )
    if delta_of is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
    for entry in entries:
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(world.keys["x"], hashes.SHA256())


def test_an_indirect_crl_entry_for_another_issuer_with_the_same_serial_does_not_stand_for_ours(
    world: World,
) -> None:
    # x's indirect CRL lists serial S twice: sub's certificate (key compromise,
    # in effect now) and then y's certificate of the same serial (superseded,
    # only in ten days). The leaf's status is sub's entry, not y's.
    serial = world.leaf.serial_number
    crl = _indirect_crl(
        world,
        7,
        [
            _entry(serial, "sub", x509.ReasonFlags.key_compromise, NOW - _dt.timedelta(hours=2)),
            _entry(serial, "y", x509.ReasonFlags.superseded, NOW + _dt.timedelta(days=10)),
        ],
    )
    with pytest.raises(CertificateRevokedError) as caught:
        world.verify([crl])
    assert caught.value.revoked_at == NOW - _dt.timedelta(hours=2)  # type: ignore[attr-defined]


def test_a_delta_removing_another_issuers_serial_does_not_unrevoke_ours(world: World) -> None:
    serial = world.leaf.serial_number
    base = _indirect_crl(
        world,
        7,
        [_entry(serial, "sub", x509.ReasonFlags.key_compromise, NOW - _dt.timedelta(hours=2))],
    )
    delta = _indirect_crl(
        world,
        8,
        [
            _entry(serial, "y", x509.ReasonFlags.remove_from_crl, NOW - _dt.timedelta(hours=1)),
            _entry(serial, "sub", x509.ReasonFlags.key_compromise, NOW - _dt.timedelta(hours=2)),
        ],
        delta_of=7,
    )
    with pytest.raises(CertificateRevokedError):
        world.verify([base, delta])


def test_a_delta_listing_only_another_issuers_serial_keeps_our_revocation(world: World) -> None:
    serial = world.leaf.serial_number
    base = _indirect_crl(
        world,
        7,
        [_entry(serial, "sub", x509.ReasonFlags.key_compromise, NOW - _dt.timedelta(hours=2))],
    )
    delta = _indirect_crl(
        world,
        8,
        [_entry(serial, "y", x509.ReasonFlags.superseded, NOW - _dt.timedelta(hours=1))],
        delta_of=7,
    )
    with pytest.raises(CertificateRevokedError):
        world.verify([base, delta])


def test_a_crl_signed_by_a_same_named_ca_under_another_trust_anchor_is_not_a_source() -> None:
    # RFC 5280 6.3.3 f: the CRL issuer's path must end at the certificate's
    # own trust anchor. A CA named like the issuer under another trusted root
    # cannot vouch that the leaf is not revoked.
    keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("r1", "r2", "sub", "fake", "leaf")}
    r1 = _cert("r1", keys["r1"], "r1", keys["r1"])
    r2 = _cert("r2", keys["r2"], "r2", keys["r2"])
    sub = _cert("sub", keys["sub"], "r1", keys["r1"])
    impostor = _cert("sub", keys["fake"], "r2", keys["r2"])
    leaf = _cert("leaf", keys["leaf"], "sub", keys["sub"], ca=False)
    forged = _crl("sub", keys["fake"], 99)  # "sub"'s CRL without the leaf
    verifier = CertificateVerifier(
        trust_anchors=[r1, r2],
        intermediates=[impostor],
        registry=lambda issuer, cert: NOT_OURS if cert == leaf else None,
    )
    with pytest.raises(CertificateVerificationError) as caught:
        verifier.verify(leaf, intermediates=[sub], crls=[forged], at=NOW)
    assert getattr(caught.value, "reason", None) is VerificationFailure.REVOCATION_UNKNOWN


def test_a_crl_signed_by_a_separate_crl_key_under_the_same_anchor_is_a_source() -> None:
    keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("r1", "sub", "crlkey", "leaf")}
    r1 = _cert("r1", keys["r1"], "r1", keys["r1"])
    sub = _cert("sub", keys["sub"], "r1", keys["r1"])
    crl_signer = _cert("sub", keys["crlkey"], "r1", keys["r1"])  # same name, CRL key
    leaf = _cert("leaf", keys["leaf"], "sub", keys["sub"], ca=False)
    revoking = _crl("sub", keys["crlkey"], 3, [leaf.serial_number])
    verifier = CertificateVerifier(
        trust_anchors=[r1],
        intermediates=[crl_signer],
        registry=lambda issuer, cert: NOT_OURS if cert == leaf else None,
    )
    with pytest.raises(CertificateRevokedError):
        verifier.verify(leaf, intermediates=[sub], crls=[revoking], at=NOW)
