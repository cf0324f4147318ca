"""What users need in their own tests: fakes, an in-memory manager, strategies.

:class:`ThrowawayCA` and :func:`handshake_pair` exercise the authenticated
handshake without a store.

Everything here is cheap, and deterministic except :class:`ThrowawayCA`,
whose Ed25519 keys come from the OS (a handshake draws its ephemeral keys
from the randomness it is given: seeded, they replay).
Nothing here is for production:
:class:`SeededRandomness` is predictable by design and
:data:`TEST_KDF_PROFILE` is deliberately weak.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keymgmt._manager import KeyManager
from keymgmt.keyring import KdfProfile
from keymgmt.testing._fakes import DEFAULT_START, FakeClock, SeededRandomness

if TYPE_CHECKING:
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

_LAZY = frozenset({"ThrowawayCA", "handshake_pair"})


def __getattr__(name: str) -> Any:
    # The throwaway CA imports the exchange and PKI parts (a fifth of a second):
    # only on first use, so that the pytest plugin, which pytest loads through
    # its entry point in every run, costs no more than ``import keymgmt``.
    if name in _LAZY:
        from keymgmt.testing import _throwaway

        return getattr(_throwaway, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy names too, for IPython's completion and the API reference (autodoc).
    return sorted({*globals(), *_LAZY})


#: INSECURE Argon2id parameters, for test suites only.
TEST_KDF_PROFILE = KdfProfile.TESTING_ONLY_INSECURE


def in_memory_manager(
    *, seed: int = 0, clock: FakeClock | None = None, **kwargs: Any
) -> KeyManager:
    """A :class:`KeyManager` on memory with a fake clock and seeded randomness.

    Args:
        seed: seeds the :class:`SeededRandomness` (the same seed, the same keys).
        clock: the clock to use (default: a new :class:`FakeClock` at
            :data:`DEFAULT_START`).
        **kwargs: passed on to :meth:`KeyManager.in_memory`
            (``consistency_interval=``, ``audit_sinks=``, ...).

    Returns:
        the manager; close it (or use it in a ``with`` block) when done.
    """
    return KeyManager.in_memory(
        clock=clock or FakeClock(), randomness=SeededRandomness(seed), **kwargs
    )
