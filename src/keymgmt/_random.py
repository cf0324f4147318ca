"""Randomness, injected: nonces, ids and serials come from a :class:`Randomness`.

Key *generation* for asymmetric keys goes through OpenSSL's own generator
(pyca/cryptography offers no hook); everything keymgmt draws itself — AEAD
nonces, symmetric keys, protocol nonces, certificate serials, ids — comes
from the injected source, so tests can make it deterministic.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

__all__ = ["Randomness", "SystemRandomness"]


@runtime_checkable
class Randomness(Protocol):
    """A source of random bytes."""

    def token_bytes(self, n: int) -> bytes:
        """Return ``n`` random bytes."""
        ...


class SystemRandomness:
    """The operating system's CSPRNG (``os.urandom``)."""

    def token_bytes(self, n: int) -> bytes:
        """Return ``n`` bytes from the OS CSPRNG.

        Raises:
            InvalidArgumentError: ``n`` is negative or not an int.
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            from keymgmt.errors import InvalidArgumentError

            raise InvalidArgumentError("the number of random bytes must be an int >= 0")
        return os.urandom(n)

    def __repr__(self) -> str:
        return "SystemRandomness()"
