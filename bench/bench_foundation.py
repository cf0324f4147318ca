"""Foundation: sealing, opening a store, SQLite record put/get vs bare sqlite3."""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
from pathlib import Path

from _harness import Case
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keymgmt import KeyManager, SubjectKind
from keymgmt._random import SystemRandomness
from keymgmt.keyring import KdfProfile, Keyring, RawMasterKey
from keymgmt.storage import ANY, MemoryBackend, Put, SQLiteBackend
from keymgmt.testing import in_memory_manager


def cases() -> list[Case]:
    """Seal/unseal vs raw AESGCM; open; SQLite put/get vs sqlite3."""
    rng = SystemRandomness()
    keyring = Keyring.initialize(MemoryBackend(), RawMasterKey(os.urandom(32)), rng)
    payload = os.urandom(64)
    sealed = keyring.seal("key", "payments#1", payload)
    aead = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    raw_ct = aead.encrypt(nonce, payload, b"aad")

    tmp = Path(tempfile.mkdtemp(prefix="keymgmt-bench-"))
    ours_db = SQLiteBackend(tmp / "ours.db")
    raw_conn = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    raw_conn.execute("PRAGMA journal_mode=WAL")
    raw_conn.execute("PRAGMA synchronous=FULL")
    raw_conn.execute("CREATE TABLE t (kind TEXT, name TEXT, data BLOB, PRIMARY KEY (kind, name))")
    counter = itertools.count()

    def our_put() -> None:
        ours_db.commit([Put("bench", f"r{next(counter)}", payload, ANY)])

    def raw_put() -> None:
        raw_conn.execute("BEGIN IMMEDIATE")
        raw_conn.execute(
            "INSERT OR REPLACE INTO t VALUES (?, ?, ?)", ("bench", f"r{next(counter)}", payload)
        )
        raw_conn.execute("COMMIT")

    ours_db.commit([Put("bench", "fixed", payload, ANY)])
    raw_conn.execute("INSERT INTO t VALUES ('bench', 'fixed', ?)", (payload,))

    # Revocation lookups at a million entries vs the same lookup at a thousand:
    # O(1) means the ratio stays near 1. The mirror is filled directly (a
    # million audited transactions would take minutes); lookups go through
    # the public is_revoked, including its consistency check.
    big, small = in_memory_manager(seed=1), in_memory_manager(seed=2)
    for manager, size in ((big, 1_000_000), (small, 1_000)):
        manager.revocation._entries.update(
            {f"key:k{i}#1": ("superseded", 0, None) for i in range(size)}
        )
    probe = SubjectKind.KEY

    store = tmp / "open.db"
    KeyManager.open(store, passphrase="bench", kdf_profile=KdfProfile.TESTING_ONLY_INSECURE).close()

    return [
        Case(
            "foundation",
            "seal 64 B vs AESGCM.encrypt",
            lambda: keyring.seal("key", "payments#1", payload),
            lambda: aead.encrypt(os.urandom(12), payload, b"aad"),
            target=3.0,
        ),
        Case(
            "foundation",
            "unseal 64 B vs AESGCM.decrypt",
            lambda: keyring.unseal("key", "payments#1", sealed),
            lambda: aead.decrypt(nonce, raw_ct, b"aad"),
            target=3.0,
        ),
        Case(
            "foundation",
            "SQLite get vs sqlite3 SELECT",
            lambda: ours_db.get("bench", "fixed"),
            lambda: raw_conn.execute(
                "SELECT data FROM t WHERE kind = ? AND name = ?", ("bench", "fixed")
            ).fetchone(),
            target=3.0,
        ),
        Case(
            "foundation",
            "SQLite put (durable) vs sqlite3 INSERT",
            our_put,
            raw_put,
            target=1.5,
            number=50,
        ),
        Case(
            "foundation",
            "is_revoked at 1M entries vs at 1k",
            lambda: big.revocation.is_revoked(probe, "k777777#1"),
            lambda: small.revocation.is_revoked(probe, "k777#1"),
            target=2.0,
            note="O(1): a dict probe whatever the size",
        ),
        Case(
            "foundation",
            "open store (test KDF) ",
            lambda: KeyManager.open(store, passphrase="bench").close(),
            None,
            number=20,
            note="no raw baseline; includes schema check and keyring unwrap",
        ),
    ]
