"""Fixtures for the KDC tests: a KDC over the in-memory manager, principals, keys."""

from __future__ import annotations

import datetime as _dt

import attrs
import pytest

from keymgmt import KeyManager, SecretBytes
from keymgmt.errors import KeyNotFoundError, KeyStateError
from keymgmt.kdc import (
    DistributableKey,
    InProcessTransport,
    KdcClient,
    KeyDistributionCenter,
    SymmetricCredential,
    TicketReceiver,
)
from keymgmt.testing import FakeClock, SeededRandomness


@attrs.define
class StaticKeySource:
    """A stand-in for km.keys: named keys with a primary version and a state."""

    keys: dict[str, list[tuple[int, bytes, str]]] = attrs.field(factory=dict)

    def add(self, name: str, material: bytes = b"k" * 32) -> None:
        versions = self.keys.setdefault(name, [])
        versions.append((len(versions) + 1, material, "active"))

    def set_state(self, name: str, state: str) -> None:
        version, material, _ = self.keys[name][-1]
        self.keys[name][-1] = (version, material, state)

    def current(self, name: str) -> DistributableKey:
        if name not in self.keys:
            raise KeyNotFoundError(f"no key named {name!r}", key_name=name)
        version, material, state = self.keys[name][-1]
        if state != "active":
            raise KeyStateError(f"{name}#{version} is {state}", key_name=name, version=version)
        return DistributableKey(
            name=name, version=version, algorithm="aes-256-gcm", material=SecretBytes(material)
        )


@pytest.fixture
def keys() -> StaticKeySource:
    source = StaticKeySource()
    source.add("payments", bytes(range(32)))
    source.add("reports", bytes(range(32, 64)))
    return source


@pytest.fixture
def kdc(km: KeyManager, keys: StaticKeySource) -> KeyDistributionCenter:
    return KeyDistributionCenter(km._context, keys=keys)


@pytest.fixture
def transport(kdc: KeyDistributionCenter) -> InProcessTransport:
    return InProcessTransport(kdc, record=True)


@pytest.fixture
def alice(kdc: KeyDistributionCenter) -> SymmetricCredential:
    credential = kdc.register("alice")
    kdc.grant("alice", keys=["payments"], peers=["bob"])
    return credential


@pytest.fixture
def bob(kdc: KeyDistributionCenter) -> SymmetricCredential:
    return kdc.register("bob")


@pytest.fixture
def client(alice: SymmetricCredential, clock: FakeClock) -> KdcClient:
    return KdcClient(alice, clock=clock, randomness=SeededRandomness("alice"))


@pytest.fixture
def receiver(bob: SymmetricCredential, clock: FakeClock) -> TicketReceiver:
    return TicketReceiver(bob, clock=clock, randomness=SeededRandomness("bob"))


def minutes(n: float) -> _dt.timedelta:
    return _dt.timedelta(minutes=n)
