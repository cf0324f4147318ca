"""The PKI through the service: CA certificates, CRLs with cache headers, CSR signing, OCSP."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import socket
import ssl
from urllib.parse import quote, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from keymgmt.client import KeyServiceClient
from keymgmt.errors import AccessDeniedError
from keymgmt.pki import build_ocsp_request

from .conftest import HttpFactory, Material, ServerProcess


def _csr(*names: str, common_name: str = "app-1") -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    return builder.sign(key, hashes.SHA256())


def _issuing(client: KeyServiceClient) -> x509.Certificate:
    return client.ca_certificates()["issuing"]


def test_ca_list_names_every_ca(service_client: KeyServiceClient) -> None:
    assert set(service_client.ca_certificates()) == {"root", "issuing", "issuing-2"}


def test_ca_certificate_is_served_as_pem_and_der(http: HttpFactory) -> None:
    client = http(None)
    pem = client.get("/v1/pki/cas/root/certificate")
    der = client.get("/v1/pki/cas/root/certificate", params={"format": "der"})
    assert pem.headers["content-type"] == "application/pem-certificate-chain"
    assert x509.load_pem_x509_certificate(pem.content) == x509.load_der_x509_certificate(
        der.content
    )


def test_unknown_ca_is_404(http: HttpFactory) -> None:
    response = http(None).get("/v1/pki/cas/nope/crl")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no CA named 'nope'"


def test_crl_is_cacheable_until_its_next_update(http: HttpFactory) -> None:
    response = http(None).get("/v1/pki/cas/issuing/crl")
    assert response.status_code == 200
    crl = x509.load_der_x509_crl(response.content)
    assert crl.next_update_utc is not None
    expires = email.utils.parsedate_to_datetime(response.headers["expires"])
    assert expires == crl.next_update_utc
    max_age = int(response.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= (crl.next_update_utc - dt.datetime.now(dt.UTC)).total_seconds() + 1
    assert email.utils.parsedate_to_datetime(response.headers["last-modified"]) == (
        crl.last_update_utc
    )


def test_crl_etag_answers_304_when_unchanged(http: HttpFactory) -> None:
    client = http(None)
    first = client.get("/v1/pki/cas/issuing/crl")
    again = client.get("/v1/pki/cas/issuing/crl", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_crl_is_served_as_pem_on_request(http: HttpFactory) -> None:
    response = http(None).get("/v1/pki/cas/issuing/crl", params={"format": "pem"})
    assert x509.load_pem_x509_crl(response.content).issuer.rfc4514_string() == "CN=issuing"


def test_csr_for_the_callers_own_name_is_signed(service_client: KeyServiceClient) -> None:
    leaf, chain = service_client.sign_csr("issuing", _csr(), profile="tls-client")
    issuing = _issuing(service_client)
    assert leaf.issuer == issuing.subject
    issuing.public_key().verify(  # type: ignore[call-arg,union-attr]
        leaf.signature,
        leaf.tbs_certificate_bytes,
        ec.ECDSA(leaf.signature_hash_algorithm),  # type: ignore[arg-type]
    )
    assert [c.subject.rfc4514_string() for c in chain] == ["CN=issuing", "CN=root"]
    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is False


def test_csr_for_another_principals_name_is_denied(service_client: KeyServiceClient) -> None:
    with pytest.raises(AccessDeniedError, match="may not sign with profile 'tls-client'"):
        service_client.sign_csr("issuing", _csr(common_name="app-2"), profile="tls-client")


def test_csr_with_an_extra_san_is_denied(service_client: KeyServiceClient) -> None:
    with pytest.raises(AccessDeniedError):
        service_client.sign_csr("issuing", _csr("evil.example"), profile="tls-client")


@pytest.mark.parametrize(
    ("extra", "shown"),
    [
        (x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Payments"), "O"),
        (x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "admins"), "OU"),
        (x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ceo@example.com"), "1.2.840.113549.1.9.1"),
    ],
    ids=["O", "OU", "emailAddress"],
)
def test_csr_subject_attributes_the_policy_cannot_judge_are_denied(
    service_client: KeyServiceClient, extra: x509.NameAttribute, shown: str
) -> None:
    # Only names are judged; an O or OU copied unjudged into the certificate
    # would let app-1 claim an organization a relying party authorizes by.
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app-1"), extra]))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(AccessDeniedError, match=f"also holds {shown}"):
        service_client.sign_csr("issuing", csr, profile="tls-client")


def test_ca_the_policy_does_not_name_is_denied(service_client: KeyServiceClient) -> None:
    with pytest.raises(AccessDeniedError, match="from CA 'root'"):
        service_client.sign_csr("root", _csr(), profile="tls-client")


def test_profile_the_policy_does_not_grant_is_denied(service_client: KeyServiceClient) -> None:
    with pytest.raises(AccessDeniedError):
        service_client.sign_csr("issuing", _csr(), profile="intermediate")


def test_garbage_csr_is_400(http: HttpFactory) -> None:
    response = http("app-1").post(
        "/v1/pki/cas/issuing/sign",
        json={"csr": "-----BEGIN NONSENSE-----", "profile": "tls-client"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "malformed_input"


def _ocsp_status(response: bytes) -> ocsp.OCSPResponse:
    parsed = ocsp.load_der_ocsp_response(response)
    assert parsed.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    return parsed


def test_ocsp_post_and_get_say_good_for_a_fresh_certificate(
    service_client: KeyServiceClient, http: HttpFactory
) -> None:
    leaf, _ = service_client.sign_csr("issuing", _csr(), profile="tls-client")
    request = build_ocsp_request(leaf, _issuing(service_client))
    posted = service_client.ocsp(request)
    got = service_client.ocsp(request, method="GET")
    assert posted.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert got.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert got.serial_number == leaf.serial_number


def test_ocsp_says_revoked_with_reason_after_revocation(
    service_client: KeyServiceClient, http: HttpFactory
) -> None:
    leaf, _ = service_client.sign_csr("issuing", _csr(), profile="tls-client")
    revoked = http("admin").post(
        "/v1/revocations",
        json={
            "kind": "certificate",
            "subject": f"issuing:{leaf.serial_number:x}",
            "reason": "key-compromise",
        },
    )
    assert revoked.status_code == 201
    answer = service_client.ocsp(build_ocsp_request(leaf, _issuing(service_client)))
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.key_compromise
    crl = service_client.crl("issuing")
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None


def test_ocsp_for_a_foreign_issuer_is_unauthorized(
    service_client: KeyServiceClient, material: Material
) -> None:
    foreign = x509.load_pem_x509_certificate(material.outsider.certificate.read_bytes())
    issuer = x509.load_pem_x509_certificate((material.directory / "other-root.pem").read_bytes())
    answer = service_client.ocsp(build_ocsp_request(foreign, issuer))
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_ocsp_garbage_is_a_malformed_request_response(http: HttpFactory) -> None:
    response = http(None).post(
        "/v1/pki/ocsp",
        content=b"\x30\x03\x02\x01\x01",
        headers={"content-type": "application/ocsp-request"},
    )
    assert response.status_code == 200
    parsed = ocsp.load_der_ocsp_response(response.content)
    assert parsed.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_ocsp_post_needs_the_ocsp_media_type(http: HttpFactory) -> None:
    response = http(None).post("/v1/pki/ocsp", content=b"x")
    assert response.status_code == 415


def test_ocsp_get_with_bad_base64_is_400(http: HttpFactory) -> None:
    response = http(None).get("/v1/pki/ocsp/!!!")
    assert response.status_code == 400


def test_server_certificate_is_issued_by_the_store_ca(
    server: ServerProcess, material: Material
) -> None:
    address = urlsplit(server.url)
    context = ssl.create_default_context(cafile=material.trust)
    with (
        socket.create_connection((address.hostname, address.port), timeout=10) as raw,  # type: ignore[arg-type]
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    certificate = x509.load_der_x509_certificate(der)
    assert certificate.issuer.rfc4514_string() == "CN=issuing"
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_revoked_client_certificate_is_refused(http: HttpFactory, material: Material) -> None:
    issued = material.clients["app-2"]
    serial = x509.load_pem_x509_certificate(issued.certificate.read_bytes()).serial_number
    client = http("app-2")
    assert client.get("/v1/whoami").status_code == 200
    http("admin").post(
        "/v1/revocations",
        json={"kind": "certificate", "subject": f"issuing:{serial:x}", "reason": "superseded"},
    )
    refused = client.get("/v1/whoami")
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == (
        f"the client certificate 'issuing:{serial:x}' is revoked (superseded)"
    )


def test_revoked_intermediate_refuses_the_leaves_it_issued(
    http: HttpFactory, material: Material
) -> None:
    client = http(issued=material.late)
    assert client.get("/v1/whoami").json()["principal"] == "app-late"
    cas = http(None).get("/v1/pki/cas").json()["cas"]
    second = next(
        x509.load_pem_x509_certificate(c["certificate"].encode())
        for c in cas
        if c["name"] == "issuing-2"
    )
    http("admin").post(
        "/v1/revocations",
        json={
            "kind": "certificate",
            "subject": f"root:{second.serial_number:x}",
            "reason": "ca-compromise",
        },
    )
    refused = client.get("/v1/whoami")
    assert refused.status_code == 403
    assert "ca-compromise" in refused.json()["error"]["message"]


def test_ocsp_get_form_url_encodes_slashes_and_pluses(
    service_client: KeyServiceClient, http: HttpFactory
) -> None:
    leaf, _ = service_client.sign_csr("issuing", _csr(), profile="tls-client")
    der = build_ocsp_request(leaf, _issuing(service_client))
    encoded = base64.b64encode(der).decode()
    response = http(None).get("/v1/pki/ocsp/" + quote(encoded, safe=""))
    assert response.status_code == 200
    assert _ocsp_status(response.content).certificate_status is ocsp.OCSPCertStatus.GOOD
