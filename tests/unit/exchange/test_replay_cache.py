"""ReplayCache: nonces accepted once within a window, stale timestamps refused, bounded."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from keymgmt._replay import ReplayCache
from keymgmt.errors import InvalidArgumentError, ReplayError, StaleMessageError
from keymgmt.testing import FakeClock

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
#: The bucket width of a cache with the default 5-minute window (window / 256).
WIDTH_5MIN = dt.timedelta(minutes=5) / 256


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


def test_overload_floor_is_the_evicted_buckets_timestamp_so_newer_messages_still_pass() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock, max_entries=2)
    cache.check_and_insert(nonce(1), T0 - dt.timedelta(seconds=30))
    clock.advance(WIDTH_5MIN * 2)  # the next insert opens a new bucket
    cache.check_and_insert(nonce(2), T0 - dt.timedelta(seconds=20))
    cache.check_and_insert(nonce(3), T0)  # evicts nonce(1): floor = T0 - 30 s
    cache.check_and_insert(nonce(4), T0 - dt.timedelta(seconds=25))  # newer than floor: ok
    with pytest.raises(StaleMessageError) as info:
        cache.check_and_insert(nonce(1), T0 - dt.timedelta(seconds=30))
    assert info.value.reason == "overload-floor"


# -- bucket edges --------------------------------------------------------------


def test_eviction_from_a_bucket_raises_the_floor_to_its_highest_timestamp() -> None:
    # Buckets keep no per-entry timestamp: evicting one nonce of a bucket raises
    # the floor to the highest timestamp inserted in that bucket (documented).
    cache = ReplayCache(clock=FakeClock(T0), max_entries=2)
    cache.check_and_insert(nonce(1), T0 - dt.timedelta(seconds=30))
    cache.check_and_insert(nonce(2), T0 - dt.timedelta(seconds=20))  # same bucket
    cache.check_and_insert(nonce(3), T0)  # evicts nonce(1): floor = T0 - 20 s
    assert cache.evictions == 1
    assert not cache.seen(nonce(1))
    with pytest.raises(StaleMessageError) as info:
        cache.check_and_insert(nonce(4), T0 - dt.timedelta(seconds=20))
    assert info.value.reason == "overload-floor"
    cache.check_and_insert(nonce(5), T0 - dt.timedelta(seconds=20) + dt.timedelta(microseconds=1))


def test_timestamps_exactly_at_the_window_bounds_are_fresh() -> None:
    cache = ReplayCache(clock=FakeClock(T0), window=dt.timedelta(minutes=5))
    cache.check_and_insert(nonce(1), T0 - dt.timedelta(minutes=5))
    cache.check_and_insert(nonce(2), T0 + dt.timedelta(seconds=30))
    with pytest.raises(StaleMessageError) as old:
        cache.check_and_insert(nonce(3), T0 - dt.timedelta(minutes=5, microseconds=1))
    assert old.value.reason == "too-old"
    with pytest.raises(StaleMessageError) as future:
        cache.check_and_insert(nonce(4), T0 + dt.timedelta(seconds=30, microseconds=1))
    assert future.value.reason == "in-future"


def test_replay_stamped_at_the_future_bound_is_refused_at_its_expiry_instant() -> None:
    # A nonce stamped now + max_skew is still fresh at insert + window + max_skew:
    # it must still be remembered then (expiry is inclusive).
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock)
    stamp = T0 + dt.timedelta(seconds=30)
    cache.check_and_insert(nonce(1), stamp)
    clock.set(T0 + dt.timedelta(minutes=5, seconds=30))
    with pytest.raises(ReplayError):
        cache.check_and_insert(nonce(1), stamp)


def test_expired_bucket_is_dropped_whole_within_one_bucket_width() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock, window=dt.timedelta(seconds=256), max_skew=dt.timedelta(0))
    for i in range(50):
        cache.check_and_insert(nonce(i), T0)
    clock.set(T0 + dt.timedelta(seconds=256))  # the entries' own expiry instant
    assert len(cache) == 50
    clock.set(T0 + dt.timedelta(seconds=257, microseconds=1))  # + one bucket width (1 s)
    assert len(cache) == 50  # __len__ does not move the clock
    assert not cache.seen(nonce(0))
    assert len(cache) == 0


def test_nonce_inserted_at_a_buckets_end_is_kept_through_its_own_expiry_instant() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock, window=dt.timedelta(seconds=256), max_skew=dt.timedelta(0))
    cache.check_and_insert(nonce(1), T0)  # opens a bucket 1 s wide: [T0, T0 + 1 s]
    clock.advance(1)  # the bucket's last instant
    cache.check_and_insert(nonce(2), clock.now())
    clock.set(T0 + dt.timedelta(seconds=257))  # nonce(2)'s expiry instant, still fresh
    with pytest.raises(ReplayError):
        cache.check_and_insert(nonce(2), T0 + dt.timedelta(seconds=1))


def test_later_buckets_survive_when_an_earlier_one_expires() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock, window=dt.timedelta(seconds=256), max_skew=dt.timedelta(0))
    cache.check_and_insert(nonce(1), clock.now())
    clock.advance(10)
    cache.check_and_insert(nonce(2), clock.now())
    clock.set(T0 + dt.timedelta(seconds=258))
    assert not cache.seen(nonce(1))
    assert cache.seen(nonce(2))
    assert len(cache) == 1


def test_nonce_evicted_and_inserted_again_survives_its_old_buckets_expiry() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(
        clock=clock, window=dt.timedelta(seconds=10), max_skew=dt.timedelta(0), max_entries=4
    )
    for i in (1, 2, 3):  # one bucket: [1, 2, 3]
        cache.check_and_insert(nonce(i), T0)
    clock.advance(1)
    later = clock.now()
    cache.check_and_insert(nonce(4), later)
    cache.check_and_insert(nonce(5), later)  # evicts nonce(1)
    cache.check_and_insert(nonce(1), later)  # newer than the floor: a new message; evicts 2
    assert cache.evictions == 2
    clock.set(T0 + dt.timedelta(seconds=10, milliseconds=500))  # the first bucket expires
    assert not cache.seen(nonce(3))
    assert cache.seen(nonce(1))  # lives in the second bucket now
    with pytest.raises(ReplayError):
        cache.check_and_insert(nonce(1), later)


def test_bucket_closes_on_time_after_an_eviction_empties_the_oldest_bucket() -> None:
    # Whatever evictions do to the bucket list, a nonce never joins a bucket whose
    # span ended before it arrived (it would expire early with that bucket).
    clock = FakeClock(T0)
    cache = ReplayCache(
        clock=clock, window=dt.timedelta(seconds=256), max_skew=dt.timedelta(0), max_entries=2
    )

    def at(seconds: float) -> dt.datetime:
        clock.set(T0 + dt.timedelta(seconds=seconds))
        return clock.now()

    cache.check_and_insert(nonce(1), at(0))  # bucket [0 s, 1 s], expires after 257 s
    cache.check_and_insert(nonce(2), at(256.5))  # bucket [256.5 s, 257.5 s]
    cache.check_and_insert(nonce(3), at(256.6))  # evicts nonce(1): the first bucket is empty
    cache.seen(nonce(9), at=at(257.1))  # past the first bucket's expiry; the second still open
    stamp = at(300)
    cache.check_and_insert(nonce(4), stamp)  # must open a new bucket
    at(514)  # the [256.5 s, 257.5 s] bucket has expired; nonce(4) has not
    with pytest.raises(ReplayError):
        cache.check_and_insert(nonce(4), stamp)


def test_flood_at_one_instant_keeps_the_cap_and_its_memory() -> None:
    cache = ReplayCache(clock=FakeClock(T0), max_entries=3)
    for i in range(5_000):
        # Each eviction raises the floor to the newest stamp so far: stamps must increase.
        cache.check_and_insert(
            nonce(i), T0 - dt.timedelta(seconds=1) + i * dt.timedelta(microseconds=1)
        )
    assert len(cache) == 3
    assert cache.evictions == 4_997
    assert [cache.seen(nonce(i)) for i in (4_996, 4_997, 4_998, 4_999)] == [False, True, True, True]
    # The evicted prefix of the single bucket's list is compacted away as it goes.
    assert sum(len(bucket.nonces) for bucket in cache._buckets) < 2_100


def test_clock_stepping_back_keeps_the_freshness_window_at_the_high_water_mark() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock)
    cache.check_and_insert(nonce(1), T0)
    clock.set(T0 + dt.timedelta(minutes=10))
    cache.check_and_insert(nonce(2), clock.now())
    clock.set(T0)
    with pytest.raises(StaleMessageError) as info:
        cache.check_and_insert(nonce(3), T0)
    assert info.value.reason == "too-old"


def test_too_old_is_reported_before_the_overload_floor() -> None:
    clock = FakeClock(T0)
    cache = ReplayCache(clock=clock, max_entries=1)
    cache.check_and_insert(nonce(1), T0)
    cache.check_and_insert(nonce(2), T0 + dt.timedelta(seconds=1))  # floor = T0
    with pytest.raises(StaleMessageError) as floor:
        cache.check_and_insert(nonce(3), T0)
    assert floor.value.reason == "overload-floor"
    with pytest.raises(StaleMessageError) as old:
        cache.check_and_insert(nonce(3), T0 - dt.timedelta(minutes=6))
    assert old.value.reason == "too-old"


def test_timestamps_in_other_zones_compare_as_instants() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    cache = ReplayCache(clock=FakeClock(T0))
    cache.check_and_insert(nonce(1), T0.astimezone(plus_two), at=T0.astimezone(plus_two))
    with pytest.raises(ReplayError):
        cache.check_and_insert(nonce(1), T0)
    with pytest.raises(StaleMessageError):
        cache.check_and_insert(nonce(2), (T0 + dt.timedelta(minutes=1)).astimezone(plus_two))


def test_seen_does_not_insert() -> None:
    cache = ReplayCache(clock=FakeClock(T0))
    assert not cache.seen(nonce(1))
    cache.check_and_insert(nonce(1), T0)
    assert len(cache) == 1


def test_nonce_that_is_not_bytes_is_refused() -> None:
    cache = ReplayCache(clock=FakeClock(T0))
    with pytest.raises(InvalidArgumentError, match="nonce must be bytes"):
        cache.check_and_insert("0123456789abcdef", T0)  # type: ignore[arg-type]


def test_naive_at_is_refused() -> None:
    cache = ReplayCache(clock=FakeClock(T0))
    with pytest.raises(InvalidArgumentError, match="at must be timezone-aware"):
        cache.check_and_insert(nonce(1), T0, at=dt.datetime(2030, 1, 1))


# -- the cache against a reference model ----------------------------------------------

MODEL_WINDOW = dt.timedelta(seconds=10)
#: How long past its exact expiry the cache may keep a nonce: one bucket width.
MODEL_SLACK = MODEL_WINDOW / 256
#: Clock steps and timestamp offsets in milliseconds: around the bucket width
#: (39 ms), around the window, and exactly on the bounds.
STEPS_MS = st.one_of(
    st.integers(0, 120),
    st.sampled_from([0, 1, 39, 40, 5_000, 9_980, 10_000, 10_040, 12_980, 13_000, 20_000]),
)
OFFSETS_MS = st.one_of(
    st.integers(-11_000, 4_000), st.sampled_from([-10_000, -10_001, 0, 3_000, 3_001])
)


class ReplayCacheMachine(RuleBasedStateMachine):
    """ReplayCache against a dict ``nonce -> (insert time, timestamp)`` with the same rules.

    The model is the exact, unbounded cache: stale outside ``[high water -
    window, high water + max_skew]``, a replay while ``insert time + window +
    max_skew >= high water``. The cache may differ from it only where the
    module docs allow: it keeps an expired nonce up to one bucket width longer
    (so it may refuse a *new* message with that nonce as a replay), and once it
    has evicted under its cap it may refuse fresh messages as ``overload-floor``
    and accept a remembered nonce again only with a newer timestamp than the
    one remembered (a different message). It never accepts a replay — the same
    nonce and timestamp — that the model refuses, and a nonce it has forgotten
    early stays refused.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cache: ReplayCache | None = None
        self.now = T0
        # The cache's high-water mark: the latest `at` it was called with.
        self.high_water = T0
        self.skew = dt.timedelta(0)
        self.model: dict[int, tuple[dt.datetime, dt.datetime]] = {}

    @initialize(skew_ms=st.sampled_from([0, 3_000]), cap=st.sampled_from([1, 2, 3, 5, 1_000]))
    def start(self, skew_ms: int, cap: int) -> None:
        self.skew = dt.timedelta(milliseconds=skew_ms)
        self.cache = ReplayCache(
            clock=FakeClock(T0), window=MODEL_WINDOW, max_skew=self.skew, max_entries=cap
        )
        self.cache.seen(nonce(0), at=T0)  # its high-water mark starts at T0, as the model's

    @property
    def _cache(self) -> ReplayCache:
        assert self.cache is not None
        return self.cache

    def _horizon(self) -> dt.timedelta:
        return MODEL_WINDOW + self.skew

    def _live(self, ident: int) -> bool:
        entry = self.model.get(ident)
        return entry is not None and entry[0] + self._horizon() >= self.high_water

    def _maybe_live(self, ident: int) -> bool:
        entry = self.model.get(ident)
        return entry is not None and entry[0] + self._horizon() + MODEL_SLACK >= self.high_water

    def _touch(self) -> None:
        """The model's side of calling the cache at ``self.now``."""
        self.high_water = max(self.high_water, self.now)

    @rule(step_ms=STEPS_MS)
    def clock_moves_forward(self, step_ms: int) -> None:
        self.now += dt.timedelta(milliseconds=step_ms)

    @rule(back_ms=st.one_of(st.integers(1, 15_000), st.sampled_from([1, 20, 500])))
    def clock_steps_back(self, back_ms: int) -> None:
        self.now -= dt.timedelta(milliseconds=back_ms)

    @rule(ident=st.integers(0, 7), offset_ms=OFFSETS_MS)
    def insert(self, ident: int, offset_ms: int) -> None:
        self.insert_stamped(ident, self.now + dt.timedelta(milliseconds=offset_ms))

    def insert_stamped(self, ident: int, stamp: dt.datetime) -> None:
        """Insert at ``self.now``; the outcome must be one the model allows."""
        self._touch()
        if stamp < self.high_water - MODEL_WINDOW:
            expected = "too-old"
        elif stamp > self.high_water + self.skew:
            expected = "in-future"
        elif self._live(ident):
            expected = "replay"
        else:
            expected = "accept"
        evicted_before = self._cache.evictions
        try:
            self._cache.check_and_insert(nonce(ident), stamp, at=self.now)
        except StaleMessageError as error:
            outcome = error.reason
        except ReplayError:
            outcome = "replay"
        else:
            outcome = "accept"
        if expected in ("too-old", "in-future"):
            assert outcome == expected
        elif expected == "replay":
            # After evicting it, the cache refuses the nonce by the floor, which is at
            # or above the remembered stamp: only a newer stamp (a new message, as
            # timestamps are authenticated) can pass, never the remembered one.
            assert outcome == "replay" or (
                evicted_before > 0 and (outcome == "overload-floor" or stamp > self.model[ident][1])
            )
        else:
            assert (
                outcome == "accept"
                or (outcome == "replay" and self._maybe_live(ident))
                or (outcome == "overload-floor" and evicted_before > 0)
            )
        if outcome == "accept":
            self.model[ident] = (self.high_water, stamp)
            assert self._cache.evictions - evicted_before <= 1

    @rule(
        ident=st.integers(0, 7),
        bound=st.sampled_from(["below-window", "window", "now", "skew", "above-skew"]),
    )
    def insert_on_a_bound(self, ident: int, bound: str) -> None:
        """A timestamp exactly on (or 1 µs outside) a freshness bound of the high-water mark."""
        self._touch()
        stamp = {
            "below-window": self.high_water - MODEL_WINDOW - dt.timedelta(microseconds=1),
            "window": self.high_water - MODEL_WINDOW,
            "now": self.high_water,
            "skew": self.high_water + self.skew,
            "above-skew": self.high_water + self.skew + dt.timedelta(microseconds=1),
        }[bound]
        self.insert_stamped(ident, stamp)

    @rule(ident=st.integers(0, 7))
    def seen(self, ident: int) -> None:
        self._touch()
        seen = self._cache.seen(nonce(ident), at=self.now)
        if seen:
            assert self._maybe_live(ident)
        elif self._cache.evictions == 0:
            assert not self._live(ident)

    @invariant()
    def bounded_and_never_forgets_a_nonce_it_would_accept(self) -> None:
        if self.cache is None:
            return
        self._touch()
        self.cache.seen(nonce(0), at=self.now)  # the cache's side of _touch
        assert len(self.cache) <= self.cache.max_entries
        for ident, (_, stamp) in list(self.model.items()):
            if not self._live(ident) or self.cache.seen(nonce(ident), at=self.now):
                continue
            # Forgotten early: only an eviction may do that, and the floor must cover it.
            assert self.cache.evictions > 0
            with pytest.raises(StaleMessageError):
                self.cache.check_and_insert(nonce(ident), stamp, at=self.now)


ReplayCacheMachine.TestCase.settings = settings(stateful_step_count=60)
test_replay_cache_against_the_model = ReplayCacheMachine.TestCase
