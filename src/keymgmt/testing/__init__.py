"""What users need in their own tests: fakes, an in-memory manager, strategies.

:class:`ThrowawayCA` and :func:`handshake_pair` exercise the authenticated
handshake without a store.

Everything here is deterministic and cheap. Nothing here is for production:
:class:`SeededRandomness` is predictable by design and
:data:`TEST_KDF_PROFILE` is deliberately weak.
"""

from __future__ import annotations

from typing import Any

from keymgmt._manager import KeyManager
from keymgmt.keyring import KdfProfile
from keymgmt.testing._fakes import DEFAULT_START, FakeClock, SeededRandomness
from keymgmt.testing._throwaway import ThrowawayCA, handshake_pair

__all__ = [
    "DEFAULT_START",
    "TEST_KDF_PROFILE",
    "FakeClock",
    "SeededRandomness",
    "ThrowawayCA",
    "handshake_pair",
    "in_memory_manager",
]

#: INSECURE Argon2id parameters, for test suites only.
TEST_KDF_PROFILE = KdfProfile.TESTING_ONLY_INSECURE


def in_memory_manager(
    *, seed: int = 0, clock: FakeClock | None = None, **kwargs: Any
) -> KeyManager:
    """A :class:`KeyManager` on memory with a fake clock and seeded randomness."""
    return KeyManager.in_memory(
        clock=clock or FakeClock(), randomness=SeededRandomness(seed), **kwargs
    )
