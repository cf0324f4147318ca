"""Crash safety: SIGKILL a writer at random points many times; nothing acknowledged is lost.

The worker (``_integration_worker.py crash``) writes in a loop — revocations,
sealed records with audit entries, compare-and-set counter increments, bare
audit entries, key creation, rotation, encryption and certificate issuance —
and prints each operation only after it returned. The test
kills it with SIGKILL at a random (seeded) moment, often in the middle of a
commit, restarts it, and repeats. Afterwards the store must open, the audit
chain must verify, and every acknowledged operation must be there.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from _integration_worker import (
    CA_NAME,
    COUNTER,
    RECORD_KIND,
    REKEY_PASSPHRASES,
    SHARED_KEY,
    open_either,
    open_manager,
    payload,
)

from keymgmt.revocation import SubjectKind

WORKER = Path(__file__).with_name("_integration_worker.py")
RUNS = int(os.environ.get("KEYMGMT_CRASH_RUNS", "16"))


def _run_once(
    location: str, seed: int, rng: random.Random, log: Path, mode: str = "crash"
) -> list[str]:
    """Start a writer, let it acknowledge a few operations, SIGKILL it; return its acks."""
    args = [location, str(seed)] if mode == "crash" else [location]
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), mode, *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert proc.stdout is not None
    try:
        ready = proc.stdout.readline()
        assert ready.startswith("ready"), f"worker did not start: {log.read_text()}"
        acks: list[str] = []
        target = rng.randint(1, 25)
        while len(acks) < target:
            line = proc.stdout.readline()
            assert line, f"worker died early: {log.read_text()}"
            acks.append(line.strip())
        # Kill at a random moment inside the next operations. This short spin
        # is the randomness of the kill point, not a wait for something.
        until = time.perf_counter() + rng.uniform(0, 0.01)
        while time.perf_counter() < until:
            pass
        proc.send_signal(signal.SIGKILL)
        acks.extend(line.strip() for line in proc.stdout.read().splitlines())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, f"worker failed: {log.read_text()}"
    return acks


def _label(location: str) -> str:
    return "postgres" if location.startswith("postgresql://") else "sqlite"


@pytest.mark.slow
def test_sigkill_at_random_points_loses_no_acknowledged_write(
    shared_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(20261128)
    acks: list[str] = []
    for run in range(RUNS):
        acks.extend(_run_once(shared_store, run, rng, tmp_path / f"worker-{run}.log"))

    with open_manager(shared_store) as km:
        report = km.audit.verify()
        entries = list(km.audit.entries())
        audited = Counter((e.operation, e.object) for e in entries)
        increments = sorted(
            int(e.details["value"])  # type: ignore[arg-type]
            for e in entries
            if e.operation == "test.increment"
        )
        counter = km._store.get(RECORD_KIND, COUNTER)
        versions = [v.version for v in km.keys.get(SHARED_KEY).versions]
        ca = km.pki.ca(CA_NAME)
        checked = Counter[str]()
        for ack in acks:
            what, _, name = ack.partition(" ")
            checked[what] += 1
            if what == "key":
                assert km.keys.get(name).name == name, ack
                continue
            if what == "rotate":
                assert int(name) in versions, ack
                continue
            if what == "encrypt":
                label, _, hexed = name.partition(" ")
                assert km.keys.decrypt(bytes.fromhex(hexed)) == payload(label), ack
                continue
            if what == "issue":
                assert ca.get(int(name)).serial == int(name), ack
                continue
            if what == "revoke":
                assert km.revocation.is_revoked(SubjectKind.PRINCIPAL, name), ack
                assert audited[("revoke", f"principal:{name}")] == 1, ack
            elif what == "record":
                assert km._store.get(RECORD_KIND, name) == payload(name), ack
                assert audited[("test.record", name)] == 1, ack
            elif what == "counter":
                assert int(name) in increments, ack
            else:
                assert what == "audit", ack
                assert audited[("test.event", name)] == 1, ack
    # No lost or duplicated increment: committed values are exactly 1..N.
    final = int(counter or b"0")
    assert increments == list(range(1, final + 1))
    # No lost or duplicated key version either.
    assert versions == list(range(1, len(versions) + 1))
    assert report.entries == len(entries)
    with capsys.disabled():
        print(
            f"\n[crash {_label(shared_store)}] runs={RUNS} kills={RUNS} "
            f"acknowledged ops checked={len(acks)} ({dict(checked)}) "
            f"audit entries verified={report.entries} counter={final} "
            f"key versions={len(versions)}"
        )


@pytest.mark.slow
def test_sigkill_during_master_key_changes_leaves_exactly_one_working_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keymgmt import KeyManager
    from keymgmt.errors import WrongPassphraseError
    from keymgmt.keyring import KdfProfile

    location = str(tmp_path / "rekey.db")
    with KeyManager.open(
        location, passphrase=REKEY_PASSPHRASES[0], kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
    ) as km:
        km.revocation.revoke(SubjectKind.PRINCIPAL, "kept")
    rng = random.Random(7)
    runs = max(4, RUNS // 2)
    changes = 0
    for run in range(runs):
        acks = _run_once(location, run, rng, tmp_path / f"rekey-{run}.log", mode="rekey")
        changes += len(acks)
        km, index = open_either(location)
        with km:
            # The last acknowledged change holds, or the one after it landed
            # just before the kill; never a store neither key opens.
            if acks:
                last = int(acks[-1].split()[1])
                assert index in (last, 1 - last)
            assert km.revocation.is_revoked(SubjectKind.PRINCIPAL, "kept")
            report = km.audit.verify()
        with pytest.raises(WrongPassphraseError):
            KeyManager.open(location, passphrase=REKEY_PASSPHRASES[1 - index], create=False)
    with capsys.disabled():
        print(
            f"\n[crash rekey] runs={runs} kills={runs} master key changes acknowledged={changes} "
            f"audit entries verified={report.entries}"
        )
