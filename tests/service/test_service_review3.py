"""Third review of the service: regression tests for what it found (real server, real TLS)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keymgmt import KeyManager
from keymgmt.client import KeyServiceClient, client_ssl_context
from keymgmt.errors import InvalidArgumentError, StoreUnavailableError
from keymgmt.revocation import SubjectKind
from keymgmt.server import Operation, ServicePolicy, principal_of

from .conftest import (
    HttpFactory,
    Material,
    ServerProcess,
    _write_leaf,
    raw_tls_context,
    start_server,
)

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


# -- connections that never finish a request head ----------------------------------


def _held_open_seconds(
    server: ServerProcess, material: Material, send: bytes, *, first: bytes = b""
) -> float:
    """Open a TLS connection, send ``first`` (a whole request) and read its answer, then
    send ``send``, and time until the server lets go of the connection (at most 8 s)."""
    address = urlsplit(server.url)
    assert address.hostname is not None
    assert address.port is not None
    context = raw_tls_context(material, material.clients["app-1"])
    with (
        socket.create_connection((address.hostname, address.port), timeout=8) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        if first:
            tls.sendall(first)
            assert tls.recv(4096).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        if send:
            tls.sendall(send)
        try:
            while tls.recv(1024):
                pass
        except (ssl.SSLError, ConnectionError):
            pass
        except TimeoutError:
            return math.inf
        return time.monotonic() - started


@pytest.fixture(scope="module")
def h11_server(material: Material) -> Iterator[ServerProcess]:
    """A server on uvicorn's h11 protocol (the session server runs httptools)."""
    running = start_server(
        str(material.store),
        material.key_file,
        material.directory / "review3-h11.log",
        "--ca",
        "issuing",
        "--http",
        "h11",
        "--body-timeout",
        "1",
    )
    yield running
    running.stop()


@pytest.fixture(params=["httptools", "h11"])
def any_server(
    request: pytest.FixtureRequest, server: ServerProcess
) -> ServerProcess:  # both run with --body-timeout 1
    if request.param == "h11":
        return request.getfixturevalue("h11_server")  # type: ignore[no-any-return]
    return server


def test_a_connection_that_sends_nothing_is_closed_after_the_body_timeout(
    any_server: ServerProcess, material: Material
) -> None:
    assert _held_open_seconds(any_server, material, b"") < 5


def test_a_request_head_trickling_in_is_cut_off_after_the_body_timeout(
    any_server: ServerProcess, material: Material
) -> None:
    partial = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: "
    assert _held_open_seconds(any_server, material, partial) < 5


def test_a_head_trickling_in_after_a_first_request_is_cut_off_too(
    any_server: ServerProcess, material: Material
) -> None:
    first = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
    partial = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: "
    assert _held_open_seconds(any_server, material, partial, first=first) < 5


def test_a_keep_alive_connection_serves_request_after_request(
    any_server: ServerProcess, material: Material
) -> None:
    address = urlsplit(any_server.url)
    assert address.hostname is not None
    assert address.port is not None
    context = raw_tls_context(material, material.clients["app-1"])
    request = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
    with (
        socket.create_connection((address.hostname, address.port), timeout=8) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        for _ in range(3):
            tls.sendall(request)
            assert tls.recv(4096).startswith(b"HTTP/1.1 200")


# -- revocations through the service take effect, or are refused -------------------


def _fresh_client(material: Material, principal: str) -> x509.Certificate:
    """A new client certificate for ``principal`` from ``issuing`` (kept in ``material``)."""
    with KeyManager.open(material.store, key_file=material.key_file) as km:
        issued = _write_leaf(material.directory, principal, km.pki.ca("issuing"), principal)
    material.clients[principal] = issued
    return x509.load_pem_x509_certificate(issued.certificate.read_bytes())


def test_a_certificate_revoked_by_its_serial_as_openssl_prints_it_is_refused(
    http: HttpFactory, material: Material
) -> None:
    certificate = _fresh_client(material, "app-rv3-upper")
    client = http("app-rv3-upper")
    assert client.get("/v1/whoami").status_code == 200
    # `openssl x509 -serial` prints the serial in upper case, with leading zeros.
    spelled = f"issuing:00{certificate.serial_number:X}"
    answer = http("admin").post("/v1/revocations", json={"kind": "certificate", "subject": spelled})
    assert answer.status_code == 201
    assert answer.json()["subject"] == f"issuing:{certificate.serial_number:x}"
    assert client.get("/v1/whoami").status_code == 403


def test_a_key_version_revoked_as_name_hash_leading_zero_version_is_refused(
    http: HttpFactory,
) -> None:
    app = http("app-1")
    assert app.post("/v1/transit/keys", json={"name": "app-rv3-key"}).status_code == 201
    sealed = app.post("/v1/transit/keys/app-rv3-key/encrypt", json={"plaintext": "AAAA"})
    answer = http("admin").post(
        "/v1/revocations",
        json={"kind": "key", "subject": "app-rv3-key#01", "reason": "key-compromise"},
    )
    assert answer.status_code == 201
    assert answer.json()["subject"] == "app-rv3-key#1"
    refused = app.post(
        "/v1/transit/keys/app-rv3-key/decrypt", json={"ciphertext": sealed.json()["ciphertext"]}
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["type"] == "subject_revoked"


@pytest.mark.parametrize(
    ("kind", "subject", "status"),
    [
        ("certificate", "issuing:not-hex", 400),
        ("certificate", "issuing", 400),
        ("certificate", ":1a", 400),
        ("certificate", "no-such-ca:1a", 404),
        ("key", "app-rv3-nameonly", 400),
        ("key", "app-rv3-key#0", 400),
        ("key", "app-rv3-key#x", 400),
        ("key", "no-such-key#1", 404),
        ("key", "app-rv3-key#99", 404),
        ("principal", "p" * 256, 400),
        ("principal", "app-rv3\nforged", 400),
    ],
)
def test_a_revocation_that_could_never_match_is_refused_and_nothing_is_written(
    http: HttpFactory, material: Material, kind: str, subject: str, status: int
) -> None:
    app = http("app-1")
    app.post("/v1/transit/keys", json={"name": "app-rv3-key"})  # 201, or 409 if it exists
    answer = http("admin").post("/v1/revocations", json={"kind": kind, "subject": subject})
    assert answer.status_code == status
    with KeyManager.open(material.store, key_file=material.key_file) as km:
        assert all(r.subject != subject for r in km.revocation.list())


# -- the request log ----------------------------------------------------------------


def _logged(server: ServerProcess, marker: str) -> str:
    """The server log once it mentions ``marker`` (the line is written after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        log = server.log_text()
        if marker in log or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


@pytest.mark.parametrize("principal", [None, "app-1"])
def test_a_path_cannot_forge_a_line_in_the_request_log(
    http: HttpFactory, server: ServerProcess, principal: str | None
) -> None:
    marker = f"FORGED-{principal}"
    response = http(principal).get(f"/v1/transit/keys/x%0a{marker} admin GET /v1/whoami 200/zz")
    assert response.status_code == 404
    log = _logged(server, marker)
    assert marker in log
    assert not any(line.startswith(marker) for line in log.splitlines())


# -- a client certificate that expires while its connection stays open --------------


def test_a_certificate_that_expired_on_an_open_connection_is_refused(
    server: ServerProcess, material: Material
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with KeyManager.open(material.store, key_file=material.key_file) as km:
        issuing = km.pki.ca("issuing")
        certificate = issuing.issue(
            public_key=key.public_key(),
            subject="app-rv3-brief",
            profile="tls-client",
            validity=dt.timedelta(seconds=3),
        )
        chain = [certificate, *issuing.chain[:-1]]
    paths = (material.directory / "brief.pem", material.directory / "brief.key")
    paths[0].write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    paths[1].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    address = urlsplit(server.url)
    assert address.hostname is not None
    assert address.port is not None
    context = client_ssl_context(ca=material.trust, certificate=paths[0], private_key=paths[1])
    request = b"GET /v1/whoami HTTP/1.1\r\nHost: x\r\n\r\n"
    with (
        socket.create_connection((address.hostname, address.port), timeout=8) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(request)
        assert tls.recv(4096).startswith(b"HTTP/1.1 200")
        expired = certificate.not_valid_after_utc + dt.timedelta(seconds=1)
        time.sleep(max(0.0, (expired - dt.datetime.now(dt.UTC)).total_seconds()))
        tls.sendall(request)  # the same connection, its handshake long done
        answer = tls.recv(4096)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"expired" in answer


# -- the {principal} placeholder is the caller's name, not a pattern ----------------


def test_a_wildcard_principal_may_sign_only_its_own_name() -> None:
    # A certificate naming only the DNS name "*.example.com" is principal
    # "*.example.com"; {principal} must not let it sign for admin.example.com.
    policy = ServicePolicy.from_json(
        {
            "rules": [
                {
                    "principals": ["*"],
                    "operations": ["sign"],
                    "profiles": ["tls-client"],
                    "names": ["{principal}"],
                }
            ]
        }
    )
    wildcard = "*.example.com"
    assert policy.allows(wildcard, Operation.SIGN, profile="tls-client", names=[wildcard])
    for other in ("admin.example.com", "x.example.com"):
        assert not policy.allows(wildcard, Operation.SIGN, profile="tls-client", names=[other])
    assert not policy.allows("app-[ab]", Operation.SIGN, profile="tls-client", names=["app-a"])
    assert policy.allows("app-[ab]", Operation.SIGN, profile="tls-client", names=["app-[ab]"])


# -- a CSR whose subject does not parse ------------------------------------------------


def _csr_with_unparsable_subject() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "app-1~~")]))
        .sign(key, hashes.SHA256())
    )
    # The CN's UTF8String becomes invalid UTF-8: the CSR loads, its subject does not parse.
    der = csr.public_bytes(serialization.Encoding.DER).replace(b"app-1~~", b"\xff" * 7)
    return "".join(
        [
            "-----BEGIN CERTIFICATE REQUEST-----\n",
            base64.encodebytes(der).decode("ascii"),
            "-----END CERTIFICATE REQUEST-----\n",
        ]
    )


def _csr_with_two_san_extensions() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "app-1")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("app-1")]), critical=False)
        .add_extension(x509.IssuerAlternativeName([x509.DNSName("admin")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    # The issuer alternative name's OID (2.5.29.18) becomes the SAN's (2.5.29.17).
    der = csr.public_bytes(serialization.Encoding.DER).replace(
        b"\x06\x03\x55\x1d\x12", b"\x06\x03\x55\x1d\x11"
    )
    return "".join(
        [
            "-----BEGIN CERTIFICATE REQUEST-----\n",
            base64.encodebytes(der).decode("ascii"),
            "-----END CERTIFICATE REQUEST-----\n",
        ]
    )


def _csr_with_an_edi_party_name() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "app-1")]))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("a@b.cd")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    # The rfc822Name's tag [1] becomes ediPartyName's [5] (constructed).
    der = csr.public_bytes(serialization.Encoding.DER).replace(b"\x81\x06a@b.cd", b"\xa5\x06a@b.cd")
    return "".join(
        [
            "-----BEGIN CERTIFICATE REQUEST-----\n",
            base64.encodebytes(der).decode("ascii"),
            "-----END CERTIFICATE REQUEST-----\n",
        ]
    )


@pytest.mark.parametrize("make", [_csr_with_two_san_extensions, _csr_with_an_edi_party_name])
def test_a_csr_whose_extensions_cryptography_refuses_is_400(
    http: HttpFactory, make: Callable[[], str]
) -> None:
    response = http("app-1").post(
        "/v1/pki/cas/issuing/sign", json={"csr": make(), "profile": "tls-client"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "malformed_input"


def test_a_csr_whose_subject_does_not_parse_is_400(http: HttpFactory) -> None:
    response = http("app-1").post(
        "/v1/pki/cas/issuing/sign",
        json={"csr": _csr_with_unparsable_subject(), "profile": "tls-client"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "malformed_input"


# -- a client of a CA created while the server runs ------------------------------------


def test_a_certificate_of_a_ca_created_while_serving_can_be_revoked(
    http: HttpFactory, material: Material
) -> None:
    # The server knows its CAs (it has attributed a client certificate to one).
    assert http("app-1").get("/v1/whoami").status_code == 200
    # Another process (here: the test) creates a CA and a client under it;
    # the server first sees that client before it has synced the new CA.
    with KeyManager.open(material.store, key_file=material.key_file) as km:
        late = km.pki.ca("root").create_intermediate("rv3-late")
        issued = _write_leaf(material.directory, "app-rv3-late", late, "app-rv3-late")
    serial = x509.load_pem_x509_certificate(issued.certificate.read_bytes()).serial_number
    client = http(issued=issued)
    assert client.get("/v1/whoami").status_code == 200
    answer = http("admin").post(
        "/v1/revocations", json={"kind": "certificate", "subject": f"rv3-late:{serial:x}"}
    )
    assert answer.status_code == 201
    refused = client.get("/v1/whoami")
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "revoked"


# -- the address the server prints ------------------------------------------------------


def test_an_ipv6_server_prints_a_url_clients_can_use(material: Material) -> None:
    running = start_server(
        str(material.store),
        material.key_file,
        material.directory / "review3-ipv6.log",
        "--ca",
        "issuing",
        "--host",
        "::1",
    )
    try:
        assert running.url.startswith("https://[::1]:")
        with material.client(running.url, "app-1") as client:
            assert client.whoami() == "app-1"
    finally:
        running.stop()


# -- the client names a server certificate that does not verify -------------------------


def test_the_client_says_when_the_servers_certificate_does_not_verify(
    server: ServerProcess, material: Material
) -> None:
    issued = material.clients["app-1"]
    with (
        KeyServiceClient.from_files(
            server.url,
            ca=material.directory / "other-root.pem",  # not the CA that issued the server's
            certificate=issued.certificate,
            private_key=issued.key,
        ) as client,
        pytest.raises(StoreUnavailableError) as caught,
    ):
        client.health()
    assert "certificate" in caught.value.message
    assert "verify" in caught.value.message


# -- a request HTTP itself cannot parse --------------------------------------------------


def test_a_request_http_cannot_parse_gets_the_json_error_body(
    any_server: ServerProcess, material: Material
) -> None:
    address = urlsplit(any_server.url)
    assert address.hostname is not None
    assert address.port is not None
    context = raw_tls_context(material, material.clients["app-1"])
    with (
        socket.create_connection((address.hostname, address.port), timeout=8) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
        answer = b""
        try:
            while chunk := tls.recv(4096):
                answer += chunk
        except (ssl.SSLError, ConnectionError):
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["error"]["type"] == "malformed_input"


# -- an endless request head ---------------------------------------------------------------


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _send_head_lines(server: ServerProcess, material: Material, limit: int) -> bytes:
    """Start a request head and send header lines until ``limit`` bytes or the server
    lets go; what the server answered (read at once if ``limit`` is small)."""
    address = urlsplit(server.url)
    assert address.hostname is not None
    assert address.port is not None
    context = raw_tls_context(material, None)  # no certificate needed to try
    lines = (b"X-Pad: " + b"a" * 8000 + b"\r\n") * 16
    answer = b""
    with (
        socket.create_connection((address.hostname, address.port), timeout=8) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        try:
            tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            for _ in range(limit // len(lines)):
                tls.sendall(lines)
            while chunk := tls.recv(4096):
                answer += chunk
        except (ssl.SSLError, ConnectionError, TimeoutError):
            pass
    return answer


def test_an_oversize_request_head_gets_a_json_refusal(
    any_server: ServerProcess, material: Material
) -> None:
    answer = _send_head_lines(any_server, material, 2**20)
    head, _, body = answer.partition(b"\r\n\r\n")
    # 431 from the httptools protocol; h11 refuses at its own limit, as a 400.
    assert head.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), head[:100]
    assert json.loads(body)["error"]["type"] in ("headers_too_large", "malformed_input")


def test_an_endless_request_head_does_not_grow_the_servers_memory(
    any_server: ServerProcess, material: Material
) -> None:
    before = _rss_bytes(any_server.process.pid)
    _send_head_lines(any_server, material, 192 * 2**20)  # uvicorn's httptools kept it all
    assert _rss_bytes(any_server.process.pid) - before < 64 * 2**20


# -- TLS session resumption ---------------------------------------------------------------


def _whoami(tls: ssl.SSLSocket) -> bytes:
    tls.sendall(b"GET /v1/whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = b""
    try:
        while chunk := tls.recv(4096):
            answer += chunk
    except (ssl.SSLError, ConnectionError):
        pass
    return answer


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"]
)
def test_a_resumed_tls_session_is_refused_once_its_intermediate_is_revoked(
    http: HttpFactory, server: ServerProcess, material: Material, version: ssl.TLSVersion
) -> None:
    name = f"rv3-resume-{version.name[-1]}"
    with KeyManager.open(material.store, key_file=material.key_file) as km:
        intermediate = km.pki.ca("root").create_intermediate(name)
        issued = _write_leaf(material.directory, f"app-{name}", intermediate, f"app-{name}")
        serial = intermediate.certificate.serial_number
    address = urlsplit(server.url)
    assert address.hostname is not None
    assert address.port is not None
    context = raw_tls_context(material, issued)
    context.maximum_version = version
    with (
        socket.create_connection((address.hostname, address.port), timeout=8) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert _whoami(tls).startswith(b"HTTP/1.1 200")
        session = tls.session
    revoked = http("admin").post(
        "/v1/revocations", json={"kind": "certificate", "subject": f"root:{serial:x}"}
    )
    assert revoked.status_code == 201
    with (
        socket.create_connection((address.hostname, address.port), timeout=8) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as tls,
    ):
        assert tls.session_reused  # no chain sent or verified this time
        answer = _whoami(tls)
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]


# -- a trailing slash -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/pki/cas/", "/v1/health/", "/v1/pki/cas/issuing/crl/"])
def test_a_trailing_slash_is_a_json_404_not_a_redirect_to_the_host_header(
    http: HttpFactory, path: str
) -> None:
    response = http(None).get(path, headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["error"]["type"] == "not_found"


# -- a browser holding a client certificate, on another site's page ------------------------


def test_a_cross_site_browser_post_is_refused_and_changes_nothing(
    http: HttpFactory, material: Material
) -> None:
    # What a hidden form on an attacker's page makes the admin's browser send
    # (client certificate included): text/plain, a body that parses as JSON.
    body = b'{"kind": "principal", "subject": "app-rv3-csrf", "pad": "="}'
    response = http("admin").post(
        "/v1/revocations",
        content=body,
        headers={
            "Content-Type": "text/plain",
            "Origin": "https://evil.example",
            "Sec-Fetch-Site": "cross-site",
        },
    )
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "cross_origin"
    with KeyManager.open(material.store, key_file=material.key_file) as km:
        assert km.revocation.get(SubjectKind.PRINCIPAL, "app-rv3-csrf") is None


def test_a_cross_site_browser_post_to_a_transit_route_is_refused(http: HttpFactory) -> None:
    response = http("app-1").post(
        "/v1/transit/keys",
        content=b'{"name": "app-rv3-csrf", "x": "="}',
        headers={"Content-Type": "text/plain", "Origin": "null"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "cross_origin"


# -- the policy file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rate_limit",
    [{"burst": 1e400}, {"principals": {"batch-*": {"rate": 1, "burst": 1e400}}}],
    ids=["burst", "override"],
)
def test_an_infinite_burst_in_the_policy_is_invalid_argument(rate_limit: object) -> None:
    with pytest.raises(InvalidArgumentError):
        ServicePolicy.from_json({"rate_limit": rate_limit})


def test_a_policy_file_nested_too_deeply_is_invalid_argument(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text("[" * 100_000)
    with pytest.raises(InvalidArgumentError):
        ServicePolicy.load(path)


# -- a client that goes away in the middle of its body --------------------------------------


def test_a_client_gone_mid_body_is_not_logged_as_an_internal_error(
    server: ServerProcess, material: Material
) -> None:
    address = urlsplit(server.url)
    assert address.hostname is not None
    assert address.port is not None
    context = raw_tls_context(material, material.clients["app-1"])
    path = "/v1/transit/keys/app-rv3-gone/encrypt"
    with (
        socket.create_connection((address.hostname, address.port), timeout=8) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"plaintext": '
        )
    line = next(
        line for line in _logged(server, f"POST {path} ").splitlines() if f"POST {path} " in line
    )
    assert " 400 " in line, line
    assert f"internal error on {path}" not in server.log_text()


def test_a_web_page_posting_to_the_ocsp_responder_gets_a_documented_403(
    http: HttpFactory,
) -> None:
    response = http(None).post(
        "/v1/pki/ocsp",
        content=b"0\x00",
        headers={"Content-Type": "application/ocsp-request", "Origin": "https://evil.example"},
    )
    assert response.status_code == 403  # the OpenAPI hook checks it is documented
