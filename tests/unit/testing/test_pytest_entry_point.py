"""The ``pytest11`` entry point: keymgmt's fixtures only for projects that opt in."""

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


def test_without_opting_in_a_project_gets_no_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_USES_FIXTURES)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'keymgmt_manager' not found*"])


def test_an_ini_setting_opts_in(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkeymgmt_fixtures = true\n")
    pytester.makepyfile(_USES_FIXTURES)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_command_line_flag_opts_in_for_one_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_USES_FIXTURES)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--keymgmt-fixtures")
    result.assert_outcomes(passed=1)


def test_no_keymgmt_disables_the_entry_point_even_when_opted_in(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nkeymgmt_fixtures = true\n")
    pytester.makepyfile(_USES_FIXTURES)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:keymgmt")
    # The ini key is unknown once the entry point is off: pytest warns; no fixtures.
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'keymgmt_manager' not found*"])


def test_opting_in_twice_registers_the_fixtures_once(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkeymgmt_fixtures = true\n")
    pytester.makeconftest('pytest_plugins = ["keymgmt.testing.pytest_plugin"]')
    pytester.makepyfile(_USES_FIXTURES)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--keymgmt-fixtures")
    result.assert_outcomes(passed=1)


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
    pytester.makeini("[pytest]\nkeymgmt_fixtures = true\n")
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
        ["keymgmt.testing", "keymgmt.testing._fakes", "keymgmt.testing._pytest_entry"]
    )


def test_the_entry_point_adds_only_its_opt_in_switch(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_untouched(pytestconfig):
            names = [n for n, _ in pytestconfig.pluginmanager.list_name_plugin()]
            assert "keymgmt" in names
            assert "keymgmt.testing.pytest_plugin" not in names
            assert [a for a in vars(pytestconfig.option) if "keymgmt" in a] == ["keymgmt_fixtures"]
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
