"""The package imports and the façade opens."""

from __future__ import annotations

import keymgmt


def test_version_is_a_string() -> None:
    assert isinstance(keymgmt.__version__, str)
    assert keymgmt.__version__


def test_in_memory_manager_audits_its_creation(km: keymgmt.KeyManager) -> None:
    report = km.audit.verify()
    assert report.entries == 1
    assert km.audit.tail(1)[0].operation == "store.init"
