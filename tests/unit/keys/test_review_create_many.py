"""Review of KeyStore.create_many: a bad request is that request's typed error, never the call's."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from keymgmt import KeyManager
from keymgmt.errors import AlreadyExistsError, InvalidArgumentError
from keymgmt.keyring import RawMasterKey
from keymgmt.keys import KeyRequest
from keymgmt.model import KeyInfo
from keymgmt.storage import SQLiteBackend
from keymgmt.testing import SeededRandomness


def test_a_policy_of_the_wrong_type_is_refused_as_invalid_for_create(km: KeyManager) -> None:
    bad: Any = "rotate monthly"
    with pytest.raises(InvalidArgumentError):
        km.keys.create("k", policy=bad)
    assert km.keys.list() == []


def test_a_policy_of_the_wrong_type_fails_only_its_request(km: KeyManager) -> None:
    bad: Any = "rotate monthly"
    outcomes = km.keys.create_many([KeyRequest(name="a", policy=bad), KeyRequest(name="b")])
    assert isinstance(outcomes[0], InvalidArgumentError)
    assert isinstance(outcomes[1], KeyInfo)
    assert [k.name for k in km.keys.list()] == ["b"]


def test_an_item_that_is_not_a_key_request_fails_only_itself(km: KeyManager) -> None:
    odd: Any = ("a", "aes-256-gcm")
    outcomes = km.keys.create_many([odd, KeyRequest(name="b")])
    assert isinstance(outcomes[0], InvalidArgumentError)
    assert isinstance(outcomes[1], KeyInfo)


def test_two_managers_on_one_sqlite_file_racing_create_many_make_each_key_once(
    tmp_path: Path,
) -> None:
    # Two managers = two stores, each with its own cached audit head: every
    # batch of one conflicts with the other's appends now and then.
    path = tmp_path / "race.db"

    def open_one(seed: int) -> KeyManager:
        return KeyManager(
            backend=SQLiteBackend(path),
            master_key=RawMasterKey(bytes(32)),
            randomness=SeededRandomness(seed),
        )

    names = [f"r{i:02d}" for i in range(24)]
    with open_one(1) as first, open_one(2) as second:
        start = threading.Barrier(2)
        outcomes: dict[str, list[KeyInfo | Exception]] = {}

        def create(km: KeyManager, tag: str, order: list[str]) -> None:
            start.wait()
            for chunk in range(0, len(order), 6):
                batch = [KeyRequest(name=n, actor=tag) for n in order[chunk : chunk + 6]]
                outcomes.setdefault(tag, []).extend(km.keys.create_many(batch))

        threads = [
            threading.Thread(target=create, args=(first, "first", names)),
            threading.Thread(target=create, args=(second, "second", names[::-1])),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        made = [o for tag in outcomes for o in outcomes[tag] if isinstance(o, KeyInfo)]
        refused = [o for tag in outcomes for o in outcomes[tag] if not isinstance(o, KeyInfo)]
        assert sorted(k.name for k in made) == names
        assert all(isinstance(o, AlreadyExistsError) for o in refused)
        assert len(refused) == len(names)
        first.audit.verify()
        entries = [e for e in first.audit.entries() if e.operation == "key.create"]
        assert sorted(e.object for e in entries) == [f"{n}#1" for n in names]
        by_name = {k.name: k.key_id for k in made}
        assert {k.name: k.key_id for k in second.keys.list()} == by_name
