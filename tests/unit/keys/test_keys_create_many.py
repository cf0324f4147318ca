"""KeyStore.create_many: each request validated, created and audited as by create, one commit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm
from keymgmt.errors import AlreadyExistsError, InvalidArgumentError, UnsupportedAlgorithmError
from keymgmt.keyring import KdfProfile
from keymgmt.keys import KeyInfo, KeyRequest


def test_every_request_becomes_a_usable_key(km: KeyManager) -> None:
    outcomes = km.keys.create_many([KeyRequest(name=f"k{i}") for i in range(5)])
    assert [o.name for o in outcomes if isinstance(o, KeyInfo)] == [f"k{i}" for i in range(5)]
    ciphertext = km.encrypt("k3", b"hello")
    assert km.decrypt(ciphertext) == b"hello"


def test_the_keys_are_written_in_one_commit(counted_km: KeyManager, counting: Any) -> None:
    before = counting.calls["commit"]
    counted_km.keys.create_many([KeyRequest(name=f"k{i}") for i in range(10)])
    assert counting.calls["commit"] == before + 1


def test_a_refused_request_gets_the_error_create_would_raise(km: KeyManager) -> None:
    km.keys.create("taken")
    outcomes = km.keys.create_many(
        [
            KeyRequest(name="good"),
            KeyRequest(name="taken"),
            KeyRequest(name="bad name!"),
            KeyRequest(name="odd", algorithm="rot13"),
        ]
    )
    assert isinstance(outcomes[0], KeyInfo)
    assert isinstance(outcomes[1], AlreadyExistsError)
    assert isinstance(outcomes[2], InvalidArgumentError)
    assert isinstance(outcomes[3], UnsupportedAlgorithmError)
    assert [k.name for k in km.keys.list()] == ["good", "taken"]


def test_two_requests_for_one_name_create_one_key(km: KeyManager) -> None:
    outcomes = km.keys.create_many([KeyRequest(name="twin"), KeyRequest(name="twin")])
    assert isinstance(outcomes[0], KeyInfo)
    assert isinstance(outcomes[1], AlreadyExistsError)
    assert len(km.keys.get("twin").versions) == 1


def test_each_key_has_one_create_entry_naming_its_actor(km: KeyManager) -> None:
    km.keys.create_many(
        [
            KeyRequest(name="a", actor="alice"),
            KeyRequest(name="b", algorithm=Algorithm.CHACHA20_POLY1305, actor="bob"),
        ]
    )
    creates = {e.object: e.actor for e in km.audit.entries() if e.operation == "key.create"}
    assert creates == {"a#1": "alice", "b#1": "bob"}
    km.audit.verify()


def test_a_request_without_an_actor_names_the_current_one(km: KeyManager) -> None:
    with km.acting_as("ops"):
        km.keys.create_many([KeyRequest(name="a")])
    (entry,) = [e for e in km.audit.entries() if e.operation == "key.create"]
    assert entry.actor == "ops"


def test_keys_created_together_on_sqlite_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    options = {"passphrase": "pw", "kdf_profile": KdfProfile.TESTING_ONLY_INSECURE}
    with KeyManager.open(path, **options) as km:  # type: ignore[arg-type]
        km.keys.create_many([KeyRequest(name=f"k{i}") for i in range(20)])
    with KeyManager.open(path, create=False, **options) as km:  # type: ignore[arg-type]
        assert len(km.keys.list()) == 20
        assert sum(1 for e in km.audit.entries() if e.operation == "key.create") == 20
        km.audit.verify()


def test_two_managers_on_postgres_creating_overlapping_names_make_each_key_once(
    postgres_dsn: str,
) -> None:
    import threading
    import uuid

    from keymgmt.errors import AlreadyExistsError as Exists
    from keymgmt.keyring import RawMasterKey
    from keymgmt.storage.postgres import PostgresBackend

    schema = "gc_" + uuid.uuid4().hex[:12]

    def open_one() -> KeyManager:
        return KeyManager(
            backend=PostgresBackend(postgres_dsn, schema=schema),
            master_key=RawMasterKey(bytes(32)),
        )

    with open_one() as first, open_one() as second:
        outcomes: dict[str, list[KeyInfo | Exception]] = {}

        def create(km: KeyManager, tag: str) -> None:
            outcomes[tag] = km.keys.create_many([KeyRequest(name=f"r{i}") for i in range(30)])

        threads = [
            threading.Thread(target=create, args=(first, "first")),
            threading.Thread(target=create, args=(second, "second")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        both = outcomes["first"] + outcomes["second"]
        assert sum(isinstance(o, KeyInfo) for o in both) == 30
        assert sum(isinstance(o, Exists) for o in both) == 30
        assert len(first.keys.list()) == 30
        first.audit.verify()
        assert sum(1 for e in first.audit.entries() if e.operation == "key.create") == 30
