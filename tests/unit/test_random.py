"""Randomness: the system source and the seeded fake."""

from __future__ import annotations

import pytest

from keymgmt import InvalidArgumentError, Randomness, SystemRandomness
from keymgmt.testing import SeededRandomness


def test_system_randomness_returns_the_requested_length() -> None:
    source = SystemRandomness()
    assert len(source.token_bytes(0)) == 0
    assert len(source.token_bytes(33)) == 33
    assert source.token_bytes(16) != source.token_bytes(16)


@pytest.mark.parametrize("source", [SystemRandomness(), SeededRandomness(1)])
@pytest.mark.parametrize("n", [-1, 1.5, "3", True])
def test_a_bad_length_is_an_argument_error(source: Randomness, n: object) -> None:
    with pytest.raises(InvalidArgumentError, match="int >= 0"):
        source.token_bytes(n)  # type: ignore[arg-type]


def test_both_sources_satisfy_the_protocol() -> None:
    assert isinstance(SystemRandomness(), Randomness)
    assert isinstance(SeededRandomness(), Randomness)


def test_same_seed_gives_the_same_stream() -> None:
    a, b = SeededRandomness(7), SeededRandomness(7)
    assert [a.token_bytes(5) for _ in range(3)] == [b.token_bytes(5) for _ in range(3)]


def test_the_stream_does_not_depend_on_how_it_is_chunked() -> None:
    a, b = SeededRandomness("s"), SeededRandomness("s")
    assert a.token_bytes(10) + a.token_bytes(6) == b.token_bytes(16)


def test_different_seeds_give_different_streams() -> None:
    seeds: list[int | bytes | str] = [0, 1, -1, b"one", "1", 2**200]
    streams = {SeededRandomness(seed).token_bytes(16) for seed in seeds}
    assert len(streams) == len(seeds)


def test_a_huge_int_seed_is_accepted() -> None:
    assert len(SeededRandomness(2**1000).token_bytes(8)) == 8


@pytest.mark.parametrize("seed", [1.5, None, True])
def test_a_bad_seed_is_an_argument_error(seed: object) -> None:
    with pytest.raises(InvalidArgumentError, match="seed"):
        SeededRandomness(seed)  # type: ignore[arg-type]


def test_reprs_reveal_no_state() -> None:
    assert repr(SeededRandomness(12345)) == "SeededRandomness(<seeded>)"
    assert repr(SystemRandomness()) == "SystemRandomness()"
