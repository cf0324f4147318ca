"""Shared fixtures: deterministic clocks and randomness, cheap managers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
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
def open_sqlite_km(store_path: Path, clock: FakeClock) -> Callable[[], KeyManager]:
    """Open a manager on ``store_path`` as :func:`sqlite_km` does; each call is another process's.

    The passphrase is ``PASSPHRASE``, the KDF the cheap test-only one, the
    clock the shared fake one, and other processes' writes are seen at once.
    """

    def open_km() -> KeyManager:
        return KeyManager.open(
            store_path,
            passphrase=PASSPHRASE,
            kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
            clock=clock,
            consistency_interval=0,
        )

    return open_km


@pytest.fixture
def sqlite_km(open_sqlite_km: Callable[[], KeyManager]) -> Iterator[KeyManager]:
    """A manager on a fresh SQLite file with a cheap (test-only) passphrase KDF."""
    with open_sqlite_km() as manager:
        yield manager


# -- services: PostgreSQL and a PKCS#11 token (see .ci/services/) ----------------


def _service(variable: str, what: str, module: str) -> str:
    """The value of ``variable``; skip locally without it (or ``module``), fail under CI."""
    value = os.environ.get(variable, "")
    message = f"{what} not configured: set {variable} (source .ci/services/*.sh)"
    try:
        __import__(module)
    except ImportError:
        value, message = "", f"{what} tests need the Python package {module!r} (extras)"
    if not value:
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run these tests, not skip them")
        pytest.skip(message)
    return value


@pytest.fixture(scope="session")
def openssl_cli() -> str:
    """Path of the ``openssl`` command; skip locally without it, fail under CI."""
    found = shutil.which("openssl")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("the openssl CLI is missing; CI must run the interop tests, not skip them")
        pytest.skip("needs the openssl CLI")
    return found


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of a throwaway PostgreSQL server (``KEYMGMT_TEST_POSTGRES_DSN``)."""
    return _service("KEYMGMT_TEST_POSTGRES_DSN", "PostgreSQL server", "psycopg")


@pytest.fixture(scope="session")
def pkcs11_module() -> str:
    """Path of a PKCS#11 module with an initialized test token (``KEYMGMT_TEST_PKCS11_MODULE``)."""
    return _service("KEYMGMT_TEST_PKCS11_MODULE", "PKCS#11 token", "pkcs11")
