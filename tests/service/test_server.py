"""The service end to end: real processes, TLS and HTTP, responses checked against OpenAPI."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509

from keymgmt.client import KeyServiceClient
from keymgmt.errors import AccessDeniedError, ServiceError

from .conftest import HttpFactory, Material, ServerProcess, raw_tls_context, start_server


def test_health_answers_without_a_client_certificate(http: HttpFactory) -> None:
    response = http(None).get("/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_ready_reports_the_store_and_the_wired_parts(http: HttpFactory) -> None:
    response = http(None).get("/v1/ready")
    assert response.status_code == 200
    assert set(response.json()["parts"]) >= {"transit", "pki", "kdc"}


def test_whoami_names_the_certificate_common_name(http: HttpFactory) -> None:
    response = http("app-1").get("/v1/whoami")
    assert response.status_code == 200
    assert response.json()["principal"] == "app-1"


def test_certificate_naming_no_principal_is_401(http: HttpFactory, material: Material) -> None:
    response = http(issued=material.nameless).get("/v1/whoami")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthenticated"


def test_protected_endpoint_without_client_certificate_is_401(http: HttpFactory) -> None:
    response = http(None).get("/v1/whoami")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "type": "unauthenticated",
            "message": "this endpoint needs a TLS client certificate",
        }
    }


def _raw_get(server: ServerProcess, context: ssl.SSLContext) -> bytes:
    """One GET over a bare TLS socket; whatever comes back (b"" if refused)."""
    address = urlsplit(server.url)
    assert address.hostname is not None
    assert address.port is not None
    with (
        socket.create_connection((address.hostname, address.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        try:
            tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return tls.recv(1024)
        except (ssl.SSLError, ConnectionResetError):
            return b""


def test_certificate_from_another_ca_gets_no_http_answer(
    server: ServerProcess, material: Material
) -> None:
    # TLS 1.3: the client finishes its side first; the server then drops it.
    assert _raw_get(server, raw_tls_context(material, material.outsider)) == b""


def test_certificate_from_the_store_ca_gets_an_http_answer(
    server: ServerProcess, material: Material
) -> None:
    answer = _raw_get(server, raw_tls_context(material, material.clients["app-1"]))
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_unknown_route_is_a_json_404(http: HttpFactory) -> None:
    response = http("app-1").get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


def test_wrong_method_is_a_json_405(http: HttpFactory) -> None:
    response = http("app-1").delete("/v1/health")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "method_not_allowed"


def test_principal_without_a_rule_is_denied(http: HttpFactory) -> None:
    response = http("nobody").post(
        "/v1/transit/keys/app-orders/encrypt", json={"plaintext": "aGk="}
    )
    assert response.status_code == 403
    assert response.json()["error"] == {
        "type": "access_denied",
        "message": "principal 'nobody' may not encrypt on key 'app-orders'",
    }


def test_principal_denied_a_key_outside_its_patterns(http: HttpFactory) -> None:
    response = http("app-1").post("/v1/transit/keys/payroll/encrypt", json={"plaintext": "aGk="})
    assert response.status_code == 403


def test_oversize_body_is_413_and_the_server_keeps_serving(http: HttpFactory) -> None:
    client = http("app-1")
    response = client.post(
        "/v1/transit/keys/app-orders/encrypt",
        content=b"{" + b" " * 70000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"
    assert client.get("/v1/health").status_code == 200


def test_trickling_body_gets_408_after_the_body_timeout(
    server: ServerProcess, material: Material
) -> None:
    address = urlsplit(server.url)
    context = raw_tls_context(material, material.clients["app-1"])
    with (
        socket.create_connection((address.hostname, address.port), timeout=20) as raw,  # type: ignore[arg-type]
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(
            b"POST /v1/transit/keys/app-orders/encrypt HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"plain'
        )
        answer = b""
        while not answer.endswith(b"}}"):
            chunk = tls.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"request_timeout"' in answer


def test_malformed_json_is_400(http: HttpFactory) -> None:
    response = http("app-1").post(
        "/v1/transit/keys/app-orders/encrypt",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "malformed_input"


def test_bad_base64_is_400(http: HttpFactory) -> None:
    response = http("app-1").post("/v1/transit/keys/app-orders/encrypt", json={"plaintext": "***"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "malformed_input",
        "message": "'plaintext' is not valid base64",
    }


def test_non_object_context_is_400(http: HttpFactory) -> None:
    response = http("app-1").post(
        "/v1/transit/keys/app-orders/encrypt", json={"plaintext": "aGk=", "context": [1]}
    )
    assert response.status_code == 400


def test_rate_limit_answers_429_with_retry_after(http: HttpFactory) -> None:
    client = http("throttled")
    statuses = [client.get("/v1/whoami").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = client.get("/v1/whoami")
    assert refused.json()["error"]["type"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1


def test_revoked_principal_is_refused_on_its_open_connection(http: HttpFactory) -> None:
    doomed = http("doomed-app")
    assert doomed.get("/v1/whoami").status_code == 200
    revoked = http("admin").post(
        "/v1/revocations",
        json={"kind": "principal", "subject": "doomed-app", "reason": "key-compromise"},
    )
    assert revoked.status_code == 201
    assert revoked.json()["reason"] == "key-compromise"
    response = doomed.get("/v1/whoami")
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "revoked"
    assert http("app-1").get("/v1/whoami").status_code == 200


def test_revocation_needs_the_revoke_operation(http: HttpFactory) -> None:
    response = http("app-1").post("/v1/revocations", json={"kind": "principal", "subject": "app-2"})
    assert response.status_code == 403


def test_revocation_with_unknown_kind_is_400(http: HttpFactory) -> None:
    response = http("admin").post("/v1/revocations", json={"kind": "planet", "subject": "x"})
    assert response.status_code == 400


def test_client_raises_the_library_exception_for_a_denial(
    server: ServerProcess, material: Material
) -> None:
    with (
        material.client(server.url, "nobody") as client,
        pytest.raises(AccessDeniedError, match="may not encrypt"),
    ):
        client.encrypt("app-orders", b"x")


def test_client_raises_service_error_without_certificate(
    server: ServerProcess, material: Material
) -> None:
    from keymgmt.client import client_ssl_context

    with (
        KeyServiceClient(server.url, ssl_context=client_ssl_context(ca=material.trust)) as client,
        pytest.raises(ServiceError) as info,
    ):
        client.whoami()
    assert (info.value.status, info.value.type) == (401, "unauthenticated")


def test_log_holds_no_plaintext_or_body(http: HttpFactory, server: ServerProcess) -> None:
    secret = "c2VjcmV0LXBheWxvYWQtOTk="  # base64 of a marker
    http("app-1").post("/v1/transit/keys/app-orders/encrypt", json={"plaintext": secret})
    http("app-1").post("/v1/transit/keys/app-orders/encrypt", content=b"{" + secret.encode())
    log = server.log_text()
    assert "/v1/transit/keys/app-orders/encrypt" in log
    assert secret not in log
    assert "secret-payload" not in log


@pytest.fixture(scope="module")
def strict_server(material: Material) -> Iterator[ServerProcess]:
    """A second server: TLS material from files, client certificates required, h11, 2 workers."""
    running = start_server(
        str(material.store),
        material.key_file,
        material.directory / "strict.log",
        "--tls-cert",
        str(material.server.certificate),
        "--tls-key",
        str(material.server.key),
        "--client-ca",
        str(material.trust),
        "--policy",
        str(material.policy),
        "--require-client-cert",
        "--http",
        "h11",
        "--workers",
        "2",
    )
    yield running
    running.stop()


def test_required_client_certificate_refuses_bare_handshakes(
    strict_server: ServerProcess, material: Material
) -> None:
    assert _raw_get(strict_server, raw_tls_context(material, None)) == b""


def test_server_certificate_can_come_from_files(
    strict_server: ServerProcess, material: Material
) -> None:
    address = urlsplit(strict_server.url)
    context = raw_tls_context(material, material.clients["app-1"])
    with (
        socket.create_connection((address.hostname, address.port), timeout=10) as raw,  # type: ignore[arg-type]
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    assert subject == "CN=file-server"


def test_h11_protocol_also_sees_the_client_chain(
    strict_server: ServerProcess, material: Material
) -> None:
    with material.client(strict_server.url, "app-1") as client:
        assert client.whoami() == "app-1"


def test_workers_are_forked_children_of_the_server(strict_server: ServerProcess) -> None:
    pid = strict_server.process.pid
    children = [
        p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _parent_of(p) == pid
    ]
    assert len(children) == 2


def _parent_of(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_server_stops_promptly_with_an_idle_keep_alive_client(
    strict_server: ServerProcess, material: Material
) -> None:
    with material.client(strict_server.url, "app-1") as client:
        client.whoami()  # the pooled connection stays open and idle
        started = time.monotonic()
        strict_server.process.terminate()
        strict_server.process.wait(timeout=20)
        took = time.monotonic() - started
    assert took < 10
    assert strict_server.process.returncode == -signal.SIGTERM
    assert "Application shutdown complete" in strict_server.log_text()


def test_workers_that_cannot_open_the_store_fail_the_command(
    material: Material, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from keymgmt.cli import main; sys.exit(main())",
            "--store",
            str(tmp_path / "missing.db"),
            "--key-file",
            str(material.key_file),
            "serve",
            "--port",
            "0",
            "--ca",
            "issuing",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "a worker process failed" in done.stderr
    assert "listening on" not in done.stdout
