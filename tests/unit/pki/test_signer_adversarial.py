"""The external-signing path under a hostile or broken token (software stand-ins).

What may never happen: a response or certificate that names one key and is
signed by another, a signature the CA key did not make, or anything signed
by the throwaway draft key leaving the module.
"""

from __future__ import annotations

import datetime as _dt

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from keymgmt.algorithms import Algorithm
from keymgmt.errors import IntegrityError
from keymgmt.pki._keys import CertificatePublicKey, algorithm_of
from keymgmt.pki._signer import replace_signature, sign_certificate, sign_crl, sign_ocsp
from keymgmt.testing import DEFAULT_START

NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "external ca")])


class Signer:
    """An ExternalSigner backed by an in-process ECDSA key (a token stand-in)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key
        self.signed: list[bytes] = []

    @property
    def algorithm(self) -> Algorithm:
        return algorithm_of(self.key)

    def public_key(self) -> CertificatePublicKey:
        return self.key.public_key()

    def sign(self, data: bytes) -> bytes:
        self.signed.append(data)
        curve = self.key.curve
        hash_algorithm = hashes.SHA384() if isinstance(curve, ec.SECP384R1) else hashes.SHA256()
        return self.key.sign(data, ec.ECDSA(hash_algorithm))


def _self_signed(key: ec.EllipticCurvePrivateKey, cn: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder(
            issuer_name=name,
            subject_name=name,
            public_key=key.public_key(),
            serial_number=1,
            not_valid_before=DEFAULT_START,
            not_valid_after=DEFAULT_START + _dt.timedelta(days=1),
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _ocsp_builder() -> ocsp.OCSPResponseBuilder:
    return ocsp.OCSPResponseBuilder().add_response_by_hash(
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


@pytest.fixture(scope="module")
def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_an_ocsp_response_cannot_name_a_responder_whose_key_did_not_sign_it(
    p256: ec.EllipticCurvePrivateKey,
) -> None:
    # The token holds the CA key; the responder certificate is another key's
    # (a delegated responder's): the response would name a key that did not sign it.
    signer = Signer(p256)
    other = _self_signed(ec.generate_private_key(ec.SECP256R1()), "delegated responder")
    with pytest.raises(ValueError):  # the software path refuses the same mismatch
        sign_ocsp(p256, _ocsp_builder(), responder=other)
    with pytest.raises(IntegrityError):
        sign_ocsp(signer, _ocsp_builder(), responder=other)
    assert signer.signed == []  # refused before the token signs anything


def test_an_ocsp_response_names_the_signer_when_the_responder_is_the_signer(
    p256: ec.EllipticCurvePrivateKey,
) -> None:
    ca = _self_signed(p256, "external ca")
    response = sign_ocsp(Signer(p256), _ocsp_builder(), responder=ca)
    assert (
        response.responder_key_hash
        == sign_ocsp(p256, _ocsp_builder(), responder=ca).responder_key_hash
    )
    assert response.certificates == []  # the throwaway key's certificate never travels


def test_the_throwaway_draft_signature_never_leaves(p256: ec.EllipticCurvePrivateKey) -> None:
    signer = Signer(p256)
    cert = sign_certificate(
        signer,
        x509.CertificateBuilder(
            issuer_name=NAME,
            subject_name=NAME,
            public_key=p256.public_key(),
            serial_number=9,
            not_valid_before=DEFAULT_START,
            not_valid_after=DEFAULT_START + _dt.timedelta(days=1),
        ),
    )
    crl = sign_crl(
        signer,
        x509.CertificateRevocationListBuilder(
            issuer_name=NAME,
            last_update=DEFAULT_START,
            next_update=DEFAULT_START + _dt.timedelta(days=1),
        ),
    )
    # Each signature verifies under the CA key over the very bytes the token signed.
    assert signer.signed == [cert.tbs_certificate_bytes, crl.tbs_certlist_bytes]
    p256.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    p256.public_key().verify(crl.signature, crl.tbs_certlist_bytes, ec.ECDSA(hashes.SHA256()))


def test_a_token_signature_with_trailing_bytes_fails_closed(
    p256: ec.EllipticCurvePrivateKey,
) -> None:
    class Trailing(Signer):
        def sign(self, data: bytes) -> bytes:
            return super().sign(data) + b"\x00"

    with pytest.raises(IntegrityError):
        sign_certificate(
            Trailing(p256),
            x509.CertificateBuilder(
                issuer_name=NAME,
                subject_name=NAME,
                public_key=p256.public_key(),
                serial_number=9,
                not_valid_before=DEFAULT_START,
                not_valid_after=DEFAULT_START + _dt.timedelta(days=1),
            ),
        )


def test_replace_signature_refuses_trailing_data_and_a_tbs_with_trailing_data(
    p256: ec.EllipticCurvePrivateKey,
) -> None:
    der = _self_signed(p256, "x").public_bytes(serialization.Encoding.DER)
    with pytest.raises(ValueError):
        replace_signature(der + b"\x00", b"sig")
    tbs = x509.load_der_x509_certificate(der).tbs_certificate_bytes
    with pytest.raises(ValueError):
        replace_signature(der, b"sig", tbs=tbs + b"\x00")


def test_a_signature_over_other_bytes_fails_closed(p256: ec.EllipticCurvePrivateKey) -> None:
    class Elsewhere(Signer):
        def sign(self, data: bytes) -> bytes:
            return super().sign(data + b"!")

    with pytest.raises(IntegrityError):
        sign_ocsp(Elsewhere(p256), _ocsp_builder(), responder=_self_signed(p256, "ca"))
    signature = Elsewhere(p256).sign(b"tbs")
    with pytest.raises(InvalidSignature):  # sanity: such a signature really is wrong
        p256.public_key().verify(signature, b"tbs", ec.ECDSA(hashes.SHA256()))
