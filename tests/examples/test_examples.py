"""Every script in ``examples/`` runs to completion in a fresh interpreter.

Each script asserts what it prints, so exit status 0 means its claims held.
They run in a temporary working directory with no passphrase in the
environment (the scripts must not depend on one) and must be quick. The
test services' locations (a PostgreSQL DSN, a SoftHSM2 token) are passed
through, so ``09_backends.py`` takes its PostgreSQL and HSM paths wherever
they are configured (always in CI) and its SQLite/passphrase paths elsewhere.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "examples").glob("[0-9][0-9]_*.py"))


#: Variables the examples may see: where the test services are, no secrets of a store.
SERVICES = (
    "KEYMGMT_TEST_POSTGRES_DSN",
    "KEYMGMT_TEST_PKCS11_MODULE",
    "KEYMGMT_TEST_PKCS11_TOKEN",
    "KEYMGMT_TEST_PKCS11_PIN",
)


def test_every_mission_part_has_an_example() -> None:
    assert len(SCRIPTS) == 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYMGMT_") or k in SERVICES}
    env["PYTHONWARNINGS"] = "error"  # a deprecation in an example is a bug in the example
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), f"{script.name} printed nothing"
    # Hypothesis keeps its cache directory in the working directory; nothing else may stay.
    left = [p.name for p in tmp_path.iterdir() if p.name != ".hypothesis"]
    assert left == [], f"{script.name} left files in the working directory"


def _checked(node: ast.Try) -> bool:
    """A ``try`` whose success is a failure: ``else: raise``, or handlers that return or raise."""
    if any(isinstance(n, ast.Raise) for n in ast.walk(ast.Module(node.orelse, []))):
        return True
    if any(isinstance(n, ast.Raise) for n in node.body):
        return True
    return all(isinstance(h.body[-1], ast.Return | ast.Raise) for h in node.handlers)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_refusal_an_example_prints_is_asserted(script: Path) -> None:
    # "refused" printed only from an except clause proves nothing: had the call
    # succeeded, the script went on silently and still exited 0.
    unchecked = [
        node.lineno
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, ast.Try) and node.handlers and not _checked(node)
    ]
    assert unchecked == [], f"{script.name}: try blocks at lines {unchecked} never fail"
