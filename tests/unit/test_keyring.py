"""The keyring: master key sources, wrapping the store key, sealing records."""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import pickle
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keymgmt import _codec
from keymgmt._xaes import XAES256GCM
from keymgmt.errors import (
    AlreadyExistsError,
    ConflictError,
    IntegrityError,
    InvalidArgumentError,
    StoreUnavailableError,
    WrongPassphraseError,
)
from keymgmt.keyring import (
    KEYRING_RECORD,
    KdfProfile,
    KeyFile,
    Keyring,
    MasterKey,
    MasterKeySource,
    Passphrase,
    RawMasterKey,
    record_aad,
)
from keymgmt.storage import ANY, MemoryBackend, Put
from keymgmt.testing import SeededRandomness

CHEAP = KdfProfile.TESTING_ONLY_INSECURE
MASTER = bytes(range(32))


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def keyring(backend: MemoryBackend, rng: SeededRandomness) -> Keyring:
    return Keyring.initialize(backend, RawMasterKey(MASTER), rng)


def _rewrite_keyring(backend: MemoryBackend, edit: dict[str, object]) -> None:
    record = backend.get(*KEYRING_RECORD)
    assert record is not None
    value = json.loads(record.data)
    value.update(edit)
    backend.commit([Put(*KEYRING_RECORD, _codec.dumps(value), ANY)])


# -- sealing -----------------------------------------------------------------


def test_seal_then_unseal_returns_the_plaintext(keyring: Keyring) -> None:
    sealed = keyring.seal("key", "payments", b"secret")
    assert keyring.unseal("key", "payments", sealed) == b"secret"


def test_sealed_value_has_the_documented_layout(keyring: Keyring) -> None:
    sealed = keyring.seal("key", "k", b"abc")
    assert sealed[0] == 2  # format version: XAES-256-GCM
    assert int.from_bytes(sealed[1:5], "big") == 1  # store key id
    assert len(sealed) == 1 + 4 + 24 + 3 + 16


def _store_key(keyring: Keyring) -> bytes:
    return keyring._keys[1].reveal()


def test_a_sealed_value_is_a_standard_xaes_256_gcm_ciphertext(keyring: Keyring) -> None:
    sealed = keyring.seal("key", "k", b"abc")
    xaes = XAES256GCM(_store_key(keyring))
    assert xaes.decrypt(sealed[5:29], sealed[29:], record_aad("key", "k")) == b"abc"


def test_values_sealed_in_the_first_format_are_still_read(keyring: Keyring) -> None:
    # 0x01 | key id | 12-byte nonce | AES-256-GCM under the store key itself.
    nonce = bytes(12)
    old = (
        b"\x01\x00\x00\x00\x01"
        + nonce
        + AESGCM(_store_key(keyring)).encrypt(nonce, b"old", record_aad("key", "k"))
    )
    assert keyring.unseal("key", "k", old) == b"old"
    with pytest.raises(IntegrityError, match="failed authentication"):
        keyring.unseal("key", "other", old)


def test_seals_share_a_nonce_prefix_until_its_limit_then_take_a_new_one(
    keyring: Keyring,
) -> None:
    keyring._prefix_seals = 3
    sealed = [keyring.seal("key", "k", b"x") for _ in range(7)]
    prefixes = [value[5:17] for value in sealed]
    assert prefixes[0] == prefixes[1] == prefixes[2]
    assert prefixes[3] == prefixes[4] == prefixes[5] != prefixes[0]
    assert prefixes[6] not in (prefixes[0], prefixes[3])
    assert len({value[17:29] for value in sealed}) == 7  # second halves all fresh
    assert all(keyring.unseal("key", "k", value) == b"x" for value in sealed)


def test_no_prefix_seals_more_than_its_limit_across_threads(keyring: Keyring) -> None:
    keyring._prefix_seals = 5
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        sealed = list(pool.map(lambda _: keyring.seal("key", "k", b"x"), range(400)))
    counts = collections.Counter(value[5:17] for value in sealed)
    assert max(counts.values()) <= 5
    assert sum(counts.values()) == 400


def test_another_keyring_of_the_same_store_unseals_every_prefix(
    keyring: Keyring, backend: MemoryBackend, rng: SeededRandomness
) -> None:
    keyring._prefix_seals = 2
    sealed = [keyring.seal("key", str(i), b"v%d" % i) for i in range(10)]
    other = Keyring.open(backend, RawMasterKey(MASTER), rng)
    assert [other.unseal("key", str(i), value) for i, value in enumerate(sealed)] == [
        b"v%d" % i for i in range(10)
    ]


def test_sealing_twice_uses_fresh_nonces(keyring: Keyring) -> None:
    assert keyring.seal("key", "k", b"abc") != keyring.seal("key", "k", b"abc")


def test_unsealing_under_another_name_fails(keyring: Keyring) -> None:
    sealed = keyring.seal("key", "a", b"secret")
    with pytest.raises(IntegrityError) as info:
        keyring.unseal("key", "b", sealed)
    assert info.value.message == "sealed record key/b failed authentication (edited or swapped)"
    assert (info.value.kind, info.value.name) == ("key", "b")  # type: ignore[attr-defined]


def test_unsealing_under_another_kind_fails(keyring: Keyring) -> None:
    sealed = keyring.seal("key", "a", b"secret")
    with pytest.raises(IntegrityError):
        keyring.unseal("cert", "a", sealed)


@pytest.mark.parametrize("length", [0, 5, 20, 32, 44])
def test_a_truncated_value_fails_with_integrity_error(keyring: Keyring, length: int) -> None:
    sealed = keyring.seal("key", "a", b"secret")
    with pytest.raises(IntegrityError, match="truncated"):
        keyring.unseal("key", "a", sealed[:length])


def test_every_flipped_byte_fails_authentication(keyring: Keyring) -> None:
    sealed = keyring.seal("key", "a", b"secret")
    for index in range(len(sealed)):
        damaged = bytearray(sealed)
        damaged[index] ^= 0x01
        with pytest.raises(IntegrityError):
            keyring.unseal("key", "a", bytes(damaged))


@pytest.mark.parametrize(
    "header",
    [b"\x03\x00\x00\x00\x01", b"\x02\x00\x00\x00\x09", b"\x01\x00\x00\x00\x09"],
)
def test_an_unknown_version_or_store_key_fails(keyring: Keyring, header: bytes) -> None:
    sealed = keyring.seal("key", "a", b"secret")
    with pytest.raises(IntegrityError, match="damaged"):
        keyring.unseal("key", "a", header + sealed[5:])


def test_another_stores_keyring_cannot_unseal(keyring: Keyring, rng: SeededRandomness) -> None:
    other = Keyring.initialize(MemoryBackend(), RawMasterKey(MASTER), rng)
    with pytest.raises(IntegrityError):
        other.unseal("key", "a", keyring.seal("key", "a", b"secret"))


@pytest.mark.parametrize(
    ("kind", "name"), [("a\x00b", "n"), ("k", "a\x00b"), ("", "n"), ("k", ""), ("k", "\udc80")]
)
def test_record_identities_that_would_be_ambiguous_are_refused(kind: str, name: str) -> None:
    with pytest.raises(InvalidArgumentError):
        record_aad(kind, name)


def test_record_aad_names_kind_and_name() -> None:
    assert record_aad("key", "payments#1") == b"keymgmt/seal/v1\x00key\x00payments#1"


# -- initialize and open -------------------------------------------------------


def test_initialize_twice_is_a_conflict(backend: MemoryBackend, rng: SeededRandomness) -> None:
    Keyring.initialize(backend, RawMasterKey(MASTER), rng)
    with pytest.raises(ConflictError):
        Keyring.initialize(backend, RawMasterKey(MASTER), rng)


def test_open_reads_what_initialize_sealed(keyring: Keyring, backend: MemoryBackend) -> None:
    sealed = keyring.seal("key", "a", b"secret")
    reopened = Keyring.open(backend, RawMasterKey(MASTER), SeededRandomness(9))
    assert reopened.unseal("key", "a", sealed) == b"secret"


def test_open_an_uninitialized_store_is_unavailable(rng: SeededRandomness) -> None:
    assert not Keyring.exists(MemoryBackend())
    with pytest.raises(StoreUnavailableError, match="not initialized"):
        Keyring.open(MemoryBackend(), RawMasterKey(MASTER), rng)


def test_open_with_the_wrong_key_is_a_wrong_passphrase(
    keyring: Keyring, backend: MemoryBackend, rng: SeededRandomness
) -> None:
    with pytest.raises(WrongPassphraseError, match="does not open this store"):
        Keyring.open(backend, RawMasterKey(bytes(32)), rng)


def test_wrong_passphrase_fails_and_the_right_one_opens(rng: SeededRandomness) -> None:
    backend = MemoryBackend()
    Keyring.initialize(backend, Passphrase("right", CHEAP), rng)
    with pytest.raises(WrongPassphraseError):
        Keyring.open(backend, Passphrase("wrong"), rng)
    Keyring.open(backend, Passphrase("right"), rng)


def test_a_passphrase_cannot_open_a_raw_key_store(keyring: Keyring, backend: MemoryBackend) -> None:
    with pytest.raises(WrongPassphraseError, match="master key is a 'key', not a passphrase"):
        Keyring.open(backend, Passphrase("pw"), SeededRandomness())


def test_a_raw_key_cannot_open_a_passphrase_store(rng: SeededRandomness) -> None:
    backend = MemoryBackend()
    Keyring.initialize(backend, Passphrase("pw", CHEAP), rng)
    with pytest.raises(WrongPassphraseError, match="not a raw key"):
        Keyring.open(backend, RawMasterKey(MASTER), rng)


@pytest.mark.parametrize(
    "edit",
    [{"format": 2}, {"keys": []}, {"keys": {"x": "AA"}}, {"active": 7}, {"parameters": 5}],
)
def test_a_damaged_keyring_record_is_an_integrity_error(
    keyring: Keyring, backend: MemoryBackend, edit: dict[str, object]
) -> None:
    _rewrite_keyring(backend, edit)
    with pytest.raises(IntegrityError):
        Keyring.open(backend, RawMasterKey(MASTER), SeededRandomness())


def test_an_edited_stored_parameter_fails_to_open(rng: SeededRandomness) -> None:
    backend = MemoryBackend()
    Keyring.initialize(backend, RawMasterKey(MASTER), rng)
    _rewrite_keyring(backend, {"parameters": {"type": "key", "extra": 1}})
    with pytest.raises(WrongPassphraseError):
        Keyring.open(backend, RawMasterKey(MASTER), rng)


@pytest.mark.parametrize(
    "edit",
    [
        {"memory_kib": 2**40},
        {"iterations": 0},
        {"iterations": 10_000},
        {"lanes": 0},
        {"salt": "AAAA"},
        {"salt": 5},
        {"iterations": "many"},
    ],
)
def test_argon2_parameters_from_the_store_are_bounded(
    rng: SeededRandomness, edit: dict[str, object]
) -> None:
    backend = MemoryBackend()
    Keyring.initialize(backend, Passphrase("pw", CHEAP), rng)
    record = backend.get(*KEYRING_RECORD)
    assert record is not None
    value = json.loads(record.data)
    value["parameters"].update(edit)
    backend.commit([Put(*KEYRING_RECORD, _codec.dumps(value), ANY)])
    with pytest.raises(IntegrityError, match="key derivation parameters"):
        Keyring.open(backend, Passphrase("pw"), rng)


def test_the_test_profile_is_labelled_in_the_store(rng: SeededRandomness) -> None:
    backend = MemoryBackend()
    Keyring.initialize(backend, Passphrase("pw", CHEAP), rng)
    record = backend.get(*KEYRING_RECORD)
    assert record is not None
    parameters = json.loads(record.data)["parameters"]
    assert parameters["profile"] == "testing-only-insecure"
    assert (parameters["iterations"], parameters["memory_kib"], parameters["lanes"]) == (1, 8, 1)


def test_the_default_profile_is_rfc_9106_moderate() -> None:
    assert Passphrase("pw").profile is KdfProfile.MODERATE
    profile = KdfProfile.MODERATE
    assert (profile.iterations, profile.memory_kib, profile.lanes) == (3, 65536, 4)


# -- changing the master key -----------------------------------------------------


def test_change_master_key_keeps_every_sealed_value(
    keyring: Keyring, backend: MemoryBackend, rng: SeededRandomness
) -> None:
    sealed = keyring.seal("key", "a", b"secret")
    keyring.change_master_key(Passphrase("new", CHEAP))
    reopened = Keyring.open(backend, Passphrase("new"), rng)
    assert reopened.unseal("key", "a", sealed) == b"secret"
    with pytest.raises(WrongPassphraseError):
        Keyring.open(backend, RawMasterKey(MASTER), rng)


def test_change_master_key_twice_from_one_keyring_works(
    keyring: Keyring, backend: MemoryBackend, rng: SeededRandomness
) -> None:
    keyring.change_master_key(Passphrase("one", CHEAP))
    keyring.change_master_key(Passphrase("two", CHEAP))
    Keyring.open(backend, Passphrase("two"), rng)


def test_change_master_key_after_another_change_is_a_conflict(
    keyring: Keyring, backend: MemoryBackend, rng: SeededRandomness
) -> None:
    other = Keyring.open(backend, RawMasterKey(MASTER), rng)
    other.change_master_key(Passphrase("theirs", CHEAP))
    with pytest.raises(ConflictError, match="changed elsewhere"):
        keyring.change_master_key(Passphrase("mine", CHEAP))
    Keyring.open(backend, Passphrase("theirs"), rng)


# -- sources -----------------------------------------------------------------------


def test_sources_satisfy_the_protocol() -> None:
    assert isinstance(Passphrase("pw"), MasterKeySource)
    assert isinstance(RawMasterKey(MASTER), MasterKeySource)
    _, master = RawMasterKey(MASTER).create(SeededRandomness())
    assert isinstance(master, MasterKey)


def test_an_empty_passphrase_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="empty"):
        Passphrase("")


def test_a_bad_profile_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="KdfProfile"):
        Passphrase("pw", "cheap")  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_a_raw_master_key_must_be_32_bytes(size: int) -> None:
    with pytest.raises(InvalidArgumentError, match="32 bytes"):
        RawMasterKey(bytes(size))


def test_a_master_key_must_be_bytes() -> None:
    with pytest.raises(InvalidArgumentError):
        RawMasterKey(5)  # type: ignore[arg-type]


def test_key_file_generate_writes_0600_base64_and_refuses_overwrite(
    tmp_path: Path, rng: SeededRandomness
) -> None:
    path = tmp_path / "master.key"
    KeyFile.generate(path, rng)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(_codec.b64d(path.read_text().strip())) == 32
    with pytest.raises(AlreadyExistsError, match="exists already"):
        KeyFile.generate(path, rng)


def test_key_file_reads_raw_bytes_and_base64_to_the_same_key(
    tmp_path: Path, rng: SeededRandomness
) -> None:
    raw, text = tmp_path / "raw", tmp_path / "text"
    raw.write_bytes(MASTER)
    text.write_text(_codec.b64e(MASTER) + "\n")
    backend = MemoryBackend()
    keyring = Keyring.initialize(backend, KeyFile(raw), rng)
    sealed = keyring.seal("k", "n", b"x")
    assert Keyring.open(backend, KeyFile(text), rng).unseal("k", "n", sealed) == b"x"


def test_a_missing_key_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="cannot read key file"):
        KeyFile(tmp_path / "nope")


@pytest.mark.parametrize("content", [b"short", b"not base64 at all!!", os.urandom(40)])
def test_a_key_file_of_the_wrong_size_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(InvalidArgumentError, match="must hold 32 bytes"):
        KeyFile(path)


def test_reprs_are_redacted(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "k"
    path.write_bytes(MASTER)
    assert repr(Passphrase("hunter2", CHEAP)) == (
        "Passphrase(<redacted>, profile=TESTING_ONLY_INSECURE)"
    )
    assert repr(RawMasterKey(MASTER)) == "RawMasterKey(<redacted>)"
    assert repr(KeyFile(path)) == "KeyFile(<redacted>)"
    assert repr(keyring) == "Keyring(store_key_id=1)"
    _, master = RawMasterKey(MASTER).create(SeededRandomness())
    assert repr(master) == "MasterKey(<redacted>)"


def test_sources_keyrings_and_master_keys_refuse_pickling(keyring: Keyring) -> None:
    _, master = RawMasterKey(MASTER).create(SeededRandomness())
    for obj in (Passphrase("pw"), RawMasterKey(MASTER), keyring, master):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(obj)


def test_a_passphrase_typed_decomposed_opens_a_store_made_composed(
    rng: SeededRandomness,
) -> None:
    backend = MemoryBackend()
    Keyring.initialize(backend, Passphrase("caf\u00e9 cr\u00e8me", CHEAP), rng)  # NFC
    Keyring.open(backend, Passphrase("cafe\u0301 cre\u0300me"), rng)  # NFD


def test_a_passphrase_with_a_lone_surrogate_is_an_argument_error() -> None:
    with pytest.raises(InvalidArgumentError, match="valid Unicode"):
        Passphrase("pass\udc80word")


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_seals_under_a_prefix_of_its_own(keyring: Keyring) -> None:
    parent = keyring.seal("key", "k", b"x")[5:17]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: seal once, report the prefix, leave at once
        try:
            os.write(write, keyring.seal("key", "k", b"x")[5:17])
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 12)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 12
    assert child != parent
    assert keyring.seal("key", "k", b"x")[5:17] == parent  # the parent's is unchanged


def test_a_sealed_value_given_as_a_bytearray_unseals(keyring: Keyring) -> None:
    sealed = keyring.seal("key", "k", b"x")
    assert keyring.unseal("key", "k", bytearray(sealed)) == b"x"  # type: ignore[arg-type]
