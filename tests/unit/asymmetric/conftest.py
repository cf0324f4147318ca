"""Key pairs made once per session (RSA is slow to generate)."""

from __future__ import annotations

import pytest

from keymgmt.algorithms import Algorithm
from keymgmt.keys import _asymmetric as asym

#: Every key-pair algorithm the tests exercise: RSA only at 2048 bits.
TESTED = [
    a for a in asym.ASYMMETRIC_ALGORITHMS if a not in (Algorithm.RSA_3072, Algorithm.RSA_4096)
]


@pytest.fixture(scope="session")
def material() -> dict[Algorithm, bytes]:
    """One private key (stored form) per tested algorithm."""
    return {algorithm: asym.generate(algorithm) for algorithm in TESTED}


@pytest.fixture(scope="session")
def pairs(material: dict[Algorithm, bytes]) -> dict[Algorithm, asym.LoadedKeyPair]:
    """The loaded key pair per tested algorithm."""
    handler = asym.AsymmetricHandler()
    return {algorithm: handler.load(algorithm, data) for algorithm, data in material.items()}
