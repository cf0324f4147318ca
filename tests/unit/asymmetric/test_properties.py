"""Hypothesis: round trips over arbitrary data and contexts; parsers raise only KeyMgmtError."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.errors import KeyMgmtError
from keymgmt.public import PublicKey

contexts = st.dictionaries(st.text(max_size=8), st.text(max_size=16), max_size=3)


@pytest.fixture(scope="module")
def manager() -> Iterator[KeyManager]:
    """One store with an Ed25519 signer and an X25519 inbox (module-wide: cheap to reuse)."""
    with KeyManager.in_memory(consistency_interval=0) as km:
        km.keys.create("signer", Algorithm.ED25519)
        km.keys.create("inbox", Algorithm.X25519, usage=KeyUsage.ENCRYPT_DECRYPT)
        yield km


@given(data=st.binary(max_size=512), context=contexts)
def test_store_less_encryption_round_trips_any_data_and_context(
    manager: KeyManager, data: bytes, context: dict[str, str]
) -> None:
    ciphertext = manager.public_key("inbox").encrypt(data, context=context)
    assert manager.decrypt(ciphertext, context) == data


@given(data=st.binary(max_size=512))
def test_signatures_verify_store_lessly_for_any_data(manager: KeyManager, data: bytes) -> None:
    manager.public_key("signer").verify(data, manager.sign("signer", data))


@given(st.data())
def test_mutated_ciphertexts_raise_only_keymgmt_errors(
    manager: KeyManager, data: st.DataObject
) -> None:
    blob = bytearray(manager.public_key("inbox").encrypt(b"secret", context={"a": "b"}))
    for _ in range(data.draw(st.integers(1, 3))):
        blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(blob)))
    with pytest.raises(KeyMgmtError):
        manager.decrypt(bytes(blob[:cut]), {"a": "b"})


@given(st.data())
def test_mutated_signatures_raise_only_keymgmt_errors(
    manager: KeyManager, data: st.DataObject
) -> None:
    blob = bytearray(manager.sign("signer", b"message"))
    for _ in range(data.draw(st.integers(1, 3))):
        blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(blob)))
    with pytest.raises(KeyMgmtError):
        manager.verify("signer", b"message", bytes(blob[:cut]))
    with pytest.raises(KeyMgmtError):
        manager.public_key("signer").verify(b"message", bytes(blob[:cut]))


@given(st.binary(max_size=300))
def test_arbitrary_bytes_as_a_public_key_raise_only_keymgmt_errors(data: bytes) -> None:
    try:
        PublicKey.load(data)
    except KeyMgmtError:
        pass
    else:  # pragma: no cover - random bytes are never a key
        pytest.fail("random bytes parsed as a public key")


jwk_values = st.one_of(
    st.text(max_size=12), st.integers(), st.none(), st.lists(st.text(), max_size=2)
)


@given(
    st.fixed_dictionaries(
        {"kty": st.sampled_from(["OKP", "EC", "RSA", "AKP", "oct", 7])},
        optional={
            "crv": st.sampled_from(["Ed25519", "X25519", "P-256", "P-384", "P-521", ""]),
            "alg": st.sampled_from(["ML-DSA-44", "ML-KEM-768", "MLKEM768-X25519", "x"]),
            "x": jwk_values,
            "y": jwk_values,
            "n": jwk_values,
            "e": jwk_values,
            "pub": jwk_values,
            "kid": jwk_values,
            "key_ops": jwk_values,
            "keymgmt-key-id": jwk_values,
        },
    )
)
def test_arbitrary_jwks_raise_only_keymgmt_errors(jwk: dict[str, object]) -> None:
    try:
        key = PublicKey.from_jwk(json.dumps(jwk))
    except KeyMgmtError:
        return
    assert PublicKey.from_jwk(key.jwk_json()) == key  # pragma: no cover - needs a valid key


header_fields = st.sampled_from(["key", "version", "key-id", "algorithm", "usage", "other"])


@given(lines=st.dictionaries(header_fields, st.text(max_size=20), max_size=5))
def test_arbitrary_pem_identity_lines_raise_only_keymgmt_errors(
    manager: KeyManager, lines: dict[str, str]
) -> None:
    body = manager.public_key("signer").pem().decode().split("-----BEGIN", 1)[1]
    header = "".join(f"keymgmt-{k}: {v}\n" for k, v in lines.items() if "\n" not in v)
    try:
        key = PublicKey.from_pem(header + "-----BEGIN" + body)
    except KeyMgmtError:
        return
    assert key.key == manager.public_key("signer").key
