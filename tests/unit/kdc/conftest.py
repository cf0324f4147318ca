"""Fixtures for the KDC tests: a KDC over the in-memory manager, principals, keys."""

from __future__ import annotations

import pytest
from _kdc_support import StaticKeySource

from keymgmt import KeyManager
from keymgmt.kdc import (
    InProcessTransport,
    KdcClient,
    KeyDistributionCenter,
    SymmetricCredential,
    TicketReceiver,
)
from keymgmt.testing import FakeClock, SeededRandomness


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
