"""Fourth review of the service: regression tests for what it found (real server, real TLS)."""

from __future__ import annotations

import math
import socket
import ssl
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from keymgmt.errors import InvalidArgumentError

from .conftest import Material, ServerProcess, raw_tls_context, start_server

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
