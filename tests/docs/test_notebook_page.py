"""The docs build executes notebooks with the docs' own settings: a failing cell fails it.

A two-page Sphinx project reuses ``docs/conf.py`` (MyST-NB, forced
execution, errors raised, the kernel on this interpreter), so this checks the
configuration without the cost of the whole site.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_CONF = f"""
exec(compile(open({str(ROOT / "docs" / "conf.py")!r}).read(), "conf.py", "exec"))
extensions = ["myst_nb"]  # the other extensions document the API, not needed here
"""


def _notebook(source: str) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": "markdown", "id": "title", "metadata": {}, "source": "# Page"},
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": "only-cell",
                    "metadata": {},
                    "outputs": [],
                    "source": source,
                },
            ],
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def _build(tmp_path: Path, cell: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("myst_nb") is None:
        if os.environ.get("CI"):
            pytest.fail("myst-nb is not installed, but CI must build the docs (extra 'docs')")
        pytest.skip("myst-nb not installed: pip install -e '.[docs]'")
    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text(_CONF)
    (source / "index.md").write_text("# Test\n\n```{toctree}\npage\n```\n")
    (source / "page.ipynb").write_text(_notebook(cell))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "-q",
            "-b",
            "html",
            str(source),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_notebook_page_is_executed_with_this_interpreter(tmp_path: Path) -> None:
    result = _build(tmp_path, "import sys, keymgmt\nprint('kernel:', sys.executable)")
    assert result.returncode == 0, result.stderr[-4000:]
    page = (tmp_path / "out" / "page.html").read_text()
    assert f"kernel: {sys.executable}" in page


def test_a_failing_cell_fails_the_docs_build(tmp_path: Path) -> None:
    result = _build(tmp_path, "assert 1 + 1 == 3, 'cell failed on purpose'")
    assert result.returncode != 0
    assert "cell failed on purpose" in result.stderr
