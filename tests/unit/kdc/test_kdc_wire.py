"""The KDC wire format is strict: framing, bounds, versions, trailing bytes."""

from __future__ import annotations

import pytest

from keymgmt.errors import MalformedInputError
from keymgmt.kdc import _wire as w
from keymgmt.kdc._wire import MessageType

ERROR_FIELDS = [b"replay", b"seen before"]


def test_encode_then_decode_returns_the_fields() -> None:
    data = w.encode(MessageType.ERROR, ERROR_FIELDS)
    assert w.decode(data, MessageType.ERROR) == (MessageType.ERROR, ERROR_FIELDS)


def test_message_starts_with_magic_version_and_type() -> None:
    data = w.encode(MessageType.ERROR, ERROR_FIELDS)
    assert data[:4] == b"KD\x01\x08"


def test_unknown_version_is_refused_with_its_number() -> None:
    data = bytearray(w.encode(MessageType.ERROR, ERROR_FIELDS))
    data[2] = 2
    with pytest.raises(MalformedInputError, match="unsupported KDC protocol version 2") as info:
        w.decode(bytes(data))
    assert getattr(info.value, "version", None) == 2


def test_bad_magic_is_refused() -> None:
    with pytest.raises(MalformedInputError, match="bad magic"):
        w.decode(b"XX\x01\x08" + w.encode_fields(ERROR_FIELDS))


def test_unknown_type_is_refused() -> None:
    with pytest.raises(MalformedInputError, match="unknown KDC message type 99"):
        w.decode(b"KD\x01\x63")


def test_unexpected_type_is_refused() -> None:
    data = w.encode(MessageType.ERROR, ERROR_FIELDS)
    with pytest.raises(MalformedInputError, match="unexpected KDC message ERROR"):
        w.decode(data, MessageType.KEY_REPLY)


def test_trailing_byte_is_refused() -> None:
    data = w.encode(MessageType.ERROR, ERROR_FIELDS) + b"\x00"
    with pytest.raises(MalformedInputError, match="1 trailing bytes"):
        w.decode(data)


def test_every_truncation_is_refused() -> None:
    data = w.encode(MessageType.ERROR, ERROR_FIELDS)
    for cut in range(len(data)):
        with pytest.raises(MalformedInputError):
            w.decode(data[:cut])


def test_oversize_field_is_refused_by_its_length_prefix() -> None:
    data = w.header(MessageType.ERROR) + w.encode_fields([b"x" * 65, b""])
    with pytest.raises(MalformedInputError, match="field 'code' has 65 bytes"):
        w.decode(data)


def test_huge_length_prefix_does_not_allocate() -> None:
    data = w.header(MessageType.ERROR) + b"\xff\xff\xff\xff"
    with pytest.raises(MalformedInputError, match="field 'code'"):
        w.decode(data)


def test_message_over_the_size_bound_is_refused() -> None:
    with pytest.raises(MalformedInputError, match="message too large"):
        w.decode(b"KD\x01\x08" + bytes(w.MAX_MESSAGE))


def test_encode_refuses_a_wrong_field_count() -> None:
    with pytest.raises(MalformedInputError, match="expected 2 fields, got 1"):
        w.encode(MessageType.ERROR, [b"x"])


def test_non_bytes_input_is_refused() -> None:
    with pytest.raises(MalformedInputError, match="must be bytes"):
        w.peek_type("KD")  # type: ignore[arg-type]


def test_text_refuses_invalid_utf8_and_control_characters() -> None:
    with pytest.raises(MalformedInputError, match="not valid UTF-8"):
        w.text(b"\xff", "name")
    with pytest.raises(MalformedInputError, match="control characters"):
        w.text(b"a\nb", "name")
