"""``keymgmt rewrap`` (bulk re-encryption after rotation) and ``keymgmt completion``.

``rewrap`` moves ciphertext files (or wrapped data keys) to their key's
primary version in place: each file is re-encrypted inside the manager
(:meth:`keymgmt.KeyManager.rewrap`, the plaintext never leaves it) and
replaced atomically (written beside, then renamed), so a crash leaves either
the old or the new ciphertext, never half of one. A progress bar shows on a
terminal; pipes and ``--format json`` get none.

``completion`` prints the shell completion script click generates; it is
the same as ``_KEYMGMT_COMPLETE=bash_source keymgmt``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import click
from click.shell_completion import get_completion_class

from keymgmt.cli._common import Settings, emit, manager, pass_settings, progress, table
from keymgmt.cli._keys import _context
from keymgmt.errors import InvalidArgumentError, KeyMgmtError

__all__ = ["completion", "rewrap"]


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` beside ``path`` and rename it over ``path`` (atomic on POSIX).

    A symlink's file is replaced, not the link: renaming over the link would
    leave the file it points to on the old key version.
    """
    try:
        target = Path(os.path.realpath(path))
        mode = target.stat().st_mode & 0o777
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".rewrap")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise InvalidArgumentError(f"cannot rewrite {path}: {exc.strerror}") from None


@click.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@click.option("--context", "pairs", multiple=True, help="KEY=VALUE, as given to encrypt.")
@click.option(
    "--allow-compromised", is_flag=True, help="Also move ciphertexts off compromised versions."
)
@click.option(
    "--keep-going", is_flag=True, help="Report files that fail and continue (exit 1 at the end)."
)
@pass_settings
def rewrap(
    settings: Settings,
    files: tuple[Path, ...],
    pairs: tuple[str, ...],
    allow_compromised: bool,
    keep_going: bool,
) -> None:
    """Move ciphertext FILES to their key's primary version, in place.

    Use after a rotation (or a compromise, with --allow-compromised) so old
    versions can be retired. The plaintext never leaves the key manager.
    """
    context = _context(pairs)
    rows: list[dict[str, Any]] = []
    failed = 0
    with manager(settings) as km, progress(settings, list(files), "rewrapping") as bar:
        for path in bar:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise InvalidArgumentError(f"cannot read {path}: {exc.strerror}") from None
            try:
                _replace(path, km.rewrap(data, context, allow_compromised=allow_compromised))
            except KeyMgmtError as exc:
                if not keep_going:
                    # One line naming the file; earlier files stay rewrapped.
                    click.echo(f"error: {path}: {exc.message}", err=True)
                    raise click.exceptions.Exit(1) from None
                failed += 1
                rows.append({"file": str(path), "ok": False, "error": exc.message})
                continue
            rows.append({"file": str(path), "ok": True, "error": ""})
    summary = {"rewrapped": len(rows) - failed, "failed": failed, "files": rows}
    lines = [f"rewrapped {len(rows) - failed} of {len(rows)} files"]
    if failed:
        lines += table([r for r in rows if not r["ok"]], ["file", "error"])
    emit(settings, summary, lines)
    if failed:
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]), default="bash")
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    Add 'eval "$(keymgmt completion bash)"' to ~/.bashrc (zsh: 'eval
    "$(keymgmt completion zsh)"' in ~/.zshrc; fish: 'keymgmt completion fish
    > ~/.config/fish/completions/keymgmt.fish').
    """
    root = ctx.find_root()
    cls = get_completion_class(shell)
    assert cls is not None  # the Choice allows only shells click knows
    script = cls(root.command, {}, "keymgmt", "_KEYMGMT_COMPLETE").source()
    click.echo(script)
