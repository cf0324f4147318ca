"""The PKI's one signing path: software keys, and external signers (keys in a token).

The external path (throwaway-key draft, TBS signed elsewhere, DER
re-assembled, verified) is exercised here with software stand-ins for the
token, so it runs everywhere; tests/integration/hsm runs it against SoftHSM2.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm
from keymgmt.errors import IntegrityError, TokenUnavailableError
from keymgmt.pki import CertStatus, build_ocsp_request, check_ocsp_response
from keymgmt.pki._keys import CertificatePublicKey, algorithm_of
from keymgmt.pki._signer import (
    der_read,
    der_tlv,
    replace_ocsp_signature,
    replace_signature,
    sign_certificate,
    sign_crl,
    sign_ocsp,
)
from keymgmt.testing import DEFAULT_START

NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "external ca")])


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class SoftwareSigner:
    """An ExternalSigner that signs with an in-process key (a token stand-in)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
        self.key = key
        self.calls = 0

    @property
    def algorithm(self) -> Algorithm:
        return algorithm_of(self.key)

    def public_key(self) -> CertificatePublicKey:
        return self.key.public_key()

    def sign(self, data: bytes) -> bytes:
        self.calls += 1
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        hash_algorithm = (
            hashes.SHA384() if isinstance(self.key.curve, ec.SECP384R1) else hashes.SHA256()
        )
        return self.key.sign(data, ec.ECDSA(hash_algorithm))


class WrongKeySigner(SoftwareSigner):
    """Claims one public key, signs with another (a token holding the wrong key)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, claimed: ec.EllipticCurvePrivateKey):
        super().__init__(key)
        self.claimed = claimed

    def public_key(self) -> CertificatePublicKey:
        return self.claimed.public_key()


def _builder(public_key: CertificatePublicKey) -> x509.CertificateBuilder:
    return x509.CertificateBuilder(
        issuer_name=NAME,
        subject_name=NAME,
        public_key=public_key,
        serial_number=1 << 70,
        not_valid_before=DEFAULT_START,
        not_valid_after=DEFAULT_START + _dt.timedelta(days=1),
    )


def _signers(rsa_key: rsa.RSAPrivateKey) -> list[SoftwareSigner]:
    return [
        SoftwareSigner(ec.generate_private_key(ec.SECP256R1())),
        SoftwareSigner(ec.generate_private_key(ec.SECP384R1())),
        SoftwareSigner(rsa_key),
    ]


# -- certificates, CRLs, OCSP through an external signer --------------------------------


def test_an_external_signer_signs_certificates_that_verify_under_its_key(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    for signer in _signers(rsa_key):
        cert = sign_certificate(signer, _builder(signer.public_key()))
        cert.verify_directly_issued_by(cert)
        assert signer.calls == 1
        expected = hashes.SHA384 if signer.algorithm is Algorithm.ECDSA_P384 else hashes.SHA256
        assert isinstance(cert.signature_hash_algorithm, expected)


def test_an_external_signer_signs_crls_that_verify_under_its_key(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    for signer in _signers(rsa_key):
        builder = x509.CertificateRevocationListBuilder(
            issuer_name=NAME,
            last_update=DEFAULT_START,
            next_update=DEFAULT_START + _dt.timedelta(days=1),
            revoked_certificates=[
                x509.RevokedCertificateBuilder()
                .serial_number(7)
                .revocation_date(DEFAULT_START)
                .build()
            ],
        )
        crl = sign_crl(signer, builder)
        assert crl.is_signature_valid(signer.public_key())
        assert [r.serial_number for r in crl] == [7]


def test_an_external_ocsp_response_names_the_real_responder_and_verifies() -> None:
    signer = SoftwareSigner(ec.generate_private_key(ec.SECP256R1()))
    ca = sign_certificate(signer, _builder(signer.public_key()))
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=b"\x01" * 32,
        issuer_key_hash=b"\x02" * 32,
        serial_number=5,
        algorithm=hashes.SHA256(),
        cert_status=ocsp.OCSPCertStatus.GOOD,
        this_update=DEFAULT_START,
        next_update=DEFAULT_START + _dt.timedelta(hours=1),
        revocation_time=None,
        revocation_reason=None,
    )
    response = sign_ocsp(signer, builder, responder=ca)
    software = sign_ocsp(signer.key, builder, responder=ca)
    assert response.responder_key_hash == software.responder_key_hash
    public = signer.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))


def test_a_signer_holding_another_key_fails_closed() -> None:
    claimed = ec.generate_private_key(ec.SECP256R1())
    signer = WrongKeySigner(ec.generate_private_key(ec.SECP256R1()), claimed)
    with pytest.raises(IntegrityError, match="does not verify under the CA public key"):
        sign_certificate(signer, _builder(claimed.public_key()))


def test_a_signer_returning_garbage_fails_closed() -> None:
    class Garbage(SoftwareSigner):
        def sign(self, data: bytes) -> bytes:
            return b"\x30\x03\x02\x01\x01"

    signer = Garbage(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(IntegrityError):
        sign_certificate(signer, _builder(signer.public_key()))


# -- the DER helpers ----------------------------------------------------------------------


@given(
    tag=st.integers(0, 255).filter(lambda t: t & 0x1F != 0x1F),
    content=st.binary(max_size=600),
)
def test_der_tlv_round_trips_through_der_read(tag: int, content: bytes) -> None:
    encoded = der_tlv(tag, content)
    assert der_read(encoded) == (tag, content, len(encoded))


@pytest.mark.parametrize("size", [0, 127, 128, 255, 256, 65535, 65536])
def test_der_tlv_uses_the_minimal_length_at_each_boundary(size: int) -> None:
    encoded = der_tlv(0x04, b"\x00" * size)
    header = len(encoded) - size
    assert header == (2 if size < 0x80 else 3 if size < 0x100 else 4 if size < 0x10000 else 5)
    assert der_read(encoded) == (0x04, b"\x00" * size, len(encoded))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x30", "truncated DER element"),
        (b"\x30\x05\x01", "truncated DER content"),
        (b"\x30\x81\x05\x00\x00\x00\x00\x00", "non-minimal DER length"),
        (b"\x30\x82\x00\x80" + b"\x00" * 128, "non-minimal DER length"),
        (b"\x30\x80\x00\x00", "indefinite or oversize DER length"),
        (b"\x1f\x01\x00", "multi-byte DER tags"),
        (b"\x30\x82\x01", "truncated DER length"),
    ],
)
def test_der_read_refuses_malformed_elements(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        der_read(data)


def test_replace_signature_keeps_tbs_and_algorithm_and_swaps_the_bit_string() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _builder(key.public_key()).sign(key, hashes.SHA256())
    der = cert.public_bytes(serialization.Encoding.DER)
    new, tbs = replace_signature(der, b"\xaa\xbb")
    assert tbs == cert.tbs_certificate_bytes
    parsed = x509.load_der_x509_certificate(new)
    assert parsed.tbs_certificate_bytes == cert.tbs_certificate_bytes
    assert parsed.signature == b"\xaa\xbb"


@pytest.mark.parametrize(
    "data",
    [
        der_tlv(0x30, der_tlv(0x30, b"") + der_tlv(0x30, b"")),  # no signature
        der_tlv(0x30, der_tlv(0x30, b"") + der_tlv(0x30, b"") + der_tlv(0x04, b"")),
        der_tlv(0x31, der_tlv(0x30, b"") + der_tlv(0x30, b"") + der_tlv(0x03, b"\x00")),
        der_tlv(0x30, der_tlv(0x30, b"") + der_tlv(0x30, b"") + der_tlv(0x03, b"\x00")) + b"\x00",
    ],
)
def test_replace_signature_refuses_what_is_not_a_signed_sequence(data: bytes) -> None:
    with pytest.raises(ValueError):
        replace_signature(data, b"\x01")


def test_replace_ocsp_signature_refuses_an_unsuccessful_response() -> None:
    unsuccessful = ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus.INTERNAL_ERROR
    ).public_bytes(serialization.Encoding.DER)
    with pytest.raises(ValueError, match="responseBytes"):
        replace_ocsp_signature(unsuccessful, b"\x01")


# -- the PKI with a token stand-in (no HSM needed) ---------------------------------------


class FakeToken:
    """A Pkcs11Token stand-in: keys in memory, the same sign() contract."""

    def __init__(self, label: str = "fake") -> None:
        self.token_label = label
        self.closed = False
        self.keys: dict[tuple[str, bytes], Any] = {}
        self.signatures = 0

    def generate_signing_key(self, algorithm: Algorithm, *, label: str, key_id: bytes) -> bytes:
        curve = ec.SECP384R1() if algorithm is Algorithm.ECDSA_P384 else ec.SECP256R1()
        key = ec.generate_private_key(curve)
        self.keys[(label, key_id)] = key
        return key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, data: bytes, *, algorithm: Algorithm, label: str, key_id: bytes) -> bytes:
        if self.closed:
            raise TokenUnavailableError("closed", token=self.token_label)
        self.signatures += 1
        signer = SoftwareSigner(self.keys[(label, key_id)])
        return signer.sign(data)


def test_a_ca_with_a_token_stand_in_signs_everything_through_the_token(km: KeyManager) -> None:
    token = FakeToken()
    root = km.pki.create_root_ca("root", token=token)  # type: ignore[arg-type]
    sub = root.create_intermediate("sub", token=token, key_type="ecdsa-p384")  # type: ignore[arg-type]
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    cert = sub.issue(public_key=leaf_key.public_key(), subject="svc", names=["svc.example"])
    km.pki.verify(cert, name="svc.example")
    crl = sub.crl()
    assert crl.is_signature_valid(sub.certificate.public_key())  # type: ignore[arg-type]
    response = sub.ocsp_respond(build_ocsp_request(cert, sub.certificate))
    status = check_ocsp_response(response, cert=cert, issuer=sub.certificate, at=DEFAULT_START)
    assert status.status is CertStatus.GOOD
    # root self-signed, sub's certificate, the leaf, the CRL, the OCSP response
    assert token.signatures == 5
    assert sub.key_ref.startswith("pkcs11:sub#")


def test_a_reopened_pki_needs_the_token_attached(km: KeyManager) -> None:
    token = FakeToken()
    km.pki.create_root_ca("root", token=token)  # type: ignore[arg-type]
    fresh = type(km.pki)(km._context, km.keys)
    with pytest.raises(TokenUnavailableError, match="not attached"):
        fresh.ca("root").crl()
    fresh.use_token(token)  # type: ignore[arg-type]
    assert fresh.ca("root").crl().is_signature_valid(fresh.ca("root").certificate.public_key())  # type: ignore[arg-type]
