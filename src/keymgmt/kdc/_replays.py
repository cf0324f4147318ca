"""One bounded replay cache per principal, for the KDC and for ticket receivers.

:class:`keymgmt._replay.ReplayCache` is bounded: when it is full it evicts
its oldest nonce and raises its *overload floor* to the newest timestamp of
that nonce's time bucket, refusing anything stamped at or before it (it
never forgets a nonce it would still accept). With one cache for everyone, a single client
that fills it with messages stamped as far ahead as the skew allows lifts
that floor above the present, and every other client's honestly stamped
messages are refused until real time catches up.

:class:`PrincipalReplayCache` gives each principal its own cache, so a
principal's nonces only ever evict its own: a flood (or a stolen key)
narrows only that principal's window. Caches that have emptied (every nonce
past its window) are dropped when the table grows, so memory stays bounded
by the principals active within the window times ``capacity`` (plus about
0.6 KB for each principal's empty cache). Dropping an empty cache forgets
nothing it would still refuse: what it evicted or let expire is older than
its window.
"""

from __future__ import annotations

import datetime as _dt
import threading
from typing import Final

from keymgmt._replay import DEFAULT_MAX_ENTRIES, ReplayCache
from keymgmt.clock import Clock, SystemClock, ensure_aware
from keymgmt.errors import InvalidArgumentError
from keymgmt.kdc import _protocol as p
from keymgmt.kdc._events import DEFAULT_SKEW

__all__ = ["PrincipalReplayCache"]

# A well-formed nonce no one sends: ``seen`` with it only moves a cache's clock.
_PROBE: Final = bytes(p.NONCE_LEN)


class PrincipalReplayCache:
    """A bounded replay cache per principal (see the module docs).

    Args:
        window: how old a message timestamp may be (default: the KDC skew).
        max_skew: how far ahead a timestamp may be (default: the KDC skew).
        capacity: the most nonces remembered per principal.
        clock: the time source when ``at=`` is not given.

    Raises:
        InvalidArgumentError: a capacity below 1 (and what
            :class:`~keymgmt._replay.ReplayCache` refuses).
    """

    _FIRST_SWEEP: Final = 1024

    def __init__(
        self,
        *,
        window: _dt.timedelta = DEFAULT_SKEW,
        max_skew: _dt.timedelta = DEFAULT_SKEW,
        capacity: int = DEFAULT_MAX_ENTRIES,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise InvalidArgumentError("capacity must be an int of at least 1")
        self._window = window
        self._max_skew = max_skew
        self._capacity = capacity
        self._clock: Clock = clock or SystemClock()
        ReplayCache(window=window, max_skew=max_skew, max_entries=capacity)  # checks the bounds
        self._caches: dict[str, ReplayCache] = {}
        self._lock = threading.Lock()
        self._high_water: _dt.datetime | None = None  # the latest time any cache saw
        self._sweep_at = self._FIRST_SWEEP

    def check_and_insert(
        self,
        principal: str,
        nonce: bytes,
        timestamp: _dt.datetime,
        *,
        at: _dt.datetime | None = None,
    ) -> None:
        """Accept ``principal``'s message nonce once, or refuse it.

        Raises:
            StaleMessageError: the timestamp is outside the window, or at or
                before the overload floor of this principal's own cache.
            ReplayError: the principal used this nonce within the window.
            InvalidArgumentError: bad nonce size or naive datetimes.
        """
        now = ensure_aware(at if at is not None else self._clock.now(), "at")
        # Under the table's lock, so a sweep can never drop the cache an
        # insert is about to use (the nonce would land in an orphan and a
        # replay would find a fresh cache).
        with self._lock:
            if self._high_water is None or now > self._high_water:
                self._high_water = now
            cache = self._caches.get(principal)
            if cache is None:
                if len(self._caches) >= self._sweep_at:
                    self._sweep(now)
                cache = ReplayCache(
                    window=self._window,
                    max_skew=self._max_skew,
                    max_entries=self._capacity,
                    clock=self._clock,
                )
                # A new cache starts from the table's high-water mark, as the
                # one a sweep dropped would have: a clock that jumped ahead
                # and came back cannot reopen an old window.
                cache.seen(_PROBE, at=self._high_water)
                self._caches[principal] = cache
            # The cache is the principal's own: its nonces need no scoping.
            cache.check_and_insert(nonce, timestamp, at=now)

    def __len__(self) -> int:
        """How many principals have a cache now."""
        return len(self._caches)

    def __repr__(self) -> str:
        return (
            f"PrincipalReplayCache(window={self._window}, capacity={self._capacity}, "
            f"principals={len(self._caches)})"
        )

    def _sweep(self, at: _dt.datetime) -> None:
        """Drop the caches that have emptied. Call under the lock."""
        for name, cache in list(self._caches.items()):
            cache.seen(_PROBE, at=at)  # drops the nonces past their window
            if not len(cache):
                del self._caches[name]
        self._sweep_at = max(self._FIRST_SWEEP, 2 * len(self._caches))
