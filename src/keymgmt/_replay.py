"""A bounded replay cache: has this nonce been seen inside the freshness window?

Used by the handshake responder (:mod:`keymgmt.exchange`) for initiator
nonces and by the KDC for request nonces. A message carries a nonce and the
sender's timestamp; the receiver calls :meth:`ReplayCache.check_and_insert`
with both. The message is refused as *stale* when its timestamp lies outside
``[now - window, now + max_skew]`` and as a *replay* when its nonce is still
in the cache. Together the two rules refuse every replay: a replay inside the
window finds its nonce, a replay outside it fails the timestamp check.

How it stays cheap and bounded:

* Entries live in an insertion-ordered dict ``nonce -> expiry``. Lookup and
  insert are one dict operation each, O(1).
* An entry may be forgotten once no message with its timestamp could pass
  the freshness check again, i.e. at ``insert time + window + max_skew``.
  Insert times only move forward (the cache keeps a high-water mark, so a
  clock that steps back cannot reorder entries), so expiries are sorted and
  expired entries are popped from the front: amortized O(1) per insert.
  Memory is therefore bounded by the arrival rate times the window.
* A hard ``max_entries`` bounds memory under a flood. When the cache is full
  the oldest entry is evicted *and the freshness floor is raised* to its
  message timestamp: messages stamped at or before it are refused as stale
  from then on. Under overload the cache narrows the window; it never
  forgets a nonce it would still accept. (This relies on the timestamp being
  authenticated together with the nonce, as it is in the handshake
  transcript and in KDC requests: a replay cannot carry a newer timestamp.)

Time comes from the injected :class:`~keymgmt.clock.Clock`, or from ``at=``
for sans-IO callers that are handed the time. The cache is thread-safe.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections import OrderedDict

from keymgmt.clock import Clock, SystemClock, ensure_aware
from keymgmt.errors import InvalidArgumentError, ReplayError, StaleMessageError

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_SKEW",
    "DEFAULT_WINDOW",
    "MAX_NONCE_SIZE",
    "MIN_NONCE_SIZE",
    "ReplayCache",
]

#: How far back a message timestamp may lie (and how long a nonce is kept).
DEFAULT_WINDOW = _dt.timedelta(minutes=5)
#: How far ahead of the receiver's clock a sender's timestamp may lie.
DEFAULT_MAX_SKEW = _dt.timedelta(seconds=30)
#: Hard cap on remembered nonces.
DEFAULT_MAX_ENTRIES = 1_000_000
#: Nonces shorter than this are refused (they could collide by chance).
MIN_NONCE_SIZE = 16
#: Nonces longer than this are refused (memory per entry stays bounded).
MAX_NONCE_SIZE = 64


class ReplayCache:
    """Remembers nonces for a time window; refuses replayed or stale messages.

    Args:
        window: how old a message timestamp may be; nonces are remembered at
            least this long. Default 5 minutes.
        max_skew: how far in the future a timestamp may be. Default 30 s.
        max_entries: hard cap on remembered nonces (see the module docs for
            what happens when it is reached).
        clock: the time source when ``at=`` is not given (default: the
            system clock).

    Raises:
        InvalidArgumentError: a non-positive window or cap, or a negative skew.
    """

    def __init__(
        self,
        *,
        window: _dt.timedelta = DEFAULT_WINDOW,
        max_skew: _dt.timedelta = DEFAULT_MAX_SKEW,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Clock | None = None,
    ) -> None:
        if window <= _dt.timedelta(0):
            raise InvalidArgumentError("window must be positive")
        if max_skew < _dt.timedelta(0):
            raise InvalidArgumentError("max_skew must not be negative")
        if max_entries < 1:
            raise InvalidArgumentError("max_entries must be at least 1")
        self._window = window
        self._max_skew = max_skew
        self._max_entries = max_entries
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        # nonce -> (expiry: when the entry may be dropped, the message timestamp)
        self._entries: OrderedDict[bytes, tuple[_dt.datetime, _dt.datetime]] = OrderedDict()
        self._high_water: _dt.datetime | None = None
        # Timestamps at or before the floor are stale (raised by capacity evictions).
        self._floor: _dt.datetime | None = None
        self._evictions = 0

    # -- the one operation --------------------------------------------------

    def check_and_insert(
        self,
        nonce: bytes,
        timestamp: _dt.datetime,
        *,
        at: _dt.datetime | None = None,
    ) -> None:
        """Accept a message's nonce once, or refuse it.

        Checks freshness first, then the nonce; on success the nonce is
        remembered, atomically with the check.

        Args:
            nonce: the message nonce, 16 to 64 bytes.
            timestamp: the sender's claimed time of sending (aware).
            at: the receiver's current time (aware); default: the clock.

        Raises:
            StaleMessageError: ``timestamp`` is too old, too far in the future,
                or at or before the overload floor; ``reason`` says which.
            ReplayError: the nonce was seen within the window.
            InvalidArgumentError: bad nonce size or naive datetimes.
        """
        key = _check_nonce(nonce)
        timestamp = ensure_aware(timestamp, "timestamp")
        now = self._now(at)
        with self._lock:
            now = self._advance(now)
            if timestamp < now - self._window:
                raise StaleMessageError(
                    "message timestamp is older than the freshness window", reason="too-old"
                )
            if timestamp > now + self._max_skew:
                raise StaleMessageError(
                    "message timestamp is too far in the future", reason="in-future"
                )
            if self._floor is not None and timestamp <= self._floor:
                raise StaleMessageError(
                    "message timestamp is before the replay cache's overload floor",
                    reason="overload-floor",
                )
            if key in self._entries:
                raise ReplayError("nonce already seen within the freshness window")
            while len(self._entries) >= self._max_entries:
                _, (_, evicted_timestamp) = self._entries.popitem(last=False)
                self._evictions += 1
                if self._floor is None or evicted_timestamp > self._floor:
                    self._floor = evicted_timestamp
            self._entries[key] = (now + self._window + self._max_skew, timestamp)

    def seen(self, nonce: bytes, *, at: _dt.datetime | None = None) -> bool:
        """Whether ``nonce`` is remembered (without inserting it).

        Raises:
            InvalidArgumentError: bad nonce size or a naive ``at``.
        """
        key = _check_nonce(nonce)
        now = self._now(at)
        with self._lock:
            self._advance(now)
            return key in self._entries

    # -- introspection --------------------------------------------------------

    @property
    def window(self) -> _dt.timedelta:
        """How old a timestamp may be."""
        return self._window

    @property
    def max_skew(self) -> _dt.timedelta:
        """How far ahead a timestamp may be."""
        return self._max_skew

    @property
    def max_entries(self) -> int:
        """The hard cap on remembered nonces."""
        return self._max_entries

    @property
    def evictions(self) -> int:
        """How many nonces were evicted early because the cache was full."""
        with self._lock:
            return self._evictions

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"ReplayCache(window={self._window}, max_entries={self._max_entries}, "
            f"size={len(self._entries)})"
        )

    # -- internals ---------------------------------------------------------------

    def _now(self, at: _dt.datetime | None) -> _dt.datetime:
        return ensure_aware(at if at is not None else self._clock.now(), "at")

    def _advance(self, now: _dt.datetime) -> _dt.datetime:
        """Move the high-water mark and drop expired entries. Call under the lock."""
        if self._high_water is None or now > self._high_water:
            self._high_water = now
        now = self._high_water
        entries = self._entries
        while entries:
            expiry, _ = next(iter(entries.values()))
            if expiry >= now:  # kept through its expiry instant: the bounds are inclusive
                break
            entries.popitem(last=False)
        return now


def _check_nonce(nonce: bytes) -> bytes:
    candidate: object = nonce
    if not isinstance(candidate, bytes):
        raise InvalidArgumentError("nonce must be bytes")
    if not MIN_NONCE_SIZE <= len(nonce) <= MAX_NONCE_SIZE:
        raise InvalidArgumentError(
            f"nonce must be {MIN_NONCE_SIZE} to {MAX_NONCE_SIZE} bytes, got {len(nonce)}"
        )
    return nonce
