"""What every part is built from: the store, revocations, time and randomness."""

from __future__ import annotations

import attrs

from keymgmt._random import Randomness
from keymgmt._store import Store
from keymgmt.clock import Clock
from keymgmt.revocation import RevocationRegistry

__all__ = ["Context"]


@attrs.frozen
class Context:
    """The shared wiring handed to each part by :class:`~keymgmt.KeyManager`."""

    store: Store
    revocation: RevocationRegistry
    clock: Clock
    randomness: Randomness
