"""Loading a key's primary reads a consistent (key record, version record) pair."""

from __future__ import annotations

from keymgmt import KeyManager
from keymgmt.keyring import RawMasterKey
from keymgmt.keys._format import parse_header
from keymgmt.storage import MemoryBackend, Record
from keymgmt.testing import FakeClock, SeededRandomness

MASTER = bytes(range(32))


class RotateOnFirstVersionRead(MemoryBackend):
    """Runs ``hook`` just before the first read of one record (a racing writer)."""

    def __init__(self) -> None:
        super().__init__()
        self.trigger: tuple[str, str] | None = None
        self.hook: object = None

    def get(self, kind: str, name: str) -> Record | None:
        if self.trigger == (kind, name) and callable(self.hook):
            hook, self.hook = self.hook, None
            hook()
        return super().get(kind, name)


def test_encrypt_racing_a_rotation_in_another_manager_uses_the_new_primary() -> None:
    backend = RotateOnFirstVersionRead()
    clock = FakeClock()

    def manager(seed: int, interval: float = 0) -> KeyManager:
        return KeyManager(
            backend=backend,
            master_key=RawMasterKey(MASTER),
            clock=clock,
            randomness=SeededRandomness(seed),
            consistency_interval=interval,
        )

    # The user checks for other writers at most hourly, as a process with
    # caching on would: only the load itself can notice the rotation.
    creator, rotator, user = manager(1), manager(2), manager(3, interval=3600)
    creator.keys.create("shared")
    assert user.keys.get("shared").primary_version == 1  # built, nothing cached to encrypt
    # Between the user's read of the key record (primary = 1) and its read of
    # version 1, another manager rotates: version 1 is no longer the primary.
    backend.trigger = ("keyver", "shared#1")
    backend.hook = lambda: rotator.keys.rotate("shared")

    ciphertext = user.encrypt("shared", b"payload")

    assert backend.hook is None  # the race really happened
    # The load re-read the key record and saw the rotation: it encrypted under
    # the new primary, not under the old one paired with a stale key record.
    assert parse_header(ciphertext).version == 2
    assert user.keys.get("shared").primary_version == 2
    assert user.decrypt(ciphertext) == b"payload"
    assert rotator.decrypt(ciphertext) == b"payload"
