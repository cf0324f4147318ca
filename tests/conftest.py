"""Shared fixtures: deterministic clocks and randomness, cheap managers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from keymgmt import KeyManager
from keymgmt.keyring import KdfProfile
from keymgmt.testing import FakeClock, SeededRandomness

settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at 2030-01-01T00:00:00Z."""
    return FakeClock()


@pytest.fixture
def rng() -> SeededRandomness:
    """Seeded randomness."""
    return SeededRandomness(1234)


@pytest.fixture
def km(clock: FakeClock, rng: SeededRandomness) -> Iterator[KeyManager]:
    """An in-memory manager with a fake clock and seeded randomness."""
    with KeyManager.in_memory(clock=clock, randomness=rng, consistency_interval=0) as manager:
        yield manager


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Where a SQLite store may be created."""
    return tmp_path / "store.db"


@pytest.fixture
def sqlite_km(store_path: Path, clock: FakeClock) -> Iterator[KeyManager]:
    """A manager on a fresh SQLite file with a cheap (test-only) passphrase KDF."""
    with KeyManager.open(
        store_path,
        passphrase=PASSPHRASE,
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=clock,
        consistency_interval=0,
    ) as manager:
        yield manager
