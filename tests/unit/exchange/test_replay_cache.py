"""ReplayCache: nonces accepted once within a window, stale timestamps refused, bounded."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt._replay import ReplayCache
from keymgmt.errors import InvalidArgumentError, ReplayError, StaleMessageError
from keymgmt.testing import FakeClock

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def nonce(i: int) -> bytes:
    return i.to_bytes(16, "big")


def test_first_use_of_a_nonce_is_accepted() -> None:
    cache = ReplayCache(clock=FakeClock(T0))
    cache.check_and_insert(nonce(1), T0)
    assert cache.seen(nonce(1))


def test_second_use_of_a_nonce_within_the_window_is_a_replay() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock)
    cache.check_and_insert(nonce(1), T0)
    clock.advance(minutes=4)
    with pytest.raises(ReplayError, match="nonce already seen"):
        cache.check_and_insert(nonce(1), T0)


def test_replay_after_the_window_is_refused_as_stale() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock)
    cache.check_and_insert(nonce(1), T0)
    clock.advance(minutes=6)
    with pytest.raises(StaleMessageError) as info:
        cache.check_and_insert(nonce(1), T0)
    assert info.value.reason == "too-old"


def test_timestamp_too_far_in_the_future_is_stale() -> None:
    cache = ReplayCache(clock=FakeClock(T0))
    with pytest.raises(StaleMessageError) as info:
        cache.check_and_insert(nonce(1), T0 + dt.timedelta(minutes=1))
    assert info.value.reason == "in-future"


def test_entries_expire_so_memory_is_bounded_by_the_window() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock, window=dt.timedelta(seconds=10), max_skew=dt.timedelta(0))
    for i in range(100):
        cache.check_and_insert(nonce(i), clock.now())
        clock.advance(1)
    # Only the last ~window seconds of nonces remain.
    assert len(cache) <= 11
    assert cache.evictions == 0


def test_at_overrides_the_clock_for_sans_io_callers() -> None:
    cache = ReplayCache(clock=FakeClock(T0))
    later = T0 + dt.timedelta(hours=1)
    cache.check_and_insert(nonce(1), later, at=later)
    with pytest.raises(StaleMessageError):
        cache.check_and_insert(nonce(2), T0, at=later)


def test_full_cache_raises_the_floor_instead_of_forgetting_a_live_nonce() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock, max_entries=3, max_skew=dt.timedelta(0))
    for i in range(3):
        cache.check_and_insert(nonce(i), clock.now())
        clock.advance(1)
    cache.check_and_insert(nonce(3), clock.now())  # evicts nonce(0)
    assert cache.evictions == 1
    assert len(cache) == 3
    with pytest.raises(StaleMessageError) as info:
        cache.check_and_insert(nonce(0), T0)  # replay of the evicted nonce
    assert info.value.reason == "overload-floor"


def test_clock_stepping_back_does_not_reorder_expiry() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock)
    cache.check_and_insert(nonce(1), T0)
    clock.set(T0 - dt.timedelta(minutes=10))
    with pytest.raises(ReplayError):
        cache.check_and_insert(nonce(1), T0)


@pytest.mark.parametrize("size", [0, 15, 65])
def test_nonce_of_wrong_size_is_refused(size: int) -> None:
    cache = ReplayCache(clock=FakeClock(T0))
    with pytest.raises(InvalidArgumentError, match="nonce must be 16 to 64 bytes"):
        cache.check_and_insert(bytes(size), T0)


def test_naive_timestamp_is_refused() -> None:
    cache = ReplayCache(clock=FakeClock(T0))
    with pytest.raises(InvalidArgumentError, match="timezone-aware"):
        cache.check_and_insert(nonce(1), dt.datetime(2030, 1, 1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": dt.timedelta(0)},
        {"max_skew": dt.timedelta(seconds=-1)},
        {"max_entries": 0},
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError):
        ReplayCache(**kwargs)  # type: ignore[arg-type]


def test_concurrent_inserts_of_one_nonce_accept_exactly_one() -> None:
    cache = ReplayCache(clock=FakeClock(T0))
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        try:
            cache.check_and_insert(nonce(7), T0)
            result = "ok"
        except ReplayError:
            result = "replay"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["replay"] * 7


@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 30)),
        max_size=60,
    )
)
def test_no_nonce_is_ever_accepted_twice(events: list[tuple[int, int]]) -> None:
    # Each event: (nonce id, seconds to advance). Timestamps are always "now".
    clock = FakeClock(T0)
    cache = ReplayCache(
        clock=clock, window=dt.timedelta(seconds=60), max_skew=dt.timedelta(0), max_entries=5
    )
    accepted: dict[int, dt.datetime] = {}
    for ident, step in events:
        clock.advance(step)
        now = clock.now()
        try:
            cache.check_and_insert(nonce(ident), now)
        except (ReplayError, StaleMessageError):
            continue
        # A nonce accepted twice would need the two timestamps to be >60 s apart
        # (otherwise the cache must have refused); then the message is a different one.
        if ident in accepted:
            assert now - accepted[ident] > dt.timedelta(seconds=60)
        accepted[ident] = now


def test_overload_floor_is_the_evicted_timestamp_so_newer_messages_still_pass() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock, max_entries=2)
    cache.check_and_insert(nonce(1), T0 - dt.timedelta(seconds=30))
    cache.check_and_insert(nonce(2), T0 - dt.timedelta(seconds=20))
    cache.check_and_insert(nonce(3), T0)  # evicts nonce(1): floor = T0 - 30 s
    cache.check_and_insert(nonce(4), T0 - dt.timedelta(seconds=25))  # newer than floor: ok
    with pytest.raises(StaleMessageError):
        cache.check_and_insert(nonce(1), T0 - dt.timedelta(seconds=30))
