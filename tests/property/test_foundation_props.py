"""Property tests for the foundation's security promises.

* sealing round-trips, and a sealed value opens only under its own record identity;
* flipping any byte of any sealed value in the SQLite file, or swapping two
  records' values, makes reading fail with IntegrityError, never wrong data
  or another exception;
* a damaged keyring record fails to open with a typed error;
* no secret reaches a repr, str, exception, log line or audit entry;
* the SQLite file (and its WAL) holds no master key, store key or record key.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from keymgmt import KeyManager, RevocationReason, SecretBytes, SubjectKind, _codec
from keymgmt._store import Store
from keymgmt.audit import AUDIT_HEAD, AUDIT_KIND
from keymgmt.errors import IntegrityError, InvalidArgumentError, KeyMgmtError, WrongPassphraseError
from keymgmt.keyring import (
    KEYRING_RECORD,
    KdfProfile,
    KeyFile,
    Keyring,
    Passphrase,
    RawMasterKey,
)
from keymgmt.storage import ANY, MemoryBackend, Put, Record, SQLiteBackend
from keymgmt.testing import FakeClock, SeededRandomness

CHEAP = KdfProfile.TESTING_ONLY_INSECURE
MASTER = bytes(range(100, 132))

# Record identities: non-empty, no NUL, valid Unicode (no lone surrogates).
identity = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    min_size=1,
    max_size=20,
)


@pytest.fixture(scope="module")
def keyring() -> Keyring:
    return Keyring.initialize(MemoryBackend(), RawMasterKey(MASTER), SeededRandomness(3))


# -- sealing ------------------------------------------------------------------------


@given(identity, identity, st.binary(max_size=512))
def test_seal_then_unseal_round_trips(
    keyring: Keyring, kind: str, name: str, plaintext: bytes
) -> None:
    assert keyring.unseal(kind, name, keyring.seal(kind, name, plaintext)) == plaintext


@given(identity, identity, identity, identity, st.binary(max_size=64))
def test_a_sealed_value_opens_only_under_its_own_identity(
    keyring: Keyring, kind: str, name: str, other_kind: str, other_name: str, plaintext: bytes
) -> None:
    assume((kind, name) != (other_kind, other_name))
    sealed = keyring.seal(kind, name, plaintext)
    with pytest.raises(IntegrityError):
        keyring.unseal(other_kind, other_name, sealed)


@given(st.binary(max_size=64), st.data())
def test_any_edit_of_a_sealed_value_is_an_integrity_error(
    keyring: Keyring, plaintext: bytes, data: st.DataObject
) -> None:
    sealed = bytearray(keyring.seal("key", "k", plaintext))
    edit = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if edit == "flip":
        position = data.draw(st.integers(0, len(sealed) - 1))
        sealed[position] ^= data.draw(st.integers(1, 255))
    elif edit == "truncate":
        del sealed[data.draw(st.integers(0, len(sealed) - 1)) :]
    else:
        sealed += data.draw(st.binary(min_size=1, max_size=8))
    with pytest.raises(IntegrityError):
        keyring.unseal("key", "k", bytes(sealed))


# -- the SQLite file -------------------------------------------------------------------


def populate(km: KeyManager) -> None:
    """Records of every foundation kind, plus other parts' records where they exist."""
    km.revocation.revoke(SubjectKind.KEY, "payments#1", RevocationReason.KEY_COMPROMISE)
    km.revocation.revoke(SubjectKind.CERTIFICATE, "root:0a", RevocationReason.CERTIFICATE_HOLD)
    km.revocation.revoke(SubjectKind.PRINCIPAL, "mallory")
    km._store.transact(lambda txn: txn.put("note", "plain", b"some stored secret"))
    km._store.transact(lambda txn: txn.put_json("note", "json", {"secret": _codec.b64e(MASTER)}))
    # Other parts' records (the keys, the PKI, the KDC) join the search when
    # they are there; each is sealed through the same Store.
    keys = getattr(km, "keys", None)
    if keys is not None:
        keys.create("aes", "aes-256-gcm")
        keys.create("chacha", "chacha20-poly1305")
        keys.create("signing", "ed25519")
        keys.create("agreement", "x25519")
        keys.rotate("aes")
    pki = getattr(km, "pki", None)
    if pki is not None:
        pki.create_root_ca("root", key_type="ed25519")
    kdc = getattr(km, "kdc", None)
    if kdc is not None:
        kdc.register("alice")


def sealed_records(km: KeyManager) -> list[Record]:
    """Every record whose value is sealed (all but the keyring and plain audit entries)."""
    conn = sqlite3.connect(km._store.backend.path)  # type: ignore[attr-defined]
    rows = conn.execute("SELECT kind, name, data, revision, seq FROM records").fetchall()
    conn.close()
    return [
        Record(*row) for row in rows if row[0] != AUDIT_KIND and (row[0], row[1]) != KEYRING_RECORD
    ]


def set_data(path: Path, kind: str, name: str, data: bytes) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE records SET data = ? WHERE kind = ? AND name = ?", (data, kind, name))
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KeyManager, Path]]:
    path = tmp_path_factory.mktemp("props") / "store.db"
    with KeyManager.open(
        path, master_key=RawMasterKey(MASTER), clock=FakeClock(), consistency_interval=0
    ) as km:
        populate(km)
        yield km, path


@given(st.data())
def test_flipping_any_byte_of_any_sealed_value_in_the_file_is_an_integrity_error(
    sqlite_store: tuple[KeyManager, Path], data: st.DataObject
) -> None:
    km, path = sqlite_store
    records = sealed_records(km)
    record = data.draw(st.sampled_from(records), label="record")
    position = data.draw(st.integers(0, len(record.data) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor")
    edited = bytearray(record.data)
    edited[position] ^= mask
    set_data(path, record.kind, record.name, bytes(edited))
    try:
        with pytest.raises(IntegrityError) as info:
            km._store.get(record.kind, record.name)
        assert type(info.value) is IntegrityError
        with pytest.raises(IntegrityError):
            km._store.transact(lambda txn: txn.get(record.kind, record.name))
    finally:
        set_data(path, record.kind, record.name, record.data)
    km._store.get(record.kind, record.name)  # restored: reads again


@given(st.data())
def test_swapping_two_records_sealed_values_is_an_integrity_error(
    sqlite_store: tuple[KeyManager, Path], data: st.DataObject
) -> None:
    km, path = sqlite_store
    records = sealed_records(km)
    a = data.draw(st.sampled_from(records), label="a")
    b = data.draw(st.sampled_from([r for r in records if r.name != a.name or r.kind != a.kind]))
    set_data(path, a.kind, a.name, b.data)
    set_data(path, b.kind, b.name, a.data)
    try:
        for record in (a, b):
            with pytest.raises(IntegrityError):
                km._store.get(record.kind, record.name)
    finally:
        set_data(path, a.kind, a.name, a.data)
        set_data(path, b.kind, b.name, b.data)


@given(st.data())
def test_a_damaged_keyring_record_fails_to_open_with_a_typed_error(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    backend = MemoryBackend()
    Keyring.initialize(backend, Passphrase("pw", CHEAP), SeededRandomness(1))
    record = backend.get(*KEYRING_RECORD)
    assert record is not None
    edited = bytearray(record.data)
    position = data.draw(st.integers(0, len(edited) - 1), label="position")
    edited[position] ^= data.draw(st.integers(1, 255), label="xor")
    backend.commit([Put(*KEYRING_RECORD, bytes(edited), ANY)])
    with pytest.raises((WrongPassphraseError, IntegrityError)):
        Keyring.open(backend, Passphrase("pw"), SeededRandomness(1))


def _forms(secret: bytes) -> list[bytes]:
    """Ways a secret could appear in a file: raw, hex, base64 (both alphabets)."""
    return [
        secret,
        secret.hex().encode(),
        base64.b64encode(secret).rstrip(b"="),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


def _embedded_secrets(value: Any) -> Iterator[bytes]:
    """Every base64 string of 16+ bytes inside an unsealed JSON record."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _embedded_secrets(item)
    elif isinstance(value, list):
        for item in value:
            yield from _embedded_secrets(item)
    elif isinstance(value, str) and len(value) >= 22:
        try:
            decoded = _codec.b64d(value)
        except IntegrityError:
            return
        if len(decoded) >= 16:
            yield decoded


def record_secrets(km: KeyManager) -> list[bytes]:
    """Every secret held in any record: unseal all, collect embedded key material."""
    found: list[bytes] = []
    for record in sealed_records(km):
        if (record.kind, record.name) == AUDIT_HEAD:
            continue  # sealed for integrity only: its hash is public (the last entry's)
        plaintext = km._store.keyring.unseal(record.kind, record.name, record.data)
        if len(plaintext) >= 16:
            found.append(plaintext)
        try:
            value = _codec.loads(plaintext)
        except IntegrityError:
            continue
        for secret in _embedded_secrets(value):
            found.append(secret)
            found.append(secret[-16:])  # the private part of a DER key sits at its end
    return found


def test_the_file_holds_no_master_key_store_key_or_record_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    with KeyManager.open(path, master_key=RawMasterKey(MASTER), clock=FakeClock()) as km:
        populate(km)
        store_keys = [key.reveal() for key in km._store.keyring._keys.values()]
        secrets = [MASTER, *store_keys, *record_secrets(km)]
        if getattr(km, "keys", None) is not None:
            assert len(secrets) > 8, "expected key material from km.keys / pki / kdc records"
        while_open = b"".join(p.read_bytes() for p in sorted(tmp_path.glob("store.db*")))
        assert (tmp_path / "store.db-wal").exists()
    after_close = path.read_bytes()
    for secret in secrets:
        for form in _forms(secret):
            assert form not in while_open
            assert form not in after_close


def test_the_passphrase_and_derived_master_key_are_not_in_the_file(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    path = tmp_path / "store.db"
    passphrase = "a long and unusual passphrase 7d2f"
    with KeyManager.open(path, passphrase=passphrase, kdf_profile=CHEAP) as km:
        populate(km)
        record = km._store.backend.get(*KEYRING_RECORD)
        assert record is not None
        params = _codec.loads(record.data)["parameters"]
        master = Argon2id(
            salt=_codec.b64d(params["salt"]),
            length=32,
            iterations=params["iterations"],
            lanes=params["lanes"],
            memory_cost=params["memory_kib"],
        ).derive(passphrase.encode())
        store_keys = [key.reveal() for key in km._store.keyring._keys.values()]
        content = b"".join(p.read_bytes() for p in sorted(tmp_path.glob("store.db*")))
    for secret in [passphrase.encode(), master, *store_keys]:
        for form in _forms(secret):
            assert form not in content


# -- no secret in reprs, errors, logs or audit entries -----------------------------------

# Hypothesis also tries string constants it finds in the code ("IntegrityErr"...),
# which would then "appear" in any error text. A marker that no output
# contains on its own keeps a match meaning a leak: a leaked passphrase
# carries its marker with it.
passphrases = st.text(
    st.characters(blacklist_categories=["Cs", "Cc"]), min_size=4, max_size=40
).map(lambda s: f"\u2603{s}\u2603")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _texts_of(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), *(repr(v) for v in vars(exc).values())]


@given(st.binary(min_size=32, max_size=32), passphrases)
def test_no_secret_appears_in_reprs_errors_logs_or_audit(
    tmp_path_factory: pytest.TempPathFactory, key: bytes, passphrase: str
) -> None:
    # A degenerate key (all zeros, say) matches public constants such as the
    # audit chain's all-zero genesis hash; real keys never look like that.
    assume(len(set(key)) >= 8)
    texts: list[str] = []
    handler = _Collect()
    logger = logging.getLogger("keymgmt")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        secret = SecretBytes(key)
        raw = RawMasterKey(key)
        phrase = Passphrase(passphrase, CHEAP)
        key_path = tmp_path_factory.mktemp("k") / "master.key"
        key_path.write_bytes(key)
        texts += [repr(secret), str(secret), f"{secret}", repr(raw), str(raw), repr(phrase)]
        texts += [repr(KeyFile(key_path)), str(phrase)]
        texts += [repr(Record("k", "n", key, 1, 1)), repr(Put("k", "n", key, ANY))]

        def failing_sink(entry: object) -> None:
            raise RuntimeError("sink down")

        km = KeyManager(
            backend=MemoryBackend(),
            master_key=raw,
            clock=FakeClock(),
            randomness=SeededRandomness(key),
            audit_sinks=[failing_sink],
        )
        texts += [repr(km), repr(km._store), repr(km._store.keyring), repr(km.revocation)]
        km.revocation.revoke(SubjectKind.KEY, "k#1", "key-compromise")
        km._store.transact(lambda txn: txn.put("note", "n", key))
        failures: list[BaseException] = []
        for attempt in (
            lambda: RawMasterKey(key[:31]),
            lambda: Keyring.open(km._store.backend, phrase, SeededRandomness()),
            lambda: Keyring.open(
                km._store.backend, RawMasterKey(bytes(b ^ 0xFF for b in key)), SeededRandomness()
            ),
            lambda: km._store.audit("op", "obj", leaked=key),
            lambda: km._store.audit("op", "obj", leaked=secret),
            lambda: km._store.keyring.unseal(
                "note", "other", km._store.keyring.seal("note", "n", key)
            ),
            lambda: SecretBytes(passphrase),  # type: ignore[arg-type]
            lambda: _codec.dumps({"k": key}),
        ):
            try:
                attempt()
            except KeyMgmtError as exc:
                failures.append(exc)
        assert len(failures) == 8
        for exc in failures:
            assert exc.__cause__ is None
            texts += _texts_of(exc)
        entries = [e.encode().decode() for e in km.audit.entries()]
        assert entries
        texts += entries
        km.close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert any("sink down" in line for line in handler.lines)
    texts += handler.lines
    forbidden = [passphrase, *(f.decode() for f in _forms(key)[1:]), repr(key)[2:-1]]
    blob = "\n".join(texts)
    for form in forbidden:
        assert form not in blob
    assert key not in blob.encode("utf-8", "surrogateescape")


def test_invalid_argument_errors_never_echo_secret_values() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        RawMasterKey(b"\x01" * 31)
    assert info.value.message == "a master key is 32 bytes"


def test_store_repr_names_only_the_backend() -> None:
    km = KeyManager.in_memory(randomness=SeededRandomness(0))
    assert isinstance(km._store, Store)
    assert re.fullmatch(r"Store\(backend=MemoryBackend\(records=\d+\)\)", repr(km._store))
    km.close()


def test_sqlite_backend_type_is_what_open_uses(tmp_path: Path) -> None:
    with KeyManager.open(tmp_path / "s.db", master_key=RawMasterKey(MASTER)) as km:
        assert isinstance(km._store.backend, SQLiteBackend)


# -- the revocation registry against a tiny model -------------------------------------------


SUBJECTS = st.sampled_from(["k#1", "k#2", "ca:01"])
REASONS = st.sampled_from(list(RevocationReason))
DATES = st.one_of(
    st.none(), st.sampled_from([dt.datetime(2029, m, 1, tzinfo=dt.UTC) for m in (1, 6)])
)


class RevocationMachine(RuleBasedStateMachine):
    """Revoke, upgrade, hold and release on one manager; a second one follows by sync."""

    @initialize()
    def start(self) -> None:
        self.clock = FakeClock()
        backend = MemoryBackend()
        self.km = KeyManager(
            backend=backend,
            master_key=RawMasterKey(MASTER),
            clock=self.clock,
            randomness=SeededRandomness(1),
            consistency_interval=3600,
        )
        self.other = KeyManager(
            backend=backend,
            master_key=RawMasterKey(MASTER),
            clock=self.clock,
            randomness=SeededRandomness(2),
            consistency_interval=3600,
        )
        # subject -> (reason, revoked_at, invalidity_date)
        self.model: dict[str, tuple[RevocationReason, dt.datetime, dt.datetime | None]] = {}
        self.audited = 1  # store.init

    @rule(subject=SUBJECTS, reason=REASONS, invalidity=DATES)
    def revoke(
        self, subject: str, reason: RevocationReason, invalidity: dt.datetime | None
    ) -> None:
        result = self.km.revocation.revoke(
            SubjectKind.KEY, subject, reason, invalidity_date=invalidity
        )
        old = self.model.get(subject)
        if old is None:
            self.model[subject] = (reason, self.clock.now(), invalidity)
            self.audited += 1
        else:
            hold = RevocationReason.CERTIFICATE_HOLD
            upgrade = (old[0] is hold and reason is not hold) or (
                reason.is_compromise and not old[0].is_compromise
            )
            fills = old[2] is None and invalidity is not None
            if upgrade or fills:
                self.model[subject] = (
                    reason if upgrade else old[0],
                    old[1],
                    invalidity if invalidity is not None else old[2],
                )
                self.audited += 1
        expected = self.model[subject]
        assert (result.reason, result.revoked_at, result.invalidity_date) == expected

    @rule(subject=SUBJECTS)
    def release_hold(self, subject: str) -> None:
        old = self.model.get(subject)
        if old is not None and old[0] is RevocationReason.CERTIFICATE_HOLD:
            self.km.revocation.release_hold(SubjectKind.KEY, subject)
            del self.model[subject]
            self.audited += 1
        else:
            with pytest.raises(InvalidArgumentError, match="is not on hold"):
                self.km.revocation.release_hold(SubjectKind.KEY, subject)

    @rule(seconds=st.integers(1, 86_400))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def other_manager_syncs(self) -> None:
        self.other.revocation.sync()
        self._assert_matches(self.other)

    @invariant()
    def registry_matches_the_model(self) -> None:
        self._assert_matches(self.km)

    @invariant()
    def every_change_is_audited_once(self) -> None:
        assert self.km.audit.verify().entries == self.audited

    def _assert_matches(self, km: KeyManager) -> None:
        found = {
            r.subject: (r.reason, r.revoked_at, r.invalidity_date)
            for r in km.revocation.list(SubjectKind.KEY)
        }
        assert found == self.model

    def teardown(self) -> None:
        self.km.close()
        self.other.close()


TestRevocationMachine = RevocationMachine.TestCase
TestRevocationMachine.settings = settings(settings.default, stateful_step_count=25)


# -- Store.transact against a tiny model ------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c"])
VALUES = st.integers(0, 9)


class StoreMachine(RuleBasedStateMachine):
    """Sealed writes, creates, deletes and failing batches vs a dict."""

    @initialize()
    def start(self) -> None:
        backend = MemoryBackend()
        rng = SeededRandomness(4)
        self.store = Store(
            backend=backend,
            keyring=Keyring.initialize(backend, RawMasterKey(MASTER), rng),
            clock=FakeClock(),
            randomness=rng,
            consistency_interval=0,
        )
        self.model: dict[str, int] = {}
        self.audited = 0

    @rule(name=NAMES, value=VALUES)
    def write(self, name: str, value: int) -> None:
        def run(txn: Any) -> None:
            txn.get("n", name)
            txn.put_json("n", name, {"v": value})
            txn.audit("n.write", name, value=value)

        self.store.transact(run)
        self.model[name] = value
        self.audited += 1

    @rule(name=NAMES, value=VALUES)
    def create(self, name: str, value: int) -> None:
        from unittest import mock

        from keymgmt import _store as store_module
        from keymgmt.errors import ConflictError

        def run(txn: Any) -> None:
            txn.put_json("n", name, {"v": value})  # no read: must not exist

        with (
            mock.patch.object(store_module, "_MAX_ATTEMPTS", 2),
            mock.patch.object(store_module.time, "sleep", return_value=None),
        ):
            if name in self.model:
                with pytest.raises(ConflictError):
                    self.store.transact(run)
            else:
                self.store.transact(run)
                self.model[name] = value

    @rule(name=NAMES)
    def delete(self, name: str) -> None:
        def run(txn: Any) -> None:
            if txn.get("n", name) is not None:
                txn.delete("n", name)

        self.store.transact(run)
        self.model.pop(name, None)

    @rule(names=st.lists(NAMES, min_size=1, max_size=3, unique=True), value=VALUES)
    def failing_batch_writes_nothing(self, names: list[str], value: int) -> None:
        def run(txn: Any) -> None:
            for name in names:
                txn.get("n", name)
                txn.put_json("n", name, {"v": value})
                txn.audit("n.write", name)
            raise RuntimeError("abort")

        with pytest.raises(RuntimeError):
            self.store.transact(run)

    @invariant()
    def store_matches_model(self) -> None:
        assert {n: v["v"] for n, v in self.store.list_json("n")} == self.model

    @invariant()
    def audit_chain_verifies(self) -> None:
        from keymgmt.audit import AuditLog

        assert AuditLog(self.store).verify().entries == self.audited


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(settings.default, stateful_step_count=25)
