"""Fifth review of the service: regression tests for what it found (real server, real TLS)."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from keymgmt.client import KeyServiceClient
from keymgmt.errors import InvalidArgumentError, MalformedInputError, ServiceError
from keymgmt.server import Operation, ServicePolicy

from .conftest import Issued, Material, ServerProcess, start_server

# -- passphrases of encrypted keys are bytes, taken as given ---------------------------

#: "café" in Latin-1: a passphrase OpenSSL (and keymgmt) accept that is not UTF-8.
LATIN1_PASSPHRASE = b"caf\xe9 key pass"


def _encrypted(issued: Issued, directory: Path, password: bytes) -> Path:
    """``issued``'s key, re-written encrypted under ``password`` (mode 0600)."""
    key = serialization.load_pem_private_key(issued.key.read_bytes(), None)
    path = directory / f"{issued.key.stem}-review5.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    )
    path.chmod(0o600)
    return path


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


def test_remote_reads_a_key_passphrase_file_that_is_not_utf8_as_its_bytes(
    server: ServerProcess, material: Material, tmp_path: Path
) -> None:
    # Before, the file was decoded with errors replaced: the right passphrase
    # became another one, and the answer was "wrong key passphrase?".
    key = _encrypted(material.clients["app-1"], tmp_path, LATIN1_PASSPHRASE)
    secret = tmp_path / "latin1-pass.txt"
    secret.write_bytes(LATIN1_PASSPHRASE + b"\n")
    done = _cli(
        "remote",
        "--key-passphrase-file",
        str(secret),
        "whoami",
        env=_remote_env(server, material, key),
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "app-1\n", "")


def test_remote_refuses_an_empty_key_passphrase_file_by_name(
    server: ServerProcess, material: Material, tmp_path: Path
) -> None:
    key = _encrypted(material.clients["app-1"], tmp_path, b"client-pass")
    secret = tmp_path / "empty-pass.txt"
    secret.write_bytes(b"\n")
    done = _cli(
        "remote",
        "--key-passphrase-file",
        str(secret),
        "whoami",
        env=_remote_env(server, material, key),
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"error: the passphrase file {secret} is empty\n"


def test_serve_reads_a_tls_key_passphrase_file_that_is_not_utf8_as_its_bytes(
    material: Material, tmp_path: Path
) -> None:
    key = _encrypted(material.server, tmp_path, LATIN1_PASSPHRASE)
    secret = tmp_path / "latin1-server-pass.txt"
    secret.write_bytes(LATIN1_PASSPHRASE + b"\n")
    running = start_server(
        str(material.store),
        material.key_file,
        tmp_path / "review5-latin1.log",
        "--tls-cert",
        str(material.server.certificate),
        "--tls-key",
        str(key),
        "--client-ca",
        str(material.trust),
        "--tls-key-passphrase-file",
        str(secret),
    )
    try:
        issued = material.clients["app-1"]
        with KeyServiceClient.from_files(
            running.url, ca=material.trust, certificate=issued.certificate, private_key=issued.key
        ) as client:
            assert client.whoami() == "app-1"
    finally:
        running.stop()


# -- sign policy attributes: names that could never match are refused at load -------------


def _sign_rule(attributes: dict[str, list[str]]) -> dict[str, object]:
    return {
        "principals": ["app-*"],
        "operations": ["sign"],
        "profiles": ["tls-client"],
        "names": ["{principal}"],
        "attributes": attributes,
    }


@pytest.mark.parametrize("name", ["ou", "Ou", "serialNumber", "E", "email", "org", "O "])
def test_a_policy_attribute_name_no_subject_attribute_can_have_is_refused_at_load(
    name: str,
) -> None:
    # Before, the policy loaded and the rule silently never matched (every
    # CSR with the attribute was denied): the names are compared as
    # cryptography writes them, so "ou" or "serialNumber" meant nothing.
    with pytest.raises(InvalidArgumentError, match=f"unknown subject attribute name {name!r}"):
        ServicePolicy.from_json({"rules": [_sign_rule({name: ["x"]})]})


def test_a_policy_attribute_named_by_the_dotted_oid_of_a_short_name_matches_it() -> None:
    policy = ServicePolicy.from_json({"rules": [_sign_rule({"2.5.4.10": ["Example Corp"]})]})
    assert policy.allows(
        "app-1",
        Operation.SIGN,
        profile="tls-client",
        names=["app-1"],
        attributes=[("O", "Example Corp")],
    )


def test_a_policy_attribute_named_by_another_dotted_oid_is_kept() -> None:
    policy = ServicePolicy.from_json({"rules": [_sign_rule({"2.5.4.5": ["{principal}"]})]})
    assert policy.allows(
        "app-1",
        Operation.SIGN,
        profile="tls-client",
        names=["app-1"],
        attributes=[("2.5.4.5", "app-1")],
    )


# -- the client: a hostile answer is a typed error, never a foreign one -------------------


@contextlib.contextmanager
def _canned_https(material: Material, status: int, body: bytes) -> Iterator[str]:
    """A loopback HTTPS server (the service's certificate) that answers every request alike."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(material.server.certificate, material.server.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    head = (
        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()

    def answer() -> None:
        with contextlib.suppress(OSError):
            while True:
                raw, _ = listener.accept()
                with raw, context.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(head + body)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        thread.join(timeout=5)


_DEEP = b"[" * 200_000 + b"]" * 200_000


def test_a_deeply_nested_json_success_answer_is_malformed_input(material: Material) -> None:
    # json raised RecursionError (not a ValueError) past its nesting limit.
    with (
        _canned_https(material, 200, _DEEP) as url,
        material.client(url, "app-1") as client,
        pytest.raises(MalformedInputError, match="a body that is not JSON"),
    ):
        client.whoami()


def test_a_deeply_nested_json_error_answer_is_the_statuss_typed_error(
    material: Material,
) -> None:
    with (
        _canned_https(material, 503, _DEEP) as url,
        material.client(url, "app-1") as client,
        pytest.raises(ServiceError) as caught,
    ):
        client.whoami()
    assert caught.value.status == 503
