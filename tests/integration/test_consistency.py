"""Two KeyManagers in different processes on one store see each other's changes.

Revocations (of principals and of key versions) and rotations made by one
are honoured by the other: a revoked version is refused, a new primary is
used.

The bound: a revocation committed by one instance is honoured by another at
its first operation that starts after ``consistency_interval`` seconds have
passed since that instance last checked — with ``consistency_interval=0``,
at its very next operation. (Each operation calls ``Store.sync()``, which
compares the backend's generation and reads back only what changed.)
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _integration_worker import SHARED_KEY, open_manager

from keymgmt.revocation import SubjectKind

WORKER = Path(__file__).with_name("_integration_worker.py")


@contextmanager
def _follower(location: str, interval: float) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "follower", location, str(interval)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n", proc.stderr.read() if proc.stderr else ""
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=60)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def _check(proc: subprocess.Popen[str], subject: str) -> str:
    return _ask(proc, f"check {subject}")


def test_a_revocation_is_honoured_by_another_process_at_its_next_operation(
    shared_store: str,
) -> None:
    with open_manager(shared_store, actor="leader") as km, _follower(shared_store, 0.0) as other:
        for i in range(10):
            subject = f"client-{i}"
            assert _check(other, subject) == "valid"
            km.revocation.revoke(SubjectKind.PRINCIPAL, subject, "key-compromise")
            assert _check(other, subject) == "revoked"


def _ask(proc: subprocess.Popen[str], line: str) -> str:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def test_a_rotation_is_used_by_another_process_at_its_next_encrypt(shared_store: str) -> None:
    with open_manager(shared_store, actor="leader") as km, _follower(shared_store, 0.0) as other:
        for _ in range(5):
            version = km.keys.rotate(SHARED_KEY).version
            assert _ask(other, f"encrypt {SHARED_KEY}") == f"version {version}"


def test_a_revoked_key_version_is_refused_by_another_process_at_once(shared_store: str) -> None:
    with open_manager(shared_store, actor="leader") as km, _follower(shared_store, 0.0) as other:
        primary = km.keys.get(SHARED_KEY).primary_version
        assert _ask(other, f"encrypt {SHARED_KEY}") == f"version {primary}"
        km.keys.revoke(SHARED_KEY, primary, reason="key-compromise")
        assert _ask(other, f"encrypt {SHARED_KEY}") == "refused RevokedError"


def test_revocations_from_the_other_process_reach_this_one(shared_store: str) -> None:
    with open_manager(shared_store, actor="reader") as km:
        writer = subprocess.run(
            [sys.executable, "-c", _REVOKE_SNIPPET, shared_store],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=WORKER.parent,
        )
        assert writer.returncode == 0, writer.stderr
        km._store.sync()  # as the next operation would
        assert km.revocation.is_revoked(SubjectKind.PRINCIPAL, "from-elsewhere")


_REVOKE_SNIPPET = """
import sys
from _integration_worker import SHARED_KEY, open_manager
from keymgmt.revocation import SubjectKind
with open_manager(sys.argv[1], actor="writer") as km:
    km.revocation.revoke(SubjectKind.PRINCIPAL, "from-elsewhere")
"""


@pytest.mark.slow
def test_with_caching_a_revocation_is_honoured_within_the_interval(shared_store: str) -> None:
    interval = 0.3
    with (
        open_manager(shared_store, actor="leader") as km,
        _follower(shared_store, interval) as other,
    ):
        assert _check(other, "cached") == "valid"
        km.revocation.revoke(SubjectKind.PRINCIPAL, "cached")
        revoked_at = time.monotonic()
        while _check(other, "cached") != "revoked":
            # Polling the other process's answer; real time is what is measured.
            assert time.monotonic() - revoked_at < interval + 2.0, "bound exceeded"
        assert time.monotonic() - revoked_at < interval + 2.0
