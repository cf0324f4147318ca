"""The policyMappings reader keymgmt's policy check uses (cryptography does not parse it).

Kept beside the PKITS suite because PKITS is what exercises it end to end;
these properties need no PKITS data.
"""

from __future__ import annotations

import contextlib

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from keymgmt.pki._policy import parse_policy_mappings

_arcs = st.tuples(
    st.integers(0, 2),
    st.integers(0, 39),
    st.lists(st.integers(0, 2**40), min_size=0, max_size=6),
).map(lambda t: [t[0], t[1], *t[2]])


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, contents: bytes) -> bytes:
    return bytes([tag]) + _length(len(contents)) + contents


def _base128(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _oid(arcs: list[int]) -> bytes:
    return _tlv(0x06, b"".join(_base128(a) for a in [40 * arcs[0] + arcs[1], *arcs[2:]]))


def _dotted(arcs: list[int]) -> x509.ObjectIdentifier:
    return x509.ObjectIdentifier(".".join(map(str, arcs)))


@given(st.lists(st.tuples(_arcs, _arcs), max_size=5))
def test_policy_mappings_round_trip(pairs: list[tuple[list[int], list[int]]]) -> None:
    """Encoded OID pairs read back as the same pairs."""
    der = _tlv(0x30, b"".join(_tlv(0x30, _oid(a) + _oid(b)) for a, b in pairs))
    assert parse_policy_mappings(der) == [(_dotted(a), _dotted(b)) for a, b in pairs]


@given(st.lists(st.tuples(_arcs, _arcs), min_size=1, max_size=3), st.data())
def test_mutated_policy_mappings_raise_only_value_error(
    pairs: list[tuple[list[int], list[int]]], data: st.DataObject
) -> None:
    """A valid value truncated or with one byte changed gives pairs or ValueError only."""
    der = bytearray(_tlv(0x30, b"".join(_tlv(0x30, _oid(a) + _oid(b)) for a, b in pairs)))
    if data.draw(st.booleans(), label="truncate"):
        der = der[: data.draw(st.integers(0, len(der) - 1), label="cut")]
    else:
        where = data.draw(st.integers(0, len(der) - 1), label="where")
        der[where] = data.draw(st.integers(0, 255), label="byte")
    with contextlib.suppress(ValueError):
        parse_policy_mappings(bytes(der))


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30",
        b"\x30\x05\x30\x03\x06\x01",  # truncated pair
        b"\x30\x84\xff\xff\xff\xff",  # length beyond the data
        b"\x30\x02\x05\x00",  # a NULL, not a pair
        b"\x30\x08\x30\x06\x06\x01\x2a\x06\x01\x81",  # OID ending mid-arc
    ],
)
def test_malformed_policy_mappings_are_refused(der: bytes) -> None:
    """Truncated or mistyped policyMappings values raise ValueError."""
    with pytest.raises(ValueError):
        parse_policy_mappings(der)
