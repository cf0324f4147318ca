"""``keymgmt kdc ...``: principals, access policy, grants and compromise response."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from cryptography import x509

from keymgmt.cli._common import (
    OutputPath,
    Settings,
    emit,
    manager,
    pass_settings,
    read_input,
    table,
)
from keymgmt.errors import InvalidArgumentError, MalformedInputError
from keymgmt.kdc import Policy
from keymgmt.revocation import RevocationReason

__all__ = ["kdc"]

_REASONS = click.Choice([r.value for r in RevocationReason])
_NEW_FILE = OutputPath()
_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)
_MAX_LISTED = 20  # data keys listed one per line in text output; JSON lists them all


#: The most a certificate or policy file may hold (a path to /dev/zero filled memory).
_MAX_INPUT = 4 * 1024 * 1024


def _read(path: Path) -> bytes:
    return read_input(path, _MAX_INPUT)


def _load_certificate(path: Path) -> x509.Certificate:
    data = _read(path)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise MalformedInputError(f"{path} holds no certificate (PEM or DER)") from None


@click.group()
def kdc() -> None:
    """The key distribution center: principals, access policy, grants, compromise."""


@kdc.command("register")
@click.argument("name")
@click.option(
    "--out",
    type=_NEW_FILE,
    help="Write the new symmetric credential here (mode 0600; the only copy).",
)
@click.option(
    "--certificate",
    type=_FILE,
    help="Register a certificate principal with this certificate (PEM or DER) instead.",
)
@pass_settings
def kdc_register(settings: Settings, name: str, out: Path | None, certificate: Path | None) -> None:
    """Register principal NAME with a new symmetric key (--out) or a certificate."""
    if (out is None) == (certificate is None):
        raise click.UsageError("give exactly one of --out (symmetric key) or --certificate")
    with manager(settings) as km:
        if certificate is not None:
            info = km.kdc.register_certificate(name, _load_certificate(certificate))
            emit(
                settings,
                info.as_dict(),
                f"registered {name} (certificate {info.certificate_serial})",
            )
            return
        assert out is not None
        km.kdc.register(name, write_to=out)
        emit(
            settings,
            {"principal": name, "credential_file": str(out)},
            f"registered {name}; its credential is in {out} "
            "(keep it secret: this file is the only copy)",
        )


@kdc.command("rotate-credential")
@click.argument("name")
@click.option("--out", type=_NEW_FILE, required=True, help="Write the new credential here (0600).")
@pass_settings
def kdc_rotate(settings: Settings, name: str, out: Path) -> None:
    """Give principal NAME a new symmetric key; the old one stops working."""
    if out.exists():
        raise InvalidArgumentError(f"{out} exists already")
    with manager(settings) as km:
        km.kdc.rotate_credential(name, write_to=out)
    emit(settings, {"principal": name, "credential_file": str(out)}, f"new credential in {out}")


@kdc.command("list")
@pass_settings
def kdc_list(settings: Settings) -> None:
    """List registered principals."""
    with manager(settings) as km:
        rows = [p.as_dict() for p in km.kdc.list()]
    emit(
        settings,
        rows,
        table(rows, ["name", "credential", "enabled", "revoked", "credential_version"]),
    )


@kdc.command("show")
@click.argument("name")
@pass_settings
def kdc_show(settings: Settings, name: str) -> None:
    """Show one principal and the policy rules that apply to it."""
    with manager(settings) as km:
        info = km.kdc.get(name).as_dict()
        info["rules"] = [r.to_json() for r in km.kdc.policy().for_principal(name)]
    emit(settings, info)


@kdc.command("grant")
@click.argument("name")
@click.option("--key", "keys", multiple=True, help="Named key or pattern (repeat).")
@click.option("--peer", "peers", multiple=True, help="Session peer or pattern (repeat).")
@pass_settings
def kdc_grant(settings: Settings, name: str, keys: tuple[str, ...], peers: tuple[str, ...]) -> None:
    """Allow principal NAME (or a pattern) named keys and session peers."""
    with manager(settings) as km:
        km.kdc.grant(name, keys=keys, peers=peers)
    emit(
        settings,
        {"principal": name, "keys": list(keys), "peers": list(peers)},
        f"granted {name}: keys {list(keys)}, peers {list(peers)}",
    )


@kdc.command("withdraw")
@click.argument("name")
@click.option("--key", "keys", multiple=True, help="Named key or pattern (repeat).")
@click.option("--peer", "peers", multiple=True, help="Session peer or pattern (repeat).")
@pass_settings
def kdc_withdraw(
    settings: Settings, name: str, keys: tuple[str, ...], peers: tuple[str, ...]
) -> None:
    """Remove keys and peers from principal NAME's rule."""
    with manager(settings) as km:
        policy = km.kdc.withdraw(name, keys=keys, peers=peers)
    # Another rule (a pattern matching NAME) may still allow what was withdrawn:
    # say so, rather than let "withdrawn" read as "no longer allowed".
    still = [f"key {k}" for k in keys if policy.allows_key(name, k)]
    still += [f"peer {p}" for p in peers if policy.allows_peer(name, p)]
    emit(
        settings,
        {"principal": name, "keys": list(keys), "peers": list(peers), "still_allowed": still},
        "withdrawn" + (f"; still allowed by another rule: {', '.join(still)}" if still else ""),
    )


@kdc.command("policy")
@click.option("--load", type=_FILE, help="Replace the policy with this JSON document.")
@pass_settings
def kdc_policy(settings: Settings, load: Path | None) -> None:
    """Show the access policy as JSON (or replace it with --load FILE)."""
    with manager(settings) as km:
        if load is not None:
            raw = _read(load)
            try:
                document = json.loads(raw)
            except (ValueError, RecursionError):  # RecursionError: nested too deeply
                raise MalformedInputError(f"{load} is not JSON") from None
            if not isinstance(document, dict):
                raise MalformedInputError(f"{load} is not a policy document")
            km.kdc.set_policy(Policy.from_json(document))
        policy = km.kdc.policy().to_json()
    click.echo(json.dumps(policy, indent=2, sort_keys=True))


@kdc.command("disable")
@click.argument("name")
@pass_settings
def kdc_disable(settings: Settings, name: str) -> None:
    """Refuse principal NAME's requests until enabled again."""
    with manager(settings) as km:
        km.kdc.disable(name)
    emit(settings, {"principal": name, "enabled": False}, f"disabled {name}")


@kdc.command("enable")
@click.argument("name")
@pass_settings
def kdc_enable(settings: Settings, name: str) -> None:
    """Serve a disabled principal NAME again."""
    with manager(settings) as km:
        km.kdc.enable(name)
    emit(settings, {"principal": name, "enabled": True}, f"enabled {name}")


@kdc.command("revoke")
@click.argument("name")
@click.option("--reason", type=_REASONS, default="unspecified", show_default=True)
@pass_settings
def kdc_revoke(settings: Settings, name: str, reason: str) -> None:
    """Revoke principal NAME for good."""
    with manager(settings) as km:
        km.kdc.revoke(name, reason)
    emit(settings, {"principal": name, "revoked": True, "reason": reason}, f"revoked {name}")


@kdc.command("grants")
@click.option("--key", help="Only grants of this key (name or name#version).")
@click.option("--principal", help="Only grants to (or tickets for) this principal.")
@pass_settings
def kdc_grants(settings: Settings, key: str | None, principal: str | None) -> None:
    """List the key versions and tickets the KDC handed out."""
    with manager(settings) as km:
        rows = [
            {
                "id": g.id,
                "kind": g.kind,
                "principal": g.principal,
                "what": g.key_id or f"ticket for {g.peer}",
                "issued_at": g.issued_at.isoformat(),
                "expires_at": g.expires_at.isoformat(),
            }
            for g in km.kdc.grants(key=key, principal=principal)
        ]
    emit(settings, rows, table(rows, ["id", "kind", "principal", "what", "expires_at"]))


def _create(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file (never through an existing name or symlink).

    Raises:
        FileExistsError: ``path`` exists.
        OSError: it cannot be created or written (nothing is left behind).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError:
        path.unlink(missing_ok=True)
        raise


def _write_list(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write a revocation list: a new file, or (``overwrite``) one replaced whole.

    Never over an existing file unasked: ``--out`` beside a credential file
    (the only copy of a key) must not destroy it by a slip of the name.
    """
    if not overwrite:
        try:
            _create(path, data)
        except FileExistsError:
            raise InvalidArgumentError(f"{path} exists already (--overwrite replaces it)") from None
        except OSError as exc:
            raise InvalidArgumentError(f"cannot create {path}: {exc.strerror}") from None
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _create(partial, data)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot write {partial}: {exc.strerror}") from None
    try:
        os.replace(partial, path)  # readers see the old list or the new one, whole
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InvalidArgumentError(f"cannot write {path}: {exc.strerror}") from None


@kdc.command("revocation-list")
@click.option("--out", type=_NEW_FILE, required=True, help="Write the signed list here.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists (else refused).")
@pass_settings
def kdc_revocation_list(settings: Settings, out: Path, overwrite: bool) -> None:
    """Write the KDC's signed revocation list (key versions and principals)."""
    if not overwrite and out.exists():
        raise InvalidArgumentError(f"{out} exists already (--overwrite replaces it)")
    with manager(settings) as km:
        data = km.kdc.revocation_list()
        public = km.kdc.public_key.hex()
    _write_list(out, data, overwrite=overwrite)
    emit(
        settings,
        {"file": str(out), "bytes": len(data), "kdc_public_key": public},
        f"wrote {len(data)} bytes to {out}; KDC public key {public}",
    )


@kdc.command("compromise")
@click.option("--key", help="A key version, name#version.")
@click.option("--principal", help="A principal name.")
@click.option("--certificate", type=_FILE, help="A certificate file (PEM or DER).")
@click.option("--reason", type=_REASONS, default="key-compromise", show_default=True)
@click.option("--no-cascade", is_flag=True, help="Principal: do not compromise what it received.")
@pass_settings
def kdc_compromise(
    settings: Settings,
    key: str | None,
    principal: str | None,
    certificate: Path | None,
    reason: str,
    no_cascade: bool,
) -> None:
    """Run the compromise playbook and print what was exposed."""
    cert = None if certificate is None else _load_certificate(certificate)
    with manager(settings) as km:
        report = km.compromise(
            key=key, principal=principal, certificate=cert, reason=reason, cascade=not no_cascade
        )
    data = report.as_dict()
    emit(
        settings,
        data,
        [
            f"compromised {report.subject} ({report.reason.value})",
            f"  revoked:   {', '.join(report.revoked) or '-'}",
            f"  rotated:   {', '.join(report.rotated) or '-'}",
            f"  exposed:   {', '.join(report.exposed_key_versions) or '-'}",
            f"  grants:    {len(report.key_grants)}  tickets: {len(report.tickets)}",
            f"  received by: {', '.join(report.recipients) or '-'}",
            "  data keys: "
            + (", ".join(f"{k}: {v}" for k, v in sorted(data["data_keys"].items())) or "-"),
            *(
                f"    {issue.id}  {issue.key_id}  {issue.actor}  {issue.issued_at.isoformat()}"
                for issue in report.data_key_issues[:_MAX_LISTED]
            ),
            *(
                [f"    ... and {len(report.data_key_issues) - _MAX_LISTED} more (--format json)"]
                if len(report.data_key_issues) > _MAX_LISTED
                else []
            ),
            f"  revocation list #{report.revocation_list_number}"
            + (f"; CRL {report.crl}" if report.crl else ""),
        ],
    )
