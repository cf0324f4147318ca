"""A bounded replay cache: has this nonce been seen inside the freshness window?

Used by the handshake responder (:mod:`keymgmt.exchange`) for initiator
nonces and by the KDC for request nonces. A message carries a nonce and the
sender's timestamp; the receiver calls :meth:`ReplayCache.check_and_insert`
with both. The message is refused as *stale* when its timestamp lies outside
``[now - window, now + max_skew]`` and as a *replay* when its nonce is still
in the cache. Together the two rules refuse every replay: a replay inside the
window finds its nonce, a replay outside it fails the timestamp check.

How it stays cheap and bounded:

* The nonces live in one plain ``set``: the replay check is one set probe
  and the insert one set add, O(1). Nothing else is stored per entry — no
  per-entry expiry, timestamp or tuple — so an entry costs its set slot,
  one list slot and the nonce bytes themselves (about 108 B for a 32-byte
  nonce at 1M entries, against 260 B for the ordered dict of
  ``(expiry, timestamp)`` tuples this replaced).
* Expiry is kept per *bucket* of time, not per entry. A bucket is
  ``window / 256`` wide (at least 1 µs) and holds the list of nonces
  inserted while the receiver's time was inside it, plus the highest
  message timestamp among them, and one datetime (when it closes). Buckets
  sit in a list, oldest first.
* An entry may be forgotten once no message with its timestamp could pass
  the freshness check again, i.e. at ``insert time + window + max_skew``.
  Insert times only move forward (the cache keeps a high-water mark, so a
  clock that steps back cannot reorder entries), so buckets expire in list
  order: once the time passes a bucket's end plus ``window + max_skew``,
  the whole bucket is dropped from the front and its nonces removed from
  the set in one C-level ``difference_update`` — amortized O(1) per insert.
  An entry is thus kept at least until its insert time + window +
  max_skew and at most one bucket width (0.4 % of the window) longer.
  Memory is bounded by the arrival rate times the window.
* The freshness bounds are computed only when the high-water mark moves, so
  a call whose clock has not moved does no datetime arithmetic: it makes
  one chained comparison against the precomputed bounds. When it has moved,
  two additions; the buckets are looked at only when one closes or
  expires (one comparison against the next such instant).
* A hard ``max_entries`` bounds memory under a flood. When the cache is full
  the oldest remembered nonce (the head of the oldest bucket) is evicted
  *and the freshness floor is raised* to the highest message timestamp in
  its bucket: messages stamped at or before it are refused as stale from
  then on. Buckets do not keep each entry's timestamp, so the floor is the
  bucket's maximum rather than the evicted entry's own timestamp (which the
  previous, per-entry design used): it narrows the window more than strictly
  needed — up to the newest timestamp received during that bucket's
  ~window/256 of time, which with honest clocks is about that time itself —
  never less. Exactly one nonce is evicted per insert over the cap, so the
  cache stays full and ``evictions`` counts nonces. Under overload the
  cache narrows the window; it never forgets a nonce it would still accept.
  (This relies on the timestamp being authenticated together with the
  nonce, as it is in the handshake transcript and in KDC requests: a replay
  cannot carry a newer timestamp.)

Time comes from the injected :class:`~keymgmt.clock.Clock`, or from ``at=``
for sans-IO callers that are handed the time. The cache is thread-safe: every
read and write of its state happens under one lock.
"""

from __future__ import annotations

import datetime as _dt
import threading
from typing import NoReturn

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

# A bucket is window / _BUCKETS_PER_WINDOW wide: few enough buckets that their
# own cost is nothing beside the entries, narrow enough that entries outlive
# their expiry by at most 0.4 % of the window.
_BUCKETS_PER_WINDOW = 256
_MICROSECOND = _dt.timedelta(microseconds=1)
# Evicting from the head of a bucket advances an index; the evicted prefix of
# its list is deleted once it is this long and at least half of the list.
_COMPACT_AFTER = 1024
# The fast path accepts exactly these without calling ensure_aware.
_DATETIME = _dt.datetime
_UTC = _dt.UTC
_EARLIEST = _dt.datetime.min.replace(tzinfo=_UTC)
_LATEST = _dt.datetime.max.replace(tzinfo=_UTC)


class _Bucket:
    """The nonces inserted while the receiver's time was in one bucket's span.

    ``nonces[head:]`` are in the cache's set; ``nonces[:head]`` were evicted
    by the capacity cap (and may since have been inserted again elsewhere).
    """

    __slots__ = ("closes", "head", "max_timestamp", "nonces")

    def __init__(self, closes: _dt.datetime, nonce: bytes, timestamp: _dt.datetime) -> None:
        #: Inserts after this instant go to a new bucket; every entry here was
        #: inserted at or before it, so all may go once ``closes + window +
        #: max_skew`` has passed.
        self.closes = closes
        self.nonces = [nonce]
        self.head = 0
        #: The highest message timestamp inserted here: the overload floor
        #: an eviction from this bucket raises.
        self.max_timestamp = timestamp


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

    # Slots: a KDC keeps one cache per principal, so the empty cache stays small.
    __slots__ = (
        "_above_floor",
        "_buckets",
        "_clock",
        "_due",
        "_evictions",
        "_floor",
        "_high_water",
        "_horizon",
        "_last_now",
        "_lock",
        "_lowest",
        "_max_entries",
        "_max_skew",
        "_newest",
        "_nonces",
        "_oldest",
        "_tail",
        "_width",
        "_window",
    )

    def __init__(
        self,
        *,
        window: _dt.timedelta = DEFAULT_WINDOW,
        max_skew: _dt.timedelta = DEFAULT_MAX_SKEW,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Clock | None = None,
    ) -> None:
        limits: tuple[object, object, object] = (window, max_skew, max_entries)  # may be untyped
        if not (
            isinstance(limits[0], _dt.timedelta)
            and isinstance(limits[1], _dt.timedelta)
            and isinstance(limits[2], int)
            and not isinstance(limits[2], bool)
        ):
            raise InvalidArgumentError("window and max_skew are timedeltas, max_entries an int")
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
        self._horizon = window + max_skew
        self._width = max(window / _BUCKETS_PER_WINDOW, _MICROSECOND)
        # Every remembered nonce, and the buckets (oldest first) that say when each goes.
        self._nonces: set[bytes] = set()
        self._buckets: list[_Bucket] = []
        # The bucket inserts go to; None once the time has passed its end.
        self._tail: _Bucket | None = None
        # When the tail closes or the oldest bucket expires, whichever is first
        # (or earlier): only then is there bucket work to do.
        self._due = _LATEST
        # The high-water mark of the receiver's time, and the last `now` seen
        # (the same object again: nothing to advance).
        self._high_water = _EARLIEST
        self._last_now: _dt.datetime | None = None
        # Timestamps at or before the floor are stale (raised by capacity
        # evictions); `above_floor` is the first instant after it.
        self._floor: _dt.datetime | None = None
        self._above_floor = _EARLIEST
        self._evictions = 0
        # Freshness bounds, recomputed when the high-water mark or the floor
        # moves: `oldest` = high water - window; `lowest` = the lowest
        # accepted timestamp (oldest, or just after the floor); `newest` =
        # high water + max_skew. Placeholders until the first call sets them.
        self._oldest = _LATEST
        self._lowest = _LATEST
        self._newest = _EARLIEST

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
        # Fast paths for the common types; the checks' messages live in the helpers.
        if nonce.__class__ is not bytes or not MIN_NONCE_SIZE <= len(nonce) <= MAX_NONCE_SIZE:
            nonce = _check_nonce(nonce)
        if timestamp.__class__ is not _DATETIME or timestamp.tzinfo is not _UTC:
            timestamp = ensure_aware(timestamp, "timestamp")
        now = at if at is not None else self._clock.now()
        if now.__class__ is not _DATETIME or now.tzinfo is not _UTC:
            now = ensure_aware(now, "at")
        # acquire/release rather than `with`: half the cost of the lock on CPython 3.11.
        lock = self._lock
        lock.acquire()
        try:
            if now is not self._last_now:
                self._advance(now)
            if not self._lowest <= timestamp <= self._newest:
                self._refuse_stale(timestamp)
            nonces = self._nonces
            if nonce in nonces:
                raise ReplayError("nonce already seen within the freshness window")
            if len(nonces) >= self._max_entries:
                self._evict()
            tail = self._tail
            if tail is None:
                closes = self._high_water + self._width
                tail = self._tail = _Bucket(closes, nonce, timestamp)
                self._buckets.append(tail)
                if closes < self._due:
                    self._due = closes
            else:
                tail.nonces.append(nonce)
                if timestamp > tail.max_timestamp:
                    tail.max_timestamp = timestamp
            nonces.add(nonce)
        finally:
            lock.release()

    def seen(self, nonce: bytes, *, at: _dt.datetime | None = None) -> bool:
        """Whether ``nonce`` is remembered (without inserting it).

        Raises:
            InvalidArgumentError: bad nonce size or a naive ``at``.
        """
        key = _check_nonce(nonce)
        now = ensure_aware(at if at is not None else self._clock.now(), "at")
        with self._lock:
            if now is not self._last_now:
                self._advance(now)
            return key in self._nonces

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
            return len(self._nonces)

    def __repr__(self) -> str:
        return (
            f"ReplayCache(window={self._window}, max_entries={self._max_entries}, "
            f"size={len(self._nonces)})"
        )

    # -- internals ---------------------------------------------------------------

    def _advance(self, now: _dt.datetime) -> None:
        """Move the high-water mark to ``now`` if it is later. Call under the lock."""
        if now <= self._high_water:
            self._last_now = now
            return  # the clock stood still or stepped back: nothing moves
        try:  # the bounds first, so a time near datetime's ends changes nothing
            oldest = now - self._window
            newest = now + self._max_skew
        except OverflowError:
            raise InvalidArgumentError(f"the time {now.isoformat()} is out of range") from None
        self._last_now = now
        self._high_water = now
        self._oldest = oldest
        self._newest = newest
        above_floor = self._above_floor
        self._lowest = oldest if oldest > above_floor else above_floor
        if now > self._due:
            self._expire(now)

    def _expire(self, now: _dt.datetime) -> None:
        """Drop the buckets wholly past their expiry; close the tail if its time is over."""
        buckets = self._buckets
        expire_before = now - self._horizon
        count = 0
        # Kept through the expiry instant: the freshness bounds are inclusive.
        while count < len(buckets) and buckets[count].closes < expire_before:
            bucket = buckets[count]
            live = bucket.nonces if not bucket.head else bucket.nonces[bucket.head :]
            self._nonces.difference_update(live)
            count += 1
        del buckets[:count]
        tail = self._tail
        if tail is not None and now > tail.closes:
            tail = self._tail = None  # expired with the buckets above, or merely closed
        due = buckets[0].closes + self._horizon if buckets else _LATEST
        if tail is not None and tail.closes < due:
            due = tail.closes
        self._due = due

    def _evict(self) -> None:
        """Evict the oldest nonces down to below the cap, raising the floor. Under the lock."""
        nonces = self._nonces
        buckets = self._buckets
        floor = self._floor
        while len(nonces) >= self._max_entries:
            # Every bucket in the list has a live nonce at its head, and the
            # set is not empty (the cap is at least 1), so buckets[0] exists.
            bucket = buckets[0]
            nonces.remove(bucket.nonces[bucket.head])
            bucket.head += 1
            self._evictions += 1
            if floor is None or bucket.max_timestamp > floor:
                floor = bucket.max_timestamp
            if bucket.head == len(bucket.nonces):
                del buckets[0]  # `_due` may now be early: that only costs a spare _expire
                if bucket is self._tail:
                    self._tail = None
            elif bucket.head >= _COMPACT_AFTER and 2 * bucket.head >= len(bucket.nonces):
                del bucket.nonces[: bucket.head]
                bucket.head = 0
        if floor is not None and floor is not self._floor:
            self._floor = floor
            above_floor = self._above_floor = floor + _MICROSECOND
            if above_floor > self._lowest:
                self._lowest = above_floor

    def _refuse_stale(self, timestamp: _dt.datetime) -> NoReturn:
        """Raise the StaleMessageError for a timestamp outside the bounds."""
        if timestamp < self._oldest:
            raise StaleMessageError(
                "message timestamp is older than the freshness window", reason="too-old"
            )
        if timestamp > self._newest:
            raise StaleMessageError(
                "message timestamp is too far in the future", reason="in-future"
            )
        raise StaleMessageError(
            "message timestamp is before the replay cache's overload floor",
            reason="overload-floor",
        )


def _check_nonce(nonce: bytes) -> bytes:
    candidate: object = nonce
    if not isinstance(candidate, bytes):
        raise InvalidArgumentError("nonce must be bytes")
    if not MIN_NONCE_SIZE <= len(nonce) <= MAX_NONCE_SIZE:
        raise InvalidArgumentError(
            f"nonce must be {MIN_NONCE_SIZE} to {MAX_NONCE_SIZE} bytes, got {len(nonce)}"
        )
    return nonce
