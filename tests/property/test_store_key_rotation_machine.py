"""A state machine over store key rotation: rotate, re-seal, retire, write, read, reopen.

Two managers share one store (two processes): ``a`` administers the store
keys, both write and read. The model is the records' values and the store
key ids; the invariants are that every record reads back in both managers
and in a freshly opened one, whatever was rotated, re-sealed or retired,
and that retirement is refused exactly when it must be.

``b`` never syncs unless a step says so: it learns of rotations and
retirements only when its reads meet a newer key or its commits find the
keyring record changed, as a busy process that syncs rarely would.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from keymgmt import KeyManager, RawMasterKey
from keymgmt.errors import KeyStateError, NotFoundError
from keymgmt.storage import MemoryBackend
from keymgmt.testing import FakeClock, SeededRandomness

MASTER = bytes(range(32))
NAMES = st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h"])
VALUES = st.binary(max_size=8)
WHO = st.sampled_from(["a", "b"])


class StoreKeyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.backend = MemoryBackend()
        self.clock = FakeClock()
        self.a = self._open()
        self.b = self._open()
        self.values: dict[str, bytes] = {}
        self.held = {1}
        self.created = 0

    @initialize(values=st.lists(VALUES, min_size=1, max_size=3))
    def some_records(self, values: list[bytes]) -> None:
        for name, value in zip(["a", "b", "c"], values, strict=False):
            self.write("a", name, value)

    def _open(self) -> KeyManager:
        return KeyManager(
            backend=self.backend,
            master_key=RawMasterKey(MASTER),
            clock=self.clock,
            randomness=SeededRandomness(3),
            consistency_interval=0,
        )

    def _manager(self, who: str) -> KeyManager:
        return self.a if who == "a" else self.b

    # -- writes and reads ----------------------------------------------------------------

    @rule(who=WHO, name=NAMES, value=VALUES, audited=st.booleans())
    def write(self, who: str, name: str, value: bytes, audited: bool = True) -> None:
        def run(txn: Any) -> None:
            txn.get("note", name)  # read first: an overwrite is compare-and-set
            txn.put("note", name, value)
            if audited:  # an audited write also re-seals the audit head
                txn.audit("note.write", name)

        self._manager(who)._store.transact(run)
        self.values[name] = value

    @rule(value=VALUES)
    def b_creates_a_record(self, value: bytes) -> None:
        # A new name, not audited: nothing in it reads a value under a newer
        # key or the audit head, so only the commit's keyring check can tell
        # b that its keys changed.
        self.created += 1
        name = f"new-{self.created}"
        self.b._store.transact(lambda txn: txn.put("note", name, value))
        self.values[name] = value

    @rule(who=WHO, name=NAMES)
    def delete(self, who: str, name: str) -> None:
        self._manager(who)._store.transact(lambda txn: txn.delete("note", name))
        self.values.pop(name, None)

    @rule(who=WHO, name=NAMES)
    def read(self, who: str, name: str) -> None:
        assert self._manager(who)._store.get("note", name) == self.values.get(name)

    # -- the store keys -------------------------------------------------------------------

    @rule()
    def rotate(self) -> None:
        new = self.a.rotate_store_key()
        assert new == max(self.held) + 1
        self.held.add(new)

    @rule(batch=st.integers(1, 3))
    def reseal(self, batch: int) -> None:
        report = self.a.reseal(batch_size=batch)
        assert report.key_id == max(self.held)
        assert report.unreadable == 0
        assert report.remaining == 0

    @rule(key_id=st.integers(0, 3))
    def retire(self, key_id: int) -> None:
        current = max(self.held)
        # What names the key, read from the sealed headers (0x02 | key id | ...)
        # of the only records this machine writes; the sealed audit head does
        # not count (retirement's own audited write re-seals it).
        users = sum(
            int.from_bytes(record.data[1:5], "big") == key_id
            for record in self.backend.list("note")
        )
        refused: type[Exception] | None = None
        try:
            self.a.retire_store_key(key_id)
        except (NotFoundError, KeyStateError) as exc:
            refused = type(exc)
        if key_id not in self.held:
            assert refused is NotFoundError
        elif key_id == current or users > 0:
            assert refused is KeyStateError
        else:
            assert refused is None
            self.held.discard(key_id)

    @rule()
    def b_syncs(self) -> None:
        self.b.sync()

    @rule()
    def reopen_a(self) -> None:
        self.a = self._open()

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def every_record_reads_back(self) -> None:
        # In a and in a manager opened now; b reads only in its own steps
        # (reading refreshes it, and b is meant to fall behind).
        fresh = self._open()
        for name, value in self.values.items():
            assert self.a._store.get("note", name) == value
            assert fresh._store.get("note", name) == value

    @invariant()
    def the_current_key_is_the_highest_held(self) -> None:
        assert self.a._store.keyring.current_key_id == max(self.held)
        assert set(self.a._store.keyring.key_ids) == self.held

    def teardown(self) -> None:
        fresh = self._open()  # a third process, opened now
        for name, value in self.values.items():
            assert fresh._store.get("note", name) == value
        fresh.audit.verify()


TestStoreKeyMachine = StoreKeyMachine.TestCase
TestStoreKeyMachine.settings = settings(settings.default, stateful_step_count=30)
