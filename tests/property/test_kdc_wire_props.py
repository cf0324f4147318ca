"""Property tests for the KDC wire format and its parsers.

* encoding then decoding any in-bounds fields gives them back;
* arbitrary bytes given to the KDC always yield a well-formed reply (an
  ERROR), never an exception;
* arbitrary bytes given to the client and service parsers raise only
  ``KeyMgmtError`` subclasses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt import KeyManager
from keymgmt.errors import KeyMgmtError
from keymgmt.kdc import KdcClient, KeyDistributionCenter, MessageType, TicketReceiver
from keymgmt.kdc import _wire as w
from keymgmt.testing import FakeClock, SeededRandomness


@st.composite
def messages(draw: st.DrawFn) -> tuple[MessageType, list[bytes]]:
    kind = draw(st.sampled_from(sorted(w.SCHEMAS)))
    fields = [
        draw(st.binary(min_size=spec.min, max_size=min(spec.max, spec.min + 64)))
        for spec in w.SCHEMAS[kind]
    ]
    return kind, fields


@given(messages())
def test_encode_decode_round_trips(message: tuple[MessageType, list[bytes]]) -> None:
    kind, fields = message
    assert w.decode(w.encode(kind, fields)) == (kind, fields)


@pytest.fixture(scope="module")
def parties() -> Iterator[tuple[KeyDistributionCenter, KdcClient, TicketReceiver]]:
    clock = FakeClock()
    with KeyManager.in_memory(
        clock=clock, randomness=SeededRandomness(3), consistency_interval=0
    ) as km:
        alice = km.kdc.register("alice")
        bob = km.kdc.register("bob")
        client = KdcClient(alice, clock=clock)
        yield km.kdc, client, TicketReceiver(bob, clock=clock)


_noise = st.one_of(
    st.binary(max_size=256),
    st.binary(max_size=64).map(lambda b: b"KD\x01" + b),
    messages().map(lambda m: w.encode(*m)),
)


@given(_noise)
def test_kdc_answers_any_bytes_with_a_message(
    parties: tuple[KeyDistributionCenter, KdcClient, TicketReceiver], data: bytes
) -> None:
    kdc, _, _ = parties
    reply = kdc.handle(data)
    assert w.peek_type(reply) in (MessageType.ERROR, MessageType.REVOCATION_LIST)


@given(_noise)
def test_client_and_service_parsers_raise_only_our_errors(
    parties: tuple[KeyDistributionCenter, KdcClient, TicketReceiver], data: bytes
) -> None:
    _, client, receiver = parties
    for parse in (
        client.receive_key_reply,
        client.receive_ticket_reply,
        client.receive_revocation_list,
        receiver.accept,
    ):
        with contextlib.suppress(KeyMgmtError):
            parse(data)
