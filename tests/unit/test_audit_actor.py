"""The audit actor can be named per context (a request, a thread)."""

from __future__ import annotations

import threading

import pytest

from keymgmt import InvalidArgumentError, KeyManager


def _last_actor(km: KeyManager) -> str:
    return km.audit.tail(1)[0].actor


def test_entries_inside_acting_as_name_the_actor_and_outside_the_default(
    km: KeyManager,
) -> None:
    with km.acting_as("alice"):
        km.keys.create("payments")
    assert _last_actor(km) == "alice"
    km.keys.rotate("payments")
    assert _last_actor(km) == "local"


def test_acting_as_is_per_thread(km: KeyManager) -> None:
    km.keys.create("shared")
    seen: dict[str, str] = {}

    def rotate_as(who: str) -> None:
        with km.acting_as(who):
            km.keys.rotate("shared")
            seen[who] = [e.actor for e in km.audit.entries() if e.operation == "key.rotate"][-1]

    with km.acting_as("main"):
        thread = threading.Thread(target=rotate_as, args=("worker",))
        thread.start()
        thread.join()
        km.keys.rotate("shared")
    rotations = [e.actor for e in km.audit.entries() if e.operation == "key.rotate"]
    assert sorted(rotations) == ["main", "worker"]
    assert seen["worker"] == "worker"


@pytest.mark.parametrize("actor", ["", 3])
def test_an_empty_or_non_string_actor_is_refused(km: KeyManager, actor: object) -> None:
    with pytest.raises(InvalidArgumentError, match="non-empty string"), km.acting_as(actor):  # type: ignore[arg-type]
        pass


def test_aggregated_usage_names_the_process_not_the_caller_who_flushed(km: KeyManager) -> None:
    km.keys.create("payments")
    with km.acting_as("bob"):
        km.encrypt("payments", b"x")
        km.keys.flush_usage()
    usage = [e for e in km.audit.entries() if e.operation == "key.usage"]
    assert usage
    assert {e.actor for e in usage} == {"local"}
