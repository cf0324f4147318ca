"""``keymgmt serve`` resources: a connection limit, and a server key file kept private.

Past the limit a new connection is closed as soon as it is accepted, before
its TLS handshake, so connections that never send anything hold at most the
limit's worth of file descriptors and memory; once they go, requests are
served again. (Stalled handshakes: ``test_service_review6.py``.)
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from keymgmt.errors import InvalidArgumentError

from .conftest import Material, ServerProcess, raw_tls_context, start_server


@pytest.fixture(scope="module")
def small_server(material: Material) -> Iterator[ServerProcess]:
    """A server that serves two connections at once."""
    running = start_server(
        str(material.store),
        material.key_file,
        material.directory / "small.log",
        "--ca",
        "issuing",
        "--policy",
        str(material.policy),
        "--max-connections",
        "2",
    )
    yield running
    running.stop()


def _connect(server: ServerProcess, material: Material) -> ssl.SSLSocket:
    address = urlsplit(server.url)
    assert address.hostname is not None
    assert address.port is not None
    raw = socket.create_connection((address.hostname, address.port), timeout=10)
    context = raw_tls_context(material, material.clients["app-1"])
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def _connect_when_free(server: ServerProcess, material: Material) -> ssl.SSLSocket:
    """Connect, retrying while the server still holds the connections of an earlier test.

    The server learns of closed connections asynchronously; until it has,
    a new connection past the limit is closed before its handshake.
    """
    deadline = time.monotonic() + 10
    while True:
        try:
            return _connect(server, material)
        except (ssl.SSLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _exchange(tls: ssl.SSLSocket, *, keep_alive: bool) -> bytes:
    """GET /v1/health; the status line and headers, and the body when it ends the answer."""
    connection = b"keep-alive" if keep_alive else b"close"
    tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: " + connection + b"\r\n\r\n")
    answer = b""
    with contextlib.suppress(ssl.SSLError, ConnectionResetError):
        while b"\r\n\r\n" not in answer and (chunk := tls.recv(4096)):
            answer += chunk
    return answer


def test_past_the_limit_a_new_connection_is_closed_before_its_handshake(
    small_server: ServerProcess, material: Material
) -> None:
    with (
        _connect_when_free(small_server, material) as first,
        _connect_when_free(small_server, material) as second,
    ):
        # Each answered, each kept open: the server holds both now.
        assert _exchange(first, keep_alive=True).startswith(b"HTTP/1.1 200")
        assert _exchange(second, keep_alive=True).startswith(b"HTTP/1.1 200")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _connect(small_server, material).close()
        # The two within the limit are served on.
        assert _exchange(first, keep_alive=True).startswith(b"HTTP/1.1 200")


def test_once_the_connections_go_requests_are_served_again(
    small_server: ServerProcess, material: Material
) -> None:
    with (
        _connect_when_free(small_server, material) as first,
        _connect_when_free(small_server, material) as second,
    ):
        _exchange(first, keep_alive=True)
        _exchange(second, keep_alive=True)
    # The server learns of the closes asynchronously: ask until it has.
    deadline = time.monotonic() + 10
    while True:
        answer = b""
        with (
            contextlib.suppress(ssl.SSLError, ConnectionError),
            _connect(small_server, material) as tls,
        ):
            answer = _exchange(tls, keep_alive=False)
        if answer.startswith(b"HTTP/1.1 200") or time.monotonic() > deadline:
            break
    assert answer.startswith(b"HTTP/1.1 200")


def test_serve_refuses_a_limit_below_one() -> None:
    from keymgmt import server as service_module

    with pytest.raises(InvalidArgumentError, match="at least 1"):
        service_module.serve(None, None, max_connections=0)  # type: ignore[arg-type]


# -- the server key file ------------------------------------------------------------


def test_a_server_key_readable_by_others_is_refused(material: Material, tmp_path: Path) -> None:
    from keymgmt.server import TlsMaterial

    key = tmp_path / "server.key"
    key.write_bytes(material.server.key.read_bytes())
    key.chmod(0o644)
    with pytest.raises(InvalidArgumentError, match=r"readable by group or others \(mode 0644\)"):
        TlsMaterial.from_paths(material.server.certificate, key, material.trust)
    key.chmod(0o600)
    assert (
        TlsMaterial.from_paths(material.server.certificate, key, material.trust).private_key == key
    )


def test_serve_says_why_it_refuses_an_open_key_file(material: Material, tmp_path: Path) -> None:
    key = tmp_path / "server.key"
    key.write_bytes(material.server.key.read_bytes())
    key.chmod(0o640)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from keymgmt.cli import main; sys.exit(main())",
            "--store",
            str(material.store),
            "--key-file",
            str(material.key_file),
            "serve",
            "--port",
            "0",
            "--tls-cert",
            str(material.server.certificate),
            "--tls-key",
            str(key),
            "--client-ca",
            str(material.trust),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("KEYMGMT_")},
    )
    assert done.returncode != 0
    assert "readable by group or others (mode 0640)" in done.stderr
    assert "Traceback" not in done.stderr
