"""Review: two usage flushes of one key store at once (hot path and an explicit flush).

The hot path flushes from whichever thread crosses the threshold, and a
compromise response or ``data_keys_issued`` flushes explicitly; they may
overlap. Each use must be counted once and each data key logged before an
explicit flush returns.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterator, Sequence

import pytest

from keymgmt import KeyManager
from keymgmt.keyring import RawMasterKey
from keymgmt.keys import DataKeyLogMode, DataKeyLogPolicy
from keymgmt.storage import MemoryBackend, Operation, Record
from keymgmt.testing import FakeClock, SeededRandomness

_WAIT = 10.0  # failsafe only: every wait below is released by an event


class HoldFirstFlush(MemoryBackend):
    """Runs ``hook`` before the first commit that writes the data-key log.

    A read from ``watched`` sets ``read_by_watched``: the second flush has
    taken its snapshot and reads the version record to add to it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hook: Callable[[], None] | None = None
        self.watched: threading.Thread | None = None
        self.read_by_watched: threading.Event | None = None

    def get(self, kind: str, name: str) -> Record | None:
        if self.read_by_watched is not None and threading.current_thread() is self.watched:
            self.read_by_watched.set()
        return super().get(kind, name)

    def commit(self, operations: Sequence[Operation]) -> builtins.list[Record]:
        if self.hook is not None and any(op.kind == "datakey" for op in operations):
            hook, self.hook = self.hook, None
            hook()
        return super().commit(operations)


class SignallingLock:
    """A lock that says when someone has to wait for it (to keep the test deterministic)."""

    def __init__(self, waiting: threading.Event) -> None:
        self._lock = threading.Lock()
        self._waiting = waiting

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        if not blocking:
            return False
        self._waiting.set()
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@pytest.fixture
def backend() -> HoldFirstFlush:
    return HoldFirstFlush()


@pytest.fixture
def manager(backend: HoldFirstFlush, clock: FakeClock) -> Iterator[KeyManager]:
    with KeyManager(
        backend=backend,
        master_key=RawMasterKey(bytes(32)),
        clock=clock,
        randomness=SeededRandomness(7),
        consistency_interval=3600,
    ) as km:
        # These tests are about the usage flush, which writes the data-key
        # log only in batched mode.
        km.keys.data_key_log_policy = DataKeyLogPolicy(mode=DataKeyLogMode.BATCHED)
        yield km


def _overlap_flushes(km: KeyManager, backend: HoldFirstFlush) -> None:
    """Start a flush, and a second one while the first is writing; wait for both."""
    # The second flush finished, reads the store to write its snapshot, or
    # waits for the first flush.
    progressed = threading.Event()
    km.keys._flush_lock = SignallingLock(progressed)  # type: ignore[assignment]

    def flush_again() -> None:
        km.keys.flush_usage()
        progressed.set()

    second = threading.Thread(target=flush_again)
    backend.watched, backend.read_by_watched = second, progressed

    def while_first_writes() -> None:
        second.start()
        assert progressed.wait(_WAIT)

    backend.hook = while_first_writes
    km.keys.flush_usage()
    second.join(_WAIT)
    assert not second.is_alive()


def test_overlapping_flushes_count_each_use_once(
    manager: KeyManager, backend: HoldFirstFlush
) -> None:
    manager.keys.create("k")
    for _ in range(3):
        manager.keys.encrypt("k", b"x")
    manager.keys.generate_data_key("k")  # so the flush writes a data-key record
    _overlap_flushes(manager, backend)
    stored = manager._store.get_json("keyver", "k#1")
    assert stored is not None
    assert stored["uses"] == 4
    usage = [e for e in manager.audit.entries() if e.operation == "key.usage"]
    assert sum(int(e.details["count"] or 0) for e in usage) == 4
    assert manager.keys.get("k").versions[0].uses == 4
