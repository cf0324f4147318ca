"""``keymgmt remote ...``: the same jobs through a key service (``keymgmt serve``).

Where ``keymgmt encrypt`` opens the store, ``keymgmt remote --server URL
encrypt`` asks the service, presenting a client certificate: the key never
reaches this machine. Options may come from the environment:
``KEYMGMT_SERVER``, ``KEYMGMT_SERVER_CA``, ``KEYMGMT_CLIENT_CERT``,
``KEYMGMT_CLIENT_KEY``, and for an encrypted client key (``keymgmt ca issue
--key-out`` writes them) ``KEYMGMT_KEY_PASSPHRASE``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import click

from keymgmt.cli._common import Settings, emit, pass_settings, read_input
from keymgmt.cli._keys import _context, _input, _output
from keymgmt.errors import InvalidArgumentError

if TYPE_CHECKING:
    from keymgmt.client import KeyServiceClient

__all__ = ["remote"]

_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)
_IN = click.Path(path_type=Path, dir_okay=False, allow_dash=False)


@attrs.frozen
class Remote:
    """Where the service is and who this client is (None: not given)."""

    server: str | None
    ca: Path | None
    certificate: Path | None
    private_key: Path | None
    key_password: bytes | None = attrs.field(default=None, repr=False)


#: Where an encrypted key's passphrase comes from when no file is given.
KEY_PASSPHRASE_ENV = "KEYMGMT_KEY_PASSPHRASE"  # noqa: S105 - a variable name


def key_passphrase(path: Path | None) -> bytes | None:
    """The passphrase of an encrypted key file: ``path``'s bytes, else the environment.

    Bytes as given (trailing newlines dropped), never decoded: OpenSSL
    compares bytes, and a passphrase that is not UTF-8 (a Latin-1 ``café``)
    is a passphrase all the same; decoding with replacement made it another
    one. ``KEYMGMT_KEY_PASSPHRASE`` likewise, as the bytes the environment holds.

    Raises:
        InvalidArgumentError: the file cannot be read, is over 4 KiB, or is empty.
    """
    if path is not None:
        data = read_input(path, 4096).rstrip(b"\r\n")
        if not data:
            raise InvalidArgumentError(f"the passphrase file {path} is empty")
        return data
    value = os.environ.get(KEY_PASSPHRASE_ENV)
    return os.fsencode(value) if value else None


#: Each connection option, its environment variable and what it is.
_NEEDED = (
    ("server", "--server", "KEYMGMT_SERVER", "the service's https:// URL"),
    ("ca", "--ca", "KEYMGMT_SERVER_CA", "the CA bundle that issued the server's certificate"),
    ("certificate", "--cert", "KEYMGMT_CLIENT_CERT", "the client certificate"),
    ("private_key", "--key", "KEYMGMT_CLIENT_KEY", "the client certificate's private key"),
)


@contextmanager
def service_client(remote: Remote) -> Iterator[KeyServiceClient]:
    """``with service_client(remote) as client:`` (needs httpx: the server/client extra)."""
    # Checked here, not by click, so `keymgmt remote COMMAND --help` works
    # before any of them is set.
    server, ca, certificate, private_key = (
        remote.server,
        remote.ca,
        remote.certificate,
        remote.private_key,
    )
    if server is None or ca is None or certificate is None or private_key is None:
        missing = [
            f"{option} ({env}: {what})"
            for field, option, env, what in _NEEDED
            if getattr(remote, field) is None
        ]
        context = click.get_current_context(silent=True)
        raise click.UsageError(
            "keymgmt remote needs " + "; ".join(missing) + ", given before the command",
            ctx=None if context is None else context.parent,
        )
    try:
        from keymgmt.client import KeyServiceClient
    except ImportError as exc:
        raise click.ClickException(
            f"keymgmt remote needs httpx (pip install 'keymgmt[server]'): {exc}"
        ) from None
    with KeyServiceClient.from_files(
        server,
        ca=ca,
        certificate=certificate,
        private_key=private_key,
        key_password=remote.key_password,
    ) as client:
        yield client


pass_remote = click.make_pass_decorator(Remote)


@click.group()
@click.option(
    "--server", envvar="KEYMGMT_SERVER", help="The service, https://host:port (KEYMGMT_SERVER)."
)
@click.option(
    "--ca",
    envvar="KEYMGMT_SERVER_CA",
    type=_FILE,
    help="CA bundle that issued the server's certificate, PEM (KEYMGMT_SERVER_CA).",
)
@click.option(
    "--cert",
    envvar="KEYMGMT_CLIENT_CERT",
    type=_FILE,
    help="Client certificate (+ chain), PEM (KEYMGMT_CLIENT_CERT).",
)
@click.option(
    "--key",
    envvar="KEYMGMT_CLIENT_KEY",
    type=_FILE,
    help="The client certificate's private key, PEM (KEYMGMT_CLIENT_KEY).",
)
@click.option(
    "--key-passphrase-file",
    type=_FILE,
    help="Passphrase of an encrypted --key (else KEYMGMT_KEY_PASSPHRASE).",
)
@click.pass_context
def remote(
    ctx: click.Context,
    server: str | None,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
    key_passphrase_file: Path | None,
) -> None:
    """Use a key service (keymgmt serve) instead of the local store.

    The client certificate and key are PEM files, as `keymgmt ca issue
    --profile tls-client --new-key --out CERT --key-out KEY` writes them;
    the key's passphrase comes from --key-passphrase-file or
    KEYMGMT_KEY_PASSPHRASE.
    """
    ctx.obj = Remote(server, ca, cert, key, key_passphrase(key_passphrase_file))


@remote.command()
@pass_remote
@pass_settings
def whoami(settings: Settings, remote: Remote) -> None:
    """The principal the service sees in the client certificate."""
    with service_client(remote) as client:
        principal = client.whoami()
    emit(settings, {"principal": principal}, principal)


@remote.command("encrypt")
@click.option("--key", "name", required=True, help="The key to encrypt under.")
@click.option("--context", "pairs", multiple=True, help="KEY=VALUE, bound as associated data.")
@click.option("--in", "source", type=_IN, help="Read the plaintext here (default: stdin).")
@click.option("--out", "target", type=_IN, help="Write the ciphertext here (default: stdout).")
@pass_remote
def remote_encrypt(
    remote: Remote, name: str, pairs: tuple[str, ...], source: Path | None, target: Path | None
) -> None:
    """Encrypt stdin (or --in) under the --key key on the service."""
    context = _context(pairs)
    data = _input(source)
    with service_client(remote) as client:
        ciphertext = client.encrypt(name, data, context)
    _output(target, ciphertext)


@remote.command("decrypt")
@click.option("--context", "pairs", multiple=True, help="KEY=VALUE, as given to encrypt.")
@click.option("--in", "source", type=_IN, help="Read the ciphertext here (default: stdin).")
@click.option("--out", "target", type=_IN, help="Write the plaintext here (default: stdout).")
@pass_remote
def remote_decrypt(
    remote: Remote, pairs: tuple[str, ...], source: Path | None, target: Path | None
) -> None:
    """Decrypt stdin (or --in) on the service; the ciphertext names its key."""
    context = _context(pairs)
    data = _input(source)
    with service_client(remote) as client:
        plaintext = client.decrypt(data, context)
    _output(target, plaintext, secret=True)


@remote.command("revoke")
@click.argument("kind", type=click.Choice(["key", "certificate", "principal"]))
@click.argument("subject")
@click.option("--reason", default="unspecified", show_default=True)
@pass_remote
@pass_settings
def remote_revoke(settings: Settings, remote: Remote, kind: str, subject: str, reason: str) -> None:
    """Revoke a key version (name#version), certificate (ca:serial) or principal."""
    with service_client(remote) as client:
        result = client.revoke(kind, subject, reason)
    emit(settings, result, f"revoked {kind} {subject} ({result['reason']})")
