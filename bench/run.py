"""Run the benchmarks: ``python bench/run.py [GROUP ...] [--quick]``.

Discovers ``bench/bench_*.py`` modules, runs their cases, and prints one line
per case: our time per call, the raw primitive's, the ratio and the verdict
against the target. Exits 1 if any target is missed (with ``--strict``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmark groups and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("groups", nargs="*", help="bench groups (file names without bench_)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a missed target")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    results: list[Result] = []
    print(f"{'case':52} {'ours':>11} {'raw':>11} {'ratio':>7} {'target':>7}  verdict")
    for case in _load_cases(args.groups):
        result = measure(case, rounds=rounds)
        results.append(result)
        ratio = "-" if result.ratio is None else f"{result.ratio:6.2f}x"
        target = "-" if case.target is None else f"{case.target:5.2f}x"
        label = f"{case.group}: {case.name}"
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
