"""The registry refuses an invalidity date after the revocation (review of issue #5)."""

from __future__ import annotations

import datetime as dt

import pytest

from keymgmt import KeyManager, RevocationReason, SubjectKind
from keymgmt.errors import InvalidArgumentError
from keymgmt.testing import FakeClock

UTC = dt.UTC
CERT = SubjectKind.CERTIFICATE


@pytest.mark.parametrize(
    "when",
    [dt.datetime(9999, 1, 1, tzinfo=UTC), dt.datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)],
)
def test_an_invalidity_date_after_the_revocation_is_refused_and_nothing_is_revoked(
    km: KeyManager, clock: FakeClock, when: dt.datetime
) -> None:
    assert clock.now() < when
    with pytest.raises(InvalidArgumentError, match="after the revocation"):
        km.revocation.revoke(CERT, "ca:01", "key-compromise", invalidity_date=when)
    assert not km.revocation.is_revoked(CERT, "ca:01")


def test_an_invalidity_date_at_the_revocation_time_is_kept(
    km: KeyManager, clock: FakeClock
) -> None:
    revoked = km.revocation.revoke(CERT, "ca:01", "key-compromise", invalidity_date=clock.now())
    assert revoked.invalidity_date == revoked.revoked_at == clock.now()


def test_a_future_invalidity_date_cannot_be_added_to_an_existing_revocation(
    km: KeyManager, clock: FakeClock
) -> None:
    km.revocation.revoke(CERT, "ca:01", "superseded")
    with pytest.raises(InvalidArgumentError):
        km.revocation.revoke(
            CERT, "ca:01", "key-compromise", invalidity_date=clock.now() + dt.timedelta(days=1)
        )
    stored = km.revocation.get(CERT, "ca:01")
    assert stored is not None
    assert (stored.reason, stored.invalidity_date) == (RevocationReason.SUPERSEDED, None)


def test_an_upgrade_may_date_the_compromise_after_the_first_revocation(
    km: KeyManager, clock: FakeClock
) -> None:
    # Held at t0, found compromised since t1 (before now): the entry keeps t0 as its
    # revocation date; the bound is the time the upgrade is recorded.
    first = km.revocation.revoke(CERT, "ca:01", "certificate-hold")
    clock.advance(3600)
    since = first.revoked_at + dt.timedelta(minutes=30)
    upgraded = km.revocation.revoke(CERT, "ca:01", "key-compromise", invalidity_date=since)
    assert upgraded.revoked_at == first.revoked_at
    assert upgraded.invalidity_date == since
