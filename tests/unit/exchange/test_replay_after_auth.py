"""The responder's replay cache holds only nonces of handshakes whose initiator authenticated.

A ClientHello is checked (freshness, and "was this nonce used by a completed
handshake?") but not remembered; its nonce enters the cache once the
initiator's signature over a transcript holding it verified. So an
unauthenticated flood cannot fill the cache or raise its overload floor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from keymgmt.errors import HandshakeError, ReplayError, StaleMessageError
from keymgmt.exchange import (
    HandshakeComplete,
    HelloReceived,
    Initiator,
    ReplayCache,
    Responder,
)
from keymgmt.testing import FakeClock, SeededRandomness

MakeInitiator = Callable[..., Initiator]
MakeResponder = Callable[..., Responder]


def _finish(initiator: Initiator, responder: Responder, hello: bytes) -> bytes:
    """Run the handshake on ``hello``; return the ClientFinish that completed it."""
    responder.receive_data(hello)
    assert isinstance(responder.next_event(), HelloReceived)
    initiator.receive_data(responder.data_to_send())
    assert isinstance(initiator.next_event(), HandshakeComplete)
    finish = initiator.data_to_send()
    responder.receive_data(finish)
    assert isinstance(responder.next_event(), HandshakeComplete)
    return finish


def test_unanswered_hellos_leave_the_replay_cache_empty(
    make_initiator: MakeInitiator, make_responder: MakeResponder, cache: ReplayCache
) -> None:
    for seed in range(20):
        responder = make_responder()
        responder.receive_data(make_initiator(randomness=SeededRandomness(100 + seed)).start())
        assert isinstance(responder.next_event(), HelloReceived)
    assert len(cache) == 0


def test_nonce_is_remembered_once_the_initiator_authenticated(
    make_initiator: MakeInitiator, make_responder: MakeResponder, cache: ReplayCache
) -> None:
    initiator, responder = make_initiator(), make_responder()
    _finish(initiator, responder, initiator.start())
    assert len(cache) == 1


def test_hello_flood_beyond_the_cap_cannot_lock_honest_clients_out(
    make_initiator: MakeInitiator, make_responder: MakeResponder, clock: FakeClock
) -> None:
    # Before: each flooded hello took a place in the cache; past the cap the
    # cache raised its floor to the flood's (future) timestamps and refused
    # every honest hello as stale for up to the skew.
    small = ReplayCache(clock=clock, max_entries=4)
    ahead = clock.now() + dt.timedelta(seconds=30)
    for seed in range(12):
        flooder = make_initiator(randomness=SeededRandomness(500 + seed))
        responder = make_responder(replay_cache=small)
        responder.receive_data(flooder.start(at=ahead))
        responder.next_event()
    honest, responder = make_initiator(), make_responder(replay_cache=small)
    _finish(honest, responder, honest.start())
    assert small.evictions == 0


def test_replayed_hello_of_an_unfinished_handshake_is_answered_but_cannot_complete(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    initiator = make_initiator()
    hello = initiator.start()
    genuine = make_responder()
    genuine.receive_data(hello)
    genuine.next_event()
    replayed = make_responder(randomness=SeededRandomness(99))  # a fresh share and nonce
    replayed.receive_data(hello)
    assert isinstance(replayed.next_event(), HelloReceived)
    initiator.receive_data(genuine.data_to_send())
    initiator.next_event()
    replayed.receive_data(initiator.data_to_send())  # the only ClientFinish there is
    with pytest.raises(HandshakeError) as info:
        replayed.next_event()
    assert info.value.reason == "bad-seal"


def test_clientfinish_replayed_to_a_responder_that_repeats_its_randomness_is_refused(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    # Two responders that draw the same nonce and share (a restored snapshot;
    # here the same seed) answer one hello identically, so the recorded
    # ClientFinish is valid for both: the cache lets only one complete.
    initiator = make_initiator()
    hello = initiator.start()
    first, second = make_responder(), make_responder()
    second.receive_data(hello)
    second.next_event()
    finish = _finish(initiator, first, hello)
    second.receive_data(finish)
    with pytest.raises(ReplayError):
        second.next_event()


def test_handshake_slower_than_the_window_is_refused_at_clientfinish(
    make_initiator: MakeInitiator, make_responder: MakeResponder, clock: FakeClock
) -> None:
    initiator, responder = make_initiator(), make_responder()
    responder.receive_data(initiator.start())
    responder.next_event()
    initiator.receive_data(responder.data_to_send())
    initiator.next_event()
    clock.advance(minutes=6)
    responder.receive_data(initiator.data_to_send())
    with pytest.raises(StaleMessageError) as info:
        responder.next_event()
    assert info.value.reason == "too-old"


def test_unauthenticated_clientfinish_leaves_the_cache_empty(
    make_initiator: MakeInitiator, make_responder: MakeResponder, cache: ReplayCache
) -> None:
    initiator, responder = make_initiator(), make_responder()
    responder.receive_data(initiator.start())
    responder.next_event()
    initiator.receive_data(responder.data_to_send())
    initiator.next_event()
    finish = bytearray(initiator.data_to_send())
    finish[-1] ^= 1
    responder.receive_data(bytes(finish))
    with pytest.raises(HandshakeError):
        responder.next_event()
    assert len(cache) == 0
