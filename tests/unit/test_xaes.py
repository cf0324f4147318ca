"""XAES-256-GCM: the C2SP known answers, then behaviour.

Vectors from the C2SP specification, https://c2sp.org/XAES-256-GCM
(github.com/C2SP/C2SP, ``XAES-256-GCM.md``, section "Test vectors"); the
accumulated procedure is the one the spec describes and its reference
implementation (filippo.io/xaes256gcm, ``XAES-256-GCM_test.go``,
``TestAccumulated``) runs.
"""

from __future__ import annotations

import hashlib
import pickle
import threading

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from keymgmt._xaes import XAES256GCM
from keymgmt.errors import InvalidArgumentError

SPEC_NONCE = b"ABCDEFGHIJKLMNOPQRSTUVWX"
SPEC_PLAINTEXT = b"XAES-256-GCM"

# (K, AAD, Kx, ciphertext): MSB(L) = 0 in the first, 1 in the second.
SPEC_VECTORS = [
    pytest.param(
        bytes([0x01]) * 32,
        b"",
        "c8612c9ed53fe43e8e005b828a1631a0bbcb6ab2f46514ec4f439fcfd0fa969b",
        "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271",
        id="key-01-msb0",
    ),
    pytest.param(
        bytes([0x03]) * 32,
        b"c2sp.org/XAES-256-GCM",
        "e9c621d4cdd9b11b00a6427ad7e559aeedd66b3857646677748f8ca796cb3fd8",
        "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d",
        id="key-03-msb1-aad",
    ),
]

ACCUMULATED_10K = "e6b9edf2df6cec60c8cbd864e2211b597fb69a529160cd040d56c0c210081939"

KEY = bytes(range(32))
NONCE = bytes(range(100, 124))


# -- known answers -------------------------------------------------------------


@pytest.mark.parametrize(("key", "aad", "kx", "ciphertext"), SPEC_VECTORS)
def test_encrypt_matches_c2sp_vector(key: bytes, aad: bytes, kx: str, ciphertext: str) -> None:
    assert XAES256GCM(key).encrypt(SPEC_NONCE, SPEC_PLAINTEXT, aad).hex() == ciphertext


@pytest.mark.parametrize(("key", "aad", "kx", "ciphertext"), SPEC_VECTORS)
def test_decrypt_opens_c2sp_vector(key: bytes, aad: bytes, kx: str, ciphertext: str) -> None:
    assert XAES256GCM(key).decrypt(SPEC_NONCE, bytes.fromhex(ciphertext), aad) == SPEC_PLAINTEXT


@pytest.mark.parametrize(("key", "aad", "kx", "ciphertext"), SPEC_VECTORS)
def test_ciphertext_is_aes_256_gcm_under_c2sp_derived_key(
    key: bytes, aad: bytes, kx: str, ciphertext: str
) -> None:
    # The spec's Kx and Nx = N[12:]: the derivation, checked through the public API.
    made = XAES256GCM(key).encrypt(SPEC_NONCE, SPEC_PLAINTEXT, aad)
    assert made == AESGCM(bytes.fromhex(kx)).encrypt(SPEC_NONCE[12:], SPEC_PLAINTEXT, aad)


@pytest.mark.parametrize(("key", "aad", "kx", "ciphertext"), SPEC_VECTORS)
def test_subkey_is_the_c2sp_derived_key_of_the_nonce_prefix(
    key: bytes, aad: bytes, kx: str, ciphertext: str
) -> None:
    subkey = XAES256GCM(key).subkey(SPEC_NONCE[:12])
    assert subkey.encrypt(SPEC_NONCE[12:], SPEC_PLAINTEXT, aad).hex() == ciphertext
    assert subkey.decrypt(SPEC_NONCE[12:], bytes.fromhex(ciphertext), aad) == SPEC_PLAINTEXT


@pytest.mark.parametrize("prefix", [b"", b"x" * 11, b"x" * 13, b"x" * 24, "x" * 12])
def test_subkey_needs_a_12_byte_prefix(prefix: object) -> None:
    with pytest.raises(InvalidArgumentError, match="nonce prefix is 12 bytes"):
        XAES256GCM(KEY).subkey(prefix)  # type: ignore[arg-type]


def test_accumulated_10000_iterations_match_c2sp_hash() -> None:
    # One SHAKE-128 stream over the empty input supplies, per iteration,
    # key[32] nonce[24] len(1) plaintext[len] len(1) aad[len]; a second
    # SHAKE-128 absorbs every ciphertext. At most 568 bytes an iteration.
    iterations = 10_000
    stream = hashlib.shake_128().digest(568 * iterations)
    assert stream[:16].hex() == "7f9c2ba4e88f827d616045507605853e"  # as the spec says
    position = 0

    def read(n: int) -> bytes:
        nonlocal position
        position += n
        return stream[position - n : position]

    digest = hashlib.shake_128()
    for _ in range(iterations):
        key, nonce = read(32), read(24)
        plaintext = read(read(1)[0])
        aad = read(read(1)[0])
        xaes = XAES256GCM(key)
        ciphertext = xaes.encrypt(nonce, plaintext, aad)
        assert xaes.decrypt(nonce, ciphertext, aad) == plaintext
        digest.update(ciphertext)
    assert digest.hexdigest(32) == ACCUMULATED_10K


# -- behaviour -----------------------------------------------------------------


def test_round_trip_returns_the_plaintext() -> None:
    xaes = XAES256GCM(KEY)
    sealed = xaes.encrypt(NONCE, b"a store record", b"kind\x00name")
    assert xaes.decrypt(NONCE, sealed, b"kind\x00name") == b"a store record"


def test_ciphertext_is_plaintext_length_plus_16_byte_tag() -> None:
    assert len(XAES256GCM(KEY).encrypt(NONCE, bytes(300), None)) == 316


def test_another_instance_with_the_same_key_decrypts() -> None:
    sealed = XAES256GCM(KEY).encrypt(NONCE, b"data", b"aad")
    assert XAES256GCM(bytes(KEY)).decrypt(NONCE, sealed, b"aad") == b"data"


def test_none_associated_data_is_the_empty_string() -> None:
    xaes = XAES256GCM(KEY)
    assert xaes.decrypt(NONCE, xaes.encrypt(NONCE, b"data", None), b"") == b"data"


def test_flipping_any_ciphertext_or_tag_byte_fails_with_invalid_tag() -> None:
    xaes = XAES256GCM(KEY)
    sealed = xaes.encrypt(NONCE, b"twelve bytes", b"aad")
    for index in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[index] ^= 0x01
        with pytest.raises(InvalidTag):
            xaes.decrypt(NONCE, bytes(tampered), b"aad")


def test_flipping_any_nonce_byte_fails_with_invalid_tag() -> None:
    # The first half changes the derived key, the second the GCM nonce.
    xaes = XAES256GCM(KEY)
    sealed = xaes.encrypt(NONCE, b"data", b"aad")
    for index in range(len(NONCE)):
        tampered = bytearray(NONCE)
        tampered[index] ^= 0x80
        with pytest.raises(InvalidTag):
            xaes.decrypt(bytes(tampered), sealed, b"aad")


@pytest.mark.parametrize("length", [0, 1, 15, 16, 27])
def test_truncated_ciphertext_fails_with_invalid_tag(length: int) -> None:
    xaes = XAES256GCM(KEY)
    sealed = xaes.encrypt(NONCE, b"twelve bytes", None)
    with pytest.raises(InvalidTag):
        xaes.decrypt(NONCE, sealed[:length], None)


def test_appended_byte_fails_with_invalid_tag() -> None:
    xaes = XAES256GCM(KEY)
    sealed = xaes.encrypt(NONCE, b"data", None)
    with pytest.raises(InvalidTag):
        xaes.decrypt(NONCE, sealed + b"\x00", None)


@pytest.mark.parametrize("aad", [b"", b"aae", b"aad\x00", None], ids=repr)
def test_wrong_associated_data_fails_with_invalid_tag(aad: bytes | None) -> None:
    xaes = XAES256GCM(KEY)
    sealed = xaes.encrypt(NONCE, b"data", b"aad")
    with pytest.raises(InvalidTag):
        xaes.decrypt(NONCE, sealed, aad)


def test_wrong_key_fails_with_invalid_tag() -> None:
    sealed = XAES256GCM(KEY).encrypt(NONCE, b"data", None)
    with pytest.raises(InvalidTag):
        XAES256GCM(bytes(32)).decrypt(NONCE, sealed, None)


def test_nonce_size_is_24() -> None:
    assert XAES256GCM.NONCE_SIZE == 24


@pytest.mark.parametrize("size", [0, 12, 16, 23, 25, 32])
def test_encrypt_refuses_nonce_not_24_bytes(size: int) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^an XAES-256-GCM nonce is 24 bytes$"):
        XAES256GCM(KEY).encrypt(bytes(size), b"data", None)


@pytest.mark.parametrize("size", [0, 12, 16, 23, 25, 32])
def test_decrypt_refuses_nonce_not_24_bytes(size: int) -> None:
    sealed = XAES256GCM(KEY).encrypt(NONCE, b"data", None)
    with pytest.raises(InvalidArgumentError, match=r"^an XAES-256-GCM nonce is 24 bytes$"):
        XAES256GCM(KEY).decrypt(bytes(size), sealed, None)


@pytest.mark.parametrize("nonce", ["x" * 24, bytearray(24), None], ids=type)
def test_refuses_nonce_that_is_not_bytes(nonce: object) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^an XAES-256-GCM nonce is 24 bytes$"):
        XAES256GCM(KEY).encrypt(nonce, b"data", None)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33, 64])
def test_refuses_key_not_32_bytes(size: int) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^an XAES-256-GCM key is 32 bytes$"):
        XAES256GCM(bytes(size))


@pytest.mark.parametrize("key", ["k" * 32, bytearray(32), None], ids=type)
def test_refuses_key_that_is_not_bytes(key: object) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^an XAES-256-GCM key is 32 bytes$"):
        XAES256GCM(key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "aad"), [("text", None), (b"data", "text"), (None, None)], ids=["data", "aad", "none"]
)
def test_encrypt_refuses_data_that_is_not_bytes(data: object, aad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="must be bytes"):
        XAES256GCM(KEY).encrypt(NONCE, data, aad)  # type: ignore[arg-type]


def test_decrypt_refuses_data_that_is_not_bytes() -> None:
    with pytest.raises(InvalidArgumentError, match="must be bytes"):
        XAES256GCM(KEY).decrypt(NONCE, "text" * 8, None)  # type: ignore[arg-type]


def test_repr_hides_the_key() -> None:
    key = bytes([0xAB]) * 32
    text = repr(XAES256GCM(key))
    assert text == "XAES256GCM(<key redacted>)"
    assert "ab" not in text.lower()


def test_pickling_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(XAES256GCM(KEY))


def test_one_instance_shared_by_threads_gives_the_single_thread_results() -> None:
    xaes = XAES256GCM(KEY)
    nonces = [i.to_bytes(24, "big") for i in range(200)]
    expected = [xaes.encrypt(nonce, b"data", None) for nonce in nonces]
    results: dict[int, list[bytes]] = {}

    def work(worker: int) -> None:
        results[worker] = [xaes.encrypt(nonce, b"data", None) for nonce in nonces]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == dict.fromkeys(range(4), expected)


@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=24, max_size=24),
    data=st.binary(max_size=512),
    aad=st.none() | st.binary(max_size=64),
)
def test_round_trip_property(key: bytes, nonce: bytes, data: bytes, aad: bytes | None) -> None:
    xaes = XAES256GCM(key)
    sealed = xaes.encrypt(nonce, data, aad)
    assert len(sealed) == len(data) + 16
    assert xaes.decrypt(nonce, sealed, aad) == data
