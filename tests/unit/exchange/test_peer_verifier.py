"""ChainVerifier and PKIPeerVerifier (one PKI path validator) judge peer chains."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keymgmt import KeyManager
from keymgmt.errors import InvalidArgumentError, PeerVerificationError
from keymgmt.exchange import ChainVerifier, Credential, PeerRole, PeerVerifier, PKIPeerVerifier
from keymgmt.testing import FakeClock, ThrowawayCA

NOW = FakeClock().now()


def der(cred: Credential) -> list[bytes]:
    return list(cred.chain_der)


@pytest.fixture(scope="module")
def ca() -> ThrowawayCA:
    return ThrowawayCA("verifier test CA", now=NOW)


def refuse_reason(verifier: PeerVerifier, chain: list[bytes], **kwargs: object) -> str:
    args: dict[str, object] = {"expected_identity": None, "role": PeerRole.SERVER, "at": NOW}
    args.update(kwargs)
    with pytest.raises(PeerVerificationError) as info:
        verifier.verify_peer(chain, **args)  # type: ignore[arg-type]
    return str(info.value.reason)  # type: ignore[attr-defined]


def test_both_verifiers_satisfy_the_protocol(ca: ThrowawayCA) -> None:
    assert isinstance(ca.verifier(), PeerVerifier)


def test_identity_defaults_to_the_first_name(ca: ThrowawayCA) -> None:
    peer = ca.verifier().verify_peer(
        der(ca.issue("svc.example")), expected_identity=None, role=PeerRole.SERVER, at=NOW
    )
    assert peer.identity == "svc.example"
    assert peer.chain[-1] == ca.certificate


def test_names_match_case_insensitively(ca: ThrowawayCA) -> None:
    peer = ca.verifier().verify_peer(
        der(ca.issue("svc.example")), expected_identity="SVC.example", role=PeerRole.SERVER, at=NOW
    )
    assert peer.identity == "SVC.example"


@pytest.mark.parametrize("chain", [[], [b"x"] * 9])
def test_empty_or_overlong_chain_is_malformed(ca: ThrowawayCA, chain: list[bytes]) -> None:
    assert refuse_reason(ca.verifier(), chain) == "malformed-chain"


def test_garbage_certificate_is_malformed(ca: ThrowawayCA) -> None:
    assert refuse_reason(ca.verifier(), [b"\x30\x00"]) == "malformed-certificate"


def test_ca_certificate_presented_as_a_leaf_is_wrong_usage(ca: ThrowawayCA) -> None:
    intermediate = ThrowawayCA("sub", now=NOW, parent=ca)
    # Give the CA certificate an EKU-free path: refused before anything else.
    chain = [intermediate.certificate.public_bytes(Encoding.DER)]
    assert refuse_reason(ca.verifier(), chain) == "wrong-usage"


def test_issuer_that_is_not_a_ca_is_refused(ca: ThrowawayCA) -> None:
    # A leaf signed by another leaf's key, with that leaf offered as "intermediate".
    fake_issuer = ca.issue("issuer.example")
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf.example")]))
        .issuer_name(fake_issuer.chain[0].subject)
        .public_key(leaf_key.public_key())
        .serial_number(99)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("leaf.example")]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(fake_issuer.private_key, None)  # type: ignore[arg-type]
    )
    chain = [cert.public_bytes(Encoding.DER), fake_issuer.chain_der[0]]
    assert refuse_reason(ca.verifier(), chain) == "not-a-ca"


def test_expired_trust_anchor_is_refused() -> None:
    old = ThrowawayCA("old root", now=NOW - dt.timedelta(days=400))
    leaf = old.issue("svc.example", not_after=NOW + dt.timedelta(days=1))
    assert refuse_reason(old.verifier(), der(leaf)) == "expired"


def test_rsa_leaf_is_an_unsupported_key(ca: ThrowawayCA) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa.example")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca.key, None)
    )
    assert refuse_reason(ca.verifier(), [cert.public_bytes(Encoding.DER)]) == "unsupported-key"


def test_leaf_without_extended_key_usage_is_wrong_usage(ca: ThrowawayCA) -> None:
    cred = ca.issue("noeku.example", server=False, client=False)
    assert refuse_reason(ca.verifier(), der(cred)) == "wrong-usage"


def test_leaf_without_san_is_named_by_its_common_name(ca: ThrowawayCA) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cn-only")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(8)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .sign(ca.key, None)
    )
    peer = ca.verifier().verify_peer(
        [cert.public_bytes(Encoding.DER)], expected_identity=None, role=PeerRole.CLIENT, at=NOW
    )
    assert peer.identity == "cn-only"


def test_chain_verifier_needs_an_anchor() -> None:
    with pytest.raises(InvalidArgumentError, match="trust anchor"):
        ChainVerifier([])


def test_chain_verifier_revocation_callback_must_answer_an_rfc_5280_reason(
    ca: ThrowawayCA,
) -> None:
    verifier = ChainVerifier([ca.certificate], revoked=lambda cert, issuer: "naughty")
    with pytest.raises(InvalidArgumentError, match="not an RFC 5280 reason"):
        verifier.verify_peer(
            der(ca.issue("svc.example")), expected_identity=None, role=PeerRole.SERVER, at=NOW
        )


def test_chain_verifier_is_the_pki_verifier_over_its_anchors(ca: ThrowawayCA) -> None:
    peer = ChainVerifier([ca.certificate], revoked=lambda cert, issuer: None).verify_peer(
        der(ca.issue("svc.example")), expected_identity=None, role=PeerRole.SERVER, at=NOW
    )
    assert isinstance(ca.verifier(), PKIPeerVerifier)
    assert peer.chain[-1] == ca.certificate


def test_credential_needs_a_leaf() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidArgumentError, match="at least the leaf"):
        Credential([], key)


def test_p384_credential_signs_verifiably(ca: ThrowawayCA) -> None:
    from keymgmt.exchange.handshake._verify import verify_signature

    cred = ca.issue("p384.example", key=ec.generate_private_key(ec.SECP384R1()))
    public = cred.chain[0].public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert verify_signature(public, cred.sign(b"data"), b"data")
    assert not verify_signature(public, cred.sign(b"data"), b"other")


def test_pki_verifier_refuses_an_empty_chain(km: KeyManager) -> None:
    km.pki.create_root_ca("root", key_type="ed25519")  # the verifier needs a trust anchor
    verifier = km.exchange.peer_verifier()
    assert isinstance(verifier, PKIPeerVerifier)
    assert refuse_reason(verifier, [], at=km.clock.now()) == "malformed-chain"


def test_leaf_whose_key_usage_forbids_signing_is_wrong_usage(ca: ThrowawayCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ka.example")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(9)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .sign(ca.key, None)
    )
    assert refuse_reason(ca.verifier(), [cert.public_bytes(Encoding.DER)]) == "wrong-usage"
