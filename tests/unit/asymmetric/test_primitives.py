"""Per-algorithm key-pair operations: sign, verify, encrypt, decrypt, agree, usages."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.errors import (
    DecryptionError,
    IntegrityError,
    InvalidArgumentError,
    InvalidSignatureError,
    KeyUsageError,
    UnsupportedAlgorithmError,
)
from keymgmt.keys import _asymmetric as asym

TESTED = sorted(
    (a for a in asym.ASYMMETRIC_ALGORITHMS if a not in (Algorithm.RSA_3072, Algorithm.RSA_4096)),
    key=lambda a: a.value,
)
SIGNING = [a for a in TESTED if KeyUsage.SIGN_VERIFY in asym.USAGES[a]]
ENCRYPTING = [a for a in TESTED if KeyUsage.ENCRYPT_DECRYPT in asym.USAGES[a]]

MESSAGE = b"the quick brown fox"
AAD = b"header and context"


@pytest.mark.parametrize("algorithm", SIGNING, ids=str)
def test_signature_round_trips(algorithm: Algorithm, pairs: dict) -> None:
    pair = pairs[algorithm]
    signature = asym.sign(algorithm, pair.private, MESSAGE)
    asym.verify(algorithm, pair.public, signature, MESSAGE)


@pytest.mark.parametrize("algorithm", SIGNING, ids=str)
def test_signature_over_other_data_is_refused(algorithm: Algorithm, pairs: dict) -> None:
    pair = pairs[algorithm]
    signature = asym.sign(algorithm, pair.private, MESSAGE)
    with pytest.raises(InvalidSignatureError) as info:
        asym.verify(algorithm, pair.public, signature, MESSAGE + b".")
    assert str(info.value) == "signature verification failed"
    assert info.value.__cause__ is None


@pytest.mark.parametrize("algorithm", SIGNING, ids=str)
def test_garbage_signature_is_refused_opaquely(algorithm: Algorithm, pairs: dict) -> None:
    with pytest.raises(InvalidSignatureError):
        asym.verify(algorithm, pairs[algorithm].public, b"\x00" * 7, MESSAGE)


@pytest.mark.parametrize("algorithm", ENCRYPTING, ids=str)
def test_encryption_round_trips(algorithm: Algorithm, pairs: dict) -> None:
    pair = pairs[algorithm]
    body = asym.encrypt(algorithm, pair.public, MESSAGE, AAD)
    assert asym.decrypt(algorithm, pair.private, body, AAD) == MESSAGE


@pytest.mark.parametrize("algorithm", ENCRYPTING, ids=str)
def test_encryption_of_empty_and_large_plaintexts_round_trips(
    algorithm: Algorithm, pairs: dict
) -> None:
    pair = pairs[algorithm]
    for plaintext in (b"", bytes(range(256)) * 1024):
        body = asym.encrypt(algorithm, pair.public, plaintext, AAD)
        assert asym.decrypt(algorithm, pair.private, body, AAD) == plaintext


@pytest.mark.parametrize("algorithm", ENCRYPTING, ids=str)
def test_decrypt_with_other_associated_data_fails_opaquely(
    algorithm: Algorithm, pairs: dict
) -> None:
    pair = pairs[algorithm]
    body = asym.encrypt(algorithm, pair.public, MESSAGE, AAD)
    with pytest.raises(DecryptionError) as info:
        asym.decrypt(algorithm, pair.private, body, AAD + b"!")
    assert str(info.value) == "decryption failed"
    assert info.value.__cause__ is None


@pytest.mark.parametrize("algorithm", ENCRYPTING, ids=str)
def test_every_truncation_and_a_flipped_byte_fail(algorithm: Algorithm, pairs: dict) -> None:
    pair = pairs[algorithm]
    body = asym.encrypt(algorithm, pair.public, MESSAGE, AAD)
    for cut in (0, 1, len(body) // 2, len(body) - 1):
        with pytest.raises(DecryptionError):
            asym.decrypt(algorithm, pair.private, body[:cut], AAD)
    for index in (0, len(body) // 2, len(body) - 1):
        flipped = bytearray(body)
        flipped[index] ^= 0x01
        with pytest.raises(DecryptionError):
            asym.decrypt(algorithm, pair.private, bytes(flipped), AAD)


def test_decrypt_with_another_keys_private_half_fails(pairs: dict) -> None:
    body = asym.encrypt(Algorithm.X25519, pairs[Algorithm.X25519].public, MESSAGE, AAD)
    other = asym.load_private(Algorithm.X25519, asym.generate(Algorithm.X25519))
    with pytest.raises(DecryptionError):
        asym.decrypt(Algorithm.X25519, other, body, AAD)


@pytest.mark.parametrize(
    ("algorithm", "usage"),
    [
        (Algorithm.ED25519, KeyUsage.ENCRYPT_DECRYPT),
        (Algorithm.ML_DSA_44, KeyUsage.KEY_AGREEMENT),
        (Algorithm.X25519, KeyUsage.SIGN_VERIFY),
        (Algorithm.ML_KEM_768, KeyUsage.SIGN_VERIFY),
        (Algorithm.ML_KEM_768_X25519, KeyUsage.KEY_AGREEMENT),
        (Algorithm.RSA_4096, KeyUsage.KEY_AGREEMENT),
    ],
    ids=str,
)
def test_check_usage_refuses_what_the_algorithm_cannot_do(
    algorithm: Algorithm, usage: KeyUsage
) -> None:
    with pytest.raises(KeyUsageError) as info:
        asym.check_usage(algorithm, usage, key_name="k")
    assert info.value.key_name == "k"
    assert info.value.usage == usage.value
    assert f"{algorithm.value} keys cannot be used for {usage.value}" in str(info.value)


def test_usage_table_defaults_are_the_first_allowed_usage() -> None:
    assert asym.default_usage(Algorithm.RSA_2048) is KeyUsage.SIGN_VERIFY
    assert asym.default_usage(Algorithm.X25519) is KeyUsage.KEY_AGREEMENT
    assert asym.default_usage(Algorithm.ML_KEM_768) is KeyUsage.ENCRYPT_DECRYPT
    assert set(asym.USAGES[Algorithm.RSA_3072]) == {KeyUsage.SIGN_VERIFY, KeyUsage.ENCRYPT_DECRYPT}


def test_symmetric_algorithm_is_not_a_key_pair_algorithm() -> None:
    with pytest.raises(UnsupportedAlgorithmError):
        asym.generate(Algorithm.AES_256_GCM)
    with pytest.raises(UnsupportedAlgorithmError):
        asym.check_usage(Algorithm.FERNET, KeyUsage.ENCRYPT_DECRYPT)


def test_sign_with_an_encryption_key_is_refused(pairs: dict) -> None:
    with pytest.raises(KeyUsageError):
        asym.sign(Algorithm.X25519, pairs[Algorithm.X25519].private, MESSAGE)


def test_encrypt_to_a_signing_key_is_refused(pairs: dict) -> None:
    with pytest.raises(KeyUsageError):
        asym.encrypt(Algorithm.ED25519, pairs[Algorithm.ED25519].public, MESSAGE, AAD)


def test_decrypt_with_a_signing_key_is_refused(pairs: dict) -> None:
    with pytest.raises(KeyUsageError):
        asym.decrypt(Algorithm.ML_DSA_65, pairs[Algorithm.ML_DSA_65].private, b"x" * 64, AAD)


@pytest.mark.parametrize("algorithm", [Algorithm.X25519, Algorithm.ECDH_P256], ids=str)
def test_both_sides_of_an_agreement_derive_the_same_key(algorithm: Algorithm) -> None:
    alice = asym.load_private(algorithm, asym.generate(algorithm))
    bob = asym.load_private(algorithm, asym.generate(algorithm))
    a = asym.agree(algorithm, alice, bob.public_key(), info=b"session 1")
    b = asym.agree(algorithm, bob, alice.public_key(), info=b"session 1")
    assert a == b
    assert len(a) == 32
    assert asym.agree(algorithm, alice, bob.public_key(), info=b"session 2") != a


def test_agreement_output_is_not_the_raw_dh_value() -> None:
    alice = asym.load_private(Algorithm.X25519, asym.generate(Algorithm.X25519))
    bob = asym.load_private(Algorithm.X25519, asym.generate(Algorithm.X25519))
    raw = alice.exchange(bob.public_key())  # type: ignore[union-attr]
    assert asym.agree(Algorithm.X25519, alice, bob.public_key(), info=b"").reveal() != raw


def test_agreement_with_a_key_of_another_algorithm_is_refused(pairs: dict) -> None:
    alice = pairs[Algorithm.X25519].private
    with pytest.raises(InvalidArgumentError):
        asym.agree(Algorithm.X25519, alice, pairs[Algorithm.ECDH_P256].public, info=b"")


def test_agreement_with_a_signing_algorithm_is_refused(pairs: dict) -> None:
    pair = pairs[Algorithm.ED25519]
    with pytest.raises(KeyUsageError):
        asym.agree(Algorithm.ED25519, pair.private, pair.public, info=b"")


@pytest.mark.parametrize("algorithm", TESTED, ids=str)
def test_stored_material_reloads_to_the_same_public_key(
    algorithm: Algorithm, material: dict, pairs: dict
) -> None:
    private = asym.load_private(algorithm, material[algorithm])
    assert private.public_key() == pairs[algorithm].public
    assert asym.material_from_private(private) == material[algorithm]


def test_material_of_another_algorithm_is_an_integrity_error(material: dict) -> None:
    with pytest.raises(IntegrityError):
        asym.load_private(Algorithm.ED25519, material[Algorithm.X25519])
    with pytest.raises(IntegrityError):
        asym.load_private(Algorithm.ED25519, b"not der")
    with pytest.raises(IntegrityError):
        asym.load_private(Algorithm.ML_KEM_768_X25519, b"short")


def test_p256_material_serves_both_ecdsa_and_ecdh(material: dict) -> None:
    key = asym.load_private(Algorithm.ECDH_P256, material[Algorithm.ECDSA_P256])
    assert isinstance(key, ec.EllipticCurvePrivateKey)


def test_xwing_seed_expands_as_the_draft_says(material: dict) -> None:
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

    seed = material[Algorithm.ML_KEM_768_X25519]
    expanded = hashlib.shake_256(seed).digest(96)
    key = asym.load_private(Algorithm.ML_KEM_768_X25519, seed)
    public = key.public_key()
    assert isinstance(public, asym.XWingPublicKey)
    expected = (
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]).public_key().public_bytes_raw()
        + x25519.X25519PrivateKey.from_private_bytes(expanded[64:]).public_key().public_bytes_raw()
    )
    assert public.public_bytes_raw() == expected


@pytest.mark.parametrize("algorithm", SIGNING, ids=str)
def test_signatures_verify_with_plain_cryptography(algorithm: Algorithm, pairs: dict) -> None:
    pair = pairs[algorithm]
    signature = asym.sign(algorithm, pair.private, MESSAGE)
    public = serialization.load_pem_public_key(
        asym.public_bytes(algorithm, pair.public, asym.PublicKeyFormat.PEM)
    )
    if algorithm is Algorithm.ECDSA_P256:
        public.verify(signature, MESSAGE, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg,union-attr]
    elif algorithm is Algorithm.ECDSA_P384:
        public.verify(signature, MESSAGE, ec.ECDSA(hashes.SHA384()))  # type: ignore[call-arg,union-attr]
    elif algorithm is Algorithm.RSA_2048:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        public.verify(signature, MESSAGE, pss, hashes.SHA256())  # type: ignore[call-arg,union-attr]
    else:
        public.verify(signature, MESSAGE)  # type: ignore[call-arg,union-attr]


@pytest.mark.parametrize(
    "algorithm",
    [a for a in ENCRYPTING if a not in (Algorithm.RSA_2048,)],
    ids=str,
)
def test_hpke_bodies_open_with_cryptographys_own_hpke(algorithm: Algorithm, pairs: dict) -> None:
    from keymgmt.hazmat._asymmetric import private_key_pem_unencrypted

    pair = pairs[algorithm]
    body = asym.encrypt(algorithm, pair.public, MESSAGE, AAD)
    suite = asym.hpke_suite(algorithm)
    if isinstance(pair.private, asym.XWingPrivateKey):
        # No PKCS#8 form: the exported seed, expanded by the caller as the draft says.
        private = asym.XWingPrivateKey.from_seed(pair.private.seed.reveal()).hpke_key
    else:
        pem = private_key_pem_unencrypted(pair.private, allow_plaintext=True)
        private = serialization.load_pem_private_key(pem, password=None)
    assert suite.decrypt(body, private, info=AAD) == MESSAGE  # type: ignore[arg-type]


def test_rsa_bodies_open_with_plain_cryptography(pairs: dict) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    pair = pairs[Algorithm.RSA_2048]
    body = asym.encrypt(Algorithm.RSA_2048, pair.public, MESSAGE, AAD)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=AAD)
    cek = pair.private.decrypt(body[:256], oaep)
    assert AESGCM(cek).decrypt(bytes(12), body[256:], AAD) == MESSAGE


@pytest.mark.parametrize("algorithm", TESTED, ids=str)
def test_no_private_key_bytes_in_any_repr(
    algorithm: Algorithm, material: dict, pairs: dict
) -> None:
    pair = pairs[algorithm]
    texts = [repr(pair), str(pair), repr(pair.private), repr(pair.public)]
    secret = material[algorithm]
    for text in texts:
        for chunk in (secret.hex(), secret[-16:].hex(), repr(secret[-16:])):
            assert chunk not in text
    assert "LoadedKeyPair" in repr(pair)


def test_loaded_key_pairs_refuse_pickling(pairs: dict) -> None:
    import pickle

    for algorithm in (Algorithm.ED25519, Algorithm.ML_KEM_768_X25519):
        with pytest.raises(TypeError):
            pickle.dumps(pairs[algorithm])


@pytest.mark.parametrize("algorithm", [a for a in TESTED if a is not Algorithm.RSA_2048], ids=str)
def test_generation_draws_from_the_injected_randomness(algorithm: Algorithm) -> None:
    from keymgmt.testing import SeededRandomness

    first = asym.generate(algorithm, SeededRandomness(7))
    again = asym.generate(algorithm, SeededRandomness(7))
    other = asym.generate(algorithm, SeededRandomness(8))
    assert first == again
    assert first != other
    asym.load_private(algorithm, first)  # and it is a valid key


def test_handler_generation_uses_the_stores_randomness() -> None:
    from keymgmt.testing import SeededRandomness

    handler = asym.AsymmetricHandler()
    a = handler.generate(Algorithm.ED25519, SeededRandomness(1))
    b = handler.generate(Algorithm.ED25519, SeededRandomness(1))
    assert a == b
