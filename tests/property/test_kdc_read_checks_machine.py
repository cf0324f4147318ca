"""A KDC process that has not written decides on what another process committed.

Two KeyManager processes share one SQLite file; neither syncs on its own
(``consistency_interval`` of an hour). The *admin* process grants and
withdraws access, disables, enables and revokes the principal and
compromises key versions; the *granting* process answers key requests and
is restarted now and then, so it often has not written since it opened
(its commit would not conflict on the audit head alone). Every answer
must follow what the admin committed before it: never a key the policy
withdrew, never to a disabled or revoked principal, never a compromised
version. Stale caches may refuse what is allowed (a denial cached before a
grant, a primary compromised since the process last looked), never grant
what is not: once the process has synced, the request is granted.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from keymgmt import KeyManager
from keymgmt.errors import AccessDeniedError, RevokedError
from keymgmt.kdc import InProcessTransport, KdcClient
from keymgmt.keyring import KdfProfile
from keymgmt.testing import FakeClock, SeededRandomness


class ReadCheckMachine(RuleBasedStateMachine):
    """The granting process against a model of what the admin process committed."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.directory = Path(tempfile.mkdtemp(prefix="keymgmt-kdc-read-checks-"))
        self.path = self.directory / "store.db"
        self.admin = self._open()
        self.admin.keys.create("k1")
        self.client = KdcClient(
            self.admin.kdc.register("ann"), clock=self.clock, randomness=SeededRandomness(5)
        )
        self.admin.kdc.grant("ann", keys=["k1"])
        self.allowed = True
        self.enabled = True
        self.revoked = False
        self.primary = 1
        self.compromised: set[int] = set()
        self.granted = 0
        self.granting = self._open_granting()

    def _open(self) -> KeyManager:
        return KeyManager.open(
            self.path,
            passphrase="pw",
            kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
            clock=self.clock,
            consistency_interval=3600,
        )

    def teardown(self) -> None:
        self.granting.close()
        self.admin.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- the admin process ------------------------------------------------------------

    @rule()
    def grant(self) -> None:
        self.admin.kdc.grant("ann", keys=["k1"])
        self.allowed = True

    @rule()
    def withdraw(self) -> None:
        self.admin.kdc.withdraw("ann", keys=["k1"])
        self.allowed = False

    @rule()
    def disable(self) -> None:
        self.admin.kdc.disable("ann")
        self.enabled = False

    @rule()
    def enable(self) -> None:
        self.admin.kdc.enable("ann")
        self.enabled = True

    @rule()
    def revoke(self) -> None:
        self.admin.kdc.revoke("ann")
        self.revoked = True

    @rule()
    def compromise_key(self) -> None:
        self.admin.compromise(key=f"k1#{self.primary}")
        self.compromised.add(self.primary)
        self.primary += 1

    # -- the granting process ---------------------------------------------------------

    @rule()
    def restart_granting_process(self) -> None:
        self.granting.close()
        self.granting = self._open_granting()

    def _open_granting(self) -> KeyManager:
        # Reads only (it has not written): the policy, the principal and
        # the key are cached.
        granting = self._open()
        granting.kdc.policy()
        granting.kdc.get("ann")
        granting.keys.get("k1")
        return granting

    @rule()
    def request(self) -> None:
        transport = InProcessTransport(self.granting.kdc)
        request = self.client.key_request("k1")
        if self.revoked or not self.enabled or not self.allowed:
            # Refused (revoking also disables: a process that has not synced
            # may read the principal's record before the registry entry).
            with pytest.raises((RevokedError, AccessDeniedError)):
                self.client.receive_key_reply(transport(request))
            return
        try:
            granted = self.client.receive_key_reply(transport(request))
        except (RevokedError, AccessDeniedError):
            # Stale caches may refuse (a denial cached before a grant, a
            # primary compromised meanwhile), never grant wrongly: once
            # the process has synced, the request is granted.
            self.granting.sync()
            granted = self.client.fetch_key("k1", transport)
        assert granted.version == self.primary
        assert granted.version not in self.compromised
        self.granted += 1

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def every_grant_is_recorded_once(self) -> None:
        assert len(self.admin.kdc.grants(principal="ann")) == self.granted


ReadCheckMachine.TestCase.settings = settings(
    settings.get_profile("ci"), max_examples=50, stateful_step_count=12
)
test_kdc_read_checks_machine = ReadCheckMachine.TestCase
