"""KeyStore.stage_revoke / stage_rotate inside a caller's transaction, and the data-key log."""

from __future__ import annotations

import datetime as _dt

import pytest

from keymgmt import KeyManager
from keymgmt._store import Txn
from keymgmt.errors import IntegrityError, KeyNotFoundError
from keymgmt.keys import _datakeys
from keymgmt.keys._datakeys import DATA_KEY_KIND
from keymgmt.model import KeyState
from keymgmt.revocation import SubjectKind
from keymgmt.testing import FakeClock


def test_staged_revoke_and_rotate_commit_in_one_write(km: KeyManager) -> None:
    km.keys.create("payments")
    generation = km._store.backend.generation()

    def run(txn: Txn) -> int | None:
        km.keys.stage_revoke(txn, "payments", 1, reason="key-compromise")
        new = km.keys.stage_rotate(txn, "payments", if_primary=1, trigger="compromise")
        return None if new is None else new.version

    assert km._store.transact(run) == 2
    assert km._store.backend.generation() == generation + 1
    info = km.keys.get("payments")
    assert info.primary_version == 2
    assert [v.state for v in info.versions] == [KeyState.COMPROMISED, KeyState.ACTIVE]
    assert km.revocation.is_revoked(SubjectKind.KEY, "payments#1")


def test_staged_rotation_keeps_the_compromised_state_of_the_old_primary(km: KeyManager) -> None:
    km.keys.create("payments")
    km._store.transact(
        lambda txn: (
            km.keys.stage_revoke(txn, "payments", 1, reason="key-compromise"),
            km.keys.stage_rotate(txn, "payments"),
        )
    )
    assert km.keys.get("payments").versions[0].state is KeyState.COMPROMISED


def test_staged_rotate_of_a_version_no_longer_primary_does_nothing(km: KeyManager) -> None:
    km.keys.create("payments")
    km.keys.rotate("payments")
    generation = km._store.backend.generation()
    assert (
        km._store.transact(lambda txn: km.keys.stage_rotate(txn, "payments", if_primary=1)) is None
    )
    assert km._store.backend.generation() == generation
    assert km.keys.get("payments").primary_version == 2


def test_rotation_audit_names_its_trigger(km: KeyManager) -> None:
    km.keys.create("payments")
    km._store.transact(lambda txn: km.keys.stage_rotate(txn, "payments", trigger="compromise"))
    entry = km.audit.tail(1)[0]
    assert (entry.operation, dict(entry.details)["trigger"]) == ("key.rotate", "compromise")


def test_staged_revoke_of_a_missing_version_writes_nothing(km: KeyManager) -> None:
    km.keys.create("payments")
    generation = km._store.backend.generation()
    with pytest.raises(KeyNotFoundError):
        km._store.transact(lambda txn: km.keys.stage_revoke(txn, "payments", 3))
    assert km._store.backend.generation() == generation


# -- the data-key log ------------------------------------------------------------------


def test_data_keys_are_listed_in_issuance_order_across_records(
    km: KeyManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_datakeys, "CHUNK", 2)
    km.keys.data_key_log_policy = _datakeys.DataKeyLogPolicy(mode="batched")  # packs records
    km.keys.create("payments")
    made = [km.generate_data_key("payments") for _ in range(5)]
    issued = km.keys.data_keys_issued("payments", 1)
    assert [i.id for i in issued] == [d.id for d in made]
    assert len(km._store.list_json(DATA_KEY_KIND)) == 3


def test_data_keys_of_several_actors_share_a_record(km: KeyManager) -> None:
    km.keys.create("payments")
    with km.acting_as("a"):
        km.generate_data_key("payments")
    with km.acting_as("b"):
        km.generate_data_key("payments")
    km.generate_data_key("payments")
    assert [i.actor for i in km.keys.data_keys_issued("payments")] == ["a", "b", "local"]


def test_data_keys_of_every_version_are_listed_without_a_version(
    km: KeyManager, clock: FakeClock
) -> None:
    km.keys.create("payments")
    km.generate_data_key("payments")
    clock.advance(_dt.timedelta(minutes=1))
    km.keys.rotate("payments")
    km.generate_data_key("payments")
    assert [i.key_id for i in km.keys.data_keys_issued("payments")] == [
        "payments#1",
        "payments#2",
    ]


def test_data_keys_of_a_similarly_named_key_are_not_listed(km: KeyManager) -> None:
    km.keys.create("pay")
    km.keys.create("pay-2")
    km.generate_data_key("pay-2")
    assert km.keys.data_keys_issued("pay") == []


def test_flush_writes_the_log_with_the_usage_counts(km: KeyManager) -> None:
    km.keys.create("payments")
    km.generate_data_key("payments")
    generation = km._store.backend.generation()
    km.keys.flush_usage()
    assert km._store.backend.generation() == generation + 1
    assert km.keys.get("payments").versions[0].uses == 1
    assert len(km._store.list_json(DATA_KEY_KIND)) == 1


def test_a_damaged_log_record_is_an_integrity_error(km: KeyManager) -> None:
    km.keys.create("payments")
    km.generate_data_key("payments")
    km.keys.flush_usage()
    ((name, value),) = km._store.list_json(DATA_KEY_KIND)
    value["who"] = ""

    def damage(txn: Txn) -> None:
        txn.get(DATA_KEY_KIND, name)
        txn.put_json(DATA_KEY_KIND, name, value)

    km._store.transact(damage)
    with pytest.raises(IntegrityError, match="data-key log"):
        km.keys.data_keys_issued("payments")


@pytest.fixture
def flushed(monkeypatch: pytest.MonkeyPatch) -> list[list[_datakeys.Pending]]:
    """What each flush took from the data-key log (to replay a flush)."""
    taken: list[list[_datakeys.Pending]] = []
    original = _datakeys.DataKeyLog.take

    def remember(self: _datakeys.DataKeyLog) -> list[_datakeys.Pending]:
        entries = original(self)
        taken.append(list(entries))
        return entries

    monkeypatch.setattr(_datakeys.DataKeyLog, "take", remember)
    return taken


def test_a_flush_replayed_after_its_commit_landed_logs_each_data_key_once(
    km: KeyManager, flushed: list[list[_datakeys.Pending]]
) -> None:
    # PostgreSQL can report a commit as failed after it landed; the flush then
    # puts its entries back and writes them again with the next flush.
    km.keys.create("k")
    first = [km.generate_data_key("k").id for _ in range(3)]
    km.keys.flush_usage()
    km.keys._data_keys.put_back(flushed[-1])  # "the commit failed": back in the queue
    later = km.generate_data_key("k").id  # shares the replayed chunk's name prefix
    km.keys.flush_usage()  # must not be stuck on the name already taken
    again = km.generate_data_key("k").id
    km.keys.flush_usage()
    listed = [i.id for i in km.keys.data_keys_issued("k")]
    assert sorted(listed) == sorted([*first, later, again])  # each once (one clock tick: any order)


def test_a_replayed_chunk_already_logged_is_not_written_again(
    km: KeyManager, flushed: list[list[_datakeys.Pending]]
) -> None:
    km.keys.create("k")
    ids = [km.generate_data_key("k").id for _ in range(2)]
    km.keys.flush_usage()
    records = len(km._context.store.list_json(DATA_KEY_KIND))
    km.keys._data_keys.put_back(flushed[-1])
    km.keys.flush_usage()
    assert len(km._context.store.list_json(DATA_KEY_KIND)) == records
    assert sorted(i.id for i in km.keys.data_keys_issued("k")) == sorted(ids)
