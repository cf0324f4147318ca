"""Managed key pairs through the façade: km.sign / km.verify / km.public_key / km.decrypt."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.errors import (
    DecryptionError,
    DestroyedKeyError,
    InvalidSignatureError,
    KeyNotFoundError,
    KeyStateError,
    KeyUsageError,
    RevokedError,
)
from keymgmt.keys import _asymmetric as asym
from keymgmt.keys._format import parse_header
from keymgmt.public import PublicKey, Signature
from keymgmt.testing import FakeClock

MESSAGE = b"pay 10 EUR to bob"


def test_sign_then_verify_round_trips(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    signature = km.sign("signer", MESSAGE)
    km.verify("signer", MESSAGE, signature)


def test_signature_names_key_and_version(km: KeyManager) -> None:
    info = km.keys.create("signer", Algorithm.ECDSA_P256)
    parsed = Signature.decode(km.sign("signer", MESSAGE))
    assert (parsed.key_name, parsed.version, parsed.algorithm) == ("signer", 1, info.algorithm)
    assert parsed.key_id.hex() == info.key_id


def test_verify_of_other_data_is_refused(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    signature = km.sign("signer", MESSAGE)
    with pytest.raises(InvalidSignatureError):
        km.verify("signer", MESSAGE + b"0", signature)


def test_signature_of_another_key_is_refused(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    km.keys.create("other", Algorithm.ED25519)
    with pytest.raises(InvalidSignatureError):
        km.verify("signer", MESSAGE, km.sign("other", MESSAGE))


def test_old_versions_still_verify_after_rotation(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    old = km.sign("signer", MESSAGE)
    km.keys.rotate("signer")
    new = km.sign("signer", MESSAGE)
    assert Signature.decode(new).version == 2
    km.verify("signer", MESSAGE, old)
    km.verify("signer", MESSAGE, new)


def test_detached_signature_verifies_with_an_explicit_version(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    raw = Signature.decode(km.sign("signer", MESSAGE)).raw
    km.verify("signer", MESSAGE, raw, version=1)
    with pytest.raises(InvalidSignatureError):
        km.verify("signer", MESSAGE + b"!", raw, version=1)


def test_signing_with_an_encryption_key_is_refused(km: KeyManager) -> None:
    km.keys.create("box", Algorithm.X25519, usage=KeyUsage.ENCRYPT_DECRYPT)
    with pytest.raises(KeyUsageError):
        km.sign("box", MESSAGE)


def test_signing_with_a_symmetric_key_is_refused(km: KeyManager) -> None:
    km.keys.create("aes", Algorithm.AES_256_GCM)
    with pytest.raises(KeyUsageError):
        km.sign("aes", MESSAGE)


def _rsa(km: KeyManager, material: dict) -> None:
    """The session's RSA-2048 key, imported (generating RSA keys is slow)."""
    km.keys.import_key("rsa", material[Algorithm.RSA_2048], algorithm=Algorithm.RSA_2048)


def test_encrypting_to_a_signing_key_is_refused(km: KeyManager, material: dict) -> None:
    _rsa(km, material)  # usage: sign-verify
    with pytest.raises(KeyUsageError):
        km.encrypt("rsa", MESSAGE)


def test_decrypting_with_a_key_of_another_usage_is_refused(km: KeyManager) -> None:
    km.keys.create("agree", Algorithm.X25519)  # usage: key-agreement
    exported = km.public_key("agree")
    forged = PublicKey(
        algorithm=exported.algorithm,
        key=exported.key,
        key_name=exported.key_name,
        version=exported.version,
        key_id=exported.key_id,
    ).encrypt(MESSAGE)
    with pytest.raises(KeyUsageError, match="is for key-agreement, not encrypt-decrypt"):
        km.decrypt(forged)


def test_rsa_signing_key_is_no_decryption_oracle(km: KeyManager, material: dict) -> None:
    _rsa(km, material)  # usage: sign-verify
    exported = km.public_key("rsa")
    forged = PublicKey(
        algorithm=exported.algorithm,
        key=exported.key,
        key_name=exported.key_name,
        version=exported.version,
        key_id=exported.key_id,
    ).encrypt(MESSAGE)
    with pytest.raises(KeyUsageError, match="is for sign-verify"):
        km.decrypt(forged)


def test_revoked_key_does_not_sign(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    km.keys.revoke("signer", reason="key-compromise")
    with pytest.raises(RevokedError):
        km.sign("signer", MESSAGE)


def test_compromised_version_verifies_only_when_allowed(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    signature = km.sign("signer", MESSAGE)
    km.keys.revoke("signer", 1, reason="key-compromise")
    with pytest.raises(RevokedError):
        km.verify("signer", MESSAGE, signature)
    km.verify("signer", MESSAGE, signature, allow_compromised=True)


def test_deactivated_version_still_verifies(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    signature = km.sign("signer", MESSAGE)
    km.keys.revoke("signer", 1, reason="superseded")
    with pytest.raises(KeyStateError):
        km.sign("signer", MESSAGE)
    km.verify("signer", MESSAGE, signature)


def test_destroyed_version_neither_signs_nor_verifies(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    signature = km.sign("signer", MESSAGE)
    km.keys.rotate("signer")
    km.keys.schedule_destruction("signer", 1, grace=_dt.timedelta(days=1))
    clock.advance(_dt.timedelta(days=2))
    with pytest.raises(DestroyedKeyError):
        km.verify("signer", MESSAGE, signature)


def test_rsa_signatures_round_trip_through_the_facade(km: KeyManager, material: dict) -> None:
    _rsa(km, material)
    signature = km.sign("rsa", MESSAGE)
    km.verify("rsa", MESSAGE, signature)
    PublicKey.load(km.public_key("rsa").jwk_json()).verify(MESSAGE, signature)


def test_unknown_key_is_a_lookup_error(km: KeyManager) -> None:
    with pytest.raises(KeyNotFoundError):
        km.sign("nobody", MESSAGE)


def test_public_key_exports_identity_and_verifies_store_lessly(km: KeyManager) -> None:
    info = km.keys.create("signer", Algorithm.ECDSA_P384)
    exported = km.public_key("signer")
    assert (exported.key_name, exported.version, exported.key_id) == ("signer", 1, info.key_id)
    assert exported.usage is KeyUsage.SIGN_VERIFY
    for text in (exported.pem(), exported.jwk_json()):
        PublicKey.load(text).verify(MESSAGE, km.sign("signer", MESSAGE))


@pytest.mark.parametrize(
    "algorithm",
    [Algorithm.X25519, Algorithm.ML_KEM_768, Algorithm.ML_KEM_768_X25519, Algorithm.ECDH_P256],
    ids=str,
)
def test_store_less_encryption_opens_with_km_decrypt(km: KeyManager, algorithm: Algorithm) -> None:
    km.keys.create("inbox", algorithm, usage=KeyUsage.ENCRYPT_DECRYPT)
    exported = PublicKey.load(km.public_key("inbox").pem())
    ciphertext = exported.encrypt(MESSAGE, context={"to": "inbox"})
    assert km.decrypt(ciphertext, {"to": "inbox"}) == MESSAGE
    with pytest.raises(DecryptionError):
        km.decrypt(ciphertext, {"to": "elsewhere"})


def test_km_encrypt_to_a_key_pair_opens_with_plain_hpke(km: KeyManager) -> None:
    from cryptography.hazmat.primitives import serialization

    from keymgmt.hazmat._asymmetric import private_key_pem_unencrypted
    from keymgmt.keys._format import encode_context

    km.keys.create("inbox", Algorithm.X25519, usage=KeyUsage.ENCRYPT_DECRYPT)
    ciphertext = bytes(km.encrypt("inbox", MESSAGE, {"k": "v"}))
    header = parse_header(ciphertext)
    private = km.keys._load("inbox", None).loaded.private
    exported = serialization.load_pem_private_key(
        private_key_pem_unencrypted(private, allow_plaintext=True), None
    )
    info = ciphertext[: header.prefix_length] + encode_context({"k": "v"})
    suite = asym.hpke_suite(Algorithm.X25519)
    assert suite.decrypt(ciphertext[header.prefix_length :], exported, info=info) == MESSAGE


def test_imported_pem_key_signs_like_the_original(km: KeyManager) -> None:
    from keymgmt.pem import encrypt_private_key_pem

    original = ed25519.Ed25519PrivateKey.generate()
    km.keys.import_private_key("imported", encrypt_private_key_pem(original, "pw"), passphrase="pw")
    raw = Signature.decode(km.sign("imported", MESSAGE)).raw
    original.public_key().verify(raw, MESSAGE)
    assert km.keys.get("imported").imported


def test_no_private_key_bytes_in_the_store_file(store_path: Path, sqlite_km: KeyManager) -> None:
    sqlite_km.keys.create("signer", Algorithm.ED25519)
    private = sqlite_km.keys._load("signer", None).loaded.private
    seed = private.private_bytes_raw()
    pkcs8 = asym.private_pkcs8(private)
    sqlite_km.sign("signer", MESSAGE)
    sqlite_km.close()
    data = b"".join(p.read_bytes() for p in store_path.parent.iterdir() if p.is_file())
    assert seed not in data
    assert pkcs8 not in data


@pytest.mark.parametrize("algorithm", [Algorithm.X25519, Algorithm.ECDH_P256], ids=str)
def test_two_stores_agree_on_a_shared_key(km: KeyManager, algorithm: Algorithm) -> None:
    km.keys.create("alice", algorithm)  # default usage: key-agreement
    with KeyManager.in_memory() as other:
        other.keys.create("bob", algorithm)
        bob_public = PublicKey.load(other.public_key("bob").jwk_json())
        alice_public = PublicKey.load(km.public_key("alice").pem())
        a = km.agree("alice", bob_public, info=b"channel 1")
        b = other.agree("bob", alice_public.cryptography_key, info=b"channel 1")
    assert a == b
    assert len(a) == 32


def test_agreement_with_a_signing_key_is_refused(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    peer = asym.load_private(Algorithm.X25519, asym.generate(Algorithm.X25519)).public_key()
    with pytest.raises(KeyUsageError, match="is for sign-verify, not key-agreement"):
        km.agree("signer", peer, info=b"")


def test_agreement_with_an_encryption_key_is_refused(km: KeyManager) -> None:
    km.keys.create("box", Algorithm.X25519, usage=KeyUsage.ENCRYPT_DECRYPT)
    peer = asym.load_private(Algorithm.X25519, asym.generate(Algorithm.X25519)).public_key()
    with pytest.raises(KeyUsageError):
        km.agree("box", peer, info=b"")


def test_agreement_with_a_peer_of_another_algorithm_is_refused(km: KeyManager) -> None:
    from keymgmt.errors import InvalidArgumentError

    km.keys.create("alice", Algorithm.X25519)
    peer = asym.load_private(Algorithm.ECDH_P256, asym.generate(Algorithm.ECDH_P256)).public_key()
    with pytest.raises(InvalidArgumentError, match="not a x25519 key"):
        km.agree("alice", peer, info=b"")


def test_revoked_agreement_key_is_refused(km: KeyManager) -> None:
    km.keys.create("alice", Algorithm.X25519)
    km.keys.revoke("alice", reason="key-compromise")
    peer = asym.load_private(Algorithm.X25519, asym.generate(Algorithm.X25519)).public_key()
    with pytest.raises(RevokedError):
        km.agree("alice", peer, info=b"")


@pytest.mark.parametrize(
    "algorithm",
    [Algorithm.ED25519, Algorithm.ECDSA_P256, Algorithm.ECDSA_P384, Algorithm.ML_DSA_44],
)
def test_verify_takes_any_bytes_like_and_refuses_every_flipped_byte(
    km: KeyManager, algorithm: Algorithm
) -> None:
    km.keys.create("signer", algorithm)
    signature = km.sign("signer", MESSAGE)
    km.verify("signer", bytearray(MESSAGE), memoryview(signature))
    km.verify("signer", memoryview(MESSAGE), bytearray(signature))
    for index in (len(signature) - 1, len(signature) // 2 + 10):
        broken = bytearray(signature)
        broken[index] ^= 0x01
        with pytest.raises(InvalidSignatureError):
            km.verify("signer", MESSAGE, bytes(broken))


def test_rsa_verify_takes_bytes_like_and_refuses_a_flipped_byte(
    km: KeyManager, material: dict
) -> None:
    _rsa(km, material)
    signature = km.sign("rsa", MESSAGE)
    km.verify("rsa", bytearray(MESSAGE), memoryview(signature))
    broken = bytearray(signature)
    broken[-1] ^= 0x01
    with pytest.raises(InvalidSignatureError):
        km.verify("rsa", MESSAGE, broken)
