"""Grant records in their compact stored form, and the policy's decision memo."""

from __future__ import annotations

import datetime as _dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt import _codec
from keymgmt.errors import IntegrityError
from keymgmt.kdc import GrantRecord, Policy
from keymgmt.kdc import _policy as policy_module

_NAMES = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")),
    min_size=1,
    max_size=60,
)
_TIMES = st.datetimes(
    min_value=_dt.datetime(1970, 1, 1),
    max_value=_dt.datetime(9999, 1, 1),
    timezones=st.just(_dt.UTC),
)


@st.composite
def grants(draw: st.DrawFn) -> GrantRecord:
    kind = draw(st.sampled_from(["key", "ticket"]))
    return GrantRecord(
        id=draw(st.binary(min_size=16, max_size=16)).hex(),
        kind=kind,
        principal=draw(_NAMES),
        issued_at=draw(_TIMES),
        expires_at=draw(_TIMES),
        key_name=draw(_NAMES) if kind == "key" else None,
        version=draw(st.integers(1, 2**32 - 1)) if kind == "key" else None,
        peer=draw(_NAMES) if kind == "ticket" else None,
        auth=draw(st.sampled_from(["symmetric", "certificate"])),
    )


@given(grants())
def test_grant_record_round_trips_through_its_stored_form(grant: GrantRecord) -> None:
    assert GrantRecord.from_bytes(grant.to_bytes()) == grant


@given(grants())
def test_older_json_grant_records_are_still_read(grant: GrantRecord) -> None:
    assert GrantRecord.from_bytes(_codec.dumps(grant.to_json())) == grant


def test_stored_form_is_not_json() -> None:
    grant = GrantRecord(
        id="00" * 16,
        kind="key",
        principal="alice",
        issued_at=_dt.datetime(2030, 1, 1, tzinfo=_dt.UTC),
        expires_at=_dt.datetime(2030, 1, 1, 0, 15, tzinfo=_dt.UTC),
        key_name="payments",
        version=1,
    )
    assert grant.to_bytes()[:1] == b"\x01"


@pytest.mark.parametrize(
    "damaged", [b"\x01", b"\x01\x00\x00\x00\x20" + b"0" * 31, b"\x01" + b"\xff" * 40]
)
def test_a_damaged_grant_record_is_an_integrity_error(damaged: bytes) -> None:
    with pytest.raises(IntegrityError, match="grant record is malformed"):
        GrantRecord.from_bytes(damaged)


@pytest.mark.parametrize("damaged", [b"", b"{not json", b"[1, 2]", b'{"id": "x"}'])
def test_a_record_neither_compact_nor_json_is_an_integrity_error(damaged: bytes) -> None:
    with pytest.raises(IntegrityError):
        GrantRecord.from_bytes(damaged)


def test_policy_remembers_decisions_but_a_new_policy_decides_afresh() -> None:
    policy = Policy().granting("alice", keys=["app/*"])
    assert policy.allows_key("alice", "app/db")
    assert not policy.allows_key("alice", "other")
    widened = policy.granting("alice", keys=["other"])
    assert widened.allows_key("alice", "other")
    assert not policy.allows_key("alice", "other")


def test_policy_decision_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy_module, "_MAX_DECISIONS", 3)
    policy = Policy().granting("alice", keys=["k*"], peers=["bob"])
    for index in range(10):
        assert policy.allows_key("alice", f"k{index}")
    assert policy.allows_peer("alice", "bob")
    assert len(policy._decisions) <= 3


def test_policy_memo_does_not_change_equality() -> None:
    used = Policy().granting("alice", keys=["k"])
    used.allows_key("alice", "k")
    assert used == Policy().granting("alice", keys=["k"])
