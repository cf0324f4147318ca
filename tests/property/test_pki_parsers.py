"""Hostile DER into every PKI parser: only KeyMgmtError subclasses come out.

Each example takes a real object (a CSR, a certificate, a CRL, an OCSP
request or response made by keymgmt) and mutates its DER: flipped bytes,
truncation, insertions, overwritten lengths, or plain random bytes. The
loaders, issuance from a CSR, verification of a certificate and the OCSP
responder must either work or raise a :class:`KeyMgmtError` subclass — never
a foreign exception. The responder never raises at all: bad requests get a
``malformedRequest`` response.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from keymgmt import KeyManager
from keymgmt.errors import KeyMgmtError
from keymgmt.pki import (
    CertificateAuthority,
    build_ocsp_request,
    check_ocsp_response,
    load_certificate,
    load_certificates,
    load_crl,
    load_csr,
    load_ocsp_request,
    load_ocsp_response,
)
from keymgmt.testing import in_memory_manager


class World:
    """One small PKI shared by every example (building it per example is slow)."""

    def __init__(self) -> None:
        self.km: KeyManager = in_memory_manager(seed=77)
        self.root = self.km.pki.create_root_ca("root")
        self.ca: CertificateAuthority = self.root.create_intermediate("sub")
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz")]))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName("fuzz.example.com")]), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        self.cert = self.ca.issue(csr)
        self.ca.revoke(self.ca.issue(csr).serial_number, "key-compromise")
        request = build_ocsp_request(self.cert, self.ca.certificate, nonce=b"n" * 16)
        self.samples: dict[str, bytes] = {
            "csr": csr.public_bytes(Encoding.DER),
            "cert": self.cert.public_bytes(Encoding.DER),
            "crl": self.ca.crl().public_bytes(Encoding.DER),
            "ocsp-request": request,
            "ocsp-response": self.ca.ocsp_respond(request),
        }


_WORLD: World | None = None


def world() -> World:
    global _WORLD
    if _WORLD is None:
        _WORLD = World()
    return _WORLD


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> bytes:
    data = bytearray(world().samples[kind])
    how = draw(st.sampled_from(["flip", "truncate", "insert", "length", "random", "splice"]))
    if how == "random":
        return draw(st.binary(min_size=0, max_size=300))
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        if how == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif how == "length":
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x84, 0xFF]))
        else:
            data[at:] = draw(st.binary(max_size=64))
            break
    return bytes(data)


def _only_ours(fn: Callable[[], Any]) -> None:
    with contextlib.suppress(KeyMgmtError):
        fn()


@given(mutated("csr"))
def test_mutated_csr_raises_only_keymgmt_errors(data: bytes) -> None:
    _only_ours(lambda: load_csr(data))
    _only_ours(lambda: world().ca.issue(data))


@given(mutated("cert"))
def test_mutated_certificate_raises_only_keymgmt_errors(data: bytes) -> None:
    _only_ours(lambda: load_certificate(data))
    _only_ours(lambda: load_certificates(data))
    _only_ours(lambda: world().km.pki.verify(data))


@given(mutated("crl"))
def test_mutated_crl_raises_only_keymgmt_errors(data: bytes) -> None:
    w = world()

    def use() -> None:
        crl = load_crl(data)
        w.km.pki.verify(
            w.cert,
            intermediates=[w.ca.certificate],
            trust_anchors=[w.root.certificate],
            crls=[crl],
        )

    _only_ours(use)


@given(mutated("ocsp-request"))
def test_mutated_ocsp_request_gets_an_answer_never_an_exception(data: bytes) -> None:
    _only_ours(lambda: load_ocsp_request(data))
    response = world().ca.ocsp_respond(data)
    assert ocsp.load_der_ocsp_response(response).response_status in set(ocsp.OCSPResponseStatus)


@given(mutated("ocsp-response"))
def test_mutated_ocsp_response_raises_only_keymgmt_errors(data: bytes) -> None:
    w = world()
    _only_ours(lambda: load_ocsp_response(data))
    _only_ours(
        lambda: check_ocsp_response(data, cert=w.cert, issuer=w.ca.certificate, at=w.km.clock.now())
    )


@pytest.mark.parametrize("kind", ["csr", "cert", "crl", "ocsp-request", "ocsp-response"])
def test_unmutated_samples_parse(kind: str) -> None:
    loaders: dict[str, Callable[[bytes], object]] = {
        "csr": load_csr,
        "cert": load_certificate,
        "crl": load_crl,
        "ocsp-request": load_ocsp_request,
        "ocsp-response": load_ocsp_response,
    }
    assert loaders[kind](world().samples[kind]) is not None
