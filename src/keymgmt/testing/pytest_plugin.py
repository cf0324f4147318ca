"""A pytest plugin with keymgmt fixtures. Opt-in, never auto-loaded.

Enable it in your ``conftest.py``::

    pytest_plugins = ["keymgmt.testing.pytest_plugin"]

or on the command line with ``-p keymgmt.testing.pytest_plugin``.

Fixtures:

``keymgmt_clock``
    a :class:`~keymgmt.testing.FakeClock` at 2030-01-01T00:00:00Z.
``keymgmt_randomness``
    :class:`~keymgmt.testing.SeededRandomness`, seeded from the test's node id
    so every test is reproducible and tests differ from each other.
``keymgmt_manager``
    an in-memory :class:`~keymgmt.KeyManager` using the two above.
``keymgmt_sqlite_manager``
    a manager on a fresh SQLite file in ``tmp_path`` (test-only KDF cost).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keymgmt._manager import KeyManager
from keymgmt.keyring import KdfProfile
from keymgmt.testing._fakes import FakeClock, SeededRandomness

__all__ = [
    "keymgmt_clock",
    "keymgmt_manager",
    "keymgmt_randomness",
    "keymgmt_sqlite_manager",
]


@pytest.fixture
def keymgmt_clock() -> FakeClock:
    """A fake clock at 2030-01-01T00:00:00Z; move it with ``advance()``."""
    return FakeClock()


@pytest.fixture
def keymgmt_randomness(request: pytest.FixtureRequest) -> SeededRandomness:
    """Deterministic randomness seeded from the test's node id."""
    return SeededRandomness(request.node.nodeid)


@pytest.fixture
def keymgmt_manager(
    keymgmt_clock: FakeClock, keymgmt_randomness: SeededRandomness
) -> Iterator[KeyManager]:
    """An in-memory KeyManager with the fake clock and seeded randomness."""
    with KeyManager.in_memory(
        clock=keymgmt_clock, randomness=keymgmt_randomness, consistency_interval=0
    ) as km:
        yield km


@pytest.fixture
def keymgmt_sqlite_manager(tmp_path: Path, keymgmt_clock: FakeClock) -> Iterator[KeyManager]:
    """A KeyManager on a new SQLite file, with deliberately cheap (insecure) KDF cost."""
    with KeyManager.open(
        tmp_path / "keymgmt-test.db",
        passphrase="keymgmt-test-passphrase",  # noqa: S106 - a throwaway test store
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=keymgmt_clock,
        consistency_interval=0,
    ) as km:
        yield km
