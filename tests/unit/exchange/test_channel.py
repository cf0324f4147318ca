"""SecureChannel: records round-trip; replay, reorder, drop, tamper and truncation fail."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt._secret import SecretBytes
from keymgmt.errors import LocalProtocolError, RemoteProtocolError
from keymgmt.exchange import (
    NEED_DATA,
    ChannelCipher,
    Closed,
    Data,
    KeyUpdated,
    SecureChannel,
)
from keymgmt.exchange._channel import MAX_RECORD_PLAINTEXT

A_TO_B = SecretBytes(b"a" * 32)
B_TO_A = SecretBytes(b"b" * 32)


def pair(
    cipher: ChannelCipher = ChannelCipher.CHACHA20_POLY1305,
) -> tuple[SecureChannel, SecureChannel]:
    a = SecureChannel(send_secret=A_TO_B, receive_secret=B_TO_A, cipher=cipher)
    b = SecureChannel(send_secret=B_TO_A, receive_secret=A_TO_B, cipher=cipher)
    return a, b


def events(channel: SecureChannel) -> list[object]:
    out = []
    while (event := channel.next_event()) is not NEED_DATA:
        out.append(event)
    return out


@pytest.mark.parametrize("cipher", list(ChannelCipher))
def test_data_round_trips_in_both_directions(cipher: ChannelCipher) -> None:
    a, b = pair(cipher)
    b.receive_data(a.send(b"ping"))
    a.receive_data(b.send(b"pong"))
    assert events(b) == [Data(b"ping")]
    assert events(a) == [Data(b"pong")]


def test_large_data_is_split_into_records() -> None:
    a, b = pair()
    payload = bytes(range(256)) * 200
    b.receive_data(a.send(payload))
    received = events(b)
    assert len(received) == -(-len(payload) // MAX_RECORD_PLAINTEXT)
    assert b"".join(e.data for e in received if isinstance(e, Data)) == payload


def test_replayed_record_is_refused() -> None:
    a, b = pair()
    record = a.send(b"pay 10")
    b.receive_data(record + record)
    assert b.next_event() == Data(b"pay 10")
    with pytest.raises(RemoteProtocolError, match="record authentication failed"):
        b.next_event()


def test_reordered_records_are_refused() -> None:
    a, b = pair()
    first, second = a.send(b"1"), a.send(b"2")
    b.receive_data(second + first)
    with pytest.raises(RemoteProtocolError, match="record authentication failed"):
        b.next_event()


def test_dropped_record_is_detected_at_the_next_one() -> None:
    a, b = pair()
    a.send(b"lost")
    b.receive_data(a.send(b"after"))
    with pytest.raises(RemoteProtocolError, match="record authentication failed"):
        b.next_event()


def test_truncated_stream_without_close_is_refused() -> None:
    a, b = pair()
    b.receive_data(a.send(b"partial"))
    b.receive_data(b"")
    assert b.next_event() == Data(b"partial")
    with pytest.raises(RemoteProtocolError, match="without a close record") as info:
        b.next_event()
    assert info.value.reason == "truncated"


def test_record_cut_mid_way_is_refused_at_end_of_stream() -> None:
    a, b = pair()
    record = a.send(b"cut")
    b.receive_data(record[:-3])
    assert b.next_event() is NEED_DATA
    b.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        b.next_event()


def test_rekey_moves_both_sides_forward() -> None:
    a, b = pair()
    b.receive_data(a.rekey() + a.send(b"new keys"))
    assert events(b) == [KeyUpdated(), Data(b"new keys")]


def test_record_from_before_a_rekey_cannot_be_replayed_after_it() -> None:
    a, b = pair()
    old = a.send(b"old")
    b.receive_data(old + a.rekey() + old)
    assert b.next_event() == Data(b"old")
    assert b.next_event() == KeyUpdated()
    with pytest.raises(RemoteProtocolError):
        b.next_event()


def test_close_is_reported_and_stops_sending() -> None:
    a, b = pair()
    b.receive_data(a.close())
    assert events(b) == [Closed()]
    with pytest.raises(LocalProtocolError, match="closed for sending"):
        a.send(b"late")
    a.receive_data(b.close())
    assert events(a) == [Closed()]
    assert a.closed
    assert b.closed


def test_data_after_close_is_refused() -> None:
    a, b = pair()
    close = a.close()
    b.receive_data(close + b"\x01\x01\x00\x10" + bytes(16))
    assert b.next_event() == Closed()
    with pytest.raises(RemoteProtocolError, match="after the close record"):
        b.next_event()


def test_mismatched_ciphers_do_not_interoperate() -> None:
    a = SecureChannel(send_secret=A_TO_B, receive_secret=B_TO_A)
    b = SecureChannel(send_secret=B_TO_A, receive_secret=A_TO_B, cipher=ChannelCipher.AES_256_GCM)
    b.receive_data(a.send(b"x"))
    with pytest.raises(RemoteProtocolError):
        b.next_event()


def test_failed_channel_stays_failed() -> None:
    _, b = pair()
    b.receive_data(b"\x09" * 8)
    with pytest.raises(RemoteProtocolError, match="malformed record header"):
        b.next_event()
    with pytest.raises(LocalProtocolError, match="channel failed"):
        b.next_event()


@pytest.mark.parametrize("length", [0, 15, MAX_RECORD_PLAINTEXT + 17])
def test_record_length_out_of_range_is_refused(length: int) -> None:
    _, b = pair()
    b.receive_data(bytes([1, 1]) + length.to_bytes(2, "big"))
    with pytest.raises(RemoteProtocolError, match="length out of range"):
        b.next_event()


@given(st.binary(min_size=1, max_size=200), st.data())
def test_any_flipped_bit_in_a_record_is_detected(payload: bytes, data: st.DataObject) -> None:
    a, b = pair()
    record = bytearray(a.send(payload))
    index = data.draw(st.integers(0, len(record) - 1))
    bit = data.draw(st.integers(0, 7))
    record[index] ^= 1 << bit
    b.receive_data(bytes(record))
    b.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        events(b)


@given(st.lists(st.binary(max_size=100), min_size=1, max_size=5), st.integers(1, 7))
def test_byte_by_byte_and_chunked_delivery_give_the_same_data(
    messages: list[bytes], chunk: int
) -> None:
    a, b = pair()
    stream = b"".join(a.send(m) for m in messages)
    received: list[object] = []
    for i in range(0, len(stream), chunk):
        b.receive_data(stream[i : i + chunk])
        received.extend(events(b))
    assert received == [Data(m) for m in messages]


@given(st.binary(max_size=64))
def test_garbage_input_raises_only_protocol_errors(garbage: bytes) -> None:
    _, b = pair()
    b.receive_data(garbage)
    b.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        events(b)
