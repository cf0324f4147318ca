"""Fourth review of the service: regression tests for what it found (real server, real TLS)."""

from __future__ import annotations

import math
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from keymgmt.client import KeyServiceClient, client_ssl_context
from keymgmt.errors import (
    InvalidArgumentError,
    MalformedInputError,
    NotFoundError,
    StoreUnavailableError,
)

from .conftest import Issued, Material, ServerProcess, raw_tls_context, start_server

# -- the TLS handshake is bounded ---------------------------------------------------

#: The handshake bound of :func:`handshake_server`; its head/body bound is far longer.
HANDSHAKE_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def handshake_server(material: Material) -> Iterator[ServerProcess]:
    """A server with a short TLS handshake bound and a long head/body bound."""
    running = start_server(
        str(material.store),
        material.key_file,
        material.directory / "review4-handshake.log",
        "--ca",
        "issuing",
        "--handshake-timeout",
        str(HANDSHAKE_TIMEOUT),
        "--body-timeout",
        "30",
    )
    yield running
    running.stop()


def _address(server: ServerProcess) -> tuple[str, int]:
    address = urlsplit(server.url)
    assert address.hostname is not None
    assert address.port is not None
    return address.hostname, address.port


def _seconds_until_closed(raw: socket.socket, started: float) -> float:
    """Read until the server closes ``raw``; inf if it is still open after the socket timeout."""
    try:
        while raw.recv(1024):
            pass
    except ConnectionError:
        pass
    except TimeoutError:
        return math.inf
    return time.monotonic() - started


def test_a_connection_that_never_starts_the_handshake_is_cut_after_the_timeout(
    handshake_server: ServerProcess,
) -> None:
    started = time.monotonic()
    with socket.create_connection(_address(handshake_server), timeout=8) as raw:
        held = _seconds_until_closed(raw, started)
    assert HANDSHAKE_TIMEOUT <= held < 5


def test_a_handshake_stalled_halfway_through_a_client_hello_is_cut_after_the_timeout(
    handshake_server: ServerProcess,
) -> None:
    started = time.monotonic()
    with socket.create_connection(_address(handshake_server), timeout=8) as raw:
        # A TLS record header announcing a 512-byte handshake record, and 4 bytes of it.
        raw.sendall(b"\x16\x03\x01\x02\x00" + b"\x01\x00\x01\xfc")
        held = _seconds_until_closed(raw, started)
    assert HANDSHAKE_TIMEOUT <= held < 5


def test_a_completed_handshake_is_not_cut_by_the_handshake_timeout(
    handshake_server: ServerProcess, material: Material
) -> None:
    context = raw_tls_context(material, material.clients["app-1"])
    with (
        socket.create_connection(_address(handshake_server), timeout=8) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        time.sleep(2 * HANDSHAKE_TIMEOUT)  # past the handshake bound, well within the head bound
        tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert tls.recv(4096).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("value", [0, -1.0, math.nan, math.inf, True, "5"])
def test_serve_refuses_a_handshake_timeout_that_is_not_a_positive_number(value: object) -> None:
    from keymgmt import server as service_module

    with pytest.raises(InvalidArgumentError, match="handshake_timeout must be a positive"):
        service_module.serve(None, None, handshake_timeout=value)  # type: ignore[arg-type]


def test_a_handshake_failure_does_not_stop_the_server_from_serving(
    handshake_server: ServerProcess, material: Material
) -> None:
    with socket.create_connection(_address(handshake_server), timeout=8) as raw:
        _seconds_until_closed(raw, time.monotonic())
    context = raw_tls_context(material, None)
    with (
        socket.create_connection(_address(handshake_server), timeout=8) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert tls.recv(4096).startswith(b"HTTP/1.1 200")
    assert isinstance(context, ssl.SSLContext)


# -- encrypted private keys (what `keymgmt ca issue --key-out` writes) -----------------


def _encrypted(issued: Issued, directory: Path, password: bytes) -> Path:
    """``issued``'s key, re-written encrypted under ``password`` (mode 0600)."""
    key = serialization.load_pem_private_key(issued.key.read_bytes(), None)
    path = directory / f"{issued.key.stem}-encrypted.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    )
    path.chmod(0o600)
    return path


def test_an_encrypted_client_key_without_its_passphrase_is_refused_without_a_prompt(
    material: Material, tmp_path: Path
) -> None:
    issued = material.clients["app-1"]
    key = _encrypted(issued, tmp_path, b"client-pass")
    with pytest.raises(InvalidArgumentError, match=r"app-1-encrypted\.key is encrypted: give"):
        client_ssl_context(ca=material.trust, certificate=issued.certificate, private_key=key)


def test_an_encrypted_client_key_with_a_wrong_passphrase_says_so(
    material: Material, tmp_path: Path
) -> None:
    issued = material.clients["app-1"]
    key = _encrypted(issued, tmp_path, b"client-pass")
    with pytest.raises(InvalidArgumentError, match=r"wrong key passphrase\?"):
        client_ssl_context(
            ca=material.trust, certificate=issued.certificate, private_key=key, key_password="no"
        )


def test_the_client_speaks_with_an_encrypted_key_and_its_passphrase(
    server: ServerProcess, material: Material, tmp_path: Path
) -> None:
    issued = material.clients["app-1"]
    key = _encrypted(issued, tmp_path, b"client-pass")
    with KeyServiceClient.from_files(
        server.url,
        ca=material.trust,
        certificate=issued.certificate,
        private_key=key,
        key_password="client-pass",
    ) as client:
        assert client.whoami() == "app-1"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``keymgmt ARGS`` in a new session (no controlling terminal OpenSSL could prompt on)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEYMGMT_")}
    return subprocess.run(
        [sys.executable, "-c", "import sys; from keymgmt.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _remote_env(server: ServerProcess, material: Material, key: Path) -> dict[str, str]:
    return {
        "KEYMGMT_SERVER": server.url,
        "KEYMGMT_SERVER_CA": str(material.trust),
        "KEYMGMT_CLIENT_CERT": str(material.clients["app-1"].certificate),
        "KEYMGMT_CLIENT_KEY": str(key),
    }


def test_remote_takes_an_encrypted_client_key_passphrase_from_the_environment(
    server: ServerProcess, material: Material, tmp_path: Path
) -> None:
    key = _encrypted(material.clients["app-1"], tmp_path, b"client-pass")
    env = {**_remote_env(server, material, key), "KEYMGMT_KEY_PASSPHRASE": "client-pass"}
    done = _cli("remote", "whoami", env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "app-1\n", "")


def test_remote_takes_an_encrypted_client_key_passphrase_from_a_file(
    server: ServerProcess, material: Material, tmp_path: Path
) -> None:
    key = _encrypted(material.clients["app-1"], tmp_path, b"client-pass")
    secret = tmp_path / "pass.txt"
    secret.write_text("client-pass\n")
    done = _cli(
        "remote",
        "--key-passphrase-file",
        str(secret),
        "whoami",
        env=_remote_env(server, material, key),
    )
    assert (done.returncode, done.stdout) == (0, "app-1\n"), done.stderr


def test_remote_without_the_passphrase_of_an_encrypted_key_is_a_one_line_error(
    server: ServerProcess, material: Material, tmp_path: Path
) -> None:
    key = _encrypted(material.clients["app-1"], tmp_path, b"client-pass")
    done = _cli("remote", "whoami", env=_remote_env(server, material, key))
    assert done.returncode == 1
    assert done.stderr.startswith("error: the client key ")
    assert "is encrypted: give its passphrase" in done.stderr
    assert "PEM pass phrase" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_an_encrypted_server_key_without_its_passphrase_is_refused_without_a_prompt(
    material: Material, tmp_path: Path
) -> None:
    from keymgmt.server import TlsMaterial, server_ssl_context

    key = _encrypted(material.server, tmp_path, b"server-pass")
    tls = TlsMaterial.from_paths(material.server.certificate, key, material.trust)
    with pytest.raises(InvalidArgumentError, match=r"server-encrypted\.key is encrypted: give"):
        server_ssl_context(tls)


def test_an_encrypted_server_key_loads_with_its_passphrase(
    material: Material, tmp_path: Path
) -> None:
    from keymgmt.server import TlsMaterial, server_ssl_context

    key = _encrypted(material.server, tmp_path, b"server-pass")
    tls = TlsMaterial.from_paths(
        material.server.certificate, key, material.trust, key_password="server-pass"
    )
    assert isinstance(server_ssl_context(tls), ssl.SSLContext)


def test_serve_reads_an_encrypted_tls_key_with_the_passphrase_from_the_environment(
    material: Material, tmp_path: Path
) -> None:
    key = _encrypted(material.server, tmp_path, b"server-pass")
    args = ["--store", str(material.store), "--key-file", str(material.key_file), "serve"]
    args += ["--port", "0", "--tls-cert", str(material.server.certificate)]
    args += ["--tls-key", str(key), "--client-ca", str(material.trust)]
    refused = _cli(*args, env={})
    assert refused.returncode == 1
    assert "server-encrypted.key is encrypted: give its passphrase" in refused.stderr
    assert "PEM pass phrase" not in refused.stderr


# -- the client: answers that are not what the service documents are typed errors -----


def _answering(handler: Callable[[httpx.Request], httpx.Response]) -> KeyServiceClient:
    """A client whose HTTP layer answers with ``handler`` (a stand-in for a broken server)."""
    client = KeyServiceClient("https://service.test", ssl_context=ssl.create_default_context())
    client._http.close()
    client._http = httpx.Client(
        base_url="https://service.test", transport=httpx.MockTransport(handler)
    )
    return client


def test_a_success_answer_that_is_not_json_is_malformed_input() -> None:
    with (
        _answering(lambda _: httpx.Response(200, text="<html>proxy</html>")) as client,
        pytest.raises(MalformedInputError, match="not JSON"),
    ):
        client.whoami()


def test_an_encrypt_answer_without_a_ciphertext_is_malformed_not_garbage_bytes() -> None:
    # str(None) is "None", which is valid base64: the client returned three bytes.
    with (
        _answering(lambda _: httpx.Response(200, json={"ciphertext": None})) as client,
        pytest.raises(MalformedInputError, match="no string 'ciphertext'"),
    ):
        client.encrypt("app-x", b"data")


def test_a_whoami_answer_without_a_principal_is_malformed_input() -> None:
    with (
        _answering(lambda _: httpx.Response(200, json={"serial": "1"})) as client,
        pytest.raises(MalformedInputError, match="no string 'principal'"),
    ):
        client.whoami()


def test_a_json_answer_that_is_not_an_object_is_malformed_input() -> None:
    with (
        _answering(lambda _: httpx.Response(200, json=["ok"])) as client,
        pytest.raises(MalformedInputError, match="not an object"),
    ):
        client.health()


def test_a_ca_list_answer_of_the_wrong_shape_is_malformed_input() -> None:
    with (
        _answering(lambda _: httpx.Response(200, json={"cas": [{"name": "x"}]})) as client,
        pytest.raises(MalformedInputError, match="malformed CA list"),
    ):
        client.ca_certificates()


def test_a_service_url_httpx_cannot_parse_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError, match="not a valid service URL"):
        KeyServiceClient("https://[::1", ssl_context=ssl.create_default_context())


def test_a_ca_name_is_one_path_segment_of_the_crl_url(
    server: ServerProcess, service_client: KeyServiceClient
) -> None:
    # Unquoted, "root/../issuing" was resolved by the URL to issuing's CRL.
    with pytest.raises(NotFoundError):
        service_client.crl("root/../issuing")
    assert service_client.crl("issuing").issuer.rfc4514_string().endswith("issuing")


# -- unexpected errors on the routed endpoints are the documented JSON 500 -----------


@pytest.mark.parametrize("path", ["/v1/pki/cas", "/v1/pki/cas/issuing/certificate"])
def test_an_unexpected_error_on_a_routed_endpoint_is_a_json_500_without_detail(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from keymgmt import KeyManager
    from keymgmt.server import ManagerParts, Service, ServicePolicy

    def broken() -> None:
        raise RuntimeError("secret=hunter2")

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
            return await client.get(path)

    with KeyManager.in_memory() as km:
        parts = ManagerParts(km)
        parts.cas = broken  # type: ignore[method-assign,assignment]
        app = Service(parts, ServicePolicy(), sync_interval=0.5).app()
        response = asyncio.run(get())
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": {"type": "internal", "message": "internal server error"}}
    assert "hunter2" not in caplog.text
    assert f"internal error on {path}: RuntimeError" in caplog.text


# -- a client that reads no response is cut off ---------------------------------------

#: A server process whose sockets have small send buffers (no kernel autotuning), so a
#: few hundred kilobytes of unread responses fill them: what a large CRL does anywhere.
_SMALL_BUFFER_SERVER = """
import logging, socket, sys
from keymgmt import KeyManager
from keymgmt.server import ManagerParts, Service, ServicePolicy, TlsMaterial, bind, serve
store, key_file, cert, key, ca, http = sys.argv[1:7]
logging.basicConfig(stream=sys.stderr, level=logging.INFO)
sock = bind("127.0.0.1", 0)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # inherited by accepted sockets
with KeyManager.open(store, key_file=key_file, create=False) as km:
    service = Service(ManagerParts(km), ServicePolicy(), body_timeout=1.0)
    serve(
        service,
        TlsMaterial.from_paths(cert, key, ca),
        sock=sock,
        http=http,
        on_ready=lambda host, port: print(f"listening on https://{host}:{port}", flush=True),
    )
"""


@pytest.fixture(scope="module", params=["httptools", "h11"])
def small_buffer_server(
    material: Material, request: pytest.FixtureRequest
) -> Iterator[ServerProcess]:
    """A server (body/head/write timeout 1 s) whose socket buffers are small."""
    log = material.directory / f"review4-small-buffers-{request.param}.log"
    args = [str(material.store), str(material.key_file), str(material.server.certificate)]
    args += [str(material.server.key), str(material.trust), request.param]
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", _SMALL_BUFFER_SERVER, *args],
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.kill()
        process.wait()
        raise RuntimeError(f"the server did not start:\n{log.read_text()}")
    running = ServerProcess(process, line.split()[-1], log)
    yield running
    running.stop()


def test_a_client_that_reads_no_response_is_cut_off_after_the_timeout(
    small_buffer_server: ServerProcess, material: Material
) -> None:
    pipelined = 1000  # ~1.4 MB of responses: far more than the buffers hold (~600 KB)
    request = b"GET /v1/pki/cas HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.socket() as raw:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(8)
        raw.connect(_address(small_buffer_server))
        with raw_tls_context(material, None).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(request * pipelined)
            deadline = time.monotonic() + 8
            while "read nothing of its response" not in small_buffer_server.log_text():
                assert time.monotonic() < deadline, "the connection was never cut off"
                time.sleep(0.05)
            received = b""
            try:
                while chunk := tls.recv(65536):
                    received += chunk
            except (ssl.SSLError, ConnectionError):
                pass
    assert 0 < received.count(b"HTTP/1.1 200") < pipelined


def test_a_client_that_reads_its_responses_is_served_in_full(
    small_buffer_server: ServerProcess, material: Material
) -> None:
    pipelined = 1000
    request = b"GET /v1/pki/cas HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /v1/pki/cas HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.socket() as raw:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(8)
        raw.connect(_address(small_buffer_server))
        with raw_tls_context(material, None).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(request * (pipelined - 1) + last)
            received = b""
            while chunk := tls.recv(65536):
                received += chunk
    assert received.count(b"HTTP/1.1 200") == pipelined


def test_a_client_certificate_the_service_does_not_trust_is_named_as_the_likely_cause(
    server: ServerProcess, material: Material
) -> None:
    with (
        KeyServiceClient.from_files(
            server.url,
            ca=material.trust,
            certificate=material.outsider.certificate,
            private_key=material.outsider.key,
        ) as client,
        pytest.raises(StoreUnavailableError, match=r"does it trust this client's certificate"),
    ):
        client.whoami()


# -- serve --ca on a wildcard address ---------------------------------------------------


def test_serve_on_every_address_certifies_the_loopback_names_and_says_so(
    material: Material,
) -> None:
    running = start_server(
        str(material.store),
        material.key_file,
        material.directory / "review4-wildcard.log",
        "--ca",
        "issuing",
        "--host",
        "0.0.0.0",
    )
    try:
        port = urlsplit(running.url).port
        # The certificate named 0.0.0.0, which no client connects to: this failed to verify.
        with material.client(f"https://127.0.0.1:{port}", "app-1") as client:
            assert client.whoami() == "app-1"
        assert "give --server-name for the names clients connect to" in running.log_text()
    finally:
        running.stop()
