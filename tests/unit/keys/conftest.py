"""Fixtures for the key store tests."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence

import pytest

from keymgmt import KeyManager
from keymgmt.keyring import RawMasterKey
from keymgmt.storage import Backend, MemoryBackend, Operation, Record
from keymgmt.testing import FakeClock, SeededRandomness


class CountingBackend:
    """A backend that counts every call it forwards (to prove "no store I/O")."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {"get": 0, "list": 0, "commit": 0, "generation": 0}

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def get(self, kind: str, name: str) -> Record | None:
        self.calls["get"] += 1
        return self.inner.get(kind, name)

    def list(self, kind: str, *, prefix: str = "", after_seq: int = 0) -> builtins.list[Record]:
        self.calls["list"] += 1
        return self.inner.list(kind, prefix=prefix, after_seq=after_seq)

    def commit(self, operations: Sequence[Operation]) -> builtins.list[Record]:
        self.calls["commit"] += 1
        return self.inner.commit(operations)

    def generation(self) -> int:
        self.calls["generation"] += 1
        return self.inner.generation()

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def counting() -> CountingBackend:
    """A counting wrapper around a memory backend."""
    return CountingBackend(MemoryBackend())


@pytest.fixture
def counted_km(counting: CountingBackend, clock: FakeClock) -> Iterator[KeyManager]:
    """A manager over the counting backend; other processes are checked once an hour."""
    with KeyManager(
        backend=counting,
        master_key=RawMasterKey(bytes(32)),
        clock=clock,
        randomness=SeededRandomness(7),
        consistency_interval=3600,
    ) as manager:
        yield manager
