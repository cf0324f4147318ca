"""What the ``pytest11`` entry point ``keymgmt`` loads: an opt-in switch, nothing more.

Installing keymgmt (a runtime dependency of other projects) must not change
their test runs, so the entry point only declares how to opt in; the
fixtures of :mod:`keymgmt.testing.pytest_plugin` are registered when a
project asks for them, in any of three ways:

* ``keymgmt_fixtures = true`` in the ``[pytest]`` / ``[tool.pytest.ini_options]``
  configuration;
* ``pytest --keymgmt-fixtures`` for one run;
* ``pytest_plugins = ["keymgmt.testing.pytest_plugin"]`` in a ``conftest.py``
  (works with or without the entry point, also after ``-p no:keymgmt``).

Loading this module imports nothing but itself (and the ``keymgmt.testing``
package's fakes): no Hypothesis, no fixtures, no hooks beyond the two below.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PLUGIN", "pytest_addoption", "pytest_configure"]

#: The module whose fixtures an opted-in project gets.
PLUGIN = "keymgmt.testing.pytest_plugin"


def pytest_addoption(parser: Any) -> None:
    """Declare the opt-in: the ``keymgmt_fixtures`` ini value and ``--keymgmt-fixtures``."""
    parser.addini(
        "keymgmt_fixtures",
        type="bool",
        default=False,
        help="register keymgmt's fixtures (keymgmt_manager, keymgmt_clock, ...)",
    )
    parser.getgroup("keymgmt").addoption(
        "--keymgmt-fixtures",
        action="store_true",
        default=False,
        help="register keymgmt's fixtures for this run (or keymgmt_fixtures = true)",
    )


def pytest_configure(config: Any) -> None:
    """Register the fixtures when the project opted in (once, however it asked)."""
    if config.getoption("keymgmt_fixtures") or config.getini("keymgmt_fixtures"):
        config.pluginmanager.import_plugin(PLUGIN)
