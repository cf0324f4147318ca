"""Two ``keymgmt serve`` processes on one PostgreSQL store agree, revocations included.

Needs ``KEYMGMT_TEST_POSTGRES_DSN`` (``.ci/services/postgres.sh``): skipped
without it locally, failed without it under CI. Each run gets its own
database, dropped afterwards.
"""

from __future__ import annotations

import json
import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import attrs
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from keymgmt import KeyManager
from keymgmt.client import KeyServiceClient
from keymgmt.errors import ServiceError
from keymgmt.keyring import KeyFile
from keymgmt.pki import build_ocsp_request

from .conftest import POLICY, Issued, ServerProcess, _write_leaf, start_server

pytestmark = pytest.mark.postgres


@attrs.frozen
class PgStore:
    """A fresh PostgreSQL database holding a store with a PKI."""

    dsn: str
    directory: Path
    key_file: Path
    trust: Path
    clients: dict[str, Issued]
    policy: Path


@pytest.fixture(scope="module")
def pg_store(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgStore]:
    """A throwaway database with a store, two client certificates and a policy."""
    import psycopg
    from psycopg import sql

    name = f"keymgmt_service_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = urlunsplit(urlsplit(postgres_dsn)._replace(path="/" + name))
    directory = tmp_path_factory.mktemp("multi")
    key_file = directory / "master.key"
    KeyFile.generate(key_file)
    with KeyManager.open(dsn, key_file=key_file, create=True) as km:
        root = km.pki.create_root_ca("root")
        issuing = root.create_intermediate("issuing")
        clients = {n: _write_leaf(directory, n, issuing, n) for n in ("app-1", "app-2", "admin")}
        trust = directory / "root.pem"
        trust.write_bytes(root.certificate.public_bytes(Encoding.PEM))
    policy = directory / "policy.json"
    policy.write_text(json.dumps(POLICY))
    yield PgStore(dsn, directory, key_file, trust, clients, policy)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def pair(pg_store: PgStore) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two servers on the same database, each syncing in the background every 0.1 s."""
    started = []
    try:
        for label in ("a", "b"):
            started.append(
                start_server(
                    pg_store.dsn,
                    pg_store.key_file,
                    pg_store.directory / f"server-{label}.log",
                    "--ca",
                    "issuing",
                    "--policy",
                    str(pg_store.policy),
                    "--sync-interval",
                    "0.1",
                )
            )
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def _client(server: ServerProcess, store: PgStore, principal: str) -> KeyServiceClient:
    issued = store.clients[principal]
    return KeyServiceClient.from_files(
        server.url, ca=store.trust, certificate=issued.certificate, private_key=issued.key
    )


def test_the_servers_listen_on_different_ports(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    assert urlsplit(pair[0].url).port != urlsplit(pair[1].url).port


def test_what_one_encrypts_the_other_decrypts(
    pair: tuple[ServerProcess, ServerProcess], pg_store: PgStore
) -> None:
    with _client(pair[0], pg_store, "app-1") as a, _client(pair[1], pg_store, "app-1") as b:
        a.create_key("app-shared")
        ciphertext = a.encrypt("app-shared", b"one store", {"n": "1"})
        assert b.decrypt(ciphertext, {"n": "1"}) == b"one store"
        assert a.decrypt(b.rewrap(ciphertext, {"n": "1"}), {"n": "1"}) == b"one store"
        assert b.key_info("app-shared")["key_id"] == a.key_info("app-shared")["key_id"]


def test_principal_revoked_through_one_is_refused_by_the_other(
    pair: tuple[ServerProcess, ServerProcess], pg_store: PgStore
) -> None:
    with _client(pair[1], pg_store, "app-2") as on_b, _client(pair[0], pg_store, "admin") as a:
        assert on_b.whoami() == "app-2"
        a.revoke("principal", "app-2", "key-compromise")
        # /v1/ready syncs with the store before answering: the revocation
        # committed through a is visible to b now, no polling for its
        # background sync.
        on_b.ready()
        with pytest.raises(ServiceError) as refused:
            on_b.whoami()
        assert refused.value.type == "revoked"


def test_certificate_revoked_through_one_is_revoked_in_the_others_ocsp(
    pair: tuple[ServerProcess, ServerProcess], pg_store: PgStore
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app-1")]))
        .sign(key, hashes.SHA256())
    )
    with _client(pair[0], pg_store, "app-1") as a, _client(pair[1], pg_store, "admin") as b:
        leaf, chain = a.sign_csr("issuing", csr, profile="tls-client")
        request = build_ocsp_request(leaf, chain[0])
        assert b.ocsp(request).certificate_status is ocsp.OCSPCertStatus.GOOD
        b.revoke("certificate", f"issuing:{leaf.serial_number:x}", "superseded")
        a.ready()  # syncs a with the store (see above)
        assert a.ocsp(request).certificate_status is ocsp.OCSPCertStatus.REVOKED


def test_both_are_ready(pair: tuple[ServerProcess, ServerProcess], pg_store: PgStore) -> None:
    for server in pair:
        context = ssl.create_default_context(cafile=pg_store.trust)
        with httpx.Client(base_url=server.url, verify=context) as client:
            assert client.get("/v1/ready").json()["status"] == "ready"
