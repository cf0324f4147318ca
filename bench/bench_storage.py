"""Storage: PostgreSQL and SQLite put/get beside the bare driver; 4 processes; HSM wrapping.

PostgreSQL cases need ``KEYMGMT_TEST_POSTGRES_DSN`` (``.ci/services/postgres.sh``
starts a throwaway server); HSM cases need ``KEYMGMT_TEST_PKCS11_MODULE``,
``KEYMGMT_TEST_PKCS11_TOKEN`` and ``KEYMGMT_TEST_PKCS11_PIN``
(``.ci/services/softhsm.sh``). Without them those cases are left out and a
note says so.

The PostgreSQL "raw" side runs the *same statements* on a bare psycopg
connection (autocommit, prepared after a few uses, as psycopg does for ours),
so the ratio is what the backend adds: the pool checkout, argument packing,
error translation and building :class:`~keymgmt.storage.Record` values.
Target: within 1.5x. The 4-process cases time 4 forked processes doing the
same number of writes (or reads of one record) each, ours vs bare. Key
creation and encryption with a fresh lookup (``consistency_interval=0``) run
through the façade on both backends, in one process and in 4; their ratios
are informative (the keys layer is measured in ``bench_symmetric``).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import multiprocessing
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from _harness import Case

from keymgmt._random import SystemRandomness
from keymgmt.keyring import RawMasterKey
from keymgmt.storage import ANY, Put, SQLiteBackend

PAYLOAD = os.urandom(96)
PROCESS_OPS = 100
PROCESS_GETS = 1000  # reads are ~100x cheaper than writes: more per batch
PROCESS_CREATES = 25  # key creations per process and round (each one audited CAS batch)


class _Workers:
    """Four forked processes that set up once, then run a batch of writes on each call.

    Setup (opening the store, connecting) happens before timing, so a call
    measures only the concurrent writes: ``run()`` starts a batch in every
    process and returns when all have finished.
    """

    def __init__(self, setup: Callable[[int], Callable[[int], None]], processes: int = 4) -> None:
        ctx = multiprocessing.get_context("fork")
        self._pipes = []
        self._procs = []
        for worker in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=self._serve, args=(setup, worker, child), daemon=True)
            proc.start()
            self._pipes.append(parent)
            self._procs.append(proc)
        for pipe in self._pipes:
            if pipe.recv() != "ready":
                raise RuntimeError("bench worker failed to start")
        atexit.register(self.stop)

    @staticmethod
    def _serve(setup: Callable[[int], Callable[[int], None]], worker: int, pipe: Any) -> None:
        batch = setup(worker)
        pipe.send("ready")
        rounds = itertools.count()
        while pipe.recv() == "go":
            batch(next(rounds))
            pipe.send("done")

    def run(self) -> None:
        for pipe in self._pipes:
            pipe.send("go")
        for pipe in self._pipes:
            if pipe.recv() != "done":
                raise RuntimeError("bench worker failed")

    def stop(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send("stop")
        for proc in self._procs:
            proc.join(timeout=10)


def _sqlite_cases() -> list[Case]:
    tmp = Path(tempfile.mkdtemp(prefix="keymgmt-bench-storage-"))
    SQLiteBackend(tmp / "ours.db").close()
    raw = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute(
        "CREATE TABLE t (kind TEXT, name TEXT, data BLOB, revision INTEGER, seq INTEGER, "
        "PRIMARY KEY (kind, name))"
    )
    seed = SQLiteBackend(tmp / "ours.db")
    seed.commit([Put("bench", "fixed", PAYLOAD, ANY)])
    seed.close()
    raw.execute("INSERT INTO t VALUES ('bench', 'fixed', ?, 1, 1)", (PAYLOAD,))
    # Closed before forking: a child reading through SQLite state inherited from
    # an open connection of the parent's fails with "disk I/O error".
    raw.close()

    def ours_setup(worker: int) -> Callable[[int], None]:
        backend = SQLiteBackend(tmp / "ours.db")

        def batch(round_: int) -> None:
            for i in range(PROCESS_OPS):
                backend.commit([Put("bench", f"p{worker}-{round_}-{i}", PAYLOAD, ANY)])

        return batch

    def raw_setup(worker: int) -> Callable[[int], None]:
        conn = sqlite3.connect(tmp / "raw.db", isolation_level=None, timeout=60)
        conn.execute("PRAGMA synchronous=FULL")

        def batch(round_: int) -> None:
            for i in range(PROCESS_OPS):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT OR REPLACE INTO t VALUES (?, ?, ?, 1, 1)",
                    ("bench", f"p{worker}-{round_}-{i}", PAYLOAD),
                )
                conn.execute("COMMIT")

        return batch

    def ours_get_setup(worker: int) -> Callable[[int], None]:
        backend = SQLiteBackend(tmp / "ours.db")

        def batch(round_: int) -> None:
            for _ in range(PROCESS_GETS):
                backend.get("bench", "fixed")

        return batch

    def raw_get_setup(worker: int) -> Callable[[int], None]:
        conn = sqlite3.connect(tmp / "raw.db", isolation_level=None, timeout=60)
        query = "SELECT kind, name, data, revision, seq FROM t WHERE kind = ? AND name = ?"

        def batch(round_: int) -> None:
            for _ in range(PROCESS_GETS):
                conn.execute(query, ("bench", "fixed")).fetchone()

        return batch

    ours_workers = _Workers(ours_setup)
    raw_workers = _Workers(raw_setup)
    ours_readers = _Workers(ours_get_setup)
    raw_readers = _Workers(raw_get_setup)

    return [
        Case(
            "storage",
            f"SQLite 4 procs x {PROCESS_OPS} puts vs sqlite3",
            ours_workers.run,
            raw_workers.run,
            target=1.5,
            number=1,
            note="wall time of all 4 processes",
        ),
        Case(
            "storage",
            f"SQLite 4 procs x {PROCESS_GETS} gets vs sqlite3",
            ours_readers.run,
            raw_readers.run,
            target=1.5,
            number=1,
            note="wall time of all 4 processes; one record, the same SELECT",
        ),
    ]


def _postgres_cases(dsn: str) -> list[Case]:
    import psycopg
    from psycopg import sql

    from keymgmt.storage.postgres import PostgresBackend

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    ours = PostgresBackend(dsn, schema=schema)
    raw = psycopg.connect(dsn, autocommit=True)

    def drop() -> None:
        ours.close()
        raw.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        raw.close()

    atexit.register(drop)
    ours.commit([Put("bench", "fixed", PAYLOAD, ANY)])
    get_sql = ours._sql_get
    commit_sql = ours._sql_commit
    counter = itertools.count()

    def raw_get() -> Any:
        return raw.execute(get_sql, ("bench", "fixed")).fetchone()

    def our_put() -> None:
        ours.commit([Put("bench", f"r{next(counter)}", PAYLOAD, ANY)])

    def raw_put() -> None:
        raw.execute(commit_sql, (["bench"], [f"r{next(counter)}"], [PAYLOAD], [ANY])).fetchall()

    upsert = sql.SQL(
        "INSERT INTO {}.records (kind, name, data, revision, seq) VALUES (%s, %s, %s, 1, 0) "
        "ON CONFLICT (kind, name) DO UPDATE SET data = excluded.data"
    ).format(sql.Identifier(schema))

    def raw_upsert() -> None:
        raw.execute(upsert, ("bench", f"u{next(counter)}", PAYLOAD))

    def ours_setup(worker: int) -> Callable[[int], None]:
        backend = PostgresBackend(dsn, schema=schema)

        def batch(round_: int) -> None:
            for i in range(PROCESS_OPS):
                backend.commit([Put("bench", f"p{worker}-{round_}-{i}", PAYLOAD, ANY)])

        return batch

    def raw_setup(worker: int) -> Callable[[int], None]:
        conn = psycopg.connect(dsn, autocommit=True)

        def batch(round_: int) -> None:
            for i in range(PROCESS_OPS):
                conn.execute(
                    commit_sql, (["bench"], [f"q{worker}-{round_}-{i}"], [PAYLOAD], [ANY])
                ).fetchall()

        return batch

    def ours_get_setup(worker: int) -> Callable[[int], None]:
        backend = PostgresBackend(dsn, schema=schema)

        def batch(round_: int) -> None:
            for _ in range(PROCESS_GETS):
                backend.get("bench", "fixed")

        return batch

    def raw_get_setup(worker: int) -> Callable[[int], None]:
        conn = psycopg.connect(dsn, autocommit=True)

        def batch(round_: int) -> None:
            for _ in range(PROCESS_GETS):
                conn.execute(get_sql, ("bench", "fixed")).fetchone()

        return batch

    # Fork before this process opens its own connections' sockets to share.
    ours_workers = _Workers(ours_setup)
    raw_workers = _Workers(raw_setup)
    ours_readers = _Workers(ours_get_setup)
    raw_readers = _Workers(raw_get_setup)

    return [
        Case(
            "storage",
            "PostgreSQL get vs psycopg same SELECT",
            lambda: ours.get("bench", "fixed"),
            raw_get,
            target=1.5,
        ),
        Case(
            "storage",
            "PostgreSQL generation vs psycopg same SELECT",
            ours.generation,
            lambda: raw.execute(ours._sql_generation).fetchone(),
            target=1.5,
        ),
        Case(
            "storage",
            "PostgreSQL put (CAS batch) vs psycopg same call",
            our_put,
            raw_put,
            target=1.5,
            number=100,
        ),
        Case(
            "storage",
            "PostgreSQL put vs plain INSERT..ON CONFLICT",
            our_put,
            raw_upsert,
            number=100,
            note="informative: what the counter lock + CAS checks cost",
        ),
        Case(
            "storage",
            f"PostgreSQL 4 procs x {PROCESS_OPS} puts vs psycopg",
            ours_workers.run,
            raw_workers.run,
            target=1.5,
            number=1,
            note="wall time of all 4 processes",
        ),
        Case(
            "storage",
            f"PostgreSQL 4 procs x {PROCESS_GETS} gets vs psycopg",
            ours_readers.run,
            raw_readers.run,
            target=1.5,
            number=1,
            note="wall time of all 4 processes; one record, the same SELECT",
        ),
    ]


def _manager_cases(
    label: str, location: str, fresh: Callable[[], Callable[[], object]]
) -> list[Case]:
    """Key create and encrypt-with-fresh-lookup through the façade, 1 and 4 processes.

    ``consistency_interval=0``: every encrypt first checks the store's
    generation (one read; a round trip on PostgreSQL), so a rotation or
    revocation by another process is honoured at once. The raw side is that
    same read on a bare connection (``fresh()`` opens one) plus AES-256-GCM.
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from keymgmt import KeyManager
    from keymgmt.keyring import KdfProfile

    def open_km() -> KeyManager:
        return KeyManager.open(
            location,
            passphrase="bench",
            kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
            consistency_interval=0,
        )

    km = open_km()
    atexit.register(km.close)
    key = f"bench-{uuid.uuid4().hex[:8]}"
    km.keys.create(key)
    aead = AESGCM(os.urandom(32))
    message = os.urandom(64)
    names = itertools.count()

    def raw_encrypter() -> Callable[[], object]:
        read = fresh()

        def encrypt() -> object:
            read()
            return aead.encrypt(os.urandom(12), message, b"aad")

        return encrypt

    def ours_setup(worker: int) -> Callable[[int], None]:
        mine = open_km()

        def batch(round_: int) -> None:
            for _ in range(PROCESS_OPS):
                mine.keys.encrypt(key, message)

        return batch

    def raw_setup(worker: int) -> Callable[[int], None]:
        encrypt = raw_encrypter()

        def batch(round_: int) -> None:
            for _ in range(PROCESS_OPS):
                encrypt()

        return batch

    def creator_setup(worker: int) -> Callable[[int], None]:
        mine = open_km()

        def batch(round_: int) -> None:
            for i in range(PROCESS_CREATES):
                mine.keys.create(f"{key}-w{worker}-{round_}-{i}")

        return batch

    ours_workers = _Workers(ours_setup)
    raw_workers = _Workers(raw_setup)
    creators = _Workers(creator_setup)
    return [
        Case(
            "storage",
            f"{label} key create",
            lambda: km.keys.create(f"{key}-{next(names)}"),
            None,
            number=20,
            note="no raw baseline: one audited CAS batch (key, version, audit entry, head)",
        ),
        Case(
            "storage",
            f"{label} encrypt 64 B fresh vs gen read+AESGCM",
            lambda: km.keys.encrypt(key, message),
            raw_encrypter(),
            note="informative: keys layer + Store.sync on top of the backend read",
        ),
        Case(
            "storage",
            f"{label} 4 procs x {PROCESS_CREATES} key creates",
            creators.run,
            None,
            number=1,
            note=f"no raw baseline; compare with {4 * PROCESS_CREATES}x the 1-process "
            "key create: writers serialize on the store, the rest runs in parallel",
        ),
        Case(
            "storage",
            f"{label} 4 procs x {PROCESS_OPS} fresh encrypts",
            ours_workers.run,
            raw_workers.run,
            number=1,
            note="informative; raw workers: the same generation read + AESGCM",
        ),
    ]


def _postgres_manager_cases(dsn: str) -> list[Case]:
    """The façade on a fresh PostgreSQL database (dropped at exit)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    database = f"keymgmt_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(dsn, autocommit=True)
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    user = params.get("user", "")
    url = (
        f"postgresql://{user + '@' if user else ''}{params.get('host', '127.0.0.1')}:"
        f"{params.get('port', '5432')}/{database}"
    )

    def drop() -> None:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        admin.close()

    # Registered first, so it runs last (atexit is LIFO): after the managers close.
    atexit.register(drop)

    def fresh() -> Callable[[], object]:
        conn = psycopg.connect(url, autocommit=True)
        return lambda: conn.execute(b"SELECT seq FROM keymgmt.counter WHERE id = 1").fetchone()

    return _manager_cases("PostgreSQL", url, fresh)


def _hsm_cases(module: str, token: str, pin: str) -> list[Case]:
    from keymgmt.keyring.pkcs11 import Pkcs11Key

    rng = SystemRandomness()
    hsm_params, hsm = Pkcs11Key(
        module, token_label=token, pin=pin, key_label=f"bench-{uuid.uuid4().hex[:8]}"
    ).create(rng)
    _, software = RawMasterKey(os.urandom(32)).create(rng)
    store_key = os.urandom(32)
    aad = b"keymgmt/store-key/v1\x00bench"
    hsm_wrapped = hsm.wrap(store_key, aad)
    software_wrapped = software.wrap(store_key, aad)
    from keymgmt import KeyManager

    folder = Path(tempfile.mkdtemp(prefix="keymgmt-bench-hsm-"))
    source = Pkcs11Key(module, token_label=token, pin=pin, key_label=hsm_params["key_label"])
    raw_key = RawMasterKey(os.urandom(32))
    KeyManager.open(folder / "hsm.db", master_key=source).close()
    KeyManager.open(folder / "raw.db", master_key=raw_key).close()
    return [
        Case(
            "storage",
            "open store: HSM master key vs raw key",
            lambda: KeyManager.open(folder / "hsm.db", master_key=source, create=False).close(),
            lambda: KeyManager.open(folder / "raw.db", master_key=raw_key, create=False).close(),
            number=20,
            note="the one HSM call per open: unwrapping the store key",
        ),
        Case(
            "storage",
            "HSM wrap store key vs software AES-GCM wrap",
            lambda: hsm.wrap(store_key, aad),
            lambda: software.wrap(store_key, aad),
            note=f"SoftHSM2, session + login per call; key {hsm_params['key_label']}",
        ),
        Case(
            "storage",
            "HSM unwrap store key vs software unwrap",
            lambda: hsm.unwrap(hsm_wrapped, aad),
            lambda: software.unwrap(software_wrapped, aad),
            note="once per store open; records are sealed in software either way",
        ),
        *_hsm_ca_cases(module, token, pin),
    ]


def _hsm_ca_cases(module: str, token: str, pin: str) -> list[Case]:
    """A P-256 CA whose key is in the token beside the same CA with a sealed software key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from keymgmt import KeyManager
    from keymgmt.keyring.pkcs11 import Pkcs11Token
    from keymgmt.pki import CertificateAuthority

    leaf = ec.generate_private_key(ec.SECP256R1()).public_key()
    km = KeyManager.in_memory()
    in_token = km.pki.create_root_ca("hsm", token=Pkcs11Token(module, token_label=token, pin=pin))
    software = km.pki.create_root_ca("soft")

    def issue(ca: CertificateAuthority) -> Callable[[], object]:
        return lambda: ca.issue(public_key=leaf, subject="svc", names=["svc.example.com"])

    return [
        Case(
            "storage",
            "issue leaf: CA key in HSM vs sealed software CA key",
            issue(in_token),
            issue(software),
            note="SoftHSM2: session + login + CKM_ECDSA per signature, then DER "
            "re-assembly and a verify of the result",
        ),
        Case(
            "storage",
            "sign CRL: CA key in HSM vs sealed software CA key",
            lambda: in_token.crl(force=True),
            lambda: software.crl(force=True),
            note="empty CRL re-signed each call (force=True)",
        ),
    ]


def _transaction_cases() -> list[Case]:
    """One small ``Store.transact`` (a ~400 B put + an audit entry with 4 details).

    What every key grant and certificate issuance writes: a sealed record, a
    hash-chained audit entry and the sealed audit head, committed with
    compare-and-set. The raw side is the least any such write does: on
    memory, the two AES-256-GCM seals (record and head) and the entry's
    SHA-256; on SQLite, those plus the same four statements in one
    ``BEGIN IMMEDIATE`` transaction on a bare ``sqlite3`` connection (same
    schema, same durability). ``transact_many`` cases are per item, 16
    items per group commit.
    """
    import hashlib

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from keymgmt import KeyManager
    from keymgmt.storage import MemoryBackend

    payload = os.urandom(200).hex().encode()  # 400 B
    folder = Path(tempfile.mkdtemp(prefix="keymgmt-bench-txn-"))
    names = itertools.count()

    def write(txn: Any) -> None:
        name = f"bench-{next(names):08x}"
        txn.put("cert", name, payload)
        txn.audit(
            "pki.issue", f"cert:{name}", profile="tls-server", subject="CN=svc", serial="ab12"
        )

    managers = {
        "memory": KeyManager(backend=MemoryBackend(), master_key=RawMasterKey(os.urandom(32))),
        "SQLite": KeyManager(
            backend=SQLiteBackend(folder / "ours.db"), master_key=RawMasterKey(os.urandom(32))
        ),
    }
    for km in managers.values():
        atexit.register(km.close)
    aead = AESGCM(os.urandom(32))
    entry = os.urandom(330)

    def crypto() -> None:
        aead.encrypt(os.urandom(12), payload, b"keymgmt/seal/v1\x00cert\x00bench-00000000")
        hashlib.sha256(entry).digest()
        aead.encrypt(os.urandom(12), entry[:60], b"keymgmt/seal/v1\x00meta\x00audit-head")

    SQLiteBackend(folder / "raw.db").close()
    raw = sqlite3.connect(folder / "raw.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    atexit.register(raw.close)
    raw.execute("INSERT INTO records VALUES ('meta', 'audit-head', ?, 1, 0)", (entry[:90],))
    raw_names = itertools.count(1)
    insert = "INSERT INTO records (kind, name, data, revision, seq) VALUES (?, ?, ?, 1, ?)"
    update = (
        "UPDATE records SET data = ?, revision = revision + 1, seq = ? "
        "WHERE kind = 'meta' AND name = 'audit-head' AND revision = ?"
    )

    def raw_sqlite() -> None:
        crypto()
        n = next(raw_names)
        raw.execute("BEGIN IMMEDIATE")
        seq = raw.execute("UPDATE sequence SET seq = seq + 1 RETURNING seq").fetchone()[0]
        raw.execute(insert, ("cert", f"bench-{n:08x}", payload, seq))
        raw.execute(insert, ("audit", f"{n:020d}", entry, seq))
        raw.execute(update, (entry[:90], seq, n))
        raw.execute("COMMIT")

    group = [write] * 16
    found = []
    for label, km in managers.items():
        store = km._context.store
        floor = crypto if label == "memory" else raw_sqlite
        floor_name = "seals+hash" if label == "memory" else "seals+hash+SQL"
        found += [
            Case(
                "storage",
                f"{label} transact (put + audit) vs {floor_name}",
                partial(store.transact, write),
                floor,
                number=200 if label == "SQLite" else 0,
                note="informative: the store's own work around the least a sealed, "
                "chained write does",
            ),
            Case(
                "storage",
                f"{label} transact_many of 16 (one call)",
                partial(store.transact_many, group),
                None,
                number=20 if label == "SQLite" else 0,
                note="per item: divide by 16; one backend batch, one audit head",
            ),
        ]
    return found


def cases() -> list[Case]:
    """SQLite 4-process puts and gets, façade cases; PostgreSQL and HSM cases when configured."""
    found = _transaction_cases()
    found += _sqlite_cases()
    store = Path(tempfile.mkdtemp(prefix="keymgmt-bench-km-")) / "km.db"

    def sqlite_fresh() -> Callable[[], object]:
        conn = sqlite3.connect(store, isolation_level=None)
        return lambda: conn.execute("SELECT seq FROM sequence WHERE id = 1").fetchone()

    found += _manager_cases("SQLite", str(store), sqlite_fresh)
    dsn = os.environ.get("KEYMGMT_TEST_POSTGRES_DSN")
    if dsn:
        found += _postgres_cases(dsn)
        found += _postgres_manager_cases(dsn)
    else:
        print("storage: PostgreSQL cases skipped (set KEYMGMT_TEST_POSTGRES_DSN)")
    module = os.environ.get("KEYMGMT_TEST_PKCS11_MODULE")
    if module:
        found += _hsm_cases(
            module,
            os.environ.get("KEYMGMT_TEST_PKCS11_TOKEN", "keymgmt-test"),
            os.environ.get("KEYMGMT_TEST_PKCS11_PIN", ""),
        )
    else:
        print("storage: HSM cases skipped (set KEYMGMT_TEST_PKCS11_MODULE)")
    return found
