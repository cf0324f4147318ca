"""What the ``pytest11`` entry point ``keymgmt`` loads: the fixtures of :mod:`.pytest_plugin`.

A module of its own because pytest refuses to register one module under two
names: were the entry point :mod:`keymgmt.testing.pytest_plugin` itself, a
``conftest.py`` that also lists that module in ``pytest_plugins`` (the way
to opt in before the entry point existed, and after ``-p no:keymgmt``) would
fail to load. Registered twice through two modules, the fixtures are the
same functions, so which definition pytest picks makes no difference.
"""

from __future__ import annotations

from keymgmt.testing.pytest_plugin import (
    keymgmt_clock,
    keymgmt_manager,
    keymgmt_randomness,
    keymgmt_sqlite_manager,
)

__all__ = [
    "keymgmt_clock",
    "keymgmt_manager",
    "keymgmt_randomness",
    "keymgmt_sqlite_manager",
]
