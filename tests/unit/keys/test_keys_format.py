"""The ciphertext header parser and the context encoding."""

from __future__ import annotations

import pytest

from keymgmt.algorithms import Algorithm
from keymgmt.errors import InvalidArgumentError, MalformedInputError
from keymgmt.keys._format import (
    PayloadType,
    context_json,
    encode_context,
    parse_header,
    prefix,
)

KEY_ID = bytes(range(8))


def _header(**changes: int) -> bytearray:
    data = bytearray(prefix(PayloadType.MESSAGE, Algorithm.AES_256_GCM, KEY_ID, "name", 3))
    for index, value in changes.items():
        data[int(index.removeprefix("at"))] = value
    return data


def test_a_prefix_parses_back_to_its_fields() -> None:
    header = parse_header(_header())
    assert (header.payload, header.algorithm, header.key_id, header.name, header.version) == (
        PayloadType.MESSAGE,
        Algorithm.AES_256_GCM,
        KEY_ID,
        "name",
        3,
    )
    assert header.prefix_length == 22


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"at0": ord("x")}, "bad magic"),
        ({"at2": 2}, "format version 2"),
        ({"at3": 9}, "payload type 9"),
        ({"at4": 200}, "algorithm code 200"),
        ({"at13": 0}, "name length"),
        ({"at13": 200}, "name length"),
        ({"at14": 0xFF}, "not ASCII"),
        ({"at14": ord("#")}, "invalid key name"),
    ],
)
def test_the_parser_is_strict(changes: dict[str, int], message: str) -> None:
    with pytest.raises(MalformedInputError, match=message):
        parse_header(_header(**changes))


def test_version_zero_is_refused() -> None:
    data = _header()
    data[-4:] = bytes(4)
    with pytest.raises(MalformedInputError, match="version 0"):
        parse_header(data)


@pytest.mark.parametrize("length", range(22))
def test_a_truncated_header_is_refused(length: int) -> None:
    with pytest.raises(MalformedInputError):
        parse_header(_header()[:length])


def test_the_empty_context_encodes_to_nothing() -> None:
    assert encode_context(None) == b""
    assert encode_context({}) == b""


def test_the_context_encoding_ignores_order_and_round_trips_to_json() -> None:
    a = encode_context({"b": "2", "a": "1"})
    assert a == encode_context({"a": "1", "b": "2"})
    assert context_json(a) == '{"a":"1","b":"2"}'


@pytest.mark.parametrize(
    "context",
    [{"a": 1}, {1: "a"}, ["a"], {"k": "v" * 5000}, {str(i): "" for i in range(65)}],
)
def test_bad_contexts_are_refused(context: object) -> None:
    with pytest.raises(InvalidArgumentError):
        encode_context(context)  # type: ignore[arg-type]
