"""The data-key log in ``each`` mode: a compromise report names every data key of its version.

Two managers share one store, as two processes would: ``fresh`` sees every
write at once, ``stale`` keeps its cache for an hour (it does not see the
other's rotations and compromises until it reloads). Random data keys,
rotations and compromises through either; the invariant: every data key
ever returned under a compromised version is in that version's compromise
report (so none is returned after it), and none was logged twice.
"""

from __future__ import annotations

import contextlib

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from keymgmt import KeyManager
from keymgmt.errors import KeyStateError
from keymgmt.keyring import RawMasterKey
from keymgmt.storage import MemoryBackend
from keymgmt.testing import FakeClock, SeededRandomness

_MANAGERS = st.sampled_from(["fresh", "stale"])


class DataKeyLog(RuleBasedStateMachine):
    """Data keys, rotations and compromises from two managers on one store."""

    @initialize()
    def start(self) -> None:
        clock = FakeClock()
        backend = MemoryBackend()
        master = RawMasterKey(bytes(32))
        self.managers = {
            "fresh": KeyManager(
                backend=backend,
                master_key=master,
                clock=clock,
                randomness=SeededRandomness(1),
                consistency_interval=0,
            ),
            "stale": KeyManager(
                backend=backend,
                master_key=master,
                clock=clock,
                randomness=SeededRandomness(2),
                consistency_interval=3600,
            ),
        }
        self.managers["fresh"].keys.create("k")
        self.returned: dict[int, set[str]] = {}  # version -> data key ids handed out
        self.reports: dict[int, set[str]] = {}  # compromised version -> reported ids

    def teardown(self) -> None:
        for km in getattr(self, "managers", {}).values():
            km.keys.flush_usage()

    @rule(who=_MANAGERS, count=st.integers(1, 3))
    def generate(self, who: str, count: int) -> None:
        for _ in range(count):
            try:
                data_key = self.managers[who].generate_data_key("k")
            except KeyStateError:  # RevokedError included: refused, not handed out
                continue
            self.returned.setdefault(data_key.key_version, set()).add(data_key.id)

    @rule(who=_MANAGERS)
    def rotate(self, who: str) -> None:
        with contextlib.suppress(KeyStateError):  # a rotation refused is no data key
            self.managers[who].keys.rotate("k")

    @rule(who=_MANAGERS, data=st.data())
    def compromise(self, who: str, data: st.DataObject) -> None:
        latest = max(v.version for v in self.managers["fresh"].keys.get("k").versions)
        version = data.draw(st.integers(1, latest))
        if version in self.reports:
            return
        report = self.managers[who].compromise(key=f"k#{version}")
        self.reports[version] = {issue.id for issue in report.data_key_issues}

    @invariant()
    def every_returned_data_key_of_a_compromised_version_is_reported(self) -> None:
        for version, reported in self.reports.items():
            assert self.returned.get(version, set()) <= reported

    @invariant()
    def the_log_holds_each_returned_data_key_once(self) -> None:
        issued = self.managers["fresh"].keys.data_keys_issued("k")
        ids = [issue.id for issue in issued]
        assert len(ids) == len(set(ids))
        assert set().union(*self.returned.values()) <= set(ids)


TestDataKeyLog = DataKeyLog.TestCase
