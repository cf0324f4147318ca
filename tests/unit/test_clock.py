"""Clock, SystemClock, ensure_aware and FakeClock."""

from __future__ import annotations

import datetime as dt

import pytest

from keymgmt import Clock, InvalidArgumentError, KeyManager, SystemClock
from keymgmt.clock import ensure_aware, utc_from_timestamp
from keymgmt.revocation import SubjectKind
from keymgmt.testing import DEFAULT_START, FakeClock

UTC = dt.UTC


def test_system_clock_returns_aware_utc_now() -> None:
    before = dt.datetime.now(UTC)
    now = SystemClock().now()
    after = dt.datetime.now(UTC)
    assert now.tzinfo is UTC
    assert before <= now <= after


def test_system_clock_and_fake_clock_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(FakeClock(), Clock)


def test_ensure_aware_converts_to_utc() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    value = dt.datetime(2030, 1, 1, 12, tzinfo=plus_two)
    result = ensure_aware(value)
    assert result == dt.datetime(2030, 1, 1, 10, tzinfo=UTC)
    assert result.tzinfo is UTC


def test_ensure_aware_refuses_naive_datetimes_naming_the_argument() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        ensure_aware(dt.datetime(2030, 1, 1), "not_after")
    assert info.value.message == "not_after must be timezone-aware (naive datetimes are refused)"


def test_ensure_aware_refuses_non_datetimes() -> None:
    with pytest.raises(InvalidArgumentError, match="when must be a datetime, got date"):
        ensure_aware(dt.date(2030, 1, 1), "when")  # type: ignore[arg-type]


def test_utc_from_timestamp_is_aware() -> None:
    assert utc_from_timestamp(0) == dt.datetime(1970, 1, 1, tzinfo=UTC)


def test_fake_clock_starts_at_the_default_and_stands_still() -> None:
    clock = FakeClock()
    assert clock.now() == DEFAULT_START
    assert clock.now() == DEFAULT_START


def test_fake_clock_advances_by_seconds_timedelta_and_keywords() -> None:
    clock = FakeClock()
    clock.advance(30)
    clock.advance(dt.timedelta(minutes=1))
    clock.advance(days=1, hours=1)
    assert clock.now() == DEFAULT_START + dt.timedelta(days=1, hours=1, seconds=90)


def test_fake_clock_refuses_to_move_backwards() -> None:
    clock = FakeClock()
    with pytest.raises(InvalidArgumentError, match="does not move backwards"):
        clock.advance(-1)
    assert clock.now() == DEFAULT_START


def test_fake_clock_set_jumps_anywhere_but_refuses_naive() -> None:
    clock = FakeClock()
    earlier = dt.datetime(2001, 1, 1, tzinfo=UTC)
    clock.set(earlier)
    assert clock.now() == earlier
    with pytest.raises(InvalidArgumentError):
        clock.set(dt.datetime(2001, 1, 1))


def test_fake_clock_refuses_a_naive_start() -> None:
    with pytest.raises(InvalidArgumentError, match="start must be timezone-aware"):
        FakeClock(dt.datetime(2030, 1, 1))


def test_fake_clock_repr_shows_the_time() -> None:
    assert repr(FakeClock()) == "FakeClock(2030-01-01T00:00:00+00:00)"


def test_an_aware_datetime_out_of_range_in_utc_is_an_invalid_argument() -> None:
    plus_five = dt.timezone(dt.timedelta(hours=5))
    with pytest.raises(InvalidArgumentError, match="out of range in UTC"):
        ensure_aware(dt.datetime(1, 1, 1, tzinfo=plus_five), "at")


def test_a_revocation_date_out_of_range_is_an_invalid_argument(km: KeyManager) -> None:
    plus_five = dt.timezone(dt.timedelta(hours=5))
    with pytest.raises(InvalidArgumentError):
        km.revocation.revoke(
            SubjectKind.KEY,
            "payments#1",
            "key-compromise",
            invalidity_date=dt.datetime(1, 1, 1, tzinfo=plus_five),
        )
    assert not km.revocation.is_revoked(SubjectKind.KEY, "payments#1")
