"""``bench/run.py`` shows progress on a terminal only, and never in the results table."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> tuple[ModuleType, ModuleType]:
    saved = list(sys.path)
    try:
        harness = _load("_harness")
        run = _load("run")
    finally:
        sys.path[:] = saved
        sys.modules.pop("run", None)
        sys.modules.pop("_harness", None)
    return run, harness


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_line_is_drawn_on_a_terminal_and_erased(
    bench: tuple[ModuleType, ModuleType],
) -> None:
    run, _ = bench
    stream = _Terminal()
    status = run.Progress(stream, total=4)
    status.show(1, "symmetric: encrypt", 2, 7)
    assert "case 2/4, round 3/7: symmetric: encrypt" in stream.getvalue()
    status.clear()
    assert stream.getvalue().endswith("\r\033[K")


def test_no_status_line_when_not_a_terminal(bench: tuple[ModuleType, ModuleType]) -> None:
    run, _ = bench
    stream = io.StringIO()
    status = run.Progress(stream, total=4)
    status.show(0, "symmetric: encrypt", -1, 7)
    status.clear()
    assert stream.getvalue() == ""


def test_no_progress_turns_it_off_on_a_terminal(bench: tuple[ModuleType, ModuleType]) -> None:
    run, _ = bench
    stream = _Terminal()
    run.Progress(stream, total=1, enabled=False).show(0, "x", 1, 3)
    assert stream.getvalue() == ""


def test_measure_reports_each_round(bench: tuple[ModuleType, ModuleType]) -> None:
    _, harness = bench
    seen: list[tuple[int, int]] = []
    case = harness.Case(group="g", name="n", ours=lambda: None, raw=lambda: None, number=1)
    harness.measure(case, rounds=3, on_round=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
