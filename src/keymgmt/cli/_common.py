"""Shared CLI plumbing: opening the store, output, errors."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click

from keymgmt._manager import KeyManager
from keymgmt.errors import InvalidArgumentError
from keymgmt.keyring import KdfProfile

__all__ = [
    "OutputPath",
    "Settings",
    "counting",
    "emit",
    "open_manager",
    "pass_settings",
    "progress",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")


@attrs.define
class Settings:
    """Global options, resolved once per invocation."""

    store: str
    passphrase_file: Path | None
    key_file: Path | None
    output: str  # "text" or "json"
    debug: bool
    kdf_profile: KdfProfile = KdfProfile.MODERATE


pass_settings = click.make_pass_decorator(Settings)

#: The files of an SQLite store besides the database itself.
_STORE_SIDECARS = ("", "-wal", "-shm", "-journal")


def _is_store_file(path: Path, store: str) -> bool:
    """Whether ``path`` names the store's database file or one of its sidecars."""
    if store.startswith(("postgresql://", "postgres://")):
        return False
    target = path.resolve()
    for suffix in _STORE_SIDECARS:
        candidate = Path(store + suffix)
        if candidate.resolve() == target:
            return True
        try:
            if candidate.exists() and path.exists() and os.path.samefile(candidate, path):
                return True  # a hard link
        except OSError:
            continue
    return False


class OutputPath(click.Path):
    """A file a command writes to: never the store it has open (nor its WAL).

    ``--out keys.db`` with ``--store keys.db`` replaced the store with a
    ciphertext or a PEM file.
    """

    def __init__(self) -> None:
        super().__init__(path_type=Path, dir_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The path, unless it is the store's file (a usage error)."""
        path = Path(os.fsdecode(super().convert(value, param, ctx)))
        settings = None if ctx is None else ctx.find_object(Settings)
        if settings is not None and _is_store_file(path, settings.store):
            self.fail(f"{path} is the store's own file: refusing to write over it", param, ctx)
        return path


#: Test-only: ``KEYMGMT_TEST_KDF=insecure`` makes stores created by the CLI use
#: :attr:`KdfProfile.TESTING_ONLY_INSECURE` (cheap Argon2id) so test suites run
#: fast. Never set it for real stores.
TEST_KDF_ENV = "KEYMGMT_TEST_KDF"


def read_input(path: Path, limit: int) -> bytes:
    """An input file's bytes, at most ``limit`` of them.

    A path to ``/dev/zero`` or a FIFO would otherwise fill memory.

    Raises:
        InvalidArgumentError: it cannot be read (one line: the reason), or it
            holds more than ``limit`` bytes.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise InvalidArgumentError(f"{path} is larger than {limit} bytes")
    return data


def read_passphrase(settings: Settings, *, confirm: bool = False) -> str:
    """The passphrase: ``--passphrase-file``, then ``KEYMGMT_PASSPHRASE``, then a prompt.

    An explicit option wins over the environment.

    Raises:
        InvalidArgumentError: the file is unreadable or empty, or there is no
            passphrase and no terminal to ask.
    """
    if settings.passphrase_file is not None:
        try:
            text = settings.passphrase_file.read_bytes().decode("utf-8").rstrip("\r\n")
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read passphrase file: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InvalidArgumentError("the passphrase file is not UTF-8 text") from None
        if not text:
            raise InvalidArgumentError("the passphrase file is empty")
        return text
    env = os.environ.get("KEYMGMT_PASSPHRASE")
    if env:
        return env
    if not sys.stdin.isatty():
        raise InvalidArgumentError(
            "no passphrase: set KEYMGMT_PASSPHRASE, use --passphrase-file, or run in a terminal"
        )
    value: str = click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return value


def open_manager(settings: Settings, *, create: bool = False) -> KeyManager:
    """Open the store the options name."""
    if settings.key_file is not None:
        return KeyManager.open(settings.store, key_file=settings.key_file, create=create)
    return KeyManager.open(
        settings.store,
        passphrase=read_passphrase(settings, confirm=create),
        kdf_profile=settings.kdf_profile,
        create=create,
    )


@contextmanager
def manager(settings: Settings, *, create: bool = False) -> Iterator[KeyManager]:
    """``with manager(settings) as km:`` — open, yield, close."""
    km = open_manager(settings, create=create)
    try:
        yield km
    finally:
        km.close()


def emit(settings: Settings, data: Any, text: str | Sequence[str] | None = None) -> None:
    """Print ``data`` as JSON (``--format json``) or ``text`` for people."""
    if settings.output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    if text is None:
        text = _default_text(data)
    if isinstance(text, str):
        click.echo(text)
    else:
        for line in text:
            click.echo(line)


def _default_text(data: Any) -> str:
    if isinstance(data, Mapping):
        width = max((len(str(k)) for k in data), default=0)
        return "\n".join(f"{str(k).ljust(width)}  {v}" for k, v in data.items())
    return str(data)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[str]:
    """Format rows as an aligned text table."""
    widths = {c: max([len(c), *(len(str(r.get(c, ""))) for r in rows)]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return lines


def _interactive(settings: Settings) -> bool:
    # Progress goes to stderr, and only for a person watching: never into
    # pipes, logs or JSON consumers.
    return settings.output != "json" and sys.stderr.isatty()


@contextmanager
def progress(settings: Settings, items: Sequence[_T], label: str) -> Iterator[Iterable[_T]]:
    """``with progress(settings, items, "rewrapping") as bar: for item in bar: ...``.

    A progress bar on stderr when stderr is a terminal and the output is not
    JSON; otherwise the items unchanged (quiet in pipes, CI and tests).
    """
    if not _interactive(settings):
        yield items
        return
    with click.progressbar(items, label=label, file=sys.stderr, show_pos=True) as bar:
        yield bar


@contextmanager
def counting(settings: Settings, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback drawing a bar, for work that counts itself.

    None when not on a terminal (or with JSON output): nothing is drawn. The
    bar appears on the first call (when the total is known) and is closed on
    leaving the ``with`` block.
    """
    if not _interactive(settings):
        yield None
        return
    bars: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bars:
            bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)
            bars.append(bar.__enter__())
        bars[0].update(done - bars[0].pos)

    try:
        yield update
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)
