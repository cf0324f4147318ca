"""The service refuses settings that would switch its freshness or timeouts off."""

from __future__ import annotations

import math

import pytest

from keymgmt import KeyManager
from keymgmt.errors import InvalidArgumentError
from keymgmt.server import ServicePolicy
from keymgmt.server._app import Service
from keymgmt.server._parts import ManagerParts


@pytest.mark.parametrize("interval", [math.nan, math.inf, -1.0])
def test_a_sync_interval_that_is_not_a_finite_number_at_least_zero_is_refused(
    interval: float,
) -> None:
    # NaN is neither > 0 nor == 0: the service never synced with the store,
    # so another process's revocation of a client never reached it.
    with KeyManager.in_memory() as km, pytest.raises(InvalidArgumentError, match="sync_interval"):
        Service(ManagerParts(km), ServicePolicy(), sync_interval=interval)


@pytest.mark.parametrize("timeout", [math.nan, math.inf, 0.0])
def test_a_body_timeout_that_is_not_a_finite_positive_number_is_refused(timeout: float) -> None:
    with KeyManager.in_memory() as km, pytest.raises(InvalidArgumentError, match="body_timeout"):
        Service(ManagerParts(km), ServicePolicy(), body_timeout=timeout)


def test_finite_settings_are_taken() -> None:
    with KeyManager.in_memory() as km:
        service = Service(ManagerParts(km), ServicePolicy(), sync_interval=0.0, body_timeout=0.5)
    assert service.sync_interval == 0.0
    assert service.body_timeout == 0.5
