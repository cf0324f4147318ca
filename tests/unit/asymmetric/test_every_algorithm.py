"""Every key-pair algorithm, in every usage it allows, round-trips through the façade.

The cases come from ``USAGES`` itself, so a new algorithm or usage is tested
the day it is added. One manager holds every key for the whole module (the
operations under test only read keys), so each private key is loaded once:
RSA-3072 and RSA-4096 are generated once per session (about a second each)
and imported, RSA-2048 comes from the shared ``material`` fixture of
``conftest.py``, everything else is created by ``km.keys.create``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.errors import DecryptionError, InvalidSignatureError, KeyUsageError
from keymgmt.keys import _asymmetric as asym
from keymgmt.testing import FakeClock, SeededRandomness

MESSAGE = b"pay 10 EUR to bob"
CONTEXT = {"purpose": "round-trip", "tenant": "acme"}

#: (algorithm, usage) for every usage every key-pair algorithm allows.
CASES = [
    pytest.param(algorithm, usage, id=f"{algorithm.value}-{usage.value}")
    for algorithm in sorted(asym.USAGES, key=lambda a: a.value)
    for usage in asym.USAGES[algorithm]
]
SIGNING = [case for case in CASES if case.values[1] is KeyUsage.SIGN_VERIFY]
ENCRYPTING = [case for case in CASES if case.values[1] is KeyUsage.ENCRYPT_DECRYPT]
AGREEING = [case for case in CASES if case.values[1] is KeyUsage.KEY_AGREEMENT]


def _name(algorithm: Algorithm, usage: KeyUsage, who: str = "a") -> str:
    return f"{algorithm.value}.{usage.value}.{who}"


@pytest.fixture(scope="session")
def big_rsa() -> dict[Algorithm, bytes]:
    """RSA-3072 and RSA-4096 private keys (stored form), generated once per session."""
    return {a: asym.generate(a) for a in (Algorithm.RSA_3072, Algorithm.RSA_4096)}


@pytest.fixture(scope="module")
def km(material: dict[Algorithm, bytes], big_rsa: dict[Algorithm, bytes]) -> Iterator[KeyManager]:
    """One manager with a key pair per (algorithm, usage); two ("a", "b") for agreement."""
    with KeyManager.in_memory(clock=FakeClock(), randomness=SeededRandomness(1234)) as manager:
        for algorithm, usages in asym.USAGES.items():
            for usage in usages:
                for who in ("a", "b") if usage is KeyUsage.KEY_AGREEMENT else ("a",):
                    name = _name(algorithm, usage, who)
                    pregenerated = big_rsa.get(algorithm, material.get(algorithm))
                    if algorithm.value.startswith("rsa-") and pregenerated is not None:
                        manager.keys.import_key(
                            name, pregenerated, algorithm=algorithm, usage=usage
                        )
                    else:
                        manager.keys.create(name, algorithm, usage=usage)
        yield manager


def test_the_cases_cover_every_key_pair_algorithm_and_usage() -> None:
    covered = {(case.values[0], case.values[1]) for case in SIGNING + ENCRYPTING + AGREEING}
    assert covered == {(a, u) for a, usages in asym.USAGES.items() for u in usages}
    assert {a for a, _ in covered} == set(asym.ASYMMETRIC_ALGORITHMS)


@pytest.mark.parametrize(("algorithm", "usage"), SIGNING)
def test_sign_then_verify_round_trips(
    km: KeyManager, algorithm: Algorithm, usage: KeyUsage
) -> None:
    name = _name(algorithm, usage)
    signature = km.sign(name, MESSAGE)
    km.verify(name, MESSAGE, signature)
    km.public_key(name).verify(MESSAGE, signature)  # and without the store


@pytest.mark.parametrize(("algorithm", "usage"), SIGNING)
def test_a_signature_over_other_data_is_refused(
    km: KeyManager, algorithm: Algorithm, usage: KeyUsage
) -> None:
    name = _name(algorithm, usage)
    signature = km.sign(name, MESSAGE)
    with pytest.raises(InvalidSignatureError):
        km.verify(name, MESSAGE + b"!", signature)


@pytest.mark.parametrize(("algorithm", "usage"), ENCRYPTING)
def test_encrypt_then_decrypt_with_context_round_trips(
    km: KeyManager, algorithm: Algorithm, usage: KeyUsage
) -> None:
    name = _name(algorithm, usage)
    assert km.decrypt(km.encrypt(name, MESSAGE, CONTEXT), CONTEXT) == MESSAGE
    # Encrypting to the exported public key gives the same format.
    assert km.decrypt(km.public_key(name).encrypt(MESSAGE, context=CONTEXT), CONTEXT) == MESSAGE


@pytest.mark.parametrize(("algorithm", "usage"), ENCRYPTING)
def test_decrypt_under_another_context_is_refused(
    km: KeyManager, algorithm: Algorithm, usage: KeyUsage
) -> None:
    ciphertext = km.encrypt(_name(algorithm, usage), MESSAGE, CONTEXT)
    with pytest.raises(DecryptionError):
        km.decrypt(ciphertext, {**CONTEXT, "tenant": "other"})


@pytest.mark.parametrize(("algorithm", "usage"), AGREEING)
def test_two_agreement_keys_derive_the_same_shared_key(
    km: KeyManager, algorithm: Algorithm, usage: KeyUsage
) -> None:
    a, b = _name(algorithm, usage, "a"), _name(algorithm, usage, "b")
    ours = km.agree(a, km.public_key(b), info=b"session 1")
    assert ours == km.agree(b, km.public_key(a), info=b"session 1")
    assert len(ours.reveal()) == 32
    assert ours != km.agree(a, km.public_key(b), info=b"session 2")


@pytest.mark.parametrize(("algorithm", "usage"), CASES)
def test_operations_outside_the_usage_are_refused(
    km: KeyManager, algorithm: Algorithm, usage: KeyUsage
) -> None:
    name = _name(algorithm, usage)
    if usage is not KeyUsage.SIGN_VERIFY:
        with pytest.raises(KeyUsageError):
            km.sign(name, MESSAGE)
    if usage is not KeyUsage.ENCRYPT_DECRYPT:
        with pytest.raises(KeyUsageError):
            km.encrypt(name, MESSAGE, CONTEXT)
    if usage is not KeyUsage.KEY_AGREEMENT:
        with pytest.raises(KeyUsageError):
            km.agree(name, km.public_key(name), info=b"x")
