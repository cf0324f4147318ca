"""A Hypothesis state machine drives the KDC against a small model.

Rules: register, grant/withdraw, key requests, tickets (accepted once by
the peer), replay (to this KDC, and a granted request to another KDC
process on the same store, after key rotations too), revoke,
disable/enable, data keys, compromise (key versions and principals, whose
reports must list exactly the data keys made under the exposed versions),
clock moves. After every step the real KDC's
answer must be exactly what the model predicts, and the audit chain must
verify.
"""

from __future__ import annotations

import datetime as _dt

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from keymgmt import KeyManager
from keymgmt.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    KeyMgmtError,
    ReplayError,
    RevokedError,
    StaleMessageError,
)
from keymgmt.kdc import InProcessTransport, KdcClient, KeyDistributionCenter, TicketReceiver
from keymgmt.kdc._integration import key_source
from keymgmt.testing import FakeClock, SeededRandomness

PRINCIPALS = st.sampled_from(["ann", "ben"])
KEYS = st.sampled_from(["k1", "k2"])
SKEW = _dt.timedelta(minutes=5)


@attrs.define
class _Sent:
    principal: str
    data: bytes
    at: _dt.datetime
    key: str = ""
    granted: bool = False


class KdcMachine(RuleBasedStateMachine):
    """The KDC against a model of principals, policy, key versions and grants."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.km = KeyManager.in_memory(
            clock=self.clock, randomness=SeededRandomness(7), consistency_interval=0
        )
        self.transport = InProcessTransport(self.km.kdc)
        self.clients: dict[str, KdcClient] = {}
        self.receivers: dict[str, TicketReceiver] = {}
        self.enabled: dict[str, bool] = {}
        self.revoked: set[str] = set()
        self.allowed: set[tuple[str, str]] = set()
        self.primary: dict[str, int] = {}
        self.compromised: set[tuple[str, int]] = set()
        self.received: set[tuple[str, str, int]] = set()
        self.data_keys: dict[tuple[str, int], list[str]] = {}
        self.grants = 0
        self.last: _Sent | None = None
        for key in ("k1", "k2"):
            self.km.keys.create(key)
            self.primary[key] = 1
        for name in ("ann", "ben"):
            self.register(name)
            for key in ("k1", "k2"):
                self.grant(name, key)
        self.km.kdc.grant("ann", peers=["ben"])
        self.km.kdc.grant("ben", peers=["ann"])
        self.peers: set[tuple[str, str]] = {("ann", "ben"), ("ben", "ann")}
        self.tickets = 0

    def teardown(self) -> None:
        self.km.close()

    # -- expected outcome -----------------------------------------------------------

    def _expected(self, principal: str, key: str) -> type[KeyMgmtError] | None:
        if principal in self.revoked:
            return RevokedError
        if not self.enabled[principal]:
            return AccessDeniedError
        if (principal, key) not in self.allowed:
            return AccessDeniedError
        if (key, self.primary[key]) in self.compromised:  # pragma: no cover - rotated away
            return RevokedError
        return None

    # -- rules ----------------------------------------------------------------------

    @rule(name=PRINCIPALS)
    def register(self, name: str) -> None:
        if name in self.clients:
            try:
                self.km.kdc.register(name)
            except AlreadyExistsError:
                return
            raise AssertionError("duplicate registration was accepted")
        credential = self.km.kdc.register(name)
        self.receivers[name] = TicketReceiver(credential, clock=self.clock)
        self.clients[name] = KdcClient(
            credential, clock=self.clock, randomness=SeededRandomness(name)
        )
        self.enabled[name] = True

    @rule(name=PRINCIPALS, key=KEYS)
    def grant(self, name: str, key: str) -> None:
        self.km.kdc.grant(name, keys=[key])
        self.allowed.add((name, key))

    @rule(name=PRINCIPALS, key=KEYS)
    def withdraw(self, name: str, key: str) -> None:
        self.km.kdc.withdraw(name, keys=[key])
        self.allowed.discard((name, key))

    @rule(name=PRINCIPALS, key=KEYS)
    def request(self, name: str, key: str) -> None:
        client = self.clients[name]
        request = client.key_request(key)
        self.last = _Sent(name, request, self.clock.now(), key)
        expected = self._expected(name, key)
        if expected is not None:
            with pytest.raises(expected):
                client.receive_key_reply(self.transport(request))
            return
        granted = client.receive_key_reply(self.transport(request))
        self.last.granted = True
        assert (granted.key_name, granted.version) == (key, self.primary[key])
        assert (key, granted.version) not in self.compromised
        self.received.add((name, key, granted.version))
        self.grants += 1

    @rule(name=PRINCIPALS, key=KEYS)
    def request_again(self, name: str, key: str) -> None:
        self.request(name, key)

    @rule(name=PRINCIPALS)
    def withdraw_peer(self, name: str) -> None:
        peer = "ben" if name == "ann" else "ann"
        self.km.kdc.withdraw(name, peers=[peer])
        self.peers.discard((name, peer))

    @rule(name=PRINCIPALS)
    def ticket(self, name: str) -> None:
        peer = "ben" if name == "ann" else "ann"
        expected: type[KeyMgmtError] | None = None
        if name in self.revoked:
            expected = RevokedError
        elif not self.enabled[name] or (name, peer) not in self.peers:
            expected = AccessDeniedError
        elif peer in self.revoked:
            expected = RevokedError
        elif not self.enabled[peer]:
            expected = AccessDeniedError
        client = self.clients[name]
        if expected is not None:
            with pytest.raises(expected):
                client.fetch_ticket(peer, self.transport)
            return
        ticket = client.fetch_ticket(peer, self.transport)
        self.tickets += 1
        request = client.ap_request(ticket)
        session = self.receivers[peer].accept(request.data)
        assert session.session_key == ticket.session_key
        assert session.client == name
        client.receive_ap_reply(request, session.reply)
        with pytest.raises(ReplayError):
            self.receivers[peer].accept(request.data)

    @precondition(lambda self: self.last is not None)
    @rule()
    def replay_last_request(self) -> None:
        assert self.last is not None
        reply = self.transport(self.last.data)
        client = self.clients[self.last.principal]
        expected: type[KeyMgmtError]
        # The principal's status is checked before its nonce is remembered
        # (a revoked principal's key cannot fill the replay cache).
        if self.last.principal in self.revoked:
            expected = RevokedError
        elif not self.enabled[self.last.principal]:
            expected = AccessDeniedError
        elif self.clock.now() - self.last.at > SKEW:
            expected = StaleMessageError
        else:
            expected = ReplayError
        with pytest.raises(expected):
            client.receive_key_reply(reply)

    @precondition(lambda self: self.last is not None and self.last.granted)
    @rule()
    def replay_granted_request_to_another_process(self) -> None:
        # Another KDC process on the same store: an empty replay cache, so
        # only the grant record (named by key name and request, whatever
        # version is primary now) can recognize the replay.
        assert self.last is not None
        other = KeyDistributionCenter(self.km._context, keys=key_source(self.km))
        reply = other.handle(self.last.data)
        name = self.last.principal
        expected: type[KeyMgmtError]
        if name in self.revoked:
            expected = RevokedError
        elif not self.enabled[name]:
            expected = AccessDeniedError
        elif self.clock.now() - self.last.at > SKEW:
            expected = StaleMessageError
        elif (name, self.last.key) not in self.allowed:
            expected = AccessDeniedError
        else:
            expected = ReplayError
        with pytest.raises(expected):
            self.clients[name].receive_key_reply(reply)

    @rule(name=PRINCIPALS, enable=st.booleans())
    def toggle(self, name: str, enable: bool) -> None:
        if enable:
            self.km.kdc.enable(name)
        else:
            self.km.kdc.disable(name)
        self.enabled[name] = enable

    @rule(name=PRINCIPALS)
    def revoke_principal(self, name: str) -> None:
        self.km.kdc.revoke(name)
        self.revoked.add(name)
        self.enabled[name] = False

    @rule(key=KEYS)
    def generate_data_key(self, key: str) -> None:
        data_key = self.km.generate_data_key(key)
        assert data_key.key_version == self.primary[key]
        self.data_keys.setdefault((key, data_key.key_version), []).append(data_key.id)

    @rule(key=KEYS)
    def compromise_key(self, key: str) -> None:
        version = self.primary[key]
        report = self.km.compromise(key=f"{key}#{version}")
        self.compromised.add((key, version))
        self.primary[key] = version + 1
        assert report.rotated == (f"{key}#{version + 1}",)
        expected = sorted({p for (p, k, v) in self.received if (k, v) == (key, version)})
        assert list(report.recipients) == expected
        assert [i.id for i in report.data_key_issues] == self.data_keys.get((key, version), [])

    @rule(name=PRINCIPALS)
    def compromise_principal(self, name: str) -> None:
        report = self.km.compromise(principal=name)
        exposed = sorted({f"{k}#{v}" for (p, k, v) in self.received if p == name})
        assert list(report.exposed_key_versions) == exposed
        made = []
        for key_id in exposed:
            key, _, version = key_id.partition("#")
            made.extend(self.data_keys.get((key, int(version)), []))
        assert [i.id for i in report.data_key_issues] == made
        for key_id in exposed:
            key, _, version = key_id.partition("#")
            self.compromised.add((key, int(version)))
            if int(version) == self.primary[key]:
                self.primary[key] += 1
        self.revoked.add(name)
        self.enabled[name] = False

    @rule(seconds=st.integers(min_value=0, max_value=20 * 60))
    def advance_clock(self, seconds: int) -> None:
        self.clock.advance(seconds)

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def grants_are_recorded(self) -> None:
        assert len(self.km.kdc.grants()) == self.grants + self.tickets

    @invariant()
    def primaries_match(self) -> None:
        for key, version in self.primary.items():
            assert self.km.keys.get(key).primary_version == version

    @invariant()
    def audit_chain_verifies(self) -> None:
        self.km.audit.verify()


KdcMachine.TestCase.settings = settings(
    settings.get_profile("ci"), max_examples=50, stateful_step_count=30
)
test_kdc_state_machine = KdcMachine.TestCase
