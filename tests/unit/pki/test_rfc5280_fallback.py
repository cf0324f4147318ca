"""ECDSA/RSA chains cryptography's profile refuses: the strict RFC 5280 validator decides.

The chains are hand-made with ``cryptography`` (keymgmt's CAs never issue
them): RFC 5280-valid paths outside the CA/Browser Forum profile are
accepted through ``engine == "keymgmt-rfc5280"``, with revocation asked for
every certificate of the path; what both refuse keeps a typed reason; the
algorithm policy is the same for both engines.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keymgmt.errors import CertificateRevokedError, CertificateVerificationError
from keymgmt.pki import CertificateVerifier, Purpose, VerificationFailure
from keymgmt.revocation import RevocationReason
from keymgmt.testing._pki import key_usage
from keymgmt.testing._pki import name as _name

NOW = _dt.datetime(2030, 1, 1, tzinfo=_dt.UTC)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _cert(
    cn: str,
    key: PrivateKey,
    issuer: tuple[str, PrivateKey] | None = None,
    *,
    ca: bool = True,
    bc_critical: bool = True,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    issuer_cn, issuer_key = issuer or (cn, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer_cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - _dt.timedelta(days=1))
        .not_valid_after(NOW + _dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=bc_critical)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            key_usage(ca=True),
            critical=True,
        )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def keys() -> dict[str, ec.EllipticCurvePrivateKey]:
    """P-256 keys for root, intermediate and leaf."""
    return {n: ec.generate_private_key(ec.SECP256R1()) for n in ("root", "sub", "leaf")}


def _server_leaf(keys: dict[str, ec.EllipticCurvePrivateKey], name: str) -> x509.Certificate:
    return _cert(
        "leaf",
        keys["leaf"],
        ("sub", keys["sub"]),
        ca=False,
        extensions=[
            (x509.SubjectAlternativeName([x509.DNSName(name)]), False),
            (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )


def test_non_critical_basic_constraints_take_the_rfc5280_engine(
    keys: dict[str, ec.EllipticCurvePrivateKey],
) -> None:
    root = _cert("root", keys["root"])
    sub = _cert("sub", keys["sub"], ("root", keys["root"]), bc_critical=False)
    leaf = _cert("leaf", keys["leaf"], ("sub", keys["sub"]), ca=False)
    asked: list[str] = []

    def lookup(issuer: x509.Certificate, cert: x509.Certificate) -> None:
        asked.append(cert.subject.rfc4514_string())

    verifier = CertificateVerifier(trust_anchors=[root], registry=lookup)
    path = verifier.verify(leaf, intermediates=[sub], at=NOW)
    assert path.engine == "keymgmt-rfc5280"
    assert path.chain == (leaf, sub, root)
    assert asked == ["CN=leaf", "CN=sub"]  # revocation for every certificate below the anchor


def test_revocation_applies_on_the_rfc5280_engines_path(
    keys: dict[str, ec.EllipticCurvePrivateKey],
) -> None:
    root = _cert("root", keys["root"])
    sub = _cert("sub", keys["sub"], ("root", keys["root"]), bc_critical=False)
    leaf = _cert("leaf", keys["leaf"], ("sub", keys["sub"]), ca=False)

    def lookup(issuer: x509.Certificate, cert: x509.Certificate) -> RevocationReason | None:
        return RevocationReason.KEY_COMPROMISE if cert == sub else None

    verifier = CertificateVerifier(trust_anchors=[root], registry=lookup)
    with pytest.raises(CertificateRevokedError):
        verifier.verify(leaf, intermediates=[sub], at=NOW)


def test_a_ca_certificate_as_leaf_is_accepted(
    keys: dict[str, ec.EllipticCurvePrivateKey],
) -> None:
    root = _cert("root", keys["root"])
    ca_leaf = _cert("sub", keys["sub"], ("root", keys["root"]))
    verifier = CertificateVerifier(trust_anchors=[root], registry=lambda issuer, cert: None)
    assert verifier.verify(ca_leaf, at=NOW).engine == "keymgmt-rfc5280"


def test_wildcard_server_name_matches_on_the_rfc5280_engine(
    keys: dict[str, ec.EllipticCurvePrivateKey],
) -> None:
    root = _cert("root", keys["root"])
    sub = _cert("sub", keys["sub"], ("root", keys["root"]), bc_critical=False)
    leaf = _server_leaf(keys, "*.example.com")
    verifier = CertificateVerifier(trust_anchors=[root], registry=lambda issuer, cert: None)
    path = verifier.verify(
        leaf, intermediates=[sub], at=NOW, purpose=Purpose.TLS_SERVER, name="www.example.com"
    )
    assert path.engine == "keymgmt-rfc5280"
    for wrong in ("example.com", "a.b.example.com", "www.example.org"):
        with pytest.raises(CertificateVerificationError) as caught:
            verifier.verify(
                leaf, intermediates=[sub], at=NOW, purpose=Purpose.TLS_SERVER, name=wrong
            )
        assert getattr(caught.value, "reason", None) is VerificationFailure.NAME_MISMATCH


def test_a_small_rsa_key_is_refused_by_both_engines(
    keys: dict[str, ec.EllipticCurvePrivateKey],
) -> None:
    root = _cert("root", keys["root"])
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    sub = _cert("sub", weak, ("root", keys["root"]), bc_critical=False)
    leaf = _cert("leaf", keys["leaf"], ("sub", weak), ca=False)
    verifier = CertificateVerifier(trust_anchors=[root], registry=lambda issuer, cert: None)
    with pytest.raises(CertificateVerificationError):
        verifier.verify(leaf, intermediates=[sub], at=NOW)


def test_expired_intermediate_says_expired_after_both_engines(
    keys: dict[str, ec.EllipticCurvePrivateKey],
) -> None:
    root = _cert("root", keys["root"])
    sub = _cert("sub", keys["sub"], ("root", keys["root"]))
    leaf = _cert("leaf", keys["leaf"], ("sub", keys["sub"]), ca=False)
    verifier = CertificateVerifier(trust_anchors=[root], registry=lambda issuer, cert: None)
    with pytest.raises(CertificateVerificationError) as caught:
        verifier.verify(leaf, intermediates=[sub], at=NOW + _dt.timedelta(days=60))
    assert getattr(caught.value, "reason", None) is VerificationFailure.EXPIRED
