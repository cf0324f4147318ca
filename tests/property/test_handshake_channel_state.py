"""A state machine over a handshake-derived channel pair, against a tiny model.

Rules send data, rekey and close from either side and deliver pending bytes
in arbitrary chunks; the model is "each side receives exactly what the other
sent, in order". An adversary rule that drops, duplicates or swaps records in
flight must make the receiver fail, and never deliver altered data.
"""

from __future__ import annotations

import functools

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from keymgmt.errors import RemoteProtocolError
from keymgmt.exchange import (
    NEED_DATA,
    Closed,
    Data,
    Initiator,
    KeyUpdated,
    ReplayCache,
    Responder,
    SecureChannel,
)
from keymgmt.testing import FakeClock, ThrowawayCA, handshake_pair


@functools.cache
def _ca() -> ThrowawayCA:
    return ThrowawayCA(now=FakeClock().now())


def _channels() -> tuple[SecureChannel, SecureChannel]:
    clock = FakeClock()
    ca = _ca()
    client, server = handshake_pair(
        Initiator(
            credential=ca.issue("c.example"),
            verifier=ca.verifier(),
            server_identity="s.example",
            clock=clock,
        ),
        Responder(
            credential=ca.issue("s.example"),
            verifier=ca.verifier(),
            replay_cache=ReplayCache(clock=clock),
            clock=clock,
        ),
    )
    return client.channel(), server.channel()


class ChannelMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        a, b = _channels()
        self.ends = {"a": a, "b": b}
        self.wire: dict[str, list[bytes]] = {"a": [], "b": []}  # records in flight *to* a side
        self.sent: dict[str, list[object]] = {"a": [], "b": []}  # events each side should see
        self.got: dict[str, list[object]] = {"a": [], "b": []}
        self.closed = {"a": False, "b": False}
        self.broken = {"a": False, "b": False}
        self.tampered = {"a": False, "b": False}

    @staticmethod
    def other(side: str) -> str:
        return "b" if side == "a" else "a"

    @precondition(lambda self: not all(self.closed.values()))
    @rule(side=st.sampled_from(["a", "b"]), data=st.binary(max_size=40))
    def send(self, side: str, data: bytes) -> None:
        if self.closed[side]:
            return
        self.wire[self.other(side)].append(self.ends[side].send(data))
        self.sent[self.other(side)].append(Data(data))

    @rule(side=st.sampled_from(["a", "b"]))
    def rekey(self, side: str) -> None:
        if self.closed[side]:
            return
        self.wire[self.other(side)].append(self.ends[side].rekey())
        self.sent[self.other(side)].append(KeyUpdated())

    @rule(side=st.sampled_from(["a", "b"]))
    def close(self, side: str) -> None:
        if self.closed[side]:
            return
        self.closed[side] = True
        self.wire[self.other(side)].append(self.ends[side].close())
        self.sent[self.other(side)].append(Closed())

    @rule(side=st.sampled_from(["a", "b"]), chunk=st.integers(1, 50))
    def deliver(self, side: str, chunk: int) -> None:
        if self.broken[side]:
            return
        stream = b"".join(self.wire[side])
        self.wire[side].clear()
        end = self.ends[side]
        try:
            for i in range(0, len(stream), chunk):
                end.receive_data(stream[i : i + chunk])
                while (event := end.next_event()) is not NEED_DATA:
                    self.got[side].append(event)
        except RemoteProtocolError:
            assert self.tampered[side], "an untampered stream failed"
            self.broken[side] = True

    @precondition(lambda self: any(len(w) >= 2 for w in self.wire.values()))
    @rule(side=st.sampled_from(["a", "b"]), how=st.sampled_from(["drop", "duplicate", "swap"]))
    def adversary(self, side: str, how: str) -> None:
        wire = self.wire[side]
        if len(wire) < 2:
            return
        if how == "drop":
            del wire[0]
        elif how == "duplicate":
            wire.insert(1, wire[0])
        else:
            wire[0], wire[1] = wire[1], wire[0]
        self.tampered[side] = True

    @invariant()
    def received_is_a_prefix_of_sent(self) -> None:
        for side in ("a", "b"):
            got = self.got[side]
            assert got == self.sent[side][: len(got)]


TestChannelMachine = ChannelMachine.TestCase
