"""SecretBytes: redacted, constant-time, unpicklable, one way out."""

from __future__ import annotations

import copy
import hmac
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt import InvalidArgumentError, SecretBytes


def test_reveal_returns_the_bytes_given() -> None:
    assert SecretBytes(b"\x00\x01k").reveal() == b"\x00\x01k"


@pytest.mark.parametrize("value", [bytearray(b"abc"), memoryview(b"abc")])
def test_accepts_bytes_like_values_and_copies_them(value: bytearray | memoryview) -> None:
    secret = SecretBytes(value)
    assert secret.reveal() == b"abc"
    assert type(secret.reveal()) is bytes


def test_later_changes_to_a_bytearray_do_not_reach_the_secret() -> None:
    source = bytearray(b"abc")
    secret = SecretBytes(source)
    source[0] = 0x7A
    assert secret.reveal() == b"abc"


@pytest.mark.parametrize("value", ["text", 5, None, [1, 2]])
def test_refuses_non_bytes(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="SecretBytes takes bytes"):
        SecretBytes(value)  # type: ignore[arg-type]


def test_repr_str_and_format_are_redacted() -> None:
    secret = SecretBytes(b"hunter2-hunter2")
    expected = "SecretBytes(<redacted 15 bytes>)"
    assert repr(secret) == expected
    assert str(secret) == expected
    assert f"{secret}" == expected
    assert f"{secret:>40}" == expected
    assert "{}".format(secret) == expected  # noqa: UP032 - str.format path
    assert "%s %r" % (secret, secret) == f"{expected} {expected}"  # noqa: UP031


def test_len_is_the_secret_length() -> None:
    assert len(SecretBytes(bytes(17))) == 17


def test_equal_secrets_compare_equal() -> None:
    assert SecretBytes(b"same") == SecretBytes(b"same")
    assert SecretBytes(b"same") != SecretBytes(b"diff")


def test_a_secret_never_equals_plain_bytes() -> None:
    assert SecretBytes(b"same") != b"same"
    assert b"same" != SecretBytes(b"same")  # noqa: SIM300 - bytes on the left


def test_equality_uses_the_constant_time_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert SecretBytes(b"x") == SecretBytes(b"x")
    assert calls == [(b"x", b"x")]


def test_is_not_hashable() -> None:
    with pytest.raises(TypeError, match="not hashable"):
        hash(SecretBytes(b"k"))
    with pytest.raises(TypeError):
        {SecretBytes(b"k")}


def test_bytes_conversion_is_refused() -> None:
    with pytest.raises(TypeError, match="reveal"):
        bytes(SecretBytes(b"k"))


def test_memoryview_is_refused() -> None:
    with pytest.raises(TypeError):
        memoryview(SecretBytes(b"k"))  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_is_refused(protocol: int) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(SecretBytes(b"k"), protocol=protocol)


def test_copy_returns_the_same_immutable_object() -> None:
    secret = SecretBytes(b"k")
    assert copy.copy(secret) is secret
    assert copy.deepcopy(secret) is secret


def test_the_value_cannot_be_replaced_through_attributes() -> None:
    secret = SecretBytes(b"k")
    with pytest.raises(AttributeError):
        secret.value = b"other"  # type: ignore[attr-defined]


@given(st.binary(min_size=8, max_size=64))  # 16+ hex digits: no chance match
def test_no_rendering_ever_contains_the_secret(value: bytes) -> None:
    secret = SecretBytes(value)
    renderings = [repr(secret), str(secret), format(secret), f"{secret!r}", f"{secret!s}"]
    for text in renderings:
        assert value.hex() not in text
        assert repr(value) not in text
        assert text == f"SecretBytes(<redacted {len(value)} bytes>)"


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_equality_matches_bytes_equality(a: bytes, b: bytes) -> None:
    assert (SecretBytes(a) == SecretBytes(b)) is (a == b)
