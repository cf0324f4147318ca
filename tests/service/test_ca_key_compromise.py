"""A client under a CA whose signing key is compromised is refused, as ``km.pki.verify`` does.

An intermediate's compromise also revokes its certificate at its parent, so
the chain's own revocation refuses its clients; a root has no parent, so
only the compromise of its key can say that nothing it signed vouches any
more (whoever holds the key can sign any certificate, dated as they like).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from keymgmt import KeyManager
from keymgmt.client import client_ssl_context
from keymgmt.keyring import KeyFile

from .conftest import POLICY, Issued, ServerProcess, _write_leaf, start_server


@pytest.fixture(scope="module")
def own_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Issued]:
    """A store of its own (its root is compromised here), a server on it and a client."""
    directory = tmp_path_factory.mktemp("root-compromise")
    key_file = directory / "master.key"
    KeyFile.generate(key_file)
    store = directory / "store.db"
    with KeyManager.open(store, key_file=key_file, create=True) as km:
        root = km.pki.create_root_ca("root")
        issuing = root.create_intermediate("issuing")
        client = _write_leaf(directory, "app-1", issuing, "app-1")
        (directory / "root.pem").write_bytes(
            root.certificate.public_bytes(serialization.Encoding.PEM)
        )
    (directory / "policy.json").write_text(json.dumps(POLICY))
    return store, key_file, client


@pytest.fixture(scope="module")
def own_server(own_store: tuple[Path, Path, Issued]) -> Iterator[ServerProcess]:
    store, key_file, _ = own_store
    running = start_server(
        str(store),
        key_file,
        store.parent / "server.log",
        "--ca",
        "issuing",
        "--policy",
        str(store.parent / "policy.json"),
        "--sync-interval",
        "0",
    )
    yield running
    running.stop()


def test_a_client_under_a_root_whose_key_is_compromised_is_refused(
    own_store: tuple[Path, Path, Issued], own_server: ServerProcess
) -> None:
    store, key_file, issued = own_store
    context = client_ssl_context(
        ca=store.parent / "root.pem", certificate=issued.certificate, private_key=issued.key
    )
    with httpx.Client(base_url=own_server.url, verify=context, timeout=20) as client:
        assert client.get("/v1/whoami").status_code == 200
        with KeyManager.open(store, key_file=key_file) as km:
            km.compromise(key=km.pki.ca("root").key_ref)
        refused = client.get("/v1/whoami")
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "revoked"
    assert "ca-compromise" in refused.json()["error"]["message"]
