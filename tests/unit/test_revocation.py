"""The revocation registry: O(1) answers, persisted, upgrade rules, shared across managers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from keymgmt import KeyManager, Revocation, RevocationReason, SubjectKind
from keymgmt.errors import InvalidArgumentError
from keymgmt.keyring import KdfProfile
from keymgmt.revocation import REVOCATION_KIND
from keymgmt.testing import FakeClock

UTC = dt.UTC
KEY = SubjectKind.KEY
CERT = SubjectKind.CERTIFICATE
HOLD = RevocationReason.CERTIFICATE_HOLD


def open_sqlite(path: Path, clock: FakeClock, **kwargs: object) -> KeyManager:
    return KeyManager.open(
        path,
        passphrase="pw",
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


def test_nothing_is_revoked_at_first(km: KeyManager) -> None:
    assert not km.revocation.is_revoked(KEY, "payments#1")
    assert km.revocation.get(KEY, "payments#1") is None
    assert len(km.revocation) == 0


def test_revoke_records_reason_and_time(km: KeyManager, clock: FakeClock) -> None:
    result = km.revocation.revoke(KEY, "payments#1", RevocationReason.KEY_COMPROMISE)
    assert result == Revocation(
        kind=KEY,
        subject="payments#1",
        reason=RevocationReason.KEY_COMPROMISE,
        revoked_at=clock.now(),
    )
    assert km.revocation.is_revoked(KEY, "payments#1")
    assert km.revocation.get(KEY, "payments#1") == result


def test_subject_namespaces_are_separate(km: KeyManager) -> None:
    km.revocation.revoke(KEY, "alice")
    assert not km.revocation.is_revoked(SubjectKind.PRINCIPAL, "alice")


def test_kinds_and_reasons_may_be_given_as_strings(km: KeyManager) -> None:
    km.revocation.revoke("certificate", "ca1:0a", "key_compromise")  # type: ignore[arg-type]
    found = km.revocation.get("certificate", "ca1:0a")  # type: ignore[arg-type]
    assert found is not None
    assert (found.kind, found.reason) == (CERT, RevocationReason.KEY_COMPROMISE)


def test_revoking_is_audited(km: KeyManager) -> None:
    km.revocation.revoke(CERT, "ca1:0a", "superseded")
    entry = km.audit.tail(1)[0]
    assert (entry.operation, entry.object, entry.details) == (
        "revoke",
        "certificate:ca1:0a",
        {"reason": "superseded"},
    )


def test_revoking_again_with_the_same_reason_changes_nothing(
    km: KeyManager, clock: FakeClock
) -> None:
    first = km.revocation.revoke(KEY, "k#1", "superseded")
    entries = km.audit.verify().entries
    clock.advance(days=1)
    assert km.revocation.revoke(KEY, "k#1", "superseded") == first
    assert km.revocation.revoke(KEY, "k#1", "cessation-of-operation") == first
    assert km.audit.verify().entries == entries


def test_a_compromise_upgrades_a_weaker_reason_keeping_the_date(
    km: KeyManager, clock: FakeClock
) -> None:
    first = km.revocation.revoke(KEY, "k#1", "superseded")
    clock.advance(days=1)
    upgraded = km.revocation.revoke(KEY, "k#1", "key-compromise")
    assert upgraded.reason is RevocationReason.KEY_COMPROMISE
    assert upgraded.revoked_at == first.revoked_at
    assert km.revocation.get(KEY, "k#1") == upgraded


def test_a_compromise_is_never_downgraded(km: KeyManager) -> None:
    first = km.revocation.revoke(KEY, "k#1", "key-compromise")
    assert km.revocation.revoke(KEY, "k#1", "superseded") == first
    assert km.revocation.revoke(KEY, "k#1", HOLD) == first


def test_any_other_reason_replaces_a_hold(km: KeyManager) -> None:
    km.revocation.revoke(CERT, "ca:01", HOLD)
    replaced = km.revocation.revoke(CERT, "ca:01", "affiliation-changed")
    assert replaced.reason is RevocationReason.AFFILIATION_CHANGED


def test_holding_twice_is_idempotent(km: KeyManager) -> None:
    first = km.revocation.revoke(CERT, "ca:01", HOLD)
    entries = km.audit.verify().entries
    assert km.revocation.revoke(CERT, "ca:01", HOLD) == first
    assert km.audit.verify().entries == entries


def test_a_hold_can_be_released(km: KeyManager) -> None:
    km.revocation.revoke(CERT, "ca:01", HOLD)
    km.revocation.release_hold(CERT, "ca:01")
    assert not km.revocation.is_revoked(CERT, "ca:01")
    assert km.audit.tail(1)[0].operation == "revoke.release-hold"


@pytest.mark.parametrize("reason", ["superseded", None])
def test_only_a_hold_can_be_released(km: KeyManager, reason: str | None) -> None:
    if reason:
        km.revocation.revoke(CERT, "ca:01", reason)
    with pytest.raises(InvalidArgumentError, match="certificate:ca:01 is not on hold"):
        km.revocation.release_hold(CERT, "ca:01")
    assert km.revocation.is_revoked(CERT, "ca:01") is bool(reason)


def test_invalidity_date_is_kept_and_must_be_aware(km: KeyManager) -> None:
    when = dt.datetime(2029, 6, 1, tzinfo=UTC)
    revoked = km.revocation.revoke(KEY, "k#1", "key-compromise", invalidity_date=when)
    assert revoked.invalidity_date == when
    with pytest.raises(InvalidArgumentError, match="timezone-aware"):
        km.revocation.revoke(KEY, "k#2", invalidity_date=dt.datetime(2029, 6, 1))


def test_a_later_invalidity_date_fills_in_a_missing_one(km: KeyManager) -> None:
    km.revocation.revoke(KEY, "k#1", "key-compromise")
    when = dt.datetime(2029, 6, 1, tzinfo=UTC)
    updated = km.revocation.revoke(KEY, "k#1", "superseded", invalidity_date=when)
    assert (updated.reason, updated.invalidity_date) == (RevocationReason.KEY_COMPROMISE, when)


def test_an_upgrade_without_a_date_keeps_the_stored_date(km: KeyManager) -> None:
    when = dt.datetime(2029, 6, 1, tzinfo=UTC)
    km.revocation.revoke(KEY, "k#1", "superseded", invalidity_date=when)
    upgraded = km.revocation.revoke(KEY, "k#1", "key-compromise")
    assert upgraded.invalidity_date == when


@pytest.mark.parametrize(
    ("kind", "subject", "reason", "message"),
    [
        ("thing", "x", "superseded", "unknown subject kind 'thing'"),
        (KEY, "", "superseded", "non-empty string"),
        (KEY, 5, "superseded", "non-empty string"),
        (KEY, "x", "because", "unknown revocation reason 'because'"),
        (KEY, "a\x00b", "superseded", "NUL"),
    ],
)
def test_bad_input_is_a_typed_error_and_changes_nothing(
    km: KeyManager, kind: object, subject: object, reason: str, message: str
) -> None:
    entries = km.audit.verify().entries
    with pytest.raises(InvalidArgumentError, match=message):
        km.revocation.revoke(kind, subject, reason)  # type: ignore[arg-type]
    assert len(km.revocation) == 0
    assert km.audit.verify().entries == entries


@pytest.mark.parametrize("call", ["get", "is_revoked", "release_hold"])
def test_queries_validate_the_kind(km: KeyManager, call: str) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown subject kind"):
        getattr(km.revocation, call)("thing", "x")


def test_list_filters_by_kind_and_prefix(km: KeyManager) -> None:
    km.revocation.revoke(KEY, "a#1")
    km.revocation.revoke(KEY, "b#1")
    km.revocation.revoke(CERT, "a:01")
    assert sorted(r.subject for r in km.revocation.list()) == ["a#1", "a:01", "b#1"]
    assert [r.subject for r in km.revocation.list(KEY, prefix="a")] == ["a#1"]
    assert len(km.revocation) == 3


def test_reason_codes_are_rfc_5280() -> None:
    codes = {r.value: r.code for r in RevocationReason}
    assert codes == {
        "unspecified": 0,
        "key-compromise": 1,
        "ca-compromise": 2,
        "affiliation-changed": 3,
        "superseded": 4,
        "cessation-of-operation": 5,
        "certificate-hold": 6,
        "privilege-withdrawn": 9,
        "aa-compromise": 10,
    }
    assert {r for r in RevocationReason if r.is_compromise} == {
        RevocationReason.KEY_COMPROMISE,
        RevocationReason.CA_COMPROMISE,
        RevocationReason.AA_COMPROMISE,
    }


def test_lookups_read_no_records(km: KeyManager) -> None:
    # One dict probe: at most a generation check (consistency_interval), never a record read.
    for i in range(200):
        km._store.transact(lambda txn, i=i: km.revocation.stage(txn, KEY, f"k#{i}", "superseded"))
    calls: list[str] = []
    backend = km._store.backend
    real_get = backend.get
    backend.get = lambda *a: calls.append("get") or real_get(*a)  # type: ignore[method-assign]
    assert km.revocation.is_revoked(KEY, "k#150")
    assert not km.revocation.is_revoked(KEY, "k#999")
    assert calls == []


def test_stage_revokes_inside_another_transaction(km: KeyManager) -> None:
    def run(txn: object) -> None:
        km.revocation.stage(txn, KEY, "k#1", "key-compromise")  # type: ignore[arg-type]
        raise RuntimeError("the other part failed")

    with pytest.raises(RuntimeError):
        km._store.transact(run)
    assert not km.revocation.is_revoked(KEY, "k#1")
    km._store.transact(lambda txn: km.revocation.stage(txn, KEY, "k#1", "key-compromise"))
    assert km.revocation.is_revoked(KEY, "k#1")


def test_revocations_persist_across_reopening(store_path: Path, clock: FakeClock) -> None:
    with open_sqlite(store_path, clock) as km:
        km.revocation.revoke(KEY, "k#1", "key-compromise")
        km.revocation.revoke(CERT, "ca:01", HOLD)
    with open_sqlite(store_path, clock) as km:
        found = km.revocation.get(KEY, "k#1")
        assert found is not None
        assert found.reason is RevocationReason.KEY_COMPROMISE
        assert km.revocation.is_revoked(CERT, "ca:01")
        assert len(km.revocation) == 2


def test_a_second_manager_sees_revocations_after_sync(store_path: Path, clock: FakeClock) -> None:
    with (
        open_sqlite(store_path, clock, consistency_interval=3600) as a,
        open_sqlite(store_path, clock, consistency_interval=3600) as b,
    ):
        a.revocation.revoke(KEY, "k#1", "key-compromise")
        assert a.revocation.is_revoked(KEY, "k#1")
        b.revocation.sync()
        assert b.revocation.is_revoked(KEY, "k#1")


def test_a_second_manager_sees_a_released_hold_after_sync(
    store_path: Path, clock: FakeClock
) -> None:
    with (
        open_sqlite(store_path, clock, consistency_interval=3600) as a,
        open_sqlite(store_path, clock, consistency_interval=3600) as b,
    ):
        a.revocation.revoke(CERT, "ca:01", HOLD)
        b.revocation.sync()
        assert b.revocation.is_revoked(CERT, "ca:01")
        a.revocation.release_hold(CERT, "ca:01")
        b.revocation.sync()
        assert not b.revocation.is_revoked(CERT, "ca:01")


def test_a_second_manager_sees_an_upgrade_after_sync(store_path: Path, clock: FakeClock) -> None:
    with (
        open_sqlite(store_path, clock, consistency_interval=3600) as a,
        open_sqlite(store_path, clock, consistency_interval=3600) as b,
    ):
        a.revocation.revoke(KEY, "k#1", "superseded")
        b.revocation.sync()
        a.revocation.revoke(KEY, "k#1", "key-compromise")
        b.revocation.sync()
        found = b.revocation.get(KEY, "k#1")
        assert found is not None
        assert found.reason is RevocationReason.KEY_COMPROMISE


def test_with_interval_zero_lookups_see_other_managers_at_once(
    store_path: Path, clock: FakeClock
) -> None:
    with (
        open_sqlite(store_path, clock, consistency_interval=0) as a,
        open_sqlite(store_path, clock, consistency_interval=0) as b,
    ):
        a.revocation.revoke(KEY, "k#1")
        assert b.revocation.is_revoked(KEY, "k#1")


def test_revocation_records_are_sealed(km: KeyManager) -> None:
    km.revocation.revoke(KEY, "k#1", "key-compromise")
    (record,) = km._store.backend.list(REVOCATION_KIND)
    assert b"key-compromise" not in record.data


def test_the_index_is_keyed_by_kind_and_subject_and_follows_revocations(km: KeyManager) -> None:
    assert "key:payments#1" not in km.revocation.index
    km.revocation.revoke(SubjectKind.KEY, "payments#1", RevocationReason.KEY_COMPROMISE)
    assert "key:payments#1" in km.revocation.index
    assert "principal:payments#1" not in km.revocation.index
