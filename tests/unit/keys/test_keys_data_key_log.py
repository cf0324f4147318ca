"""The data-key log's policy: ``each`` logs durably before returning, ``batched`` within bounds."""

from __future__ import annotations

import builtins
import datetime as dt
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from keymgmt import KeyManager
from keymgmt.errors import InvalidArgumentError, RevokedError, StoreUnavailableError
from keymgmt.keyring import KdfProfile, RawMasterKey
from keymgmt.keys import DataKeyLogMode, DataKeyLogPolicy, data_key_id
from keymgmt.keys._datakeys import DATA_KEY_KIND
from keymgmt.revocation import SubjectKind
from keymgmt.storage import MemoryBackend, Operation, Record
from keymgmt.testing import FakeClock, SeededRandomness

BATCHED = DataKeyLogPolicy(mode=DataKeyLogMode.BATCHED)


def _logged(km: KeyManager) -> int:
    """Data-key log records in the store (read directly: no flush)."""
    return len(km._store.list_json(DATA_KEY_KIND))


def test_each_mode_is_the_default(km: KeyManager) -> None:
    assert km.keys.data_key_log_policy.mode is DataKeyLogMode.EACH


def test_each_mode_data_key_is_in_the_store_when_returned(km: KeyManager) -> None:
    km.keys.create("payments")
    data_key = km.generate_data_key("payments")
    stored = km._store.list_json(DATA_KEY_KIND, prefix="payments#1:")
    assert len(stored) == 1
    assert km.keys.data_keys_issued("payments", 1)[0].id == data_key.id


def test_each_mode_rewrapped_data_key_is_logged_under_its_new_version(km: KeyManager) -> None:
    km.keys.create("payments")
    data_key = km.generate_data_key("payments")
    km.keys.rotate("payments")
    moved = km.rewrap(data_key.wrapped)
    assert _logged(km) == 2
    [issue] = km.keys.data_keys_issued("payments", 2)
    assert issue.id == data_key_id(moved)


def test_batched_mode_keeps_data_keys_in_memory_until_a_flush(km: KeyManager) -> None:
    km.keys.data_key_log_policy = BATCHED
    km.keys.create("payments")
    km.generate_data_key("payments")
    assert _logged(km) == 0
    km.keys.flush_usage()
    assert _logged(km) == 1


def test_batched_mode_writes_once_batch_size_are_pending(km: KeyManager) -> None:
    km.keys.data_key_log_policy = DataKeyLogPolicy(mode="batched", batch_size=3)
    km.keys.create("payments")
    km.generate_data_key("payments")
    km.generate_data_key("payments")
    assert _logged(km) == 0
    km.generate_data_key("payments")
    assert len(km.keys.data_keys_issued("payments")) == 3
    assert _logged(km) == 1  # one packed record


def test_batched_mode_writes_when_the_oldest_has_waited_the_interval(
    km: KeyManager, clock: FakeClock
) -> None:
    km.keys.data_key_log_policy = DataKeyLogPolicy(mode="batched", interval=dt.timedelta(seconds=5))
    km.keys.create("payments")
    km.generate_data_key("payments")
    clock.advance(seconds=4)
    km.generate_data_key("payments")
    assert _logged(km) == 0
    clock.advance(seconds=1)
    km.generate_data_key("payments")
    assert _logged(km) == 1


def test_switching_policy_writes_what_is_pending(km: KeyManager) -> None:
    km.keys.data_key_log_policy = BATCHED
    km.keys.create("payments")
    km.generate_data_key("payments")
    km.keys.data_key_log_policy = DataKeyLogPolicy()
    assert _logged(km) == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mode": "off"}, "unknown data-key log mode 'off'; expected one of: each, batched"),
        ({"batch_size": 0}, "batch_size must be a positive int"),
        ({"batch_size": True}, "batch_size must be a positive int"),
        ({"interval": dt.timedelta(0)}, "interval must be a positive timedelta"),
    ],
)
def test_policy_refuses_bad_settings(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        DataKeyLogPolicy(**arguments)  # type: ignore[arg-type]
    assert caught.value.message == message


def test_policy_setter_refuses_other_objects(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        km.keys.data_key_log_policy = "each"  # type: ignore[assignment]
    assert caught.value.message == "data_key_log_policy takes a DataKeyLogPolicy"


class FailDataKeyWrites(MemoryBackend):
    """Refuses every commit that writes the data-key log."""

    def commit(self, operations: Sequence[Operation]) -> builtins.list[Record]:
        if any(op.kind == DATA_KEY_KIND for op in operations):
            raise StoreUnavailableError("the store is down")
        return super().commit(operations)


def test_each_mode_does_not_return_a_data_key_it_could_not_log(clock: FakeClock) -> None:
    with KeyManager(
        backend=FailDataKeyWrites(),
        master_key=RawMasterKey(bytes(32)),
        clock=clock,
        randomness=SeededRandomness(3),
    ) as km:
        km.keys.create("payments")
        with pytest.raises(StoreUnavailableError):
            km.generate_data_key("payments")


# -- two processes on one store --------------------------------------------------------


def _open(path: Path, clock: FakeClock, interval: float) -> KeyManager:
    return KeyManager.open(
        path,
        passphrase="pw",
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=clock,
        consistency_interval=interval,
    )


def test_each_mode_compromise_in_another_process_names_the_data_key(
    store_path: Path, clock: FakeClock
) -> None:
    with _open(store_path, clock, 0) as issuer, _open(store_path, clock, 0) as responder:
        issuer.keys.create("payments")
        data_key = issuer.generate_data_key("payments")
        report = responder.compromise(key="payments#1")
        assert [i.id for i in report.data_key_issues] == [data_key.id]


def test_batched_mode_compromise_in_another_process_misses_unflushed_data_keys(
    store_path: Path, clock: FakeClock
) -> None:
    # The documented bound of batched mode, pinned: why it is not the default.
    with _open(store_path, clock, 0) as issuer, _open(store_path, clock, 0) as responder:
        issuer.keys.data_key_log_policy = BATCHED
        issuer.keys.create("payments")
        issuer.generate_data_key("payments")
        report = responder.compromise(key="payments#1")
        assert report.data_key_issues == ()


def test_each_mode_refuses_a_data_key_under_a_version_compromised_elsewhere(
    store_path: Path, clock: FakeClock
) -> None:
    # The issuer's cache (consistency_interval=3600) still holds version 1 as
    # active primary: the encryption succeeds, the log write reads the
    # compromise and refuses to hand the data key out.
    with _open(store_path, clock, 3600) as issuer, _open(store_path, clock, 0) as responder:
        issuer.keys.create("payments")
        issuer.encrypt("payments", b"warm the cache")
        responder.compromise(key="payments#1")
        with pytest.raises(RevokedError) as caught:
            issuer.generate_data_key("payments")
        assert caught.value.message == (
            "key 'payments' version 1 is compromised (key-compromise); "
            "the data key was not handed out"
        )
        assert responder.keys.data_keys_issued("payments") == []


def test_each_mode_refuses_a_data_key_when_only_the_registry_says_compromised(
    store_path: Path, clock: FakeClock
) -> None:
    with _open(store_path, clock, 3600) as issuer, _open(store_path, clock, 0) as responder:
        issuer.keys.create("payments")
        issuer.encrypt("payments", b"warm the cache")
        responder.revocation.revoke(SubjectKind.KEY, "payments", "key-compromise")
        with pytest.raises(RevokedError):
            issuer.generate_data_key("payments")
        assert responder.keys.data_keys_issued("payments") == []


def test_each_mode_logs_data_keys_of_one_clock_tick_in_issuance_order(km: KeyManager) -> None:
    km.keys.create("payments")
    made = [km.generate_data_key("payments").id for _ in range(5)]
    assert [i.id for i in km.keys.data_keys_issued("payments")] == made


# -- each mode: concurrent callers share a commit ---------------------------------------

_WAIT = 10.0  # failsafe only: every wait below is released by a condition


class HoldFirstDataKeyCommit(MemoryBackend):
    """Runs ``hook`` inside the first commit that writes the data-key log; counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.hook: Callable[[], None] | None = None
        self.data_key_commits: builtins.list[int] = []  # data-key records per commit

    def commit(self, operations: Sequence[Operation]) -> builtins.list[Record]:
        writes = [op for op in operations if op.kind == DATA_KEY_KIND and hasattr(op, "data")]
        if writes:
            if self.hook is not None:
                hook, self.hook = self.hook, None
                hook()
            self.data_key_commits.append(len(writes))
        return super().commit(operations)


def _group(
    km: KeyManager, backend: HoldFirstDataKeyCommit, names: builtins.list[str]
) -> dict[str, object]:
    """One data key of ``names[0]`` whose commit waits until one per other name is queued.

    Returns each caller's result: its DataKey id, or the exception it raised.
    """
    writer = km.keys._data_key_writer
    results: dict[str, object] = {}

    def call(label: str, name: str) -> None:
        try:
            results[label] = km.generate_data_key(name).id
        except Exception as exc:
            results[label] = exc

    followers = [
        threading.Thread(target=call, args=(f"{i}:{name}", name))
        for i, name in enumerate(names[1:], 1)
    ]

    def while_the_first_commits() -> None:
        for thread in followers:
            thread.start()
        with writer._cond:
            assert writer._cond.wait_for(lambda: len(writer._queue) == len(followers), _WAIT)

    backend.hook = while_the_first_commits
    call(f"0:{names[0]}", names[0])
    for thread in followers:
        thread.join(_WAIT)
        assert not thread.is_alive()
    return results


def test_each_mode_concurrent_data_keys_share_the_next_commit(clock: FakeClock) -> None:
    backend = HoldFirstDataKeyCommit()
    with KeyManager(backend=backend, master_key=RawMasterKey(bytes(32)), clock=clock) as km:
        km.keys.create("payments")
        results = _group(km, backend, ["payments"] * 4)
        assert backend.data_key_commits == [1, 1]  # the first alone, then three in one record
        logged = {i.id for i in km.keys.data_keys_issued("payments")}
        assert logged == set(results.values())


def test_each_mode_a_refused_version_fails_only_its_callers_in_a_group(clock: FakeClock) -> None:
    backend = HoldFirstDataKeyCommit()
    with KeyManager(
        backend=backend,
        master_key=RawMasterKey(bytes(32)),
        clock=clock,
        consistency_interval=3600,  # its cache will not see the compromise
    ) as km:
        km.keys.create("payments")
        km.keys.create("leaked")
        km.encrypt("leaked", b"warm the cache")
        # Another manager on the same store (another process) compromises "leaked".
        other = KeyManager(backend=backend, master_key=RawMasterKey(bytes(32)), clock=clock)
        other.compromise(key="leaked#1")
        results = _group(km, backend, ["payments", "payments", "leaked", "payments"])
        assert isinstance(results["2:leaked"], RevokedError)
        ok = {v for k, v in results.items() if k != "2:leaked"}
        assert all(isinstance(v, str) for v in ok)
        assert {i.id for i in km.keys.data_keys_issued("payments")} == ok
        assert km.keys.data_keys_issued("leaked", 1) == []


def test_each_mode_refuses_a_data_key_after_a_compromise_elsewhere_of_a_version_it_logged(
    store_path: Path, clock: FakeClock
) -> None:
    # The first data key caches the version's record and revocation
    # revisions; the compromise moves the record past them, so the next
    # data key's commit conflicts, runs again reading it, and refuses.
    with _open(store_path, clock, 3600) as issuer, _open(store_path, clock, 0) as responder:
        issuer.keys.create("payments")
        first = issuer.generate_data_key("payments")
        report = responder.compromise(key="payments#1")
        with pytest.raises(RevokedError):
            issuer.generate_data_key("payments")
        assert [i.id for i in report.data_key_issues] == [first.id]
        assert [i.id for i in responder.keys.data_keys_issued("payments")] == [first.id]


def test_each_mode_refuses_a_data_key_after_a_registry_compromise_elsewhere_of_a_version_it_logged(
    store_path: Path, clock: FakeClock
) -> None:
    with _open(store_path, clock, 3600) as issuer, _open(store_path, clock, 0) as responder:
        issuer.keys.create("payments")
        issuer.generate_data_key("payments")
        responder.revocation.revoke(SubjectKind.KEY, "payments", "key-compromise")
        with pytest.raises(RevokedError):
            issuer.generate_data_key("payments")
        assert len(responder.keys.data_keys_issued("payments")) == 1


def test_each_mode_hands_out_a_data_key_when_another_process_made_its_cache_stale(
    store_path: Path, clock: FakeClock
) -> None:
    # The other process's usage flush writes the version record past the
    # revision the issuer cached (it does not sync for an hour): the data
    # key's commit conflicts once and runs again reading the record.
    with _open(store_path, clock, 3600) as issuer, _open(store_path, clock, 0) as other:
        issuer.keys.create("payments")
        issuer.generate_data_key("payments")
        other.encrypt("payments", b"counted")
        other.keys.flush_usage()
        data_key = issuer.generate_data_key("payments")
        assert data_key.id in [i.id for i in other.keys.data_keys_issued("payments")]


class _CountingBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.gets: list[tuple[str, str]] = []

    def get(self, kind: str, name: str) -> Record | None:
        self.gets.append((kind, name))
        return super().get(kind, name)


def test_each_mode_checks_a_logged_version_without_reading_it_again(clock: FakeClock) -> None:
    # The first data key reads the version's record and revocation entries
    # (with their revisions); the next commits expect those revisions.
    backend = _CountingBackend()
    with KeyManager(
        backend=backend,
        master_key=RawMasterKey(bytes(32)),
        clock=clock,
        randomness=SeededRandomness(3),
    ) as km:
        km.keys.create("payments")
        km.generate_data_key("payments")
        backend.gets.clear()
        data_key = km.generate_data_key("payments")
        assert [g for g in backend.gets if g[0] in ("keyver", "revocation")] == []
        assert data_key.id in [i.id for i in km.keys.data_keys_issued("payments")]
