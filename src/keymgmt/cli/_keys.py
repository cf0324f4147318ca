"""``keymgmt key ...``, ``keymgmt encrypt`` and ``keymgmt decrypt``: named keys from the shell.

Key material never reaches the terminal: ``key export`` writes the version
wrapped for a recipient (RFC 5649 under a key-encryption key file, or HPKE
to an X25519 public key), and raw export exists only in
:mod:`keymgmt.hazmat`. ``encrypt``/``decrypt`` read stdin (or ``--in``) and
write stdout (or ``--out``) as raw bytes; ``--context k=v`` may repeat.
"""

from __future__ import annotations

import base64
import datetime as _dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.cli._common import OutputPath, Settings, emit, manager, pass_settings, table
from keymgmt.clock import ensure_aware
from keymgmt.errors import InvalidArgumentError
from keymgmt.model import KeyInfo, RotationPolicy, WrappedKey
from keymgmt.revocation import RevocationReason

__all__ = ["decrypt", "encrypt", "key"]

_IN = click.Path(path_type=Path, dir_okay=False, exists=True)
_OUT = OutputPath()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc.strerror}") from None


def _context(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"--context takes KEY=VALUE, got {pair!r}")
        if key in out:
            raise InvalidArgumentError(f"--context {key!r} given twice")
        out[key] = value
    return out


def _when(value: _dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _info_json(info: KeyInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "key_id": info.key_id,
        "algorithm": info.algorithm.value,
        "kind": info.kind.value,
        "usage": info.usage.value,
        "created_at": _when(info.created_at),
        "primary_version": info.primary_version,
        "expiry_date": _when(info.expiry_date),
        "imported": info.imported,
        "rotation_period_days": (
            None
            if info.policy.rotation_period is None
            else info.policy.rotation_period / _dt.timedelta(days=1)
        ),
        "rotate_after_uses": info.policy.rotate_after_uses,
        "versions": [
            {
                "version": v.version,
                "state": v.state.value,
                "primary": v.is_primary,
                "created_at": _when(v.created_at),
                "activation_date": _when(v.activation_date),
                "uses": v.uses,
                "imported": v.imported,
                "revocation_reason": v.revocation_reason,
                "destroy_at": _when(v.destroy_at),
                "destroyed_at": _when(v.destroyed_at),
            }
            for v in info.versions
        ],
    }


def _info_text(info: KeyInfo) -> list[str]:
    head = [
        f"{info.name}  ({info.algorithm.value}, {info.usage.value}, id {info.key_id})"
        + ("  imported" if info.imported else ""),
    ]
    rows = [
        {
            "version": v.version,
            "state": v.state.value + (" *" if v.is_primary else ""),
            "uses": v.uses,
            "created": v.created_at.isoformat(timespec="seconds"),
            "destroy at": "" if v.destroy_at is None else v.destroy_at.isoformat("T", "seconds"),
            "reason": v.revocation_reason or "",
        }
        for v in info.versions
    ]
    return head + table(rows, ["version", "state", "uses", "created", "destroy at", "reason"])


@click.group()
def key() -> None:
    """Create, rotate, revoke, destroy, export and import named keys."""


@key.command("create")
@click.argument("name")
@click.option(
    "--algorithm",
    type=click.Choice([a.value for a in Algorithm]),
    default=Algorithm.AES_256_GCM.value,
    show_default=True,
)
@click.option(
    "--usage", type=click.Choice([u.value for u in KeyUsage]), help="Default: by algorithm."
)
@click.option("--rotation-period-days", type=click.FloatRange(min=0, min_open=True))
@click.option("--rotate-after-uses", type=click.IntRange(min=1))
@click.option("--expires", type=click.DateTime(), help="Expiry date (UTC if no offset given).")
@pass_settings
def key_create(
    settings: Settings,
    name: str,
    algorithm: str,
    usage: str | None,
    rotation_period_days: float | None,
    rotate_after_uses: int | None,
    expires: _dt.datetime | None,
) -> None:
    """Create key NAME with a first (primary) version."""
    policy = RotationPolicy(
        rotation_period=(
            None if rotation_period_days is None else _dt.timedelta(days=rotation_period_days)
        ),
        rotate_after_uses=rotate_after_uses,
    )
    expiry = None
    if expires is not None:
        expiry = ensure_aware(
            expires if expires.tzinfo else expires.replace(tzinfo=_dt.UTC), "--expires"
        )
    with manager(settings) as km:
        info = km.keys.create(name, algorithm, usage=usage, expiry_date=expiry, policy=policy)
    emit(settings, _info_json(info), _info_text(info))


@key.command("list")
@pass_settings
def key_list(settings: Settings) -> None:
    """List keys with their primary version and state."""
    with manager(settings) as km:
        infos = km.keys.list()
    rows = [
        {
            "name": i.name,
            "algorithm": i.algorithm.value,
            "usage": i.usage.value,
            "primary": i.primary_version,
            "state": i.primary.state.value,
            "versions": len(i.versions),
        }
        for i in infos
    ]
    emit(
        settings,
        [_info_json(i) for i in infos],
        table(rows, ["name", "algorithm", "usage", "primary", "state", "versions"]),
    )


@key.command("show")
@click.argument("name")
@pass_settings
def key_show(settings: Settings, name: str) -> None:
    """Show key NAME and its versions (never material)."""
    with manager(settings) as km:
        info = km.keys.get(name)
    emit(settings, _info_json(info), _info_text(info))


@key.command("rotate")
@click.argument("name")
@pass_settings
def key_rotate(settings: Settings, name: str) -> None:
    """Add a new primary version; older versions become decrypt-only."""
    with manager(settings) as km:
        version = km.keys.rotate(name)
    emit(
        settings,
        {"name": name, "version": version.version, "state": version.state.value},
        f"{name}: version {version.version} is now primary",
    )


@key.command("revoke")
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="One version (default: all).")
@click.option(
    "--reason",
    type=click.Choice([r.value for r in RevocationReason]),
    default=RevocationReason.UNSPECIFIED.value,
    show_default=True,
)
@pass_settings
def key_revoke(settings: Settings, name: str, version: int | None, reason: str) -> None:
    """Revoke a key or one version (key-compromise: compromised; else deactivated)."""
    with manager(settings) as km:
        info = km.keys.revoke(name, version, reason=reason)
    emit(settings, _info_json(info), _info_text(info))


@key.command("destroy")
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="One version (default: all).")
@click.option(
    "--grace-days",
    type=click.FloatRange(min=0),
    default=7.0,
    show_default=True,
    help="Material is erased after this many days.",
)
@click.option("--cancel", is_flag=True, help="Cancel a scheduled destruction instead.")
@pass_settings
def key_destroy(
    settings: Settings, name: str, version: int | None, grace_days: float, cancel: bool
) -> None:
    """Schedule (or --cancel) destruction of a key or one version."""
    with manager(settings) as km:
        if cancel:
            info = km.keys.cancel_destruction(name, version)
        else:
            info = km.keys.schedule_destruction(name, version, grace=_dt.timedelta(days=grace_days))
    emit(settings, _info_json(info), _info_text(info))


def _wrapped_json(wrapped: WrappedKey) -> dict[str, Any]:
    return {
        "key_name": wrapped.key_name,
        "version": wrapped.version,
        "algorithm": wrapped.algorithm.value,
        "method": wrapped.method,
        "data": base64.b64encode(wrapped.data).decode("ascii"),
    }


@key.command("export")
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="Default: the primary.")
@click.option("--kek-file", type=_IN, help="Wrap under this raw 16/24/32-byte KEK (RFC 5649).")
@click.option("--recipient", type=_IN, help="Seal to this X25519 public key (PEM), HPKE RFC 9180.")
@click.option("--out", type=_OUT, help="Write the JSON export here instead of stdout.")
@pass_settings
def key_export(
    settings: Settings,
    name: str,
    version: int | None,
    kek_file: Path | None,
    recipient: Path | None,
    out: Path | None,
) -> None:
    """Export a version wrapped for a recipient (never in the clear)."""
    if (kek_file is None) == (recipient is None):
        raise click.UsageError("give exactly one of --kek-file or --recipient")
    with manager(settings) as km:
        if kek_file is not None:
            wrapped = km.keys.export_wrapped(name, version, kek=_read(kek_file))
        else:
            assert recipient is not None
            try:
                public = serialization.load_pem_public_key(_read(recipient))
            except ValueError:
                raise InvalidArgumentError(f"{recipient} is not a PEM public key") from None
            if not isinstance(public, x25519.X25519PublicKey):
                raise InvalidArgumentError("--recipient must be an X25519 public key")
            wrapped = km.keys.export_sealed(name, version, recipient=public)
    data = _wrapped_json(wrapped)
    if out is not None:
        import json

        try:
            out.write_text(json.dumps(data, indent=2) + "\n")
        except OSError as exc:
            raise InvalidArgumentError(f"cannot write {out}: {exc.strerror}") from None
        emit(settings, {"written": str(out), **data}, f"wrote {out} ({wrapped.method})")
        return
    emit(settings, data)


@key.command("import")
@click.argument("name")
@click.option("--fernet-file", type=_IN, help="A seed-style Fernet key file (symmetric.key).")
@click.option("--raw-file", type=_IN, help="A file holding the raw key bytes.")
@click.option(
    "--private-key",
    type=_IN,
    help="A PEM/DER private key (key pairs); if encrypted, its passphrase comes from "
    "--passphrase-file or KEYMGMT_KEY_PASSPHRASE.",
)
@click.option(
    "--passphrase-file",
    type=_IN,
    help="A file holding the passphrase of an encrypted --private-key.",
)
@click.option(
    "--algorithm", type=click.Choice([a.value for a in Algorithm]), help="For --raw-file."
)
@pass_settings
def key_import(
    settings: Settings,
    name: str,
    fernet_file: Path | None,
    raw_file: Path | None,
    private_key: Path | None,
    passphrase_file: Path | None,
    algorithm: str | None,
) -> None:
    """Import existing key material as key NAME (marked imported)."""
    given = [p for p in (fernet_file, raw_file, private_key) if p is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --fernet-file, --raw-file, --private-key")
    with manager(settings) as km:
        if fernet_file is not None:
            info = km.keys.import_fernet_key_file(name, fernet_file)
        elif raw_file is not None:
            if algorithm is None:
                raise click.UsageError("--raw-file needs --algorithm")
            info = km.keys.import_key(name, _read(raw_file), algorithm=algorithm)
        else:
            assert private_key is not None
            import os

            if passphrase_file is not None:
                text = _read(passphrase_file).decode("utf-8", "replace").rstrip("\r\n")
                passphrase = text or None
            else:
                passphrase = os.environ.get("KEYMGMT_KEY_PASSPHRASE") or None
            info = km.keys.import_private_key(
                name, _read(private_key), passphrase=passphrase, algorithm=algorithm
            )
    emit(settings, _info_json(info), _info_text(info))


def _input(path: Path | None) -> bytes:
    if path is not None:
        return _read(path)
    return sys.stdin.buffer.read()


def _output(path: Path | None, data: bytes | bytearray, *, secret: bool = False) -> None:
    """Write ``data`` to ``path`` (stdout when None); a new ``secret`` file is 0600."""
    if path is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        if not secret:
            path.write_bytes(data)
            return
        # A plaintext: a file made here is its owner's only (an existing one keeps its mode).
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot write {path}: {exc.strerror}") from None


@click.command()
@click.option("--key", "name", required=True, help="The key to encrypt under.")
@click.option("--context", "pairs", multiple=True, help="KEY=VALUE, bound as associated data.")
@click.option("--in", "source", type=_IN, help="Read the plaintext here (default: stdin).")
@click.option("--out", "target", type=_OUT, help="Write the ciphertext here (default: stdout).")
@pass_settings
def encrypt(
    settings: Settings,
    name: str,
    pairs: tuple[str, ...],
    source: Path | None,
    target: Path | None,
) -> None:
    """Encrypt stdin (or --in) under the primary version of the --key key."""
    context = _context(pairs)
    data = _input(source)
    with manager(settings) as km:
        ciphertext = km.encrypt(name, data, context)
    _output(target, ciphertext)


@click.command()
@click.option("--context", "pairs", multiple=True, help="KEY=VALUE, as given to encrypt.")
@click.option("--in", "source", type=_IN, help="Read the ciphertext here (default: stdin).")
@click.option("--out", "target", type=_OUT, help="Write the plaintext here (default: stdout).")
@click.option("--allow-compromised", is_flag=True, help="Decrypt with a compromised version.")
@pass_settings
def decrypt(
    settings: Settings,
    pairs: tuple[str, ...],
    source: Path | None,
    target: Path | None,
    allow_compromised: bool,
) -> None:
    """Decrypt stdin (or --in); the ciphertext names its key and version."""
    context = _context(pairs)
    data = _input(source)
    with manager(settings) as km:
        plaintext = km.decrypt(data, context, allow_compromised=allow_compromised)
    _output(target, plaintext, secret=True)
