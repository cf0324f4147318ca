"""The enveloped signature: keymgmt header + plain signature, parsed strictly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt.algorithms import Algorithm
from keymgmt.errors import InvalidArgumentError, KeyMgmtError, MalformedInputError
from keymgmt.keys._asymmetric import Signature
from keymgmt.keys._format import PayloadType, prefix

KEY_ID = bytes.fromhex("0011223344556677")
SAMPLE = Signature(
    key_name="payments-signing",
    version=3,
    key_id=KEY_ID,
    algorithm=Algorithm.ED25519,
    raw=bytes(range(64)),
)


def test_signature_round_trips() -> None:
    assert Signature.decode(SAMPLE.encode()) == SAMPLE


def test_wire_form_is_the_keymgmt_header_then_the_plain_signature() -> None:
    head = prefix(PayloadType.SIGNATURE, Algorithm.ED25519, KEY_ID, "payments-signing", 3)
    assert SAMPLE.encode() == head + SAMPLE.raw


def test_repr_shows_the_length_not_the_bytes() -> None:
    assert "<64 bytes>" in repr(SAMPLE)
    assert SAMPLE.raw.hex() not in repr(SAMPLE)


def test_a_ciphertext_header_is_not_a_signature() -> None:
    head = prefix(PayloadType.MESSAGE, Algorithm.ED25519, KEY_ID, "k", 1)
    with pytest.raises(MalformedInputError, match="not a signature"):
        Signature.decode(head + b"x" * 64)


def test_a_non_signing_algorithm_is_refused() -> None:
    head = prefix(PayloadType.SIGNATURE, Algorithm.X25519, KEY_ID, "k", 1)
    with pytest.raises(MalformedInputError, match="non-signing"):
        Signature.decode(head + b"x" * 64)


def test_an_empty_signature_is_refused() -> None:
    head = prefix(PayloadType.SIGNATURE, Algorithm.ED25519, KEY_ID, "k", 1)
    with pytest.raises(MalformedInputError, match="empty or oversize"):
        Signature.decode(head)


def test_an_oversize_signature_is_refused() -> None:
    head = prefix(PayloadType.SIGNATURE, Algorithm.ED25519, KEY_ID, "k", 1)
    with pytest.raises(MalformedInputError, match="empty or oversize"):
        Signature.decode(head + b"x" * 8193)


def test_encode_refuses_a_bad_key_id() -> None:
    with pytest.raises(InvalidArgumentError, match="8 bytes"):
        Signature(
            key_name="k", version=1, key_id=b"1234", algorithm=Algorithm.ED25519, raw=b"x"
        ).encode()


def test_encode_refuses_a_bad_key_name() -> None:
    with pytest.raises(InvalidArgumentError, match="invalid key name"):
        Signature(
            key_name="a#b", version=1, key_id=KEY_ID, algorithm=Algorithm.ED25519, raw=b"x"
        ).encode()


def test_every_truncation_of_the_header_is_refused() -> None:
    blob = SAMPLE.encode()
    header_length = len(blob) - len(SAMPLE.raw)
    for cut in range(header_length + 1):
        with pytest.raises(MalformedInputError):
            Signature.decode(blob[:cut])


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_keymgmt_errors(data: bytes) -> None:
    try:
        parsed = Signature.decode(data)
    except KeyMgmtError:
        return
    assert parsed.encode() == data


@given(st.data())
def test_mutated_signatures_raise_only_keymgmt_errors_or_parse(data: st.DataObject) -> None:
    blob = bytearray(SAMPLE.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(blob) - 1))
        blob[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    try:
        parsed = Signature.decode(bytes(blob[:cut]))
    except KeyMgmtError:
        return
    assert parsed.encode() == bytes(blob[:cut])
