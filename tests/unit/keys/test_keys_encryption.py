"""Encryption through the façade: format, contexts, tampering, data keys, caching, audit."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keymgmt import KeyManager, SecretBytes
from keymgmt.algorithms import Algorithm
from keymgmt.errors import (
    DecryptionError,
    InvalidArgumentError,
    KeyMgmtError,
    RevokedError,
)
from keymgmt.hazmat import export_raw_key
from keymgmt.keyring import KdfProfile
from keymgmt.keys import PayloadType
from keymgmt.keys._format import encode_context, parse_header
from keymgmt.testing import FakeClock

AEADS = [Algorithm.AES_256_GCM, Algorithm.CHACHA20_POLY1305, Algorithm.AES_256_GCM_SIV]
PASSPHRASE = "correct horse battery staple"


@pytest.mark.parametrize("algorithm", [*AEADS, Algorithm.FERNET], ids=str)
def test_round_trip_for_every_symmetric_algorithm(km: KeyManager, algorithm: Algorithm) -> None:
    km.keys.create("k", algorithm)
    assert km.decrypt(km.encrypt("k", b"attack at dawn")) == b"attack at dawn"


@pytest.mark.parametrize("algorithm", AEADS, ids=str)
def test_the_context_must_match(km: KeyManager, algorithm: Algorithm) -> None:
    km.keys.create("k", algorithm)
    ciphertext = km.encrypt("k", b"x", {"tenant": "acme"})
    assert km.decrypt(ciphertext, {"tenant": "acme"}) == b"x"
    for wrong in (None, {}, {"tenant": "evil"}, {"tenant": "acme", "extra": ""}):
        with pytest.raises(DecryptionError):
            km.decrypt(ciphertext, wrong)


def test_the_context_order_does_not_matter(km: KeyManager) -> None:
    km.keys.create("k")
    ciphertext = km.encrypt("k", b"x", {"a": "1", "b": "2"})
    assert km.decrypt(ciphertext, {"b": "2", "a": "1"}) == b"x"


def test_the_header_names_key_version_and_algorithm(km: KeyManager) -> None:
    info = km.keys.create("payments", Algorithm.CHACHA20_POLY1305)
    header = parse_header(km.encrypt("payments", b"x"))
    assert (header.name, header.version, header.algorithm) == (
        "payments",
        1,
        Algorithm.CHACHA20_POLY1305,
    )
    assert header.key_id.hex() == info.key_id
    assert header.payload is PayloadType.MESSAGE


def test_the_documented_format_decrypts_with_plain_aesgcm(km: KeyManager) -> None:
    km.keys.create("k")
    ciphertext = bytes(km.encrypt("k", b"interop", {"a": "b"}))
    key = export_raw_key(km, "k", allow_plaintext=True).reveal()
    size = parse_header(ciphertext).prefix_length
    nonce, body = ciphertext[size : size + 12], ciphertext[size + 12 :]
    aad = ciphertext[:size] + encode_context({"a": "b"})
    assert AESGCM(key).decrypt(nonce, body, aad) == b"interop"


@pytest.mark.parametrize("algorithm", [*AEADS, Algorithm.FERNET], ids=str)
def test_every_single_byte_flip_is_rejected(km: KeyManager, algorithm: Algorithm) -> None:
    km.keys.create("k", algorithm)
    ciphertext = bytes(km.encrypt("k", b"sixteen byte msg"))
    for index in range(len(ciphertext)):
        for bit in (0x01, 0x80):
            damaged = bytearray(ciphertext)
            damaged[index] ^= bit
            with pytest.raises(DecryptionError):
                km.decrypt(bytes(damaged))


@pytest.mark.parametrize("algorithm", [*AEADS, Algorithm.FERNET], ids=str)
def test_every_truncation_and_extension_is_rejected(km: KeyManager, algorithm: Algorithm) -> None:
    km.keys.create("k", algorithm)
    ciphertext = bytes(km.encrypt("k", b"sixteen byte msg"))
    for length in range(len(ciphertext)):
        with pytest.raises(DecryptionError):
            km.decrypt(ciphertext[:length])
    with pytest.raises(DecryptionError):
        km.decrypt(ciphertext + b"\x00")


def test_a_ciphertext_from_another_store_is_foreign(km: KeyManager) -> None:
    km.keys.create("k")
    with KeyManager.in_memory() as other:
        other.keys.create("k")
        foreign = other.encrypt("k", b"x")
    with pytest.raises(DecryptionError):
        km.decrypt(foreign)


@pytest.mark.parametrize("junk", [b"", b"km", b"not a ciphertext at all", bytes(100)])
def test_junk_is_one_opaque_error(km: KeyManager, junk: bytes) -> None:
    km.keys.create("k")
    with pytest.raises(DecryptionError) as caught:
        km.decrypt(junk)
    assert caught.value.message == "decryption failed"
    assert caught.value.__cause__ is None


def test_non_bytes_ciphertext_is_a_decryption_error(km: KeyManager) -> None:
    with pytest.raises(DecryptionError):
        km.decrypt("text")  # type: ignore[arg-type]


def test_a_context_that_is_not_str_to_str_is_refused(km: KeyManager) -> None:
    km.keys.create("k")
    with pytest.raises(InvalidArgumentError):
        km.encrypt("k", b"x", {"n": 1})  # type: ignore[dict-item]


def test_large_payloads_come_back_in_one_buffer(km: KeyManager) -> None:
    km.keys.create("k")
    plaintext = bytes(range(256)) * 1024
    ciphertext = km.encrypt("k", plaintext, {"a": "b"})
    assert isinstance(ciphertext, bytearray)
    assert km.decrypt(ciphertext, {"a": "b"}) == plaintext
    assert km.decrypt(memoryview(ciphertext), {"a": "b"}) == plaintext


def test_fernet_refuses_a_context(km: KeyManager) -> None:
    km.keys.create("f", Algorithm.FERNET)
    with pytest.raises(InvalidArgumentError, match="Fernet"):
        km.encrypt("f", b"x", {"a": "b"})


def test_fernet_ciphertexts_carry_a_plain_fernet_token(km: KeyManager) -> None:
    km.keys.create("f", Algorithm.FERNET)
    ciphertext = bytes(km.encrypt("f", b"seed format"))
    key = export_raw_key(km, "f", allow_plaintext=True).reveal()
    token = ciphertext[parse_header(ciphertext).prefix_length :]
    assert Fernet(base64.urlsafe_b64encode(key)).decrypt(token) == b"seed format"


def test_fernet_token_timestamps_come_from_the_injected_clock(
    km: KeyManager, clock: FakeClock
) -> None:
    km.keys.create("f", Algorithm.FERNET)
    ciphertext = bytes(km.encrypt("f", b"x"))
    key = export_raw_key(km, "f", allow_plaintext=True).reveal()
    token = ciphertext[parse_header(ciphertext).prefix_length :]
    stamp = Fernet(base64.urlsafe_b64encode(key)).extract_timestamp(token)
    assert stamp == int(clock.now().timestamp())


# -- envelope ----------------------------------------------------------------------


def test_data_key_round_trip(km: KeyManager) -> None:
    km.keys.create("k")
    data_key = km.generate_data_key("k", {"file": "a.bin"})
    assert isinstance(data_key.plaintext, SecretBytes)
    assert len(data_key.plaintext) == 32
    assert (data_key.key_name, data_key.key_version) == ("k", 1)
    assert km.decrypt_data_key(data_key.wrapped, {"file": "a.bin"}) == data_key.plaintext
    assert data_key.plaintext.reveal().hex() not in repr(data_key)
    assert "plaintext" not in repr(data_key)


def test_data_keys_and_messages_are_not_interchangeable(km: KeyManager) -> None:
    km.keys.create("k")
    data_key = km.generate_data_key("k")
    with pytest.raises(DecryptionError):
        km.decrypt(data_key.wrapped)
    with pytest.raises(DecryptionError):
        km.decrypt_data_key(km.encrypt("k", b"x" * 32))


def test_rewrap_moves_to_the_primary_and_keeps_the_context(km: KeyManager) -> None:
    km.keys.create("k")
    old = km.encrypt("k", b"x", {"a": "b"})
    old_key = km.generate_data_key("k")
    km.keys.rotate("k")
    new = km.rewrap(old, {"a": "b"})
    assert parse_header(new).version == 2
    assert km.decrypt(new, {"a": "b"}) == b"x"
    rewrapped_key = km.rewrap(old_key.wrapped)
    assert parse_header(rewrapped_key).payload is PayloadType.DATA_KEY
    assert km.decrypt_data_key(rewrapped_key) == old_key.plaintext


def test_rewrap_of_a_compromised_version_needs_the_explicit_allowance(km: KeyManager) -> None:
    km.keys.create("k")
    old = km.encrypt("k", b"x")
    km.keys.rotate("k")
    km.keys.revoke("k", 1, reason="key-compromise")
    with pytest.raises(RevokedError):
        km.rewrap(old)
    assert km.decrypt(km.rewrap(old, allow_compromised=True)) == b"x"


# -- caching, freshness, audit ---------------------------------------------------------


def test_decrypt_of_a_cached_version_does_no_store_io(
    counted_km: KeyManager, counting: Any
) -> None:
    counted_km.keys.create("k")
    ciphertext = counted_km.encrypt("k", b"x", {"a": "b"})
    counted_km.decrypt(ciphertext, {"a": "b"})
    before = dict(counting.calls)
    for _ in range(100):
        counted_km.decrypt(ciphertext, {"a": "b"})
    assert counting.calls == before


def test_encrypt_with_a_cached_primary_does_no_store_io(
    counted_km: KeyManager, counting: Any
) -> None:
    counted_km.keys.create("k")
    counted_km.encrypt("k", b"warm")
    before = dict(counting.calls)
    for _ in range(100):
        counted_km.encrypt("k", b"x")
    assert counting.calls == before


def test_rotation_by_another_process_is_seen(open_sqlite_km: Callable[[], KeyManager]) -> None:
    with open_sqlite_km() as first, open_sqlite_km() as second:
        first.keys.create("k")
        assert parse_header(second.encrypt("k", b"x")).version == 1
        first.keys.rotate("k")
        assert parse_header(second.encrypt("k", b"x")).version == 2


def test_revocation_by_another_process_is_honoured(
    open_sqlite_km: Callable[[], KeyManager],
) -> None:
    with open_sqlite_km() as first, open_sqlite_km() as second:
        first.keys.create("k")
        ciphertext = second.encrypt("k", b"x")
        first.keys.revoke("k", 1, reason="key-compromise")
        with pytest.raises(RevokedError):
            second.encrypt("k", b"x")
        with pytest.raises(RevokedError):
            second.decrypt(ciphertext)


def test_encryptions_are_audited_in_aggregate_not_one_by_one(km: KeyManager) -> None:
    km.keys.create("k")
    before = km.audit.verify().entries
    for _ in range(5):
        km.decrypt(km.encrypt("k", b"x", {"tenant": "acme"}), {"tenant": "acme"})
    assert km.audit.verify().entries == before
    km.keys.flush_usage()
    usage = [e for e in km.audit.tail(10) if e.operation == "key.usage"]
    summary = {
        (e.object, e.details["use"], e.details["context"], e.details["count"]) for e in usage
    }
    assert summary == {
        ("k#1", "encrypt", '{"tenant":"acme"}', 5),
        ("k#1", "decrypt", '{"tenant":"acme"}', 5),
    }
    assert km.keys.get("k").primary.uses == 5


def test_close_flushes_usage(store_path: Path) -> None:
    with KeyManager.open(
        store_path, passphrase=PASSPHRASE, kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
    ) as km:
        km.keys.create("k")
        km.encrypt("k", b"x")
    with KeyManager.open(store_path, passphrase=PASSPHRASE) as km:
        assert km.keys.get("k").primary.uses == 1
        assert any(e.operation == "key.usage" for e in km.audit.tail(5))


def test_the_store_file_holds_no_key_material(store_path: Path) -> None:
    with KeyManager.open(
        store_path, passphrase=PASSPHRASE, kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
    ) as km:
        keys = []
        for algorithm in [*AEADS, Algorithm.FERNET]:
            km.keys.create(algorithm.value, algorithm)
            km.keys.rotate(algorithm.value)
            for version in (1, 2):
                keys.append(export_raw_key(km, algorithm.value, version, allow_plaintext=True))
        data_key = km.generate_data_key("aes-256-gcm")
    files = b"".join(p.read_bytes() for p in store_path.parent.iterdir() if p.is_file())
    for secret in [*keys, data_key.plaintext]:
        raw = secret.reveal()
        assert raw not in files
        assert base64.urlsafe_b64encode(raw) not in files
        assert base64.urlsafe_b64encode(raw).rstrip(b"=") not in files


def test_errors_never_mention_key_material(km: KeyManager) -> None:
    km.keys.create("k")
    key = export_raw_key(km, "k", allow_plaintext=True).reveal()
    ciphertext = bytearray(km.encrypt("k", b"x"))
    ciphertext[-1] ^= 1
    with pytest.raises(KeyMgmtError) as caught:
        km.decrypt(bytes(ciphertext))
    assert key.hex() not in repr(caught.value)
    assert repr(key) not in repr(caught.value)
    assert key.hex() not in repr(km.keys)


def test_rejecting_tampered_headers_of_a_cached_key_does_no_store_io(
    counted_km: KeyManager, counting: Any
) -> None:
    counted_km.keys.create("k")
    ciphertext = bytearray(counted_km.encrypt("k", b"x"))
    counted_km.decrypt(bytes(ciphertext))
    before = dict(counting.calls)
    for index in range(5, 13):  # every byte of the key id
        damaged = bytearray(ciphertext)
        damaged[index] ^= 1
        with pytest.raises(DecryptionError):
            counted_km.decrypt(bytes(damaged))
    assert counting.calls == before
