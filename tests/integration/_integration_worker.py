"""A separate process for the crash, concurrency and consistency tests.

Run as ``python _integration_worker.py MODE LOCATION ...`` where LOCATION is a SQLite path
or a ``postgresql://`` DSN of a store that already exists (opened with the
test passphrase). Modes:

``crash SEED``
    Writes forever, printing one line per operation *after* it returned
    (the acknowledgement the parent checks after SIGKILLing us).
``rekey``
    Changes the master key between two passphrases until killed, printing
    ``now N`` after each change returned.
``hammer WORKER THREADS OPS``
    THREADS threads do OPS mixed writes each; prints one JSON summary line.
``follower INTERVAL``
    Reads ``check SUBJECT`` lines on stdin; for each, syncs the way an
    operation does (at most once per INTERVAL seconds) and answers
    ``revoked`` or ``valid``. ``encrypt KEY`` encrypts under KEY and answers
    ``version N`` (the version used) or ``refused ERROR``.

Every line printed is flushed at once. Record payloads are derived from
their names, so the parent can check them without being told.
"""

from __future__ import annotations

import faulthandler
import hashlib
import json
import os
import random
import sys
import threading
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keymgmt import KeyManager
from keymgmt._store import Txn
from keymgmt.errors import KeyMgmtError, WrongPassphraseError
from keymgmt.keyring import KdfProfile, Passphrase
from keymgmt.keys._format import parse_header
from keymgmt.revocation import SubjectKind

PASSPHRASE = "integration-test-passphrase"
RECORD_KIND = "crashtest"
COUNTER = "counter"
SHARED_KEY = "shared"
CA_NAME = "crashca"


def prepare(location: str) -> None:
    """Create the store, the shared key and the CA the workers use."""
    with KeyManager.open(
        location, passphrase=PASSPHRASE, kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
    ) as km:
        km.keys.create(SHARED_KEY)
        km.pki.create_root_ca(CA_NAME, key_type="ed25519")


def issue(km: KeyManager, name: str) -> int:
    """Issue a TLS server certificate from the test CA; return its serial."""
    key = Ed25519PrivateKey.generate().public_key()
    cert = km.pki.ca(CA_NAME).issue(public_key=key, subject=f"CN={name}", names=[f"{name}.test"])
    return cert.serial_number


def open_manager(location: str, *, interval: float = 0.0, actor: str = "worker") -> KeyManager:
    """Open the existing store the tests share."""
    return KeyManager.open(
        location,
        passphrase=PASSPHRASE,
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        create=False,
        consistency_interval=interval,
        actor=actor,
    )


def payload(name: str) -> bytes:
    """The bytes stored under record ``name``."""
    return hashlib.sha256(name.encode()).digest() * 3


def put_record(km: KeyManager, name: str) -> None:
    """Create one sealed record and audit it, in one transaction."""

    def run(txn: Txn) -> None:
        txn.put(RECORD_KIND, name, payload(name))
        txn.audit("test.record", name)

    km._store.transact(run)


def increment(km: KeyManager) -> int:
    """Read-modify-write the shared counter with compare-and-set; return the value written."""

    def run(txn: Txn) -> int:
        current = txn.get(RECORD_KIND, COUNTER)
        value = int(current or b"0") + 1
        txn.put(RECORD_KIND, COUNTER, str(value).encode())
        txn.audit("test.increment", COUNTER, value=value)
        return value

    return km._store.transact(run)


def emit(*parts: object) -> None:
    """Print one acknowledgement line, flushed."""
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def crash(location: str, seed: int) -> None:
    """Write until killed; acknowledge each operation once it returned."""
    rng = random.Random(seed)
    with open_manager(location, actor=f"crash-{seed}") as km:
        emit("ready")
        i = 0
        while True:
            i += 1
            name = f"s{seed}-{i}"
            choice = rng.randrange(8)
            if choice == 0:
                km.revocation.revoke(SubjectKind.PRINCIPAL, name, "key-compromise")
                emit("revoke", name)
            elif choice == 1:
                put_record(km, name)
                emit("record", name)
            elif choice == 2:
                emit("counter", increment(km))
            elif choice == 3:
                km._store.audit("test.event", name)
                emit("audit", name)
            elif choice == 4:
                km.keys.create(name)
                emit("key", name)
            elif choice == 5:
                emit("rotate", km.keys.rotate(SHARED_KEY).version)
            elif choice == 6:
                emit("encrypt", name, bytes(km.keys.encrypt(SHARED_KEY, payload(name))).hex())
            else:
                emit("issue", issue(km, name))


REKEY_PASSPHRASES = ("rekey-first", "rekey-second")


def open_either(location: str) -> tuple[KeyManager, int]:
    """Open with whichever of the two re-key passphrases works; return it and its index."""
    for index, passphrase in enumerate(REKEY_PASSPHRASES):
        try:
            km = KeyManager.open(location, passphrase=passphrase, create=False)
        except WrongPassphraseError:
            continue
        return km, index
    raise AssertionError("neither passphrase opens the store")


def rekey(location: str) -> None:
    """Change the master key back and forth until killed; acknowledge each change."""
    km, index = open_either(location)
    with km:
        emit("ready", index)
        while True:
            index = 1 - index
            km.change_master_key(
                Passphrase(REKEY_PASSPHRASES[index], KdfProfile.TESTING_ONLY_INSECURE)
            )
            emit("now", index)


def hammer(location: str, worker: int, threads: int, ops: int) -> None:
    """Mixed writes from several threads; print a JSON summary."""
    summary: dict[str, Any] = {
        "counter": [],
        "revoked": [],
        "records": [],
        "versions": [],
        "ciphertexts": [],
        "keys": [],
        "errors": [],
    }
    lock = threading.Lock()
    with open_manager(location, actor=f"hammer-{worker}") as km:

        def work(thread: int) -> None:
            for i in range(ops):
                name = f"w{worker}-t{thread}-{i}"
                try:
                    kind = i % 6
                    if kind == 0:
                        value = increment(km)
                        with lock:
                            summary["counter"].append(value)
                    elif kind == 1:
                        km.revocation.revoke(SubjectKind.PRINCIPAL, name)
                        with lock:
                            summary["revoked"].append(name)
                    elif kind == 2:
                        put_record(km, name)
                        with lock:
                            summary["records"].append(name)
                    elif kind == 3:
                        version = km.keys.rotate(SHARED_KEY).version
                        with lock:
                            summary["versions"].append(version)
                    elif kind == 4:
                        # Encrypt with whatever is primary now, decrypt at once.
                        ciphertext = bytes(km.keys.encrypt(SHARED_KEY, payload(name)))
                        if km.keys.decrypt(ciphertext) != payload(name):
                            raise AssertionError(f"round trip failed for {name}")
                        with lock:
                            summary["ciphertexts"].append([name, ciphertext.hex()])
                    else:
                        km.keys.create(name)
                        with lock:
                            summary["keys"].append(name)
                except Exception as exc:
                    with lock:
                        summary["errors"].append(f"{type(exc).__name__}: {exc}")

        pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    emit(json.dumps(summary))


def follower(location: str, interval: float) -> None:
    """Answer revocation checks the way an operation would see them."""
    with open_manager(location, interval=interval, actor="follower") as km:
        emit("ready")
        for line in sys.stdin:
            command, _, subject = line.strip().partition(" ")
            if command == "check":
                km._store.sync()  # what every operation does first (non-forced)
                revoked = km.revocation.is_revoked(SubjectKind.PRINCIPAL, subject)
                emit("revoked" if revoked else "valid")
            elif command == "encrypt":
                # A real operation: which version does it use, or is it refused?
                try:
                    ciphertext = km.keys.encrypt(subject, b"probe")
                except KeyMgmtError as exc:
                    emit("refused", type(exc).__name__)
                else:
                    emit("version", parse_header(ciphertext).version)
            else:
                break


def main(argv: list[str]) -> None:
    """Dispatch on the mode."""
    mode, location, *rest = argv
    # A hang becomes a failure with every thread's stack on stderr.
    faulthandler.dump_traceback_later(
        float(os.environ.get("KEYMGMT_WORKER_WATCHDOG", "120")), exit=True
    )
    if mode == "crash":
        crash(location, int(rest[0]))
    elif mode == "hammer":
        hammer(location, int(rest[0]), int(rest[1]), int(rest[2]))
    elif mode == "rekey":
        rekey(location)
    elif mode == "follower":
        follower(location, float(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
