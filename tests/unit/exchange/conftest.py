"""Fixtures for the exchange tests: a throwaway CA, credentials, handshake factories."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from keymgmt.algorithms import ExchangeGroup
from keymgmt.exchange import Credential, Initiator, ReplayCache, Responder
from keymgmt.testing import FakeClock, SeededRandomness, ThrowawayCA

SERVER = "server.example"
CLIENT = "client.example"


@pytest.fixture(scope="session")
def ca() -> ThrowawayCA:
    """One Ed25519 CA for the whole session (valid around the FakeClock's start)."""
    return ThrowawayCA("exchange test CA", now=FakeClock().now())


@pytest.fixture(scope="session")
def server_cred(ca: ThrowawayCA) -> Credential:
    return ca.issue(SERVER, client=False)


@pytest.fixture(scope="session")
def client_cred(ca: ThrowawayCA) -> Credential:
    return ca.issue(CLIENT, server=False)


@pytest.fixture
def cache(clock: FakeClock) -> ReplayCache:
    return ReplayCache(clock=clock)


MakeInitiator = Callable[..., Initiator]
MakeResponder = Callable[..., Responder]


@pytest.fixture
def make_initiator(ca: ThrowawayCA, client_cred: Credential, clock: FakeClock) -> MakeInitiator:
    def make(**kwargs: object) -> Initiator:
        args: dict[str, object] = {
            "credential": client_cred,
            "verifier": ca.verifier(),
            "server_identity": SERVER,
            "group": ExchangeGroup.X25519,
            "clock": clock,
            "randomness": SeededRandomness(1),
        }
        args.update(kwargs)
        return Initiator(**args)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_responder(
    ca: ThrowawayCA, server_cred: Credential, clock: FakeClock, cache: ReplayCache
) -> MakeResponder:
    def make(**kwargs: object) -> Responder:
        args: dict[str, object] = {
            "credential": server_cred,
            "verifier": ca.verifier(),
            "replay_cache": cache,
            "clock": clock,
            "randomness": SeededRandomness(2),
        }
        args.update(kwargs)
        return Responder(**args)  # type: ignore[arg-type]

    return make
