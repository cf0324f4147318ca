"""``keymgmt remote ...``: the same jobs through a key service (``keymgmt serve``).

Where ``keymgmt encrypt`` opens the store, ``keymgmt remote --server URL
encrypt`` asks the service, presenting a client certificate: the key never
reaches this machine. Options may come from the environment:
``KEYMGMT_SERVER``, ``KEYMGMT_SERVER_CA``, ``KEYMGMT_CLIENT_CERT``,
``KEYMGMT_CLIENT_KEY``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import click

from keymgmt.cli._common import Settings, emit, pass_settings
from keymgmt.cli._keys import _context, _input, _output

if TYPE_CHECKING:
    from keymgmt.client import KeyServiceClient

__all__ = ["remote"]

_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)
_IN = click.Path(path_type=Path, dir_okay=False, allow_dash=False)


@attrs.frozen
class Remote:
    """Where the service is and who this client is."""

    server: str
    ca: Path
    certificate: Path
    private_key: Path


@contextmanager
def service_client(remote: Remote) -> Iterator[KeyServiceClient]:
    """``with service_client(remote) as client:`` (needs httpx: the server/client extra)."""
    try:
        from keymgmt.client import KeyServiceClient
    except ImportError as exc:
        raise click.ClickException(
            f"keymgmt remote needs httpx (pip install 'keymgmt[server]'): {exc}"
        ) from None
    with KeyServiceClient.from_files(
        remote.server, ca=remote.ca, certificate=remote.certificate, private_key=remote.private_key
    ) as client:
        yield client


pass_remote = click.make_pass_decorator(Remote)


@click.group()
@click.option("--server", envvar="KEYMGMT_SERVER", required=True, help="https://host:port")
@click.option("--ca", envvar="KEYMGMT_SERVER_CA", type=_FILE, required=True, help="CA bundle.")
@click.option("--cert", envvar="KEYMGMT_CLIENT_CERT", type=_FILE, required=True, help="PEM.")
@click.option("--key", envvar="KEYMGMT_CLIENT_KEY", type=_FILE, required=True, help="PEM.")
@click.pass_context
def remote(ctx: click.Context, server: str, ca: Path, cert: Path, key: Path) -> None:
    """Use a key service (keymgmt serve) instead of the local store."""
    ctx.obj = Remote(server, ca, cert, key)


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
    """Encrypt stdin (or --in) under key NAME on the service."""
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
