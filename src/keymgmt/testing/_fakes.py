"""Fakes for deterministic tests: a clock you move, randomness you seed."""

from __future__ import annotations

import datetime as _dt
import hashlib
import threading

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from keymgmt.clock import ensure_aware
from keymgmt.errors import InvalidArgumentError

__all__ = ["FakeClock", "SeededRandomness"]

#: Where a FakeClock starts unless told otherwise.
DEFAULT_START = _dt.datetime(2030, 1, 1, tzinfo=_dt.UTC)


class FakeClock:
    """A clock that only moves when told to. Thread-safe.

    Args:
        start: the initial time (aware); default 2030-01-01T00:00:00Z.
    """

    def __init__(self, start: _dt.datetime = DEFAULT_START) -> None:
        self._now = ensure_aware(start, "start")
        self._lock = threading.Lock()

    def now(self) -> _dt.datetime:
        """The current fake time."""
        with self._lock:
            return self._now

    def advance(self, delta: _dt.timedelta | float = 0.0, **kwargs: float) -> _dt.datetime:
        """Move forward by ``delta`` (seconds or a timedelta) plus ``timedelta`` kwargs.

        ``clock.advance(days=8)`` and ``clock.advance(30)`` both work.

        Raises:
            InvalidArgumentError: the clock would move backwards, or the step is
                not a finite number of seconds or timedelta units, or it would
                take the clock past the end of time (year 9999).
        """
        try:
            step = delta if isinstance(delta, _dt.timedelta) else _dt.timedelta(seconds=delta)
            step += _dt.timedelta(**kwargs)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidArgumentError(f"not a step a FakeClock can take: {exc}") from None
        if step < _dt.timedelta(0):
            raise InvalidArgumentError("a FakeClock does not move backwards; use set()")
        with self._lock:
            try:
                self._now += step
            except OverflowError:
                raise InvalidArgumentError("the FakeClock would pass year 9999") from None
            return self._now

    def set(self, when: _dt.datetime) -> None:
        """Jump to ``when`` (any direction).

        Raises:
            InvalidArgumentError: ``when`` is not an aware datetime.
        """
        with self._lock:
            self._now = ensure_aware(when, "when")

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"


class SeededRandomness:
    """Deterministic bytes from a seed (a ChaCha20 keystream). For tests only.

    Two instances with the same seed produce the same sequence. Never use
    this for real keys: the seed is the key.

    Args:
        seed: an int, bytes or str (a str seeds as its UTF-8 bytes).

    Raises:
        InvalidArgumentError: a seed of another type.
    """

    def __init__(self, seed: int | bytes | str = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | bytes | str):
            raise InvalidArgumentError("the seed must be an int, bytes or str")
        if isinstance(seed, int):
            # 16 bytes as before for small seeds; longer ones get their own length.
            size = max(16, (seed.bit_length() + 8) // 8)
            seed = seed.to_bytes(size, "big", signed=True)
        elif isinstance(seed, str):
            seed = seed.encode("utf-8", "surrogatepass")
        key = hashlib.sha256(b"keymgmt/testing/seeded-randomness\x00" + seed).digest()
        self._stream = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
        self._lock = threading.Lock()

    def token_bytes(self, n: int) -> bytes:
        """The next ``n`` bytes of the stream.

        Raises:
            InvalidArgumentError: ``n`` is not an int of at least 0.
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InvalidArgumentError("the number of random bytes must be an int >= 0")
        with self._lock:
            return self._stream.update(bytes(n))

    def __repr__(self) -> str:
        return "SeededRandomness(<seeded>)"
