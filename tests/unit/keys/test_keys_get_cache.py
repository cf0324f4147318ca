"""KeyStore.get reuses a key's records while the store has not moved, never answering stale."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keymgmt import KeyManager
from keymgmt.keyring import KdfProfile
from keymgmt.keys import KeyState
from keymgmt.revocation import RevocationReason, SubjectKind
from keymgmt.testing import FakeClock


def test_a_repeated_get_reads_only_the_store_generation(
    counted_km: KeyManager, counting: Any
) -> None:
    counted_km.keys.create("k")
    counted_km.keys.get("k")
    before = dict(counting.calls)
    for _ in range(50):
        assert counted_km.keys.get("k").name == "k"
    assert counting.calls == {**before, "generation": before["generation"] + 50}


def test_get_after_a_rotation_here_shows_the_new_version(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.get("k")
    km.keys.rotate("k")
    assert km.keys.get("k").primary_version == 2


def test_get_after_a_state_change_here_shows_it(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.get("k")
    km.keys.suspend("k", 1)
    assert km.keys.get("k").versions[0].state is KeyState.SUSPENDED


def test_get_shows_an_activation_date_passing(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k", activation_date=clock.now() + dt.timedelta(hours=1))
    assert km.keys.get("k").versions[0].state is KeyState.PRE_ACTIVE
    clock.advance(dt.timedelta(hours=2))
    assert km.keys.get("k").versions[0].state is KeyState.ACTIVE


def test_get_shows_a_due_destruction_and_writes_it(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k")
    km.keys.rotate("k")
    km.keys.schedule_destruction("k", 1, grace=dt.timedelta(days=1))
    km.keys.get("k")
    clock.advance(dt.timedelta(days=2))
    assert km.keys.get("k").versions[0].state is KeyState.DESTROYED
    assert any(e.operation == "key.destroy" for e in km.audit.entries())


def test_get_shows_a_revocation_made_through_the_registry(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.get("k")
    km.revocation.revoke(SubjectKind.KEY, "k#1", RevocationReason.KEY_COMPROMISE)
    assert km.keys.get("k").versions[0].state is KeyState.COMPROMISED


def test_get_counts_uses_across_a_usage_flush(km: KeyManager) -> None:
    km.keys.create("k")
    for _ in range(3):
        km.encrypt("k", b"x")
    assert km.keys.get("k").versions[0].uses == 3
    km.keys.flush_usage()
    assert km.keys.get("k").versions[0].uses == 3
    km.encrypt("k", b"x")
    km.keys.flush_usage()
    assert km.keys.get("k").versions[0].uses == 4


@pytest.fixture
def two_processes(store_path: Path, clock: FakeClock) -> Iterator[tuple[KeyManager, KeyManager]]:
    def open_one() -> KeyManager:
        return KeyManager.open(
            store_path,
            passphrase="pw",
            kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
            clock=clock,
            consistency_interval=0,
        )

    with open_one() as first, open_one() as second:
        yield first, second


def test_get_sees_another_process_rotating_the_key(
    two_processes: tuple[KeyManager, KeyManager],
) -> None:
    first, second = two_processes
    first.keys.create("k")
    assert second.keys.get("k").primary_version == 1
    first.keys.rotate("k")
    assert second.keys.get("k").primary_version == 2


def test_get_sees_another_process_rotating_even_with_hourly_syncs(
    store_path: Path, clock: FakeClock
) -> None:
    def open_one(interval: float) -> KeyManager:
        return KeyManager.open(
            store_path,
            passphrase="pw",
            kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
            clock=clock,
            consistency_interval=interval,
        )

    with open_one(0) as first, open_one(3600) as second:
        first.keys.create("k")
        assert second.keys.get("k").primary_version == 1
        first.keys.rotate("k")
        assert second.keys.get("k").primary_version == 2
