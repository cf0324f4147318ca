"""The builders that reuse already-encoded bytes produce exactly the checked encoding."""

from __future__ import annotations

import datetime as _dt

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keymgmt.errors import MalformedInputError
from keymgmt.kdc import _protocol as p
from keymgmt.kdc import _wire as w
from keymgmt.kdc._events import AuthKind
from keymgmt.kdc._wire import MessageType
from keymgmt.testing import SeededRandomness

_AEAD = AESGCM(bytes(32))
_NOW = _dt.datetime(2030, 1, 1, tzinfo=_dt.UTC)


def _request() -> bytes:
    return p.build_request(
        MessageType.KEY_REQUEST,
        "alice",
        target="payments",
        nonce=bytes(16),
        timestamp=_NOW,
        randomness=SeededRandomness(1),
        aead=_AEAD,
    )


def test_sealed_request_is_the_checked_encoding_of_its_fields() -> None:
    data = _request()
    _, fields = w.decode(data, MessageType.KEY_REQUEST)
    assert w.encode(MessageType.KEY_REQUEST, fields) == data


def test_envelope_aad_and_signed_bytes_are_the_encoded_prefix() -> None:
    envelope = p.parse_request(_request())
    raw, auth = b"alice", bytes((AuthKind.SYMMETRIC,))
    head = w.header(MessageType.KEY_REQUEST) + w.encode_fields([raw, auth])
    assert envelope.aad() == head
    assert envelope.signed_bytes() == head + w.encode_fields([envelope.body])


def test_reply_is_the_checked_encoding_and_opens() -> None:
    inner = [b"payments", w.u32(1), b"aes-256-gcm", bytes(32), w.u64(0), w.u64(0), bytes(16)]
    reply = p.build_reply(
        MessageType.KEY_REPLY, "alice", bytes(16), inner, randomness=SeededRandomness(2), aead=_AEAD
    )
    _, fields = w.decode(reply, MessageType.KEY_REPLY)
    assert w.encode(MessageType.KEY_REPLY, fields) == reply
    opened = p.open_reply(
        reply, MessageType.KEY_REPLY, principal="alice", nonce=bytes(16), aead=_AEAD
    )
    assert opened == inner


@pytest.mark.parametrize(("principal", "nonce"), [("", bytes(16)), ("alice", bytes(15))])
def test_reply_with_bad_outer_fields_is_refused(principal: str, nonce: bytes) -> None:
    with pytest.raises(MalformedInputError):
        p.build_reply(
            MessageType.KEY_REPLY,
            principal,
            nonce,
            [b"x"],
            randomness=SeededRandomness(3),
            aead=_AEAD,
        )


def test_encode_after_checks_the_remaining_fields() -> None:
    head = w.header(MessageType.KEY_REQUEST) + w.encode_fields([b"alice", b"\x01"])
    with pytest.raises(MalformedInputError, match="field 'body' has 0 bytes"):
        w.encode_after(MessageType.KEY_REQUEST, head, 2, [b"", b""])
    with pytest.raises(MalformedInputError, match="expected 2 more fields, got 1"):
        w.encode_after(MessageType.KEY_REQUEST, head, 2, [b"x"])
