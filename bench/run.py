"""Run the benchmarks: ``python bench/run.py [GROUP ...] [--quick]``.

Discovers ``bench/bench_*.py`` modules, runs their cases, and prints one line
per case: our time per call, the raw primitive's, the ratio and the verdict
against the target. Exits 1 if any target is missed (with ``--strict``).

On a terminal, a status line on stderr shows which case is running, its
round and the overall progress; it erases itself before each result line,
so the table on stdout stays clean. It is off when stderr is not a terminal
(pipes, CI logs) or with ``--no-progress``, like the CLI's progress bars.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from functools import partial
from pathlib import Path
from typing import TextIO

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import Case, Result, measure  # noqa: E402


def _load_cases(groups: list[str]) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(HERE.glob("bench_*.py")):
        group = path.stem.removeprefix("bench_")
        if groups and group not in groups:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases.extend(module.cases())
    return cases


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:8.2f} {unit}"
    return f"{seconds / 1e-9:8.2f} ns"


class Progress:
    """One self-erasing status line: ``[##------]  9%  case 3/40, round 2/7: group: case``.

    Args:
        stream: where to draw (stderr); nothing is drawn unless it is a terminal.
        total: the number of cases.
        enabled: False turns it off whatever the stream is.
    """

    BAR = 20

    def __init__(self, stream: TextIO, total: int, *, enabled: bool = True) -> None:
        self._stream = stream
        self._total = max(total, 1)
        self.enabled = enabled and stream.isatty()
        self._shown = False

    def show(self, index: int, label: str, done: int, rounds: int) -> None:
        """Case ``index`` (0-based) named ``label`` has finished ``done`` of ``rounds``.

        ``done == -1``: the case is still being set up and calibrated.
        """
        if not self.enabled:
            return
        fraction = (index + max(done, 0) / max(rounds, 1)) / self._total
        filled = int(fraction * self.BAR)
        bar = "#" * filled + "-" * (self.BAR - filled)
        phase = "calibrating" if done < 0 else f"round {min(done + 1, rounds)}/{rounds}"
        # Progress first: a narrow terminal cuts the case name, not the bar.
        line = f"[{bar}] {fraction:4.0%}  case {index + 1}/{self._total}, {phase}: {label}"
        width = shutil.get_terminal_size((80, 24)).columns - 1
        self._stream.write("\r\033[K" + line[:width])
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the status line (before printing a result, and at the end)."""
        if self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()
            self._shown = False


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmark groups and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("groups", nargs="*", help="bench groups (file names without bench_)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a missed target")
    parser.add_argument(
        "--no-progress", action="store_true", help="no status line on stderr (even on a terminal)"
    )
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    results: list[Result] = []
    print(f"{'case':52} {'ours':>11} {'raw':>11} {'ratio':>7} {'target':>7}  verdict", flush=True)
    cases = _load_cases(args.groups)
    status = Progress(sys.stderr, len(cases), enabled=not args.no_progress)
    for index, case in enumerate(cases):
        label = f"{case.group}: {case.name}"
        status.show(index, label, -1, rounds)
        try:
            result = measure(case, rounds=rounds, on_round=partial(status.show, index, label))
        finally:
            status.clear()
        results.append(result)
        ratio = "-" if result.ratio is None else f"{result.ratio:6.2f}x"
        target = "-" if case.target is None else f"{case.target:5.2f}x"
        print(
            f"{label[:52]:52} {_fmt(result.ours):>11} {_fmt(result.raw):>11} "
            f"{ratio:>7} {target:>7}  {result.verdict} {case.note}",
            flush=True,
        )
    missed = [r for r in results if r.verdict == "MISS"]
    if missed:
        print(f"\n{len(missed)} target(s) missed")
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
