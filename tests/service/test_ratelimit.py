"""Token buckets on an injected clock: bursts, refill, per-principal isolation, bounded memory."""

from __future__ import annotations

import pytest

from keymgmt.errors import InvalidArgumentError
from keymgmt.server import TokenBucketLimiter


class Tick:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_is_allowed_then_refused_with_the_wait() -> None:
    clock = Tick()
    limiter = TokenBucketLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [None, None, None]
    assert limiter.acquire("a") == pytest.approx(0.5)


def test_tokens_refill_with_time() -> None:
    clock = Tick()
    limiter = TokenBucketLimiter(rate=2.0, burst=1, clock=clock)
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is not None
    clock.now += 0.5
    assert limiter.acquire("a") is None


def test_refill_never_exceeds_the_burst() -> None:
    clock = Tick()
    limiter = TokenBucketLimiter(rate=100.0, burst=2, clock=clock)
    clock.now += 3600
    assert [limiter.acquire("a") is None for _ in range(3)] == [True, True, False]


def test_principals_have_separate_buckets() -> None:
    limiter = TokenBucketLimiter(rate=1.0, burst=1, clock=Tick())
    assert limiter.acquire("a") is None
    assert limiter.acquire("b") is None
    assert limiter.acquire("a") is not None


def test_per_call_rate_and_burst_override_the_defaults() -> None:
    limiter = TokenBucketLimiter(rate=1000.0, burst=1000, clock=Tick())
    assert limiter.acquire("slow", rate=0.5, burst=1) is None
    assert limiter.acquire("slow", rate=0.5, burst=1) == pytest.approx(2.0)


def test_least_recently_used_buckets_are_forgotten() -> None:
    limiter = TokenBucketLimiter(rate=1.0, burst=1, clock=Tick(), max_principals=2)
    limiter.acquire("a")
    limiter.acquire("b")
    limiter.acquire("c")  # forgets "a": it starts again with a full bucket
    assert limiter.acquire("a") is None


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_bad_parameters_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(InvalidArgumentError):
        TokenBucketLimiter(rate=rate, burst=burst)
