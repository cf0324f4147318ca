"""Property: whatever unauthenticated input a responder refuses, its audit stays bounded.

Each refusal is counted (the counts add up to the refusals), and the log
grows by at most ``max_kinds + 2`` entries per interval, however many
refusals there were.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from keymgmt.errors import RemoteProtocolError
from keymgmt.exchange import HandshakeAuditPolicy, HelloReceived
from keymgmt.testing import FakeClock, in_memory_manager

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

#: Garbage, a frame header with a body of any length, or a mangled real hello.
_inputs = st.one_of(
    st.binary(max_size=48),
    st.builds(
        lambda kind, body: bytes([1, kind]) + len(body).to_bytes(3, "big") + body,
        st.integers(0, 4),
        st.binary(max_size=64),
    ),
    st.builds(lambda cut: cut, st.integers(0, 90)),
)


@given(
    attempts=st.lists(st.tuples(_inputs, st.integers(0, 7)), min_size=1, max_size=40),
    max_kinds=st.integers(1, 3),
)
def test_refusal_audit_counts_every_refusal_in_a_bounded_number_of_entries(
    attempts: list[tuple[bytes | int, int]], max_kinds: int
) -> None:
    clock = FakeClock(NOW)
    km = in_memory_manager(clock=clock, seed=3)
    interval = dt.timedelta(seconds=10)
    km.exchange.audit_policy = HandshakeAuditPolicy(max_kinds=max_kinds, interval=interval)
    root = km.pki.create_root_ca("root", key_type="ed25519")
    server = km.exchange.credential(root, "server.example", client=False)
    client = km.exchange.credential(root, "client.example", server=False)
    refusals = 0
    for data, seconds in attempts:
        if isinstance(data, int):  # a real hello, cut short or with its last byte flipped
            hello = bytearray(km.exchange.initiator(client, server_identity="x").start())
            if data < len(hello):
                del hello[data:]
            else:
                hello[-1] ^= 1
            data = bytes(hello)
        responder = km.exchange.responder(server)
        responder.receive_data(data)
        responder.receive_data(b"")
        try:
            while isinstance(responder.next_event(), HelloReceived):
                pass
        except RemoteProtocolError:
            refusals += 1
        clock.advance(seconds=seconds)
    elapsed = clock.now() - NOW
    km.exchange.flush_audit()
    refused = [
        e
        for e in km.audit.entries()
        if e.operation == "exchange.handshake" and e.outcome == "refused"
    ]
    assert refusals == len(attempts)  # every attempt ends refused (the stream ends)
    assert sum(e.details["count"] for e in refused) == refusals
    windows = elapsed // interval + 1
    assert len(refused) <= (max_kinds + 2) * windows
    assert all(e.details["role"] in ("responder", "*") for e in refused)  # "*": overflow
