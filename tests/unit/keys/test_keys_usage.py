"""Usage accounting: counted in memory, flushed in aggregate, shared between processes."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from keymgmt import KeyManager
from keymgmt.errors import KeyNotFoundError
from keymgmt.keys import _keystore
from keymgmt.keys._format import parse_header


def test_uses_are_flushed_by_themselves_after_the_threshold(
    km: KeyManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_keystore, "_FLUSH_EVERY", 10)
    km.keys.create("k")
    for _ in range(10):
        km.encrypt("k", b"x")
    record = km._store.get_json("keyver", "k#1")
    assert record is not None
    assert record["uses"] == 10
    entry = km.audit.tail(1)[0]
    assert (entry.operation, entry.details["count"]) == ("key.usage", 10)


def test_a_failed_rotation_writes_nothing_even_with_uses_pending(km: KeyManager) -> None:
    km.keys.create("k")
    km.encrypt("k", b"x")
    before = km._store.backend.generation()
    with pytest.raises(KeyNotFoundError):
        km.keys.rotate("nobody")
    with pytest.raises(KeyNotFoundError):
        km.keys.revoke("k", 5)
    assert km._store.backend.generation() == before


def test_two_processes_uses_add_up(open_sqlite_km: Callable[[], KeyManager]) -> None:
    with open_sqlite_km() as first, open_sqlite_km() as second:
        first.keys.create("k")
        for _ in range(3):
            first.encrypt("k", b"x")
        for _ in range(4):
            second.encrypt("k", b"x")
        first.keys.flush_usage()
        second.keys.flush_usage()
        assert first.keys.get("k").primary.uses == 7


def test_threads_encrypting_through_a_rotation_lose_nothing(km: KeyManager) -> None:
    km.keys.create("k")
    results: list[tuple[bytes, bytes]] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        for i in range(200):
            plaintext = f"{worker}:{i}".encode()
            ciphertext = bytes(km.encrypt("k", plaintext, {"w": str(worker)}))
            with lock:
                results.append((plaintext, ciphertext))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        km.keys.rotate("k")
    for thread in threads:
        thread.join()
    assert len(results) == 800
    for plaintext, ciphertext in results:
        worker = plaintext.split(b":")[0].decode()
        assert km.decrypt(ciphertext, {"w": worker}) == plaintext
    assert {parse_header(c).version for _, c in results} <= {1, 2, 3, 4}


def test_cache_misses_racing_commits_neither_deadlock_nor_go_stale(km: KeyManager) -> None:
    km.keys.create("k")
    ciphertexts = [bytes(km.encrypt("k", b"v1"))]
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                for ciphertext in list(ciphertexts):
                    km.decrypt(ciphertext)
                km.keys._invalidate("k")  # force cache misses
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(20):
        km.keys.rotate("k")
        ciphertexts.append(bytes(km.encrypt("k", b"later")))
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "deadlock"
    assert errors == []
    assert parse_header(km.encrypt("k", b"x")).version == 21
