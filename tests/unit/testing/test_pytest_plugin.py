"""The opt-in pytest plugin provides working fixtures."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_plugin_fixtures_work_in_a_users_suite(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["keymgmt.testing.pytest_plugin"]')
    pytester.makepyfile(
        """
        def test_fixtures(keymgmt_manager, keymgmt_clock, keymgmt_randomness):
            before = keymgmt_clock.now()
            keymgmt_clock.advance(days=1)
            assert (keymgmt_clock.now() - before).days == 1
            assert len(keymgmt_randomness.token_bytes(8)) == 8
            assert keymgmt_manager.audit.verify().entries == 1

        def test_sqlite(keymgmt_sqlite_manager, tmp_path):
            assert (tmp_path / "keymgmt-test.db").exists()
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_seeded_randomness_differs_between_tests(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["keymgmt.testing.pytest_plugin"]')
    pytester.makepyfile(
        """
        seen = []
        def test_a(keymgmt_randomness):
            seen.append(keymgmt_randomness.token_bytes(16))
        def test_b(keymgmt_randomness):
            seen.append(keymgmt_randomness.token_bytes(16))
            assert seen[0] != seen[1]
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
