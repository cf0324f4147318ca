"""Sixth review of the service: regression tests for what it found (real server, real TLS).

- ``--max-connections`` counts a connection from when it is accepted, TLS
  handshake included: a flood of stalled handshakes cannot hold more sockets
  (file descriptors) than the limit, each for up to ``--handshake-timeout``.
- TLS 1.2 client-initiated renegotiation is refused.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import Material, ServerProcess, raw_tls_context, start_server

# -- stalled handshakes count against --max-connections ------------------------------

#: The connection limit of :func:`gated_server`.
LIMIT = 4
#: Its handshake bound: long enough to tell "closed at once" from "cut by the timeout".
HANDSHAKE_TIMEOUT = 4.0


@pytest.fixture
def gated_server(material: Material) -> Iterator[ServerProcess]:
    """A server holding at most :data:`LIMIT` connections (a fresh one per test: no leftovers)."""
    running = start_server(
        str(material.store),
        material.key_file,
        material.directory / "review6-gated.log",
        "--ca",
        "issuing",
        "--max-connections",
        str(LIMIT),
        "--handshake-timeout",
        str(HANDSHAKE_TIMEOUT),
    )
    yield running
    running.stop()


def _address(server: ServerProcess) -> tuple[str, int]:
    address = urlsplit(server.url)
    assert address.hostname is not None
    assert address.port is not None
    return address.hostname, address.port


def _open_sockets(pid: int) -> int:
    """How many sockets process ``pid`` holds open (its file descriptors naming a socket)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):
            if os.readlink(fd).startswith("socket:"):
                count += 1
    return count


def _wait_for_sockets(pid: int, expected: int) -> None:
    """Wait (bounded) until ``pid`` holds ``expected`` sockets: the server has accepted."""
    deadline = time.monotonic() + 10
    while _open_sockets(pid) != expected:
        assert time.monotonic() < deadline, f"{_open_sockets(pid)} sockets, not {expected}"
        time.sleep(0.01)


def _seconds_until_closed(raw: socket.socket, started: float) -> float:
    """Read until the server closes ``raw``; inf if still open after the socket timeout."""
    try:
        while raw.recv(1024):
            pass
    except ConnectionError:
        pass
    except TimeoutError:
        return math.inf
    return time.monotonic() - started


def _stalled(server: ServerProcess, count: int, *, timeout: float) -> list[socket.socket]:
    """``count`` TCP connections that never start their TLS handshake."""
    return [socket.create_connection(_address(server), timeout=timeout) for _ in range(count)]


def _health(server: ServerProcess, material: Material) -> bytes:
    """The first bytes of a GET /v1/health answer through a full handshake."""
    context = raw_tls_context(material, material.clients["app-1"])
    with (
        socket.create_connection(_address(server), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return tls.recv(4096)


def test_stalled_handshakes_beyond_the_limit_are_closed_at_once(
    gated_server: ServerProcess,
) -> None:
    pid = gated_server.process.pid
    baseline = _open_sockets(pid)
    held = _stalled(gated_server, LIMIT, timeout=HANDSHAKE_TIMEOUT / 2)
    try:
        _wait_for_sockets(pid, baseline + LIMIT)
        started = time.monotonic()
        extra = _stalled(gated_server, 2 * LIMIT, timeout=HANDSHAKE_TIMEOUT / 2)
        try:
            # Before the fix each stayed open until its handshake timed out.
            closed = [_seconds_until_closed(raw, started) for raw in extra]
            assert max(closed) < HANDSHAKE_TIMEOUT / 2
            assert _open_sockets(pid) <= baseline + LIMIT
        finally:
            for raw in extra:
                raw.close()
        # The connections within the limit are still open: only the handshake bound cuts them.
        assert all(_seconds_until_closed(raw, started) >= HANDSHAKE_TIMEOUT / 2 for raw in held)
    finally:
        for raw in held:
            raw.close()


def test_a_client_within_the_limit_is_served_beside_stalled_handshakes(
    gated_server: ServerProcess, material: Material
) -> None:
    pid = gated_server.process.pid
    baseline = _open_sockets(pid)
    held = _stalled(gated_server, LIMIT - 1, timeout=10)
    try:
        _wait_for_sockets(pid, baseline + LIMIT - 1)
        assert _health(gated_server, material).startswith(b"HTTP/1.1 200")
    finally:
        for raw in held:
            raw.close()


def test_a_client_is_served_again_once_the_stalled_handshakes_time_out(
    gated_server: ServerProcess, material: Material
) -> None:
    pid = gated_server.process.pid
    baseline = _open_sockets(pid)
    started = time.monotonic()
    held = _stalled(gated_server, LIMIT, timeout=10)
    try:
        _wait_for_sockets(pid, baseline + LIMIT)
        # At the limit a new connection is closed before its handshake completes.
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _health(gated_server, material)
        # The server cuts the stalled ones at the handshake bound (no sleeping here:
        # each read returns when the server closes its connection).
        assert all(HANDSHAKE_TIMEOUT <= _seconds_until_closed(raw, started) < 10 for raw in held)
    finally:
        for raw in held:
            raw.close()
    _wait_for_sockets(pid, baseline)
    assert _health(gated_server, material).startswith(b"HTTP/1.1 200")


# -- TLS 1.2 renegotiation -------------------------------------------------------------


def test_the_server_context_refuses_renegotiation(material: Material) -> None:
    from keymgmt.server import TlsMaterial, server_ssl_context

    tls = TlsMaterial.from_paths(material.server.certificate, material.server.key, material.trust)
    context = server_ssl_context(tls)
    assert context.minimum_version <= ssl.TLSVersion.TLSv1_2  # TLS 1.2 is spoken...
    assert context.options & ssl.OP_NO_RENEGOTIATION  # ...without renegotiation


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_tls12_client_cannot_renegotiate(server: ServerProcess, material: Material) -> None:
    # OpenSSL 3 servers refuse client-initiated renegotiation by default; with
    # OpenSSL 1.1.1 (which Python 3.11 may be built against) only the option does.
    host, port = _address(server)
    done = subprocess.run(
        [
            *("openssl", "s_client", "-connect", f"{host}:{port}", "-tls1_2"),
            *("-CAfile", str(material.trust), "-servername", "localhost"),
        ],
        input="R\n",  # s_client's command: renegotiate
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "Protocol  : TLSv1.2" in done.stdout, done.stdout + done.stderr
    assert "RENEGOTIATING" in done.stderr
    # The server answers the renegotiation request with a no_renegotiation alert.
    assert "no renegotiation" in done.stderr, done.stderr


def test_a_server_stops_promptly_and_cleanly_with_a_handshake_in_progress(
    gated_server: ServerProcess,
) -> None:
    pid = gated_server.process.pid
    baseline = _open_sockets(pid)
    with socket.create_connection(_address(gated_server), timeout=10):
        _wait_for_sockets(pid, baseline + 1)
        started = time.monotonic()
        gated_server.process.terminate()
        gated_server.process.wait(timeout=20)
        took = time.monotonic() - started
    assert took < HANDSHAKE_TIMEOUT
    log = gated_server.log_text()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log, log
