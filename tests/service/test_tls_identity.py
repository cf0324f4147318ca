"""The server certificate from the store's CA, and its renewal without a restart.

Real handshakes through the stdlib ``ssl`` module on loopback; time moves on
a fake clock.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keymgmt import KeyManager
from keymgmt.errors import InvalidArgumentError, NotFoundError
from keymgmt.server import StoreTlsIdentity
from keymgmt.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock 2.5 hours behind the real one.

    The stdlib ``ssl`` client checks validity against the real time, so the
    certificates must be valid now: the first one (3 hours) is, and so is
    the one renewed two hours later on this clock.
    """
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2, minutes=30)
    return FakeClock(start)


@pytest.fixture
def pki_km(clock: FakeClock) -> Iterator[KeyManager]:
    """An in-memory manager with a root CA on the fake clock."""
    with KeyManager.in_memory(clock=clock) as km:
        km.pki.create_root_ca("root")
        yield km


def _served_certificate(identity: StoreTlsIdentity, trust: Path) -> x509.Certificate:
    """Do one real handshake against ``identity.context``; the certificate the client saw."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def accept() -> None:
            conn, _ = listener.accept()
            with identity.context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

        thread = threading.Thread(target=accept)
        thread.start()
        client = ssl.create_default_context(cafile=trust)
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            tls.sendall(b"x")
        thread.join(10)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _trust(km: KeyManager, tmp_path: Path) -> Path:
    path = tmp_path / "root.pem"
    path.write_bytes(km.pki.ca("root").certificate.public_bytes(serialization.Encoding.PEM))
    return path


def test_identity_serves_a_certificate_from_the_store_ca(
    pki_km: KeyManager, tmp_path: Path
) -> None:
    identity = StoreTlsIdentity(pki_km, "root", names=["127.0.0.1"])
    seen = _served_certificate(identity, _trust(pki_km, tmp_path))
    assert seen == identity.certificate
    assert seen.issuer.rfc4514_string() == "CN=root"


def test_renewal_waits_for_two_thirds_of_the_lifetime(pki_km: KeyManager, clock: FakeClock) -> None:
    identity = StoreTlsIdentity(pki_km, "root", names=["127.0.0.1"], validity=dt.timedelta(hours=3))
    clock.advance(dt.timedelta(hours=1, minutes=59))
    assert identity.renew_if_due() is False


def test_renewed_certificate_is_served_to_new_connections(
    pki_km: KeyManager, clock: FakeClock, tmp_path: Path
) -> None:
    identity = StoreTlsIdentity(pki_km, "root", names=["127.0.0.1"], validity=dt.timedelta(hours=3))
    first = identity.certificate
    clock.advance(dt.timedelta(hours=2))
    assert identity.renew_if_due() is True
    seen = _served_certificate(identity, _trust(pki_km, tmp_path))
    assert seen == identity.certificate
    assert seen.serial_number != first.serial_number


def test_unknown_ca_is_refused(pki_km: KeyManager) -> None:
    with pytest.raises(NotFoundError):
        StoreTlsIdentity(pki_km, "nope")


def test_no_names_is_refused(pki_km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError, match="at least one name"):
        StoreTlsIdentity(pki_km, "root", names=[])
