"""Per-principal token buckets on an injected monotonic clock.

Each principal has a bucket of ``burst`` tokens refilled at ``rate`` tokens a
second; a request takes one token or is refused with the number of seconds
until one is there (the ``Retry-After`` of a 429). Buckets of principals not
seen for a while are forgotten, so memory stays bounded by the number of
recently active principals (at most ``max_principals``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from keymgmt.errors import InvalidArgumentError

__all__ = ["TokenBucketLimiter"]


class TokenBucketLimiter:
    """Token buckets keyed by principal.

    Args:
        rate: tokens added per second (> 0).
        burst: bucket size (>= 1): requests allowed at once after a pause.
        clock: monotonic seconds (default :func:`time.monotonic`); inject a
            fake one in tests.
        max_principals: buckets kept; the least recently used go first.

    Raises:
        InvalidArgumentError: rate or burst out of range.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_principals: int = 100_000,
    ) -> None:
        if not rate > 0 or burst < 1 or max_principals < 1:
            raise InvalidArgumentError("rate must be > 0, burst and max_principals >= 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._max = max_principals
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __repr__(self) -> str:
        return f"TokenBucketLimiter(rate={self.rate}, burst={self.burst})"

    def acquire(
        self, principal: str, *, rate: float | None = None, burst: int | None = None
    ) -> float | None:
        """Take one token for ``principal``.

        Args:
            principal: whose bucket.
            rate: this principal's refill rate (default: the limiter's).
            burst: this principal's bucket size (default: the limiter's).

        Returns:
            None when the request may go ahead, else the seconds to wait.
        """
        rate = self.rate if rate is None else rate
        size = float(self.burst if burst is None else burst)
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(principal, (size, now))
            tokens = min(size, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[principal] = (tokens - 1.0, now)
                wait = None
            else:
                self._buckets[principal] = (tokens, now)
                wait = (1.0 - tokens) / rate
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        return wait
