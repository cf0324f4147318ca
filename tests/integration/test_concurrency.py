"""Concurrency: processes x threads hammer one SQLite file / one PostgreSQL database.

Each of PROCESSES worker processes runs THREADS threads doing OPS mixed
writes: compare-and-set counter increments (read-modify-write in one
transaction), revocations, sealed records. Afterwards: no error reached any
caller (no "database is locked"), no increment was lost or duplicated (the
committed values are exactly 1..N), every acknowledged write is present, and
the audit chain verifies with exactly one entry per operation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _integration_worker import COUNTER, RECORD_KIND, open_manager, payload

from keymgmt.revocation import SubjectKind

WORKER = Path(__file__).with_name("_integration_worker.py")
PROCESSES = 3
THREADS = 3
OPS = 24


def _label(location: str) -> str:
    return "postgres" if location.startswith("postgresql://") else "sqlite"


@pytest.mark.slow
def test_processes_and_threads_lose_no_update(
    shared_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "hammer", shared_store, str(w), str(THREADS), str(OPS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(PROCESSES)
    ]
    summaries = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        summaries.append(json.loads(out.strip().splitlines()[-1]))

    errors = [e for s in summaries for e in s["errors"]]
    assert errors == []
    values = sorted(v for s in summaries for v in s["counter"])
    revoked = [n for s in summaries for n in s["revoked"]]
    records = [n for s in summaries for n in s["records"]]
    assert len(values) + len(revoked) + len(records) == PROCESSES * THREADS * OPS
    # Every increment read the latest value: no value written twice, none skipped.
    assert values == list(range(1, len(values) + 1))

    with open_manager(shared_store) as km:
        report = km.audit.verify()
        entries = list(km.audit.entries())
        assert int(km._store.get(RECORD_KIND, COUNTER) or b"0") == len(values)
        for name in revoked:
            assert km.revocation.is_revoked(SubjectKind.PRINCIPAL, name)
        for name in records:
            assert km._store.get(RECORD_KIND, name) == payload(name)
    # One entry per operation, plus the store's creation.
    assert report.entries == len(entries) == 1 + PROCESSES * THREADS * OPS
    audited_values = sorted(
        int(e.details["value"])  # type: ignore[arg-type]
        for e in entries
        if e.operation == "test.increment"
    )
    assert audited_values == values
    with capsys.disabled():
        print(
            f"\n[concurrency {_label(shared_store)}] processes={PROCESSES} threads={THREADS} "
            f"ops={PROCESSES * THREADS * OPS} increments={len(values)} "
            f"revocations={len(revoked)} records={len(records)} errors=0 "
            f"audit entries verified={report.entries}"
        )
