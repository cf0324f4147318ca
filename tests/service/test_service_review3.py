"""Third review of the service: regression tests for what it found (real server, real TLS)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keymgmt import KeyManager
from keymgmt.server import principal_of

from .conftest import HttpFactory, Material, _write_leaf

# -- request bodies -------------------------------------------------------------

_NESTED = b"[" * 50_000  # under the session server's 64 KiB body limit


@pytest.mark.parametrize(
    "path",
    [
        "/v1/transit/keys/app-nested/encrypt",  # the transit fast path
        "/v1/transit/keys",
        "/v1/revocations",  # routed by Starlette
        "/v1/pki/cas/issuing/sign",
    ],
)
def test_deeply_nested_json_is_a_json_400_not_a_500(http: HttpFactory, path: str) -> None:
    client = http("admin" if path == "/v1/revocations" else "app-1")
    response = client.post(path, content=_NESTED)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "malformed_input"
    assert client.get("/v1/health").status_code == 200


# -- CSR signing: the names checked are the names certified ----------------------


def _csr(names: list[x509.GeneralName], subject: x509.Name) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


@pytest.fixture(scope="module")
def mixed_case(material: Material) -> Material:
    """A client certificate for principal ``app-Mallory`` (allowed to sign ``{principal}``)."""
    with KeyManager.open(material.store, key_file=material.key_file) as km:
        issued = _write_leaf(material.directory, "app-Mallory", km.pki.ca("issuing"), "app-Mallory")
    material.clients["app-Mallory"] = issued
    return material


def test_csr_whose_dns_name_the_ca_lowercases_into_another_principal_is_denied(
    http: HttpFactory, mixed_case: Material
) -> None:
    client = http("app-Mallory")
    assert client.get("/v1/whoami").json()["principal"] == "app-Mallory"
    # An empty subject and one DNS name spelled like the caller: the CA
    # certifies DNS names lowercased, so the certificate would name the
    # principal "app-mallory" -- someone else.
    pem = _csr([x509.DNSName("app-Mallory")], x509.Name([]))
    response = client.post("/v1/pki/cas/issuing/sign", json={"csr": pem, "profile": "tls-client"})
    if response.status_code == 201:  # what it used to do
        issued = x509.load_pem_x509_certificate(response.json()["certificate"].encode())
        assert principal_of(issued) == "app-Mallory", principal_of(issued)
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "access_denied"


def test_csr_names_are_matched_as_the_ca_will_certify_them(
    http: HttpFactory, material: Material
) -> None:
    # "APP-1" is certified as "app-1": the caller's own name, so it is signed.
    pem = _csr([x509.DNSName("APP-1")], x509.Name([]))
    response = http("app-1").post(
        "/v1/pki/cas/issuing/sign", json={"csr": pem, "profile": "tls-client"}
    )
    assert response.status_code == 201
    issued = x509.load_pem_x509_certificate(response.json()["certificate"].encode())
    assert principal_of(issued) == "app-1"
