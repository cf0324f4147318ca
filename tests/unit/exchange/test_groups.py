"""The RFC 7919 groups are the published constants, and group metadata is consistent."""

from __future__ import annotations

import pytest

from keymgmt.algorithms import ExchangeGroup
from keymgmt.errors import UnsupportedAlgorithmError
from keymgmt.exchange import group_info
from keymgmt.exchange._groups import FFDHE2048_P, FFDHE3072_P, FFDHE4096_P


def e_fixed_point(bits: int) -> int:
    """floor(e * 2^bits), from the series sum 1/k!."""
    guard = 64
    term = 1 << (bits + guard)
    total = 0
    k = 0
    while term:
        total += term
        k += 1
        term //= k
    return total >> guard


def rfc7919_prime(bits: int, x: int) -> int:
    """RFC 7919 section A: p = 2^b - 2^(b-64) + (floor(2^(b-130) e) + X) * 2^64 - 1."""
    return 2**bits - 2 ** (bits - 64) + (e_fixed_point(bits - 130) + x) * 2**64 - 1


@pytest.mark.parametrize(
    ("prime", "bits", "x"),
    [(FFDHE2048_P, 2048, 560316), (FFDHE3072_P, 3072, 2625351), (FFDHE4096_P, 4096, 5736041)],
)
def test_ffdhe_prime_matches_the_rfc7919_construction(prime: int, bits: int, x: int) -> None:
    assert prime == rfc7919_prime(bits, x)
    assert prime.bit_length() == bits


@pytest.mark.parametrize("prime", [FFDHE2048_P, FFDHE3072_P, FFDHE4096_P])
def test_ffdhe_prime_is_a_safe_prime_with_generator_2_in_the_q_subgroup(prime: int) -> None:
    q = (prime - 1) // 2
    assert pow(3, prime - 1, prime) == 1  # Fermat, base 3
    assert pow(3, q - 1, q) == 1
    assert pow(2, q, prime) == 1  # g = 2 generates the order-q subgroup


def test_ffdhe2048_ends_with_the_published_digits() -> None:
    assert format(FFDHE2048_P, "X").endswith("C1B2EFFA886B423861285C97FFFFFFFFFFFFFFFF")


def test_ffdhe_groups_are_flagged_legacy_and_others_not() -> None:
    legacy = {g for g in ExchangeGroup if group_info(g).legacy}
    assert legacy == {ExchangeGroup.FFDHE2048, ExchangeGroup.FFDHE3072, ExchangeGroup.FFDHE4096}


def test_wire_codes_are_unique() -> None:
    codes = [group_info(g).code for g in ExchangeGroup]
    assert len(set(codes)) == len(codes)


def test_unknown_group_is_refused_with_the_choices() -> None:
    with pytest.raises(UnsupportedAlgorithmError, match="unknown exchange group 'x448'"):
        group_info("x448")
