"""The pytest plugin is loaded by its ``pytest11`` entry point, inert until used."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

_USES_FIXTURES = """
def test_fixtures(keymgmt_manager, keymgmt_clock):
    keymgmt_manager.keys.create("k")
    keymgmt_clock.advance(days=1)
    assert keymgmt_manager.keys.get("k").name == "k"
"""


def test_the_entry_point_names_the_plugin() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "keymgmt"]
    assert entry.value == "keymgmt.testing._pytest_entry"


def test_installed_fixtures_work_without_a_pytest_plugins_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_USES_FIXTURES)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_no_keymgmt_disables_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_USES_FIXTURES)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:keymgmt")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'keymgmt_manager' not found*"])


def test_an_explicit_pytest_plugins_line_still_loads_alongside_the_entry_point(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest('pytest_plugins = ["keymgmt.testing.pytest_plugin"]')
    pytester.makepyfile(_USES_FIXTURES)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_explicit_opt_in_works_after_disabling_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["keymgmt.testing.pytest_plugin"]')
    pytester.makepyfile(_USES_FIXTURES)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:keymgmt")
    result.assert_outcomes(passed=1)


def test_a_conftest_fixture_of_the_same_name_overrides_the_plugins(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest
        from keymgmt.testing import FakeClock, DEFAULT_START
        import datetime as dt

        @pytest.fixture
        def keymgmt_clock():
            return FakeClock(DEFAULT_START + dt.timedelta(days=365))
        """
    )
    pytester.makepyfile(
        """
        def test_clock(keymgmt_manager, keymgmt_clock):
            assert keymgmt_clock.now().year == 2031
            assert keymgmt_manager.clock is keymgmt_clock
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_loading_the_plugin_imports_nothing_beyond_keymgmt_itself() -> None:
    probe = (
        "import sys, keymgmt\n"
        "before = set(sys.modules)\n"
        "import keymgmt.testing._pytest_entry\n"
        "print(sorted(m for m in set(sys.modules) - before"
        " if m.startswith(('keymgmt', 'hypothesis'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == str(
        [
            "keymgmt.testing",
            "keymgmt.testing._fakes",
            "keymgmt.testing._pytest_entry",
            "keymgmt.testing.pytest_plugin",
        ]
    )


def test_the_plugin_is_registered_and_adds_no_command_line_options(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_untouched(pytestconfig):
            names = [n for n, _ in pytestconfig.pluginmanager.list_name_plugin()]
            assert "keymgmt" in names
            assert not [a for a in vars(pytestconfig.option) if "keymgmt" in a]
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
