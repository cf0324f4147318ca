"""The ``keymgmt`` entry point: global options, error handling, command groups."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from keymgmt import __version__
from keymgmt.cli._common import TEST_KDF_ENV, Settings, emit, manager, pass_settings, table
from keymgmt.errors import AlreadyExistsError, KeyMgmtError
from keymgmt.keyring import KdfProfile

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    envvar="KEYMGMT_STORE",
    default="keymgmt.db",
    show_default=True,
    help="Store: a SQLite file path or a postgresql:// DSN (env KEYMGMT_STORE).",
)
@click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the passphrase from this file (else KEYMGMT_PASSPHRASE, else a prompt).",
)
@click.option(
    "--key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="KEYMGMT_KEY_FILE",
    help="Use a master key file instead of a passphrase (env KEYMGMT_KEY_FILE).",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.option(
    "--insecure-test-kdf",
    is_flag=True,
    hidden=True,
    help="TEST SUITES ONLY: create stores with cheap, insecure Argon2id parameters.",
)
@click.version_option(__version__, prog_name="keymgmt")
@click.pass_context
def cli(
    ctx: click.Context,
    store: str,
    passphrase_file: Path | None,
    key_file: Path | None,
    output: str,
    debug: bool,
    insecure_test_kdf: bool,
) -> None:
    """keymgmt: keys, PKI, key exchange and key distribution from the command line."""
    settings = Settings(store, passphrase_file, key_file, output, debug)
    # Hidden and test-only (--insecure-test-kdf or KEYMGMT_TEST_KDF=insecure):
    # lets test suites create stores without paying for Argon2id.
    if insecure_test_kdf or os.environ.get(TEST_KDF_ENV) == "insecure":
        settings.kdf_profile = KdfProfile.TESTING_ONLY_INSECURE
    ctx.obj = settings


@cli.command()
@pass_settings
def init(settings: Settings) -> None:
    """Create a new store (asks for the passphrase twice)."""
    if (
        not settings.store.startswith(("postgresql://", "postgres://"))
        and Path(settings.store).exists()
    ):
        raise AlreadyExistsError(f"{settings.store} exists already; init never overwrites a store")
    if settings.kdf_profile is KdfProfile.TESTING_ONLY_INSECURE and settings.key_file is None:
        click.echo("warning: insecure test-only KDF parameters (never for real data)", err=True)
    with manager(settings, create=True) as km:
        emit(settings, {"store": settings.store, "created": True}, f"created {settings.store}")
        del km


@cli.group()
def audit() -> None:
    """Inspect and verify the audit log."""


@audit.command("verify")
@pass_settings
def audit_verify(settings: Settings) -> None:
    """Check the hash chain and its sealed head; fail where it breaks."""
    with manager(settings) as km:
        report = km.audit.verify()
    emit(
        settings,
        {"ok": True, "entries": report.entries, "head": report.head_hash.hex()},
        f"audit chain ok: {report.entries} entries",
    )


@audit.command("tail")
@click.option("-n", "count", default=20, show_default=True, help="How many entries.")
@pass_settings
def audit_tail(settings: Settings, count: int) -> None:
    """Show the last entries of the audit log."""
    with manager(settings) as km:
        entries = [e.as_dict() for e in km.audit.tail(count)]
    rows = [
        {**e, "details": ", ".join(f"{k}={v}" for k, v in sorted(e["details"].items()))}
        for e in entries
    ]
    emit(
        settings,
        entries,
        table(rows, ["seq", "time", "actor", "operation", "object", "outcome", "details"]),
    )


def _register() -> None:
    from keymgmt.cli._demo import demo

    cli.add_command(demo)

    from keymgmt.cli._remote import remote
    from keymgmt.cli._serve import serve

    cli.add_command(serve)
    cli.add_command(remote)

    from keymgmt.cli._kdc import kdc

    cli.add_command(kdc)

    from keymgmt.cli._pki import ca, cert

    cli.add_command(ca)
    cli.add_command(cert)

    from keymgmt.cli._keys import decrypt, encrypt, key

    cli.add_command(key)
    cli.add_command(encrypt)
    cli.add_command(decrypt)

    from keymgmt.cli._asym import sign, verify  # also adds `key public`

    cli.add_command(sign)
    cli.add_command(verify)

    from keymgmt.cli._bulk import completion, rewrap

    cli.add_command(rewrap)
    cli.add_command(completion)

    from keymgmt.cli._storekeys import store

    cli.add_command(store)


_register()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    Every error prints as one line (``error: ...``): keymgmt's errors and
    unexpected ones with exit code 1, usage mistakes with exit code 2 (and a
    pointer to the command's ``--help``). ``--debug`` shows the traceback.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        code = cli.main(args=args, prog_name="keymgmt", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        if debug:
            raise
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"error: {_one_line(exc.format_message())}{hint}", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        if debug:
            raise
        click.echo(f"error: {_one_line(exc.format_message())}", err=True)
        return exc.exit_code
    except KeyMgmtError as exc:
        if debug:
            raise
        click.echo(f"error: {_one_line(exc.message)}", err=True)
        return 1
    except Exception as exc:
        # A bug, or a foreign error nobody translated: still one line (its
        # type and first line), the traceback only on request.
        if debug:
            raise
        detail = _one_line(str(exc))[:200]
        click.echo(
            f"error: unexpected {type(exc).__name__}"
            + (f": {detail}" if detail else "")
            + " (run with --debug for the traceback)",
            err=True,
        )
        return 1
    # With standalone_mode=False click returns the exit code of ctx.exit()
    # (e.g. --help); commands themselves return None.
    return code if isinstance(code, int) else 0
