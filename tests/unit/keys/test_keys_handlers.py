"""The material-handler plug point: the key store calls handlers, and caches what they load."""

from __future__ import annotations

from typing import Any

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm
from keymgmt.keys import KeyStore, MaterialHandler, SymmetricHandler, default_handlers


class CountingHandler(SymmetricHandler):
    """The symmetric handler, counting how often material is generated and loaded."""

    def __init__(self) -> None:
        self.generated = 0
        self.loaded = 0

    def generate(self, algorithm: Algorithm, randomness: Any) -> bytes:
        self.generated += 1
        return super().generate(algorithm, randomness)

    def load(self, algorithm: Algorithm, material: bytes) -> Any:
        self.loaded += 1
        return super().load(algorithm, material)


def test_default_handlers_cover_every_algorithm() -> None:
    handlers = default_handlers()
    assert set(handlers) == set(Algorithm)
    assert all(isinstance(h, MaterialHandler) for h in handlers.values())


def test_the_store_uses_the_handlers_it_is_given_and_loads_each_version_once(
    km: KeyManager,
) -> None:
    handler = CountingHandler()
    store = KeyStore(km._context, handlers={Algorithm.AES_256_GCM: handler})
    store.create("k")
    first = store.encrypt("k", b"one")
    store.rotate("k")
    second = store.encrypt("k", b"two")
    assert store.decrypt(first) == b"one"
    loads = handler.loaded
    for _ in range(50):
        assert store.decrypt(first) == b"one"
        assert store.decrypt(second) == b"two"
        store.encrypt("k", b"more")
    assert handler.generated == 2
    assert handler.loaded == loads <= 3  # each version once (and v1 again after the rotation)


def test_an_algorithm_without_a_handler_is_refused(km: KeyManager) -> None:
    import pytest

    from keymgmt.errors import UnsupportedAlgorithmError

    store = KeyStore(km._context, handlers={Algorithm.AES_256_GCM: SymmetricHandler()})
    with pytest.raises(UnsupportedAlgorithmError, match="chacha20-poly1305"):
        store.create("k", Algorithm.CHACHA20_POLY1305)
