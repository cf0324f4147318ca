"""SIGKILL a re-seal (and a rotation) mid-way: nothing is lost and the next run resumes."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

from keymgmt import KeyManager
from keymgmt.keyring import KdfProfile

CHEAP = KdfProfile.TESTING_ONLY_INSECURE
RECORDS = 60

# The worker: rotate (when told), then re-seal one record per transaction,
# printing each batch only after it committed; the test kills it meanwhile.
WORKER = """
import sys
from keymgmt import KeyManager
from keymgmt.keyring import KdfProfile

path, rotate = sys.argv[1], sys.argv[2] == "rotate"
with KeyManager.open(path, passphrase="pw", kdf_profile=KdfProfile.TESTING_ONLY_INSECURE) as km:
    if rotate:
        print("rotated", km.rotate_store_key(), flush=True)
    print("ready", flush=True)
    km.reseal(batch_size=1, progress=lambda done, total: print("batch", done, flush=True))
    print("done", flush=True)
"""


def _open(path: Path) -> KeyManager:
    return KeyManager.open(path, passphrase="pw", kdf_profile=CHEAP)


def _run_and_kill(path: Path, rotate: bool, after: int) -> list[str]:
    """Start the worker; SIGKILL it after ``after`` acknowledged batches; return its lines."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(path), "rotate" if rotate else "resume"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while True:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if sum(entry.startswith("batch") for entry in lines) >= after:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.stderr.close()
    assert lines, err
    assert "Traceback" not in err, err
    return lines


def test_a_reseal_killed_between_batches_loses_nothing_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    rng = random.Random(20261128)
    with _open(path) as km:
        for index in range(RECORDS):
            value = f"value {index}".encode()
            km._store.transact(lambda txn, i=index, v=value: txn.put("note", f"n{i}", v))
    current = 1
    for run in range(4):
        rotate = run % 2 == 0
        lines = _run_and_kill(path, rotate, after=rng.randint(1, RECORDS // 3))
        if rotate and any(line.startswith("rotated") for line in lines):
            current += 1
        with _open(path) as km:
            status = km.store_key_status()
            assert status.current == current
            for index in range(RECORDS):
                assert km._store.get("note", f"n{index}") == f"value {index}".encode()
            km.audit.verify()
    with _open(path) as km:
        report = km.reseal()
        assert report.remaining == 0
        assert km.store_key_status().stale_records == 0
        for key_id in range(1, current):
            km.retire_store_key(key_id)
        assert km._store.keyring.key_ids == (current,)
    with _open(path) as km:
        for index in range(RECORDS):
            assert km._store.get("note", f"n{index}") == f"value {index}".encode()
        km.audit.verify()
