"""``keymgmt remote``: the CLI's encrypt/decrypt through the service, as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from keymgmt import KeyManager

from .conftest import Material, ServerProcess


@pytest.fixture(scope="module")
def remote_key(material: Material) -> str:
    """A key the app-* principals may use."""
    with KeyManager.open(material.store, key_file=material.key_file, create=False) as km:
        km.keys.create("app-cli")
    return "app-cli"


def _keymgmt(
    server: ServerProcess, material: Material, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    issued = material.clients["app-1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYMGMT_")}
    env.update(
        KEYMGMT_SERVER=server.url,
        KEYMGMT_SERVER_CA=str(material.trust),
        KEYMGMT_CLIENT_CERT=str(issued.certificate),
        KEYMGMT_CLIENT_KEY=str(issued.key),
    )
    return subprocess.run(
        [sys.executable, "-c", "import sys; from keymgmt.cli import main; sys.exit(main())", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_remote_encrypt_then_decrypt_round_trips(
    server: ServerProcess, material: Material, remote_key: str
) -> None:
    sealed = _keymgmt(
        server,
        material,
        "remote",
        "encrypt",
        "--key",
        remote_key,
        "--context",
        "a=b",
        stdin=b"from the shell",
    )
    assert sealed.returncode == 0, sealed.stderr
    opened = _keymgmt(
        server, material, "remote", "decrypt", "--context", "a=b", stdin=sealed.stdout
    )
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == b"from the shell"


def test_remote_whoami_prints_the_principal(server: ServerProcess, material: Material) -> None:
    done = _keymgmt(server, material, "remote", "whoami")
    assert done.stdout.decode().strip() == "app-1"


def test_remote_whoami_as_json(server: ServerProcess, material: Material) -> None:
    done = _keymgmt(server, material, "--format", "json", "remote", "whoami")
    assert json.loads(done.stdout) == {"principal": "app-1"}


def test_remote_denial_is_one_error_line(
    server: ServerProcess, material: Material, remote_key: str
) -> None:
    done = _keymgmt(server, material, "remote", "encrypt", "--key", "payroll", stdin=b"x")
    assert done.returncode == 1
    assert done.stderr.decode().strip() == (
        "error: principal 'app-1' may not encrypt on key 'payroll'"
    )
