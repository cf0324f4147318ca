"""Every ``python`` code block in the docs and the README runs.

Blocks of one page run in order in one namespace (a page is a tutorial), in
a temporary working directory. A block whose info string is ``python
no-run`` is skipped on purpose (shown, not executed).
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")])
_BLOCK = re.compile(r"^```(?:python|py)[ \t]*(?P<info>[^\n]*)\n(?P<code>.*?)^```", re.S | re.M)


def _blocks(page: Path) -> list[str]:
    return [
        m.group("code")
        for m in _BLOCK.finditer(page.read_text())
        if "no-run" not in m.group("info")
    ]


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if _blocks(p)] or [pytest.param(None, marks=pytest.mark.skip("no examples"))],
    ids=lambda p: str(p.relative_to(ROOT)) if p else "none",
)
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEYMGMT_PASSPHRASE", "docs-example-passphrase")
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, code in enumerate(_blocks(page), 1):
        try:
            exec(compile(code, f"{page.name}[block {number}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{page.name}: block {number} failed: {exc!r}") from exc
    assert os.getcwd() == str(tmp_path)


#: Pages whose refusals are asserted (the others' owners are asked to follow).
_ASSERTED_PAGES = tuple(sorted(p.name for p in (ROOT / "docs").glob("*.md")))


def _only_prints(handler: ast.ExceptHandler) -> bool:
    return all(
        isinstance(s, ast.Pass)
        or (
            isinstance(s, ast.Expr)
            and isinstance(s.value, ast.Call)
            and isinstance(s.value.func, ast.Name)
            and s.value.func.id == "print"
        )
        for s in handler.body
    )


def _refusal_checked(node: ast.Try) -> bool:
    """A ``try`` whose success fails (``else: raise``), or whose handlers do more than print."""
    if any(isinstance(n, ast.Raise) for n in ast.walk(ast.Module(node.orelse, []))):
        return True
    if any(isinstance(n, ast.Raise) for n in node.body):
        return True
    return not all(_only_prints(h) for h in node.handlers)


@pytest.mark.parametrize("name", _ASSERTED_PAGES)
def test_every_refusal_a_page_shows_is_asserted(name: str) -> None:
    # A block that prints "refused" only from its except clause runs green even
    # when the call it shows being refused succeeds.
    unchecked = [
        (number, node.lineno)
        for number, code in enumerate(_blocks(ROOT / "docs" / name), 1)
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Try) and node.handlers and not _refusal_checked(node)
    ]
    assert unchecked == [], f"{name}: (block, line) {unchecked} never fail"
