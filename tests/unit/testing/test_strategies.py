"""The exported Hypothesis strategies draw what they promise."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given

from keymgmt import InvalidArgumentError, SecretBytes
from keymgmt.algorithms import Algorithm, KeyKind
from keymgmt.clock import ensure_aware
from keymgmt.testing import strategies


@given(strategies.key_names())
def test_key_names_are_short_lowercase_identifiers(name: str) -> None:
    assert 1 <= len(name) <= 64
    assert name[0].isalpha()


@given(strategies.symmetric_algorithms())
def test_symmetric_algorithms_are_symmetric(algorithm: Algorithm) -> None:
    assert algorithm.kind is KeyKind.SYMMETRIC


@given(strategies.secret_bytes(min_size=8))
def test_secret_bytes_are_redacted(secret: SecretBytes) -> None:
    assert secret.reveal().hex() not in repr(secret)


@given(strategies.aware_datetimes())
def test_aware_datetimes_pass_the_boundary(value: dt.datetime) -> None:
    assert ensure_aware(value) == value


@given(strategies.naive_datetimes())
def test_naive_datetimes_are_refused(value: dt.datetime) -> None:
    with pytest.raises(InvalidArgumentError, match="timezone-aware"):
        ensure_aware(value)
