"""Property tests for the KDC wire format and its parsers.

* encoding then decoding any in-bounds fields gives them back;
* arbitrary bytes given to the KDC always yield a well-formed reply (an
  ERROR), never an exception;
* arbitrary bytes given to the client and service parsers raise only
  ``KeyMgmtError`` subclasses;
* so do authentic replies, tickets and authenticators (sealed under the
  right key) whose inner fields hold anything.
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


# -- authentic messages with hostile insides ------------------------------------------


def _replace(fields: list[bytes], index: int, value: bytes) -> list[bytes]:
    return [value if i == index else f for i, f in enumerate(fields)]


@given(index=st.integers(min_value=0, max_value=6), value=st.binary(max_size=80))
def test_an_authentic_key_reply_with_any_inner_field_raises_only_our_errors(
    parties: tuple[KeyDistributionCenter, KdcClient, TicketReceiver], index: int, value: bytes
) -> None:
    # Sealed under the client's own key, as only the KDC could: every inner
    # parser (names, version, times, material) must answer with our errors.
    from keymgmt.kdc import _protocol as p

    _, client, _ = parties
    request = client.key_request("payments")
    nonce = p.open_request(p.parse_request(request), aead=client._aead).nonce
    now = FakeClock().now()
    inner = [b"payments", w.u32(1), b"aes-256-gcm", bytes(32), p.ts(now), p.ts(now), bytes(16)]
    assert client._aead is not None
    reply = p.build_reply(
        MessageType.KEY_REPLY,
        client.principal,
        nonce,
        _replace(inner, index, value),
        randomness=SeededRandomness(index),
        aead=client._aead,
    )
    with contextlib.suppress(KeyMgmtError):
        client.receive_key_reply(reply)


@given(
    part=st.sampled_from(["ticket", "authenticator"]),
    index=st.integers(min_value=0, max_value=5),
    value=st.binary(max_size=80),
)
def test_an_authentic_ticket_or_authenticator_with_any_inner_field_raises_only_our_errors(
    parties: tuple[KeyDistributionCenter, KdcClient, TicketReceiver],
    part: str,
    index: int,
    value: bytes,
) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from keymgmt.kdc import _crypto
    from keymgmt.kdc import _protocol as p

    _, _, receiver = parties
    rng = SeededRandomness(index)
    now = FakeClock().now()
    ticket_inner = [b"alice", b"bob", bytes(32), p.ts(now), p.ts(now), bytes(16)]
    authenticator_inner = [b"alice", p.ts(now), bytes(16)]
    if part == "ticket":
        ticket_inner = _replace(ticket_inner, index, value)
    else:
        authenticator_inner = _replace(authenticator_inner, index % 3, value)
    ticket_aad = w.header(MessageType.TICKET) + w.encode_fields([b"bob"])
    sealed = _crypto.seal(receiver._aead, rng, w.encode_fields(ticket_inner), ticket_aad)
    ticket = w.encode(MessageType.TICKET, [b"bob", sealed])
    session = AESGCM(bytes(32))
    ap_aad = w.header(MessageType.AP_REQUEST) + w.encode_fields([ticket])
    authenticator = _crypto.seal(session, rng, w.encode_fields(authenticator_inner), ap_aad)
    with contextlib.suppress(KeyMgmtError):
        receiver.accept(w.encode(MessageType.AP_REQUEST, [ticket, authenticator]))
