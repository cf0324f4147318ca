"""Time, injected: every expiry, window and lifetime reads a :class:`Clock`."""

from __future__ import annotations

import datetime as _dt
from typing import Protocol, runtime_checkable

from keymgmt.errors import InvalidArgumentError

__all__ = ["Clock", "SystemClock", "ensure_aware", "utc_from_timestamp"]


@runtime_checkable
class Clock(Protocol):
    """A source of the current time: an aware UTC datetime."""

    def now(self) -> _dt.datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> _dt.datetime:
        """Return the current wall-clock time in UTC."""
        return _dt.datetime.now(_dt.UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


def ensure_aware(value: _dt.datetime, what: str = "datetime") -> _dt.datetime:
    """Return ``value`` in UTC; refuse naive datetimes.

    Raises:
        InvalidArgumentError: ``value`` is naive, not a datetime, or out of
            range once in UTC.
    """
    if not isinstance(value, _dt.datetime):
        raise InvalidArgumentError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentError(f"{what} must be timezone-aware (naive datetimes are refused)")
    try:
        return value.astimezone(_dt.UTC)
    except OverflowError:  # e.g. year 1 at UTC+5: before datetime.min in UTC
        raise InvalidArgumentError(f"{what} is out of range in UTC") from None


def utc_from_timestamp(seconds: float) -> _dt.datetime:
    """Return the aware UTC datetime for a POSIX timestamp."""
    return _dt.datetime.fromtimestamp(seconds, _dt.UTC)
