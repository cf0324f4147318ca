"""A managed private key leaves the store encrypted (keymgmt.pem) or only via hazmat."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.errors import (
    InvalidArgumentError,
    KeyUsageError,
    RevokedError,
    UnsupportedAlgorithmError,
)
from keymgmt.hazmat import export_private_key_pem_unencrypted
from keymgmt.pem import export_private_key_pem, load_private_key
from keymgmt.public import Signature


def test_encrypted_export_opens_with_the_passphrase_and_matches_the_public_key(
    km: KeyManager,
) -> None:
    km.keys.create("signer", Algorithm.ECDSA_P256)
    pem = export_private_key_pem(km, "signer", passphrase="export pass")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    private = serialization.load_pem_private_key(pem, b"export pass")
    assert private.public_key() == km.public_key("signer").key


def test_encrypted_export_is_audited_without_material(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    export_private_key_pem(km.keys, "signer", passphrase="p")
    entry = km.audit.tail(1)[0]
    assert (entry.operation, entry.object) == ("key.export-encrypted-pem", "signer#1")
    assert entry.details == {"algorithm": "ed25519"}


def test_exported_key_imports_into_another_store(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    pem = export_private_key_pem(km, "signer", passphrase="p")
    with KeyManager.in_memory() as other:
        other.keys.import_private_key("copy", pem, passphrase="p")
        # The copy's signature names "copy"; its plain part verifies with the original.
        raw = Signature.decode(other.sign("copy", b"m")).raw
        km.verify("signer", b"m", raw, version=1)


def test_symmetric_key_has_no_private_key_to_export(km: KeyManager) -> None:
    km.keys.create("aes", Algorithm.AES_256_GCM)
    with pytest.raises(KeyUsageError, match="symmetric"):
        export_private_key_pem(km, "aes", passphrase="p")
    assert all(e.operation != "key.export-encrypted-pem" for e in km.audit.tail(5))


def test_xwing_key_has_no_pkcs8_export(km: KeyManager) -> None:
    km.keys.create("pq", Algorithm.ML_KEM_768_X25519, usage=KeyUsage.ENCRYPT_DECRYPT)
    with pytest.raises(UnsupportedAlgorithmError):
        export_private_key_pem(km, "pq", passphrase="p")


def test_compromised_version_is_not_exported(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    km.keys.revoke("signer", reason="key-compromise")
    with pytest.raises(RevokedError):
        export_private_key_pem(km, "signer", passphrase="p")


def test_empty_passphrase_is_refused_before_reading(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    with pytest.raises(InvalidArgumentError, match="must not be empty"):
        export_private_key_pem(km, "signer", passphrase="")


def test_plaintext_export_needs_the_opt_in_and_reads_nothing_without_it(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    before = len(km.audit.tail(100))
    with pytest.raises(InvalidArgumentError, match="allow_plaintext=True"):
        export_private_key_pem_unencrypted(km, "signer")
    assert len(km.audit.tail(100)) == before


def test_plaintext_export_with_the_opt_in_is_audited(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    pem = export_private_key_pem_unencrypted(km, "signer", allow_plaintext=True)
    assert load_private_key(pem)[0] is Algorithm.ED25519
    assert km.audit.tail(1)[0].operation == "key.export-plaintext-pem"
