"""Running ``keymgmt`` in-process for the CLI tests (``from _cli_env import ...``).

``tests/`` is on ``sys.path`` through ``tests/conftest.py`` (pytest's default
import mode), so test modules anywhere under ``tests/`` can import this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keymgmt.cli import main


def cli_env(
    monkeypatch: pytest.MonkeyPatch, cwd: Path, passphrase: str, store: Path | None = None
) -> None:
    """Work in ``cwd`` with the test-only KDF, ``passphrase`` from the environment and no key file.

    ``KEYMGMT_STORE`` is set to ``store``, or unset when it is None.
    """
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("KEYMGMT_TEST_KDF", "insecure")
    monkeypatch.setenv("KEYMGMT_PASSPHRASE", passphrase)
    if store is None:
        monkeypatch.delenv("KEYMGMT_STORE", raising=False)
    else:
        monkeypatch.setenv("KEYMGMT_STORE", str(store))
    monkeypatch.delenv("KEYMGMT_KEY_FILE", raising=False)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``keymgmt *args``; return its exit code, stdout and stderr."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
