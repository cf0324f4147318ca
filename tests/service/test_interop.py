"""Programs we did not write talk to the service: curl with a client certificate, openssl ocsp."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keymgmt.client import KeyServiceClient

from .conftest import Material, ServerProcess

pytestmark = pytest.mark.interop


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def test_curl_with_a_client_certificate_is_the_principal(
    server: ServerProcess, material: Material
) -> None:
    issued = material.clients["app-1"]
    done = subprocess.run(
        [
            _tool("curl"),
            "--silent",
            "--show-error",
            "--cacert",
            str(material.trust),
            "--cert",
            str(issued.certificate),
            "--key",
            str(issued.key),
            f"{server.url}/v1/whoami",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(done.stdout)["principal"] == "app-1"


def test_curl_without_a_certificate_gets_the_json_401(
    server: ServerProcess, material: Material
) -> None:
    done = subprocess.run(
        [
            _tool("curl"),
            "--silent",
            "--cacert",
            str(material.trust),
            "--write-out",
            "\n%{http_code}",
            f"{server.url}/v1/whoami",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, status = done.stdout.rsplit("\n", 1)
    assert status == "401"
    assert json.loads(body)["error"]["type"] == "unauthenticated"


def test_openssl_ocsp_checks_a_certificate_over_https(
    server: ServerProcess, material: Material, service_client: KeyServiceClient
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app-1")]))
        .sign(key, hashes.SHA256())
    )
    leaf, chain = service_client.sign_csr("issuing", csr, profile="tls-client")
    directory = material.directory
    (directory / "ocsp-leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (directory / "ocsp-issuer.pem").write_bytes(chain[0].public_bytes(serialization.Encoding.PEM))
    (directory / "ocsp-trust.pem").write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    )
    done = subprocess.run(
        [
            _tool("openssl"),
            "ocsp",
            "-issuer",
            str(directory / "ocsp-issuer.pem"),
            "-cert",
            str(directory / "ocsp-leaf.pem"),
            "-url",
            f"{server.url}/v1/pki/ocsp",
            "-CAfile",
            str(directory / "ocsp-trust.pem"),
            "-verify_other",
            str(directory / "ocsp-trust.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Response verify OK" in done.stderr + done.stdout
    assert "ocsp-leaf.pem: good" in done.stdout
