"""Our certificates in a real mutual-TLS connection through the stdlib ``ssl`` module.

A server and a client on loopback TCP, each with a keymgmt-issued P-256
certificate (issued by an intermediate under a keymgmt root), each trusting
only the keymgmt root. With the intermediate's CRL loaded and
``VERIFY_CRL_CHECK_LEAF``, a revoked client certificate is refused by the
server's OpenSSL.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from keymgmt import KeyManager
from keymgmt.pki import (
    TLS_CLIENT,
    TLS_SERVER,
    CertificateAuthority,
    export_certificate,
    export_chain,
    export_crl,
    export_private_key,
)

pytestmark = pytest.mark.interop

PASSWORD = "tls test key passphrase"


@attrs.frozen
class Party:
    cert: Path
    key: Path
    serial: int


@attrs.frozen
class Setup:
    km: KeyManager
    issuing: CertificateAuthority
    root_pem: Path
    server: Party
    client: Party
    tmp: Path


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    # Real time: ssl checks validity against the wall clock.
    with KeyManager.in_memory() as km:
        root = km.pki.create_root_ca("root")
        issuing = root.create_intermediate("issuing")

        def party(name: str, **kwargs: object) -> Party:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = issuing.issue(public_key=key.public_key(), subject=name, **kwargs)  # type: ignore[arg-type]
            cert_path = tmp_path / f"{name}.pem"
            cert_path.write_bytes(export_chain([cert, issuing.certificate]))
            key_path = tmp_path / f"{name}.key"
            key_path.write_bytes(export_private_key(key, PASSWORD))
            return Party(cert_path, key_path, cert.serial_number)

        root_pem = tmp_path / "root.pem"
        root_pem.write_bytes(export_certificate(root.certificate))
        yield Setup(
            km=km,
            issuing=issuing,
            root_pem=root_pem,
            server=party("localhost", profile=TLS_SERVER, names=["localhost", "127.0.0.1"]),
            client=party("alice", profile=TLS_CLIENT),
            tmp=tmp_path,
        )


def _handshake(
    setup: Setup, *, crl: Path | None = None
) -> tuple[bytes | None, BaseException | None, BaseException | None]:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    server_ctx.load_cert_chain(setup.server.cert, setup.server.key, password=PASSWORD)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(cafile=setup.root_pem)
    if crl is not None:
        server_ctx.load_verify_locations(cafile=crl)
        server_ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF

    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cafile=setup.root_pem)
    client_ctx.load_cert_chain(setup.client.cert, setup.client.key, password=PASSWORD)

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server_error: list[BaseException] = []
    seen_client: list[str] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                peer = tls.getpeercert()
                assert peer is not None
                subject: Any = peer["subject"]
                seen_client.extend(v for ((k, v),) in subject if k == "commonName")
                tls.sendall(tls.recv(5).upper())
        except BaseException as exc:
            server_error.append(exc)
        finally:
            listener.close()

    thread = threading.Thread(target=serve)
    thread.start()
    reply: bytes | None = None
    client_error: BaseException | None = None
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"hello")
            reply = tls.recv(5)
    except (ssl.SSLError, OSError) as exc:
        client_error = exc
    thread.join(timeout=10)
    if reply:
        assert seen_client == ["alice"]
    return reply, client_error, server_error[0] if server_error else None


def test_mutual_tls_with_keymgmt_certificates_succeeds(setup: Setup) -> None:
    reply, client_error, server_error = _handshake(setup)
    assert (client_error, server_error) == (None, None)
    assert reply == b"HELLO"


def test_mutual_tls_with_crl_accepts_unrevoked_client(setup: Setup) -> None:
    crl = setup.tmp / "issuing.crl.pem"
    crl.write_bytes(export_crl(setup.issuing.crl()))
    reply, _client_error, server_error = _handshake(setup, crl=crl)
    assert server_error is None
    assert reply == b"HELLO"


def test_revoked_client_certificate_is_refused_with_crl_check(setup: Setup) -> None:
    setup.issuing.revoke(setup.client.serial, "key-compromise")
    crl = setup.tmp / "issuing.crl.pem"
    crl.write_bytes(export_crl(setup.issuing.crl()))
    reply, _client_error, server_error = _handshake(setup, crl=crl)
    assert reply in (None, b"")
    assert isinstance(server_error, ssl.SSLCertVerificationError)
    assert "certificate revoked" in str(server_error)


def test_keymgmt_verify_agrees_with_ssl_on_the_server_certificate(setup: Setup) -> None:
    from keymgmt.pki import Purpose, load_certificates

    leaf, *rest = load_certificates(setup.server.cert.read_bytes())
    path = setup.km.pki.verify(
        leaf, intermediates=rest, purpose=Purpose.TLS_SERVER, name="localhost"
    )
    assert path.engine == "cryptography"
