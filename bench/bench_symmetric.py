"""Symmetric keys: façade encrypt/decrypt beside raw AESGCM; key create/rotate on SQLite.

The raw baseline does what a careful caller of ``cryptography`` does: one
cached ``AESGCM`` object, a fresh 12-byte nonce from ``os.urandom`` per
message and associated data of the size of our header. Ours adds the
header, the context, state and revocation checks and usage counting.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from _harness import Case
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keymgmt import KeyManager
from keymgmt.keyring import KdfProfile

_SIZES = ((64, "64 B"), (1024, "1 KiB"), (64 * 1024, "64 KiB"), (1024 * 1024, "1 MiB"))
# Targets from the issue: 1 KiB at most 3x per call; 1 MiB throughput at
# least 0.9x raw, i.e. time at most 1/0.9 = 1.11x.
_TARGETS = {1024: 3.0, 1024 * 1024: 1 / 0.9}


def cases() -> list[Case]:
    """Encrypt/decrypt at four sizes, then create/rotate on SQLite."""
    km = KeyManager.in_memory()
    km.keys.create("bench")
    raw = AESGCM(os.urandom(32))
    aad = b"h" * 23  # our header prefix for the name "bench"
    out: list[Case] = []
    for size, label in _SIZES:
        plaintext = os.urandom(size)
        ours_ct = km.encrypt("bench", plaintext)
        nonce = os.urandom(12)
        raw_ct = raw.encrypt(nonce, plaintext, aad)
        number = 0 if size < 1024 * 1024 else 200
        out.append(
            Case(
                "symmetric",
                f"encrypt {label} vs AESGCM.encrypt",
                lambda p=plaintext: km.encrypt("bench", p),
                lambda p=plaintext: raw.encrypt(os.urandom(12), p, aad),
                target=_TARGETS.get(size),
                number=number,
            )
        )
        out.append(
            Case(
                "symmetric",
                f"decrypt {label} vs AESGCM.decrypt",
                lambda c=ours_ct: km.decrypt(c),
                lambda n=nonce, c=raw_ct: raw.decrypt(n, c, aad),
                target=_TARGETS.get(size),
                number=number,
            )
        )
    context = {"tenant": "acme", "purpose": "bench"}
    ctx_ct = km.encrypt("bench", b"x" * 1024, context)
    out.append(
        Case(
            "symmetric",
            "encrypt 1 KiB + 2-entry context vs AESGCM",
            lambda: km.encrypt("bench", b"x" * 1024, context),
            lambda: raw.encrypt(os.urandom(12), b"x" * 1024, aad + b"c" * 40),
            target=3.0,
        )
    )
    out.append(
        Case(
            "symmetric",
            "decrypt 1 KiB + 2-entry context vs AESGCM",
            lambda: km.decrypt(ctx_ct, context),
            lambda: raw.decrypt(nonce, raw.encrypt(nonce, b"x" * 1024, aad), aad),
            note="raw side also encrypts (upper bound on raw)",
        )
    )
    out.extend(_data_key_cases())
    out.extend(_sqlite_cases())
    return out


def _data_key_cases() -> list[Case]:
    """generate_data_key in each data-key log mode, in memory and on SQLite.

    The raw side makes a data key as a careful caller would: 32 random bytes,
    wrapped with a cached AESGCM under a fresh nonce. Ours adds the header,
    checks, usage counting and the issuance log (``each``: one store commit
    per data key, a durable fsync on SQLite; ``batched``: an append, written
    1,024 at a time).
    """
    from keymgmt.keys import DataKeyLogPolicy

    raw = AESGCM(os.urandom(32))
    aad = b"h" * 23

    def raw_data_key() -> bytes:
        return raw.encrypt(os.urandom(12), os.urandom(32), aad)

    tmp = Path(tempfile.mkdtemp(prefix="keymgmt-bench-datakeys-"))
    out: list[Case] = []
    for where in ("memory", "SQLite"):
        for mode in ("each", "batched"):
            km = (
                KeyManager.in_memory()
                if where == "memory"
                else KeyManager.open(
                    tmp / f"datakeys-{mode}.db",
                    passphrase="bench",
                    kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
                )
            )
            km.keys.create("bench")
            km.keys.data_key_log_policy = DataKeyLogPolicy(mode=mode)
            out.append(
                Case(
                    "symmetric",
                    f"generate_data_key ({where}, log {mode}) vs AESGCM wrap",
                    lambda m=km: m.generate_data_key("bench"),
                    raw_data_key,
                    number=200 if (where, mode) == ("SQLite", "each") else 0,
                    note="each: one durable commit per data key"
                    if mode == "each"
                    else "batched: a crash loses up to batch_size (1,024)",
                )
            )
    out.append(_concurrent_each_case(tmp, raw_data_key))
    return out


def _concurrent_each_case(tmp: Path, raw_data_key: Callable[[], bytes]) -> Case:
    """64 data keys from 8 threads at once, SQLite, log each: what group commit shares."""
    from concurrent.futures import ThreadPoolExecutor

    km = KeyManager.open(
        tmp / "datakeys-threads.db",
        passphrase="bench",
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
    )
    km.keys.create("bench")
    pool = ThreadPoolExecutor(8)

    def eight() -> None:
        for _ in range(8):
            km.generate_data_key("bench")

    def ours() -> None:
        for future in [pool.submit(eight) for _ in range(8)]:
            future.result()

    def raw() -> None:
        for _ in range(64):
            raw_data_key()

    return Case(
        "symmetric",
        "64 x generate_data_key (SQLite, log each, 8 threads) vs 64 AESGCM wraps",
        ours,
        raw,
        number=5,
        note="concurrent callers share one durable commit (group commit)",
    )


def _sqlite_cases() -> list[Case]:
    tmp = Path(tempfile.mkdtemp(prefix="keymgmt-bench-keys-"))
    km = KeyManager.open(
        tmp / "keys.db", passphrase="bench", kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
    )
    conn = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (kind TEXT, name TEXT, data BLOB, PRIMARY KEY (kind, name))")
    counter = itertools.count()
    km.keys.create("rotating")
    blob = os.urandom(200)

    def raw_insert() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?, ?)", ("key", f"k{next(counter)}", blob))
        conn.execute("COMMIT")

    return [
        Case(
            "symmetric",
            "key create (SQLite) vs sqlite3 INSERT",
            lambda: km.keys.create(f"k{next(counter)}"),
            raw_insert,
            number=30,
            note="create = 2 sealed records + audit entry + head, one durable commit",
        ),
        Case(
            "symmetric",
            "key rotate (SQLite) vs sqlite3 INSERT",
            lambda: km.keys.rotate("rotating"),
            raw_insert,
            number=30,
            note="rotate = read key, seal 3 records + audit, one durable commit",
        ),
        Case(
            "symmetric",
            "generate_data_key (SQLite, log each) vs sqlite3 INSERT",
            lambda: km.generate_data_key("rotating"),
            raw_insert,
            number=100,
            note="the durable log's floor: one durable commit per data key",
        ),
    ]
