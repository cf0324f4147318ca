"""Adversarial chains for the strict RFC 5280 validator (the fallback and EdDSA engines).

Each test builds a chain the fast path (cryptography's verifier) refuses or
never sees, and checks the strict validator does not accept it for the
wrong reason: what the fast path refuses on grounds RFC 5280 or the
verifier's own contract also forbid must stay refused on the fallback.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keymgmt.errors import CertificateVerificationError
from keymgmt.pki import CertificateVerifier, Purpose, VerificationFailure, VerifiedPath

NOW = _dt.datetime(2030, 1, 1, tzinfo=_dt.UTC)


class Keys:
    """P-256 keys, one per role, made once for the module."""

    def __init__(self) -> None:
        self.root = ec.generate_private_key(ec.SECP256R1())
        self.sub = ec.generate_private_key(ec.SECP256R1())
        self.leaf = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
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
        builder = builder.add_extension(_ca_usage(), critical=True)
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _server_leaf(keys: Keys, *names: x509.GeneralName) -> x509.Certificate:
    return _cert(
        "leaf",
        keys.leaf,
        "sub",
        keys.sub,
        ca=False,
        extensions=[
            (x509.SubjectAlternativeName(list(names)), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )


def _verify(
    keys: Keys,
    leaf: x509.Certificate,
    sub_extensions: Sequence[tuple[x509.ExtensionType, bool]],
    **kwargs: object,
) -> VerifiedPath:
    root = _cert("root", keys.root, "root", keys.root, ca=True)
    sub = _cert("sub", keys.sub, "root", keys.root, ca=True, extensions=sub_extensions)
    verifier = CertificateVerifier(trust_anchors=[root], registry=lambda issuer, cert: None)
    return verifier.verify(leaf, intermediates=[sub], at=NOW, **kwargs)  # type: ignore[arg-type]


def _refusal(
    keys: Keys,
    leaf: x509.Certificate,
    sub_extensions: Sequence[tuple[x509.ExtensionType, bool]],
    **kwargs: object,
) -> object:
    with pytest.raises(CertificateVerificationError) as caught:
        _verify(keys, leaf, sub_extensions, **kwargs)
    return getattr(caught.value, "reason", None)


# -- extended key usage on the CAs of the path -------------------------------------


def test_an_intermediate_restricted_to_code_signing_cannot_vouch_for_a_tls_server(
    keys: Keys,
) -> None:
    code_only = [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)]
    leaf = _server_leaf(keys, x509.DNSName("www.example.com"))
    reason = _refusal(keys, leaf, code_only, purpose=Purpose.TLS_SERVER, name="www.example.com")
    assert reason is VerificationFailure.WRONG_USAGE


def test_an_intermediate_restricted_to_code_signing_cannot_vouch_for_an_unnamed_server(
    keys: Keys,
) -> None:
    code_only = [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)]
    leaf = _server_leaf(keys, x509.DNSName("www.example.com"))
    assert _refusal(keys, leaf, code_only, purpose=Purpose.TLS_SERVER) is (
        VerificationFailure.WRONG_USAGE
    )


def test_an_intermediate_allowing_the_purpose_still_verifies(keys: Keys) -> None:
    server = [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)]
    leaf = _server_leaf(keys, x509.DNSName("www.example.com"))
    path = _verify(keys, leaf, server, purpose=Purpose.TLS_SERVER)
    assert path.leaf == leaf


def test_an_intermediate_with_any_extended_key_usage_allows_every_purpose(keys: Keys) -> None:
    anything = [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]), False)]
    leaf = _server_leaf(keys, x509.DNSName("www.example.com"))
    path = _verify(keys, leaf, anything, purpose=Purpose.TLS_SERVER, name="www.example.com")
    assert path.leaf == leaf
