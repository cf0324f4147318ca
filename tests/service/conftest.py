"""Real ``keymgmt serve`` processes on loopback, real TLS, real HTTP.

One SQLite store whose own PKI (root -> intermediates ``issuing`` and
``issuing-2``, P-256) issues the server certificate (``serve --ca issuing``)
and every client certificate; one policy; one server process for the whole
session. A second root made with ``cryptography`` directly plays the
outsider. Tests that need another process start it themselves. Every
response a test receives through the :func:`http` clients is checked
against the shipped OpenAPI file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import selectors
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keymgmt import KeyManager
from keymgmt.client import KeyServiceClient, client_ssl_context
from keymgmt.keyring import KeyFile
from keymgmt.pki import CertificateAuthority
from keymgmt.testing._pki import key_usage
from keymgmt.testing._pki import name as _name

from ._openapi import OpenApiChecker

NOW = dt.datetime.now(dt.UTC)

#: Client principals the session PKI issues certificates for.
CLIENTS = ("app-1", "app-2", "app-3", "doomed-app", "admin", "nobody", "throttled")

POLICY = {
    "rules": [
        {
            "principals": ["app-*", "doomed-app"],
            "operations": ["encrypt", "decrypt", "datakey", "rewrap", "create-key", "read-key"],
            "keys": ["app-*"],
        },
        {
            "principals": ["app-*"],
            "operations": ["sign"],
            "profiles": ["tls-client"],
            "names": ["{principal}"],
            "cas": ["issuing"],
        },
        {
            "principals": ["app-3"],
            "operations": ["sign"],
            "profiles": ["tls-client"],
            "names": ["{principal}"],
            "cas": ["issuing"],
            "attributes": {"O": ["Example Corp"], "OU": ["{principal}", "team-*"]},
        },
        {"principals": ["app-*"], "operations": ["kdc"]},
        {"principals": ["admin"], "operations": ["revoke"], "subjects": ["*"]},
        {"principals": ["throttled"], "operations": ["read-key"], "keys": ["*"]},
    ],
    "rate_limit": {
        "rate": 10000.0,
        "burst": 20000,
        "principals": {"throttled": {"rate": 0.001, "burst": 2}},
    },
}


@attrs.frozen
class Issued:
    """A certificate and key on disk."""

    certificate: Path
    key: Path


class TestPki:
    """A throwaway root CA that writes PEM files into a directory."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(name)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(hours=1))
            .not_valid_after(NOW + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                key_usage(ca=True),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = directory / f"{name}.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        stem: str,
        *,
        common_name: str | None,
        server: bool = False,
        sans: Sequence[x509.GeneralName] = (),
    ) -> Issued:
        """A leaf for TLS client (or server) authentication."""
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name) if common_name else x509.Name([]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(hours=1))
            .not_valid_after(NOW + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(list(sans)), critical=not common_name
            )
        cert = builder.sign(self.key, hashes.SHA256())
        paths = Issued(self.directory / f"{stem}.pem", self.directory / f"{stem}.key")
        paths.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        paths.key.chmod(0o600)
        return paths


@attrs.frozen
class Material:
    """Everything a server and its clients need on disk."""

    directory: Path
    trust: Path
    clients: dict[str, Issued]
    outsider: Issued
    nameless: Issued
    late: Issued
    server: Issued
    store: Path
    key_file: Path
    policy: Path

    def client(self, url: str, principal: str) -> KeyServiceClient:
        """The library's client for the server at ``url``, as ``principal`` (one of ``clients``)."""
        issued = self.clients[principal]
        return KeyServiceClient.from_files(
            url, ca=self.trust, certificate=issued.certificate, private_key=issued.key
        )


def _write_leaf(
    directory: Path,
    stem: str,
    authority: CertificateAuthority,
    subject: str | x509.Name,
    names: Sequence[str] = (),
    profile: str = "tls-client",
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = authority.issue(
        public_key=key.public_key(), subject=subject, names=list(names), profile=profile
    )
    paths = Issued(directory / f"{stem}.pem", directory / f"{stem}.key")
    chain = [cert, *authority.chain[:-1]]
    paths.certificate.write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    )
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths.key.chmod(0o600)
    return paths


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    """The session's store (with its PKI), client certificates and policy."""
    directory = tmp_path_factory.mktemp("service")
    key_file = directory / "master.key"
    KeyFile.generate(key_file)
    store = directory / "store.db"
    with KeyManager.open(store, key_file=key_file, create=True) as km:
        root = km.pki.create_root_ca("root")
        issuing = root.create_intermediate("issuing")
        second = root.create_intermediate("issuing-2")
        clients = {name: _write_leaf(directory, name, issuing, name) for name in CLIENTS}
        nameless = _write_leaf(
            directory,
            "nameless",
            issuing,
            x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "acme")]),
            ["email:x@example.org"],
        )
        late = _write_leaf(directory, "late", second, "app-late")
        server = _write_leaf(
            directory, "server", issuing, "file-server", ["127.0.0.1"], profile="tls-server"
        )
        trust = directory / "root.pem"
        trust.write_bytes(root.certificate.public_bytes(serialization.Encoding.PEM))
    outsider = TestPki(directory, "other-root").issue("outsider", common_name="app-1")
    policy = directory / "policy.json"
    policy.write_text(json.dumps(POLICY))
    return Material(
        directory=directory,
        trust=trust,
        clients=clients,
        outsider=outsider,
        nameless=nameless,
        late=late,
        server=server,
        store=store,
        key_file=key_file,
        policy=policy,
    )


@attrs.define
class ServerProcess:
    """A running ``keymgmt serve`` child process."""

    process: subprocess.Popen[str]
    url: str
    log: Path

    def stop(self) -> None:
        """SIGTERM, wait; SIGKILL if it does not stop."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def log_text(self) -> str:
        """What the server logged so far."""
        return self.log.read_text(errors="replace")


_LISTENING = re.compile(r"listening on (https://[^\s]+)")


def start_server(store: str, key_file: Path, log: Path, *extra: str) -> ServerProcess:
    """Start ``keymgmt serve --port 0`` and wait until it says where it listens."""
    args = [
        sys.executable,
        "-c",
        "import sys; from keymgmt.cli import main; sys.exit(main())",
        "--store",
        store,
        "--key-file",
        str(key_file),
        "serve",
        "--port",
        "0",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYMGMT_")}
    with log.open("w") as sink:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=sink, text=True, env=env)
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            line = process.stdout.readline()
            if not line:
                break
            found = _LISTENING.search(line)
            if found:
                return ServerProcess(process, found.group(1), log)
    finally:
        selector.close()
    process.kill()
    process.wait()
    raise RuntimeError(f"keymgmt serve did not start:\n{log.read_text()}")


@pytest.fixture(scope="session")
def server(material: Material) -> Iterator[ServerProcess]:
    """The session's server: sync before every request, small body limit, 1 s body timeout."""
    running = start_server(
        str(material.store),
        material.key_file,
        material.directory / "server.log",
        "--ca",
        "issuing",
        "--policy",
        str(material.policy),
        "--sync-interval",
        "0",
        "--max-body",
        "65536",
        "--body-timeout",
        "1",
    )
    yield running
    running.stop()


@pytest.fixture(scope="session")
def openapi() -> OpenApiChecker:
    """The OpenAPI checker every :func:`http` response goes through."""
    return OpenApiChecker()


HttpFactory = Callable[..., httpx.Client]


@pytest.fixture
def http(
    server: ServerProcess, material: Material, openapi: OpenApiChecker
) -> Iterator[HttpFactory]:
    """``http("app-1")``: an httpx client presenting that principal's certificate.

    ``http(None)`` presents none; ``http(issued=...)`` presents another one.
    """
    made: list[httpx.Client] = []

    def make(principal: str | None = None, *, issued: Issued | None = None) -> httpx.Client:
        chosen = issued or (material.clients[principal] if principal else None)
        context = client_ssl_context(
            ca=material.trust,
            certificate=chosen.certificate if chosen else None,
            private_key=chosen.key if chosen else None,
        )
        client = httpx.Client(
            base_url=server.url,
            verify=context,
            timeout=20,
            event_hooks={"response": [openapi.check]},
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def service_client(server: ServerProcess, material: Material) -> Iterator[KeyServiceClient]:
    """The library's client, as principal ``app-1``."""
    with material.client(server.url, "app-1") as client:
        yield client


def raw_tls_context(material: Material, issued: Issued | None) -> ssl.SSLContext:
    """A stdlib client context for handshake-level tests."""
    return client_ssl_context(
        ca=material.trust,
        certificate=issued.certificate if issued else None,
        private_key=issued.key if issued else None,
    )
