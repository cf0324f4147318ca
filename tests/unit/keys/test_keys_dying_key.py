"""A key whose destruction is scheduled or done is not renewed by a rotation.

``schedule_destruction(name)`` (the whole key) deactivates every version and
destroys them after the grace period. A rotation would give the dying key a
fresh active version, and it would live on under the same name: refused,
until the destruction is cancelled.
"""

from __future__ import annotations

import datetime as _dt

import pytest

from keymgmt import KeyManager
from keymgmt.errors import KeyStateError
from keymgmt.model import KeyState
from keymgmt.testing import FakeClock


def _states(km: KeyManager) -> list[tuple[int, KeyState]]:
    return [(v.version, v.state) for v in km.keys.get("k").versions]


def test_a_key_scheduled_for_destruction_is_not_rotated(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.schedule_destruction("k")
    with pytest.raises(KeyStateError, match="scheduled for destruction; cancel_destruction"):
        km.keys.rotate("k")
    assert _states(km) == [(1, KeyState.DEACTIVATED)]


def test_a_destroyed_key_is_not_rotated(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k")
    km.keys.schedule_destruction("k", grace=_dt.timedelta(0))
    clock.advance(_dt.timedelta(seconds=1))
    with pytest.raises(KeyStateError, match="is destroyed"):
        km.keys.rotate("k")
    assert _states(km) == [(1, KeyState.DESTROYED)]


def test_after_cancelling_the_destruction_the_key_rotates_again(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.schedule_destruction("k")
    km.keys.cancel_destruction("k")
    assert km.keys.rotate("k").state is KeyState.ACTIVE


def test_an_old_version_scheduled_for_destruction_does_not_stop_rotation(
    km: KeyManager,
) -> None:
    km.keys.create("k")
    km.keys.rotate("k")
    km.keys.schedule_destruction("k", 1)
    assert km.keys.rotate("k").version == 3


def test_compromising_a_dying_key_revokes_without_renewing_it(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.schedule_destruction("k")
    report = km.compromise(key="k#1")
    assert report.rotated == ()
    assert _states(km) == [(1, KeyState.COMPROMISED)]
