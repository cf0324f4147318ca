"""``keymgmt sign``, ``keymgmt verify`` and ``keymgmt key public``: key pairs from the shell.

The private half of a key pair never leaves the store: ``sign`` signs inside
it, ``key public`` writes only the public half (PEM with keymgmt's identity
lines, DER or JWK), which :mod:`keymgmt.public` and other tools read.

Signatures are keymgmt signature envelopes (the header names key, version and
algorithm; the plain signature follows). ``sign --out FILE`` writes the raw
envelope bytes; without ``--out`` it prints the envelope in base64 (or, with
``--format json``, a JSON object with the detached signature too, for
OpenSSL). ``verify`` takes either form back.
"""

from __future__ import annotations

import base64
import binascii
import sys
from pathlib import Path

import click

from keymgmt.cli._common import OutputPath, Settings, emit, manager, pass_settings
from keymgmt.cli._keys import key
from keymgmt.errors import InvalidArgumentError, InvalidSignatureError
from keymgmt.public import PublicKeyFormat, Signature

__all__ = ["key_public", "sign", "verify"]

_IN = click.Path(path_type=Path, dir_okay=False, exists=True)
_OUT = OutputPath()


def _read(path: Path | None) -> bytes:
    if path is None:
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc.strerror}") from None


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot write {path}: {exc.strerror}") from None


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidArgumentError(f"{what} is not base64") from None


@click.command()
@click.option("--key", "name", required=True, help="The signing key pair.")
@click.option("--in", "source", type=_IN, help="Read the message here (default: stdin).")
@click.option("--out", "target", type=_OUT, help="Write the signature (raw bytes) here.")
@pass_settings
def sign(settings: Settings, name: str, source: Path | None, target: Path | None) -> None:
    """Sign stdin (or --in) with key pair NAME's primary version."""
    data = _read(source)
    with manager(settings) as km:
        envelope = km.sign(name, data)
    decoded = Signature.decode(envelope)
    encoded = base64.b64encode(envelope).decode("ascii")
    info: dict[str, object] = {
        "key": decoded.key_name,
        "version": decoded.version,
        "algorithm": decoded.algorithm.value,
        "signature": encoded,
        "detached": base64.b64encode(decoded.raw).decode("ascii"),
    }
    if target is not None:
        _write(target, envelope)
        emit(
            settings,
            {"written": str(target), **info},
            f"wrote {target} ({decoded.algorithm.value}, {name} version {decoded.version})",
        )
        return
    emit(settings, info, encoded)


@click.command()
@click.option("--key", "name", required=True, help="The key pair that signed.")
@click.option("--in", "source", type=_IN, help="Read the message here (default: stdin).")
@click.option("--signature", "sig_file", type=_IN, help="A signature file (from sign --out).")
@click.option("--signature-b64", "sig_text", help="A signature in base64 (as sign prints it).")
@click.option(
    "--version",
    type=click.IntRange(min=1),
    help="Verify a detached (plain) signature made by this version.",
)
@pass_settings
def verify(
    settings: Settings,
    name: str,
    source: Path | None,
    sig_file: Path | None,
    sig_text: str | None,
    version: int | None,
) -> None:
    """Check a signature over stdin (or --in); exit 1 if it does not verify."""
    if (sig_file is None) == (sig_text is None):
        raise click.UsageError("give exactly one of --signature or --signature-b64")
    signature = _read(sig_file) if sig_file is not None else _b64(sig_text or "", "--signature-b64")
    data = _read(source)
    with manager(settings) as km:
        try:
            km.verify(name, data, signature, version=version)
        except InvalidSignatureError:
            emit(settings, {"key": name, "valid": False}, f"{name}: signature INVALID")
            raise click.exceptions.Exit(1) from None
    emit(settings, {"key": name, "valid": True}, f"{name}: signature valid")


@key.command("public")
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="Default: the primary.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pem", "jwk", "der"]),
    default="pem",
    show_default=True,
    help="PEM (with keymgmt identity lines), JWK (JSON) or DER (binary).",
)
@click.option("--out", "target", type=_OUT, help="Write the public key here.")
@click.option(
    "--forensic",
    is_flag=True,
    help="Examine --version whatever its state (a compromised one too): its state, "
    "revocation reason and fingerprint, never the key.",
)
@pass_settings
def key_public(
    settings: Settings,
    name: str,
    version: int | None,
    fmt: str,
    target: Path | None,
    forensic: bool,
) -> None:
    """Export the public half of key pair NAME (never the private key).

    A compromised version is refused; --forensic --version N examines it.
    """
    if forensic:
        _forensic(settings, name, version, target)
        return
    with manager(settings) as km:
        public = km.public_key(name, version)
    chosen = PublicKeyFormat(fmt)
    if chosen is PublicKeyFormat.PEM:
        data = public.pem()
    elif chosen is PublicKeyFormat.JWK:
        data = public.jwk_json().encode()
    else:
        data = public.der()
    if target is not None:
        _write(target, data)
        emit(
            settings,
            {"written": str(target), "key": name, "version": public.version, "format": fmt},
            f"wrote {target} ({fmt}, {name} version {public.version})",
        )
        return
    if settings.output == "json":
        emit(
            settings,
            {
                "key": name,
                "version": public.version,
                "key_id": public.key_id,
                "algorithm": public.algorithm.value,
                "fingerprint": public.fingerprint(),
                "format": fmt,
                "jwk": public.jwk(),
                "pem": public.pem().decode("ascii"),
            },
        )
        return
    if chosen is PublicKeyFormat.DER:
        if sys.stdout.isatty():
            raise InvalidArgumentError("DER is binary: use --out FILE or redirect stdout")
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    click.echo(data.decode("ascii").rstrip("\n"))


def _forensic(settings: Settings, name: str, version: int | None, target: Path | None) -> None:
    """``key public --forensic``: a version's state and fingerprint (``forensic_public_key``)."""
    if version is None:
        raise click.UsageError("--forensic needs --version (the version to examine)")
    if target is not None:
        raise click.UsageError("--forensic prints the state and fingerprint, not the key: no --out")
    with manager(settings) as km:
        found = km.keys.forensic_public_key(name, version)
    why = "" if found.revocation_reason is None else f" ({found.revocation_reason})"
    emit(
        settings,
        {
            "key": name,
            "version": found.version,
            "key_id": found.key_id,
            "algorithm": found.algorithm.value,
            "state": found.state.value,
            "revocation_reason": found.revocation_reason,
            "fingerprint": found.fingerprint(),
        },
        f"{name} version {found.version}: {found.state.value}{why}, "
        f"{found.algorithm.value}, sha256:{found.fingerprint()}",
    )
