"""The benchmark harness: our operation beside the raw primitive, in one run.

Each ``bench_*.py`` module defines ``cases() -> list[Case]``. A case times
``ours`` and ``raw`` interleaved (to share whatever the machine is doing) and
reports the ratio ours/raw; a ``target`` ratio, when given, is checked and
printed as PASS/MISS. Timings are medians of repeated rounds.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

import attrs

__all__ = ["Case", "Result", "measure"]


@attrs.frozen
class Case:
    """One comparison: ``ours`` vs ``raw`` doing the same work."""

    group: str
    name: str
    ours: Callable[[], object]
    raw: Callable[[], object] | None = None
    target: float | None = None  # maximum acceptable ours/raw ratio
    number: int = 0  # calls per round; 0 = calibrate to ~20 ms
    setup: Callable[[], object] | None = None
    note: str = ""


@attrs.frozen
class Result:
    """Timings of one case, in seconds per call."""

    case: Case
    ours: float
    raw: float | None

    @property
    def ratio(self) -> float | None:
        """ours / raw, or None without a raw baseline."""
        return None if self.raw is None or self.raw == 0 else self.ours / self.raw

    @property
    def verdict(self) -> str:
        """PASS, MISS or '' when there is no target."""
        if self.case.target is None or self.ratio is None:
            return ""
        return "PASS" if self.ratio <= self.case.target else "MISS"


def _per_call(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def _calibrate(fn: Callable[[], object]) -> int:
    number = 1
    while True:
        if _per_call(fn, number) * number > 0.02 or number >= 1 << 20:
            return number
        number *= 4


def measure(
    case: Case, *, rounds: int = 7, on_round: Callable[[int, int], None] | None = None
) -> Result:
    """Time ``case`` (interleaving ours and raw) and return medians.

    ``on_round(done, rounds)`` is called once calibration is over (``done``
    0) and after each round: progress for a person watching. It runs between
    timed rounds, never inside one.
    """
    if case.setup is not None:
        case.setup()
    number = case.number or _calibrate(case.ours)
    if on_round is not None:
        on_round(0, rounds)
    ours: list[float] = []
    raw: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for done in range(1, rounds + 1):
            ours.append(_per_call(case.ours, number))
            if case.raw is not None:
                raw.append(_per_call(case.raw, number))
            if on_round is not None:
                on_round(done, rounds)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Result(
        case=case,
        ours=statistics.median(ours),
        raw=statistics.median(raw) if raw else None,
    )
