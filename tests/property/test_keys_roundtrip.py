"""Round-trips over arbitrary data and contexts; the context encoding is injective."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm
from keymgmt.errors import DecryptionError, KeyMgmtError
from keymgmt.keys._format import context_json, encode_context, parse_header
from keymgmt.testing import FakeClock, SeededRandomness

contexts = st.dictionaries(
    st.text(max_size=12), st.text(max_size=24), max_size=5
)  # str -> str, any Unicode


@pytest.fixture(scope="module")
def manager() -> Iterator[KeyManager]:
    with KeyManager.in_memory(
        clock=FakeClock(), randomness=SeededRandomness(11), consistency_interval=0
    ) as km:
        for algorithm in (
            Algorithm.AES_256_GCM,
            Algorithm.CHACHA20_POLY1305,
            Algorithm.AES_256_GCM_SIV,
        ):
            km.keys.create(algorithm.value, algorithm)
        km.keys.create("fernet", Algorithm.FERNET)
        yield km


@given(
    data=st.binary(max_size=2048),
    context=contexts,
    name=st.sampled_from(["aes-256-gcm", "chacha20-poly1305", "aes-256-gcm-siv"]),
)
def test_encrypt_then_decrypt_is_the_identity(
    manager: KeyManager, data: bytes, context: dict[str, str], name: str
) -> None:
    ciphertext = manager.encrypt(name, data, context)
    assert parse_header(ciphertext).name == name
    assert manager.decrypt(ciphertext, context) == data


@given(data=st.binary(max_size=512))
def test_fernet_round_trips(manager: KeyManager, data: bytes) -> None:
    assert manager.decrypt(manager.encrypt("fernet", data)) == data


@given(context=contexts, other=contexts)
def test_another_context_never_decrypts(
    manager: KeyManager, context: dict[str, str], other: dict[str, str]
) -> None:
    ciphertext = manager.encrypt("aes-256-gcm", b"payload", context)
    if other == context:
        assert manager.decrypt(ciphertext, other) == b"payload"
    else:
        with pytest.raises(DecryptionError):
            manager.decrypt(ciphertext, other)


@given(a=contexts, b=contexts)
def test_the_context_encoding_is_injective(a: dict[str, str], b: dict[str, str]) -> None:
    assert (encode_context(a) == encode_context(b)) == (a == b)


@given(context=contexts)
def test_the_audit_form_of_a_context_is_its_json(context: dict[str, str]) -> None:
    import json

    assert json.loads(context_json(encode_context(context))) == context


@given(junk=st.binary(max_size=200))
def test_arbitrary_input_raises_only_keymgmt_errors(manager: KeyManager, junk: bytes) -> None:
    with pytest.raises(KeyMgmtError):
        manager.decrypt(junk)


@given(data=st.binary(min_size=1, max_size=64), cut=st.integers(min_value=1, max_value=40))
def test_a_header_spliced_onto_another_body_is_refused(
    manager: KeyManager, data: bytes, cut: int
) -> None:
    first = bytes(manager.encrypt("aes-256-gcm", data))
    second = bytes(manager.encrypt("chacha20-poly1305", data))
    size = parse_header(first).prefix_length
    with pytest.raises(DecryptionError):
        manager.decrypt(first[:size] + second[parse_header(second).prefix_length :])
    with pytest.raises(DecryptionError):
        manager.decrypt(first[: min(cut, len(first) - 1)])
