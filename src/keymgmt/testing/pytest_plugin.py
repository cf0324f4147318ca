"""A pytest plugin with keymgmt fixtures, for projects that opt in.

Installing keymgmt registers a ``pytest11`` entry point named ``keymgmt``, but
that entry point only declares the switch: the fixtures below exist in a
project that asks for them, in any one of these ways:

* ``keymgmt_fixtures = true`` in ``[pytest]`` / ``[tool.pytest.ini_options]``;
* ``pytest --keymgmt-fixtures`` for one run;
* ``pytest_plugins = ["keymgmt.testing.pytest_plugin"]`` in a ``conftest.py``
  (works with or without the entry point, and after ``-p no:keymgmt``).

Then a test simply names a fixture::

    def test_tokens_expire(keymgmt_manager, keymgmt_clock): ...

Loading it changes nothing else: it registers no Hypothesis profile, adds no
command-line options, hooks or markers, and imports only :mod:`keymgmt`
itself (everything else is imported by the fixture that needs it, when a
test requests it). ``pytest -p no:keymgmt`` switches the entry point off.

Fixtures (all function-scoped, so every test gets fresh ones):

``keymgmt_clock``
    a :class:`~keymgmt.testing.FakeClock` at 2030-01-01T00:00:00Z.
``keymgmt_randomness``
    :class:`~keymgmt.testing.SeededRandomness`, seeded from the test's node id
    so every test is reproducible and tests differ from each other.
``keymgmt_manager``
    an in-memory :class:`~keymgmt.KeyManager` using the two above.
``keymgmt_sqlite_manager``
    a manager on a fresh SQLite file in ``tmp_path`` (test-only KDF cost),
    with the same clock and randomness.

A fixture of the same name in your own ``conftest.py`` overrides the
plugin's (pytest's usual rule: the closer definition wins).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from keymgmt._manager import KeyManager
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
    from keymgmt.testing._fakes import FakeClock

    return FakeClock()


@pytest.fixture
def keymgmt_randomness(request: pytest.FixtureRequest) -> SeededRandomness:
    """Deterministic randomness seeded from the test's node id."""
    from keymgmt.testing._fakes import SeededRandomness

    return SeededRandomness(request.node.nodeid)


@pytest.fixture
def keymgmt_manager(
    keymgmt_clock: FakeClock, keymgmt_randomness: SeededRandomness
) -> Iterator[KeyManager]:
    """An in-memory KeyManager with the fake clock and seeded randomness."""
    from keymgmt._manager import KeyManager

    with KeyManager.in_memory(
        clock=keymgmt_clock, randomness=keymgmt_randomness, consistency_interval=0
    ) as km:
        yield km


@pytest.fixture
def keymgmt_sqlite_manager(
    tmp_path: Path, keymgmt_clock: FakeClock, keymgmt_randomness: SeededRandomness
) -> Iterator[KeyManager]:
    """A KeyManager on a new SQLite file, with deliberately cheap (insecure) KDF cost.

    It uses the fake clock and the seeded randomness, as ``keymgmt_manager`` does.
    """
    from keymgmt._manager import KeyManager
    from keymgmt.keyring import KdfProfile

    with KeyManager.open(
        tmp_path / "keymgmt-test.db",
        passphrase="keymgmt-test-passphrase",  # noqa: S106 - a throwaway test store
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=keymgmt_clock,
        randomness=keymgmt_randomness,
        consistency_interval=0,
    ) as km:
        yield km
