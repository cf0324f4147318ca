"""Store key rotation with the master key in a real PKCS#11 token, and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keymgmt import KeyManager
from keymgmt.keyring import KdfProfile
from keymgmt.keyring._keyring import key_id_of
from keymgmt.keyring._rotation import record_kinds
from keymgmt.testing import FakeClock

HsmKey = Callable[..., Any]
CHEAP = KdfProfile.TESTING_ONLY_INSECURE


def _put(km: KeyManager, name: str, value: bytes) -> None:
    km._store.transact(lambda txn: txn.put("note", name, value))


def _sealed_under(km: KeyManager, name: str) -> int | None:
    record = km._store.backend.get("note", name)
    assert record is not None
    return key_id_of(record.data)


def _round_trip(a: KeyManager, b: KeyManager, stale: KeyManager) -> None:
    """Rotate in ``a``, read and write in ``b``, re-seal, retire; all keep reading.

    ``stale`` does nothing until after the retirement: its first write was
    sealed under the retired key, and its commit's keyring check makes it
    seal again under the current one.
    """
    a.keys.create("payments")
    ciphertext = a.encrypt("payments", b"hello")
    _put(a, "before", b"under 1")
    assert a.rotate_store_key() == 2
    _put(a, "after", b"under 2")
    assert b._store.get("note", "after") == b"under 2"  # b unwraps key 2 itself
    _put(b, "from-b", b"b's")
    assert _sealed_under(b, "from-b") == 2
    report = a.reseal(batch_size=2)
    assert report.remaining == 0
    assert a.store_key_status().stale_records == 0
    a.retire_store_key(1)
    b.sync()
    assert b._store.keyring.key_ids == (2,)
    assert stale._store.keyring.key_ids == (1,)
    _put(stale, "late", b"from the stale one")
    assert _sealed_under(a, "late") == 2
    assert a._store.get("note", "late") == b"from the stale one"
    for km in (a, b, stale):
        assert km.decrypt(ciphertext) == b"hello"
        assert km._store.get("note", "before") == b"under 1"
        assert km._store.get("note", "from-b") == b"b's"
    assert [e.operation for e in a.audit.tail(50)].count("store.retire-store-key") == 1
    a.audit.verify()


# -- the master key in a token ---------------------------------------------------------------


@pytest.mark.hsm
def test_rotation_under_an_hsm_master_key_round_trips(
    hsm_key: HsmKey, store_path: Path, clock: FakeClock
) -> None:
    source = hsm_key()
    kwargs: dict[str, Any] = {"master_key": source, "clock": clock, "consistency_interval": 0}
    with (
        KeyManager.open(store_path, **kwargs) as a,
        KeyManager.open(store_path, **kwargs) as b,
        KeyManager.open(store_path, **kwargs) as stale,
    ):
        _round_trip(a, b, stale)
    with KeyManager.open(store_path, master_key=hsm_key(), create=False) as again:
        assert again._store.keyring.key_ids == (2,)
        assert again._store.get("note", "after") == b"under 2"


@pytest.mark.hsm
def test_rotate_moves_a_passphrase_store_under_the_hsm_in_one_write(
    hsm_key: HsmKey, store_path: Path, clock: FakeClock
) -> None:
    with KeyManager.open(store_path, passphrase="pw", kdf_profile=CHEAP, clock=clock) as km:
        _put(km, "n", b"v")
        assert km.rotate_store_key(master_key=hsm_key()) == 2
        assert km.audit.tail(1)[0].details["master_key"] == "pkcs11"
    with KeyManager.open(store_path, master_key=hsm_key(), create=False) as km:
        assert km._store.get("note", "n") == b"v"
        assert km._store.keyring.key_ids == (1, 2)


@pytest.mark.hsm
def test_an_hsm_store_rotated_without_the_token_key_does_not_open_with_a_passphrase(
    hsm_key: HsmKey, store_path: Path, clock: FakeClock
) -> None:
    from keymgmt.errors import WrongPassphraseError

    with KeyManager.open(store_path, master_key=hsm_key(), clock=clock) as km:
        km.rotate_store_key()
    with pytest.raises(WrongPassphraseError, match="not a passphrase"):
        KeyManager.open(store_path, passphrase="pw", create=False)


# -- PostgreSQL: the keyring record lives in the database too ---------------------------------


@pytest.mark.postgres
def test_rotation_on_postgresql_round_trips(postgres_database: str, clock: FakeClock) -> None:
    kwargs: dict[str, Any] = {
        "passphrase": "pw",
        "kdf_profile": CHEAP,
        "clock": clock,
        "consistency_interval": 0,
    }
    with (
        KeyManager.open(postgres_database, **kwargs) as a,
        KeyManager.open(postgres_database, **kwargs) as b,
        KeyManager.open(postgres_database, **kwargs) as stale,
    ):
        _round_trip(a, b, stale)
        assert {"audit", "key", "keyver", "meta", "note"} <= set(record_kinds(a._store.backend))
    with KeyManager.open(postgres_database, passphrase="pw", create=False) as again:
        assert again._store.get("note", "before") == b"under 1"
