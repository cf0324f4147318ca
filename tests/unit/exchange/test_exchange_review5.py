"""Fifth review of the exchange: the handshake audit under a failing store."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import pytest

from keymgmt import KeyManager
from keymgmt.errors import HandshakeError, StoreUnavailableError
from keymgmt.exchange import Credential, HandshakeAuditPolicy
from keymgmt.pki import CertificateAuthority
from keymgmt.testing import FakeClock, handshake_pair

SERVER = "server.example"
CLIENT = "client.example"


@pytest.fixture
def creds(km: KeyManager) -> tuple[Credential, Credential]:
    root: CertificateAuthority = km.pki.create_root_ca("review5-root", key_type="ed25519")
    server = km.exchange.credential(root, SERVER, client=False)
    client = km.exchange.credential(root, CLIENT, server=False)
    return server, client


def _garbage_hellos(km: KeyManager, server: Credential, n: int) -> None:
    for _ in range(n):
        responder = km.exchange.responder(server)
        responder.receive_data(b"\x01\x01\x00\x00\x01\x00")  # a one-byte ClientHello
        with pytest.raises(HandshakeError):
            responder.next_event()


def _broken_store(km: KeyManager, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]

    def broken(fn: Any) -> Any:
        calls[0] += 1
        raise StoreUnavailableError("the store is unavailable")

    monkeypatch.setattr(km._store, "transact", broken)
    return calls


def test_refusal_flood_on_a_failing_store_tries_one_write_per_interval(
    km: KeyManager,
    creds: tuple[Credential, Credential],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _garbage_hellos(km, creds[0], 1)
    calls = _broken_store(km, monkeypatch)
    clock.advance(seconds=10)
    with caplog.at_level(logging.WARNING, logger="keymgmt.exchange"):
        _garbage_hellos(km, creds[0], 100)
    # One failed write, then the refusals are only counted again (no store
    # call, no logged traceback per refusal) until the interval has passed.
    assert calls[0] == 1
    assert len(caplog.records) == 1
    clock.advance(seconds=10)
    _garbage_hellos(km, creds[0], 100)
    assert calls[0] == 2
    monkeypatch.undo()
    km.exchange.flush_audit()
    (entry,) = [e for e in km.audit.entries() if e.operation == "exchange.handshake"]
    assert entry.details["count"] == 201


def test_accepted_handshakes_on_a_failing_store_try_one_write_per_interval(
    km: KeyManager,
    creds: tuple[Credential, Credential],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    km.exchange.audit_policy = HandshakeAuditPolicy(batch_size=2)
    server, client = creds
    calls = _broken_store(km, monkeypatch)
    for _ in range(5):  # ten accepted sides, each over the batch size
        handshake_pair(
            km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(server)
        )
    assert calls[0] == 1
    clock.advance(seconds=10)
    handshake_pair(
        km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(server)
    )
    assert calls[0] == 2
    monkeypatch.undo()
    km.exchange.flush_audit()
    accepted = [e for e in km.audit.entries() if e.outcome == "accepted"]
    assert len(accepted) == 12


def test_close_releases_the_store_when_the_audit_cannot_be_written(
    km: KeyManager, creds: tuple[Credential, Credential], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, client = creds
    handshake_pair(
        km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(server)
    )
    _broken_store(km, monkeypatch)
    with pytest.raises(StoreUnavailableError):
        km.close()  # the pending entries cannot be written: said, not swallowed
    assert km._backend._closed  # type: ignore[attr-defined]  # but the store is released


class _FlushBetweenReadAndLock:
    """The audit's lock, which lets "another thread" flush once just before it is taken."""

    def __init__(self, km: KeyManager) -> None:
        self._inner = threading.Lock()
        self._km = km
        self.armed = False

    def __enter__(self) -> None:
        if self.armed:
            self.armed = False
            self._km.exchange.flush_audit()  # swaps the pending list
        self._inner.acquire()

    def __exit__(self, *exc: object) -> None:
        self._inner.release()


def test_an_accepted_entry_reported_while_another_thread_flushes_is_not_lost(
    km: KeyManager, creds: tuple[Credential, Credential]
) -> None:
    # accepted() took the pending list before its lock: a flush in between
    # swapped it out, and the entry went into the list being written (or
    # already written), never to be seen again.
    server, client = creds
    audit = km.exchange._audit
    lock = _FlushBetweenReadAndLock(km)
    audit._lock = lock  # type: ignore[assignment]
    initiator = km.exchange.initiator(client, server_identity=SERVER)
    responder = km.exchange.responder(server)
    responder.receive_data(initiator.start())
    responder.next_event()
    initiator.receive_data(responder.data_to_send())
    lock.armed = True
    initiator.next_event()  # completes: its entry is reported as the flush runs
    responder.receive_data(initiator.data_to_send())
    responder.next_event()
    km.exchange.flush_audit()
    roles = sorted(e.details["role"] for e in km.audit.entries() if e.outcome == "accepted")
    assert roles == ["initiator", "responder"]


def test_a_clock_stepped_back_after_a_failed_write_does_not_stop_the_retries(
    km: KeyManager,
    creds: tuple[Credential, Credential],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _garbage_hellos(km, creds[0], 1)
    calls = _broken_store(km, monkeypatch)
    clock.advance(seconds=10)
    _garbage_hellos(km, creds[0], 1)
    assert calls[0] == 1
    clock.set(clock.now() - dt.timedelta(hours=1))  # the wall clock was set back
    _garbage_hellos(km, creds[0], 1)
    assert calls[0] == 2


def test_a_failed_write_under_the_longest_interval_does_not_fail_the_handshake(
    km: KeyManager, creds: tuple[Credential, Credential], monkeypatch: pytest.MonkeyPatch
) -> None:
    km.exchange.audit_policy = HandshakeAuditPolicy(batch_size=1, interval=dt.timedelta.max)
    server, client = creds
    _broken_store(km, monkeypatch)
    handshake_pair(
        km.exchange.initiator(client, server_identity=SERVER), km.exchange.responder(server)
    )
    monkeypatch.undo()
    km.exchange.flush_audit()
    assert len([e for e in km.audit.entries() if e.outcome == "accepted"]) == 2
