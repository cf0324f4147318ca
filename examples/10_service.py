"""The key service: ``keymgmt serve`` over mutual TLS, used with ``KeyServiceClient``.

The store's own PKI issues the server's certificate (``serve --ca issuing``)
and the client's; a policy lets the client encrypt, decrypt and make data
keys with ``payments`` and have ``issuing`` sign CSRs for its own name.

Run: python examples/10_service.py
Needs the ``server`` extra (Starlette, uvicorn, httpx).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import keymgmt
from keymgmt.client import KeyServiceClient
from keymgmt.keyring import KeyFile

POLICY = {
    "rules": [
        {
            "principals": ["app-*"],
            "operations": ["encrypt", "decrypt", "datakey"],
            "keys": ["payments"],
        },
        {
            "principals": ["app-*"],
            "operations": ["sign"],
            "profiles": ["tls-client"],
            "names": ["{principal}"],
            "cas": ["issuing"],
        },
    ]
}


def _pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def prepare(folder: Path) -> None:
    """A store with a PKI and a key; the client's certificate, key and trust anchor as files."""
    KeyFile.generate(folder / "master.key")  # a 0600 key file: the serve process opens the store
    with keymgmt.KeyManager.open(folder / "keys.db", key_file=folder / "master.key") as km:
        root = km.pki.create_root_ca("root")
        issuing = root.create_intermediate("issuing")
        km.keys.create("payments")
        # The client's identity: principal "app-billing" (the certificate's common name).
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issuing.issue(
            public_key=key.public_key(), subject="app-billing", profile="tls-client"
        )
        (folder / "app.pem").write_bytes(_pem(cert, issuing.certificate))
        # ssl needs the client key as a file; a throwaway key in a temporary folder.
        (folder / "app.key").touch(mode=0o600)
        (folder / "app.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (folder / "root.pem").write_bytes(_pem(root.certificate))
    (folder / "policy.json").write_text(json.dumps(POLICY))


def start(folder: Path) -> tuple[subprocess.Popen[str], str]:
    """Run ``keymgmt serve`` on a free loopback port; return the process and its URL."""
    command = [
        sys.executable, "-c", "import sys; from keymgmt.cli import main; sys.exit(main())",
        "--store", str(folder / "keys.db"), "--key-file", str(folder / "master.key"),
        "serve", "--ca", "issuing", "--policy", str(folder / "policy.json"),
        "--host", "127.0.0.1", "--port", "0", "--sync-interval", "0",
    ]  # fmt: skip
    with (folder / "serve.log").open("w") as log:
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    assert server.stdout is not None
    for line in server.stdout:  # "listening on https://127.0.0.1:PORT" once it accepts
        if line.startswith("listening on "):
            return server, line.split()[-1]
    server.wait()
    raise SystemExit(f"keymgmt serve did not start:\n{(folder / 'serve.log').read_text()}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepare(folder)
        server, url = start(folder)
        try:
            with KeyServiceClient.from_files(
                url,
                ca=folder / "root.pem",  # the server's certificate chains to the store's root
                certificate=folder / "app.pem",
                private_key=folder / "app.key",
            ) as client:
                print(f"connected to {url} as {client.whoami()}")

                context = {"order": "42"}
                ciphertext = client.encrypt("payments", b"4111 1111 1111 1111", context)
                assert client.decrypt(ciphertext, context) == b"4111 1111 1111 1111"
                print("encrypt/decrypt through the service: ok")

                # Envelope encryption: the service wraps, the client encrypts locally.
                data_key = client.generate_data_key("payments", context)
                assert client.decrypt_data_key(data_key.wrapped, context) == data_key.plaintext
                print(f"data key wrapped under payments version {data_key.key_version}")

                # A CSR for the client's own name, signed by the store's CA.
                key = ec.generate_private_key(ec.SECP256R1())
                csr = (
                    x509.CertificateSigningRequestBuilder()
                    .subject_name(x509.Name.from_rfc4514_string("CN=app-billing"))
                    .sign(key, hashes.SHA256())
                )
                leaf, chain = client.sign_csr("issuing", csr, profile="tls-client")
                leaf.verify_directly_issued_by(chain[0])
                print(f"issued {leaf.subject.rfc4514_string()} by {leaf.issuer.rfc4514_string()}")

                # The policy allows nothing else: same exception class as the library's.
                try:
                    client.encrypt("payroll", b"x")
                except keymgmt.AccessDeniedError:
                    print("encrypt with a key the policy does not name: access denied")
                else:
                    raise AssertionError("the policy let an unnamed key encrypt")
        finally:
            server.terminate()  # SIGTERM: a graceful stop
            server.wait(timeout=30)
            assert server.stdout is not None
            server.stdout.close()
        print("server stopped")


if __name__ == "__main__":
    main()
