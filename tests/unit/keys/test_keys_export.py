"""Export (wrapped, sealed, raw through hazmat) and import (raw, Fernet key files)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import attrs
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

from keymgmt import KeyManager, SecretBytes
from keymgmt.algorithms import Algorithm
from keymgmt.errors import (
    AlreadyExistsError,
    DecryptionError,
    DestroyedKeyError,
    InvalidArgumentError,
    KeyStateError,
    RevokedError,
)
from keymgmt.hazmat import export_raw_key
from keymgmt.keys import open_sealed_export, unwrap_rfc5649_export
from keymgmt.keys._export import export_info
from keymgmt.keys._format import parse_header
from keymgmt.testing import FakeClock

KEK = bytes(range(32))


def test_raw_export_needs_the_explicit_opt_in(km: KeyManager) -> None:
    km.keys.create("k")
    with pytest.raises(InvalidArgumentError, match="allow_plaintext=True"):
        export_raw_key(km, "k")
    with pytest.raises(InvalidArgumentError):
        export_raw_key(km, "k", allow_plaintext=1)  # type: ignore[arg-type]


def test_raw_export_returns_secret_bytes_and_is_audited(km: KeyManager) -> None:
    km.keys.create("k")
    key = export_raw_key(km.keys, "k", allow_plaintext=True)
    assert isinstance(key, SecretBytes)
    assert len(key) == 32
    entry = km.audit.tail(1)[0]
    assert (entry.operation, entry.object) == ("key.export-raw", "k#1")


def test_rfc5649_export_unwraps_with_plain_cryptography(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.rotate("k")
    wrapped = km.keys.export_wrapped("k", 1, kek=KEK)
    assert (wrapped.key_name, wrapped.version, wrapped.method) == ("k", 1, "rfc5649")
    raw = export_raw_key(km, "k", 1, allow_plaintext=True)
    assert aes_key_unwrap_with_padding(KEK, wrapped.data) == raw.reveal()
    assert unwrap_rfc5649_export(wrapped, SecretBytes(KEK)) == raw


def test_rfc5649_export_with_the_wrong_kek_fails_opaquely(km: KeyManager) -> None:
    km.keys.create("k")
    wrapped = km.keys.export_wrapped("k", kek=KEK)
    with pytest.raises(DecryptionError):
        unwrap_rfc5649_export(wrapped, bytes(32))


def test_a_kek_of_the_wrong_size_is_refused_before_anything_is_read(km: KeyManager) -> None:
    km.keys.create("k")
    with pytest.raises(InvalidArgumentError, match="16, 24 or 32"):
        km.keys.export_wrapped("k", kek=b"short")


def test_sealed_export_opens_with_plain_hpke(km: KeyManager) -> None:
    km.keys.create("k", Algorithm.CHACHA20_POLY1305)
    recipient = x25519.X25519PrivateKey.generate()
    sealed = km.keys.export_sealed("k", recipient=recipient.public_key())
    assert sealed.method == "hpke-x25519"
    raw = export_raw_key(km, "k", allow_plaintext=True)
    assert open_sealed_export(sealed, recipient) == raw
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    info = export_info(Algorithm.CHACHA20_POLY1305, "k", 1)
    assert suite.decrypt(sealed.data, recipient, info=info) == raw.reveal()


def test_sealed_export_with_changed_metadata_does_not_open(km: KeyManager) -> None:
    km.keys.create("k")
    recipient = x25519.X25519PrivateKey.generate()
    sealed = km.keys.export_sealed("k", recipient=recipient.public_key())
    for changed in (attrs.evolve(sealed, version=2), attrs.evolve(sealed, key_name="j")):
        with pytest.raises(DecryptionError):
            open_sealed_export(changed, recipient)
    with pytest.raises(DecryptionError):
        open_sealed_export(sealed, x25519.X25519PrivateKey.generate())


def test_sealed_export_needs_an_x25519_recipient(km: KeyManager) -> None:
    km.keys.create("k")
    with pytest.raises(InvalidArgumentError, match="X25519"):
        km.keys.export_sealed("k", recipient=b"not a key")  # type: ignore[arg-type]


def test_a_compromised_version_is_not_exported(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.revoke("k", 1, reason="key-compromise")
    with pytest.raises(RevokedError):
        km.keys.export_wrapped("k", kek=KEK)
    with pytest.raises(RevokedError):
        export_raw_key(km, "k", allow_plaintext=True)


def test_a_destroyed_version_is_not_exported(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k")
    km.keys.rotate("k")
    km.keys.destroy("k", 1, grace=_dt.timedelta(0))
    with pytest.raises(DestroyedKeyError):
        km.keys.export_wrapped("k", 1, kek=KEK)


def test_a_pre_active_version_is_not_exported(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k", activation_date=clock.now() + _dt.timedelta(days=1))
    with pytest.raises(KeyStateError, match="pre-active"):
        km.keys.export_wrapped("k", kek=KEK)


# -- import --------------------------------------------------------------------------


def test_an_imported_raw_key_is_marked_and_used(km: KeyManager) -> None:
    material = bytes(range(32))
    info = km.keys.import_key("legacy", material, algorithm=Algorithm.AES_256_GCM)
    assert info.imported
    assert info.primary.imported
    assert export_raw_key(km, "legacy", allow_plaintext=True).reveal() == material
    assert km.decrypt(km.encrypt("legacy", b"x")) == b"x"
    entry = next(e for e in km.audit.tail(3) if e.object == "legacy#1")
    assert (entry.operation, entry.details["imported"]) == ("key.import", True)


def test_rotating_an_imported_key_makes_a_generated_version(km: KeyManager) -> None:
    km.keys.import_key("legacy", bytes(32), algorithm="aes-256-gcm")
    assert not km.keys.rotate("legacy").imported


def test_importing_material_of_the_wrong_size_writes_nothing(km: KeyManager) -> None:
    before = km._store.backend.generation()
    with pytest.raises(InvalidArgumentError, match="32 bytes"):
        km.keys.import_key("legacy", b"short", algorithm=Algorithm.AES_256_GCM)
    assert km._store.backend.generation() == before


def test_importing_over_an_existing_name_is_refused(km: KeyManager) -> None:
    km.keys.create("k")
    with pytest.raises(AlreadyExistsError):
        km.keys.import_key("k", bytes(32), algorithm=Algorithm.AES_256_GCM)


def test_a_seed_style_fernet_key_file_imports(km: KeyManager, tmp_path: Path) -> None:
    key = Fernet.generate_key()
    path = tmp_path / "symmetric.key"
    path.write_bytes(key)
    info = km.keys.import_fernet_key_file("seed", path)
    assert (info.algorithm, info.imported) == (Algorithm.FERNET, True)
    ciphertext = bytes(km.encrypt("seed", b"from the seed"))
    token = ciphertext[parse_header(ciphertext).prefix_length :]
    assert Fernet(key).decrypt(token) == b"from the seed"


def test_a_file_that_is_not_a_fernet_key_is_refused(km: KeyManager, tmp_path: Path) -> None:
    path = tmp_path / "symmetric.key"
    path.write_bytes(b"hello")
    with pytest.raises(InvalidArgumentError, match="Fernet"):
        km.keys.import_fernet_key_file("seed", path)
    with pytest.raises(InvalidArgumentError, match="cannot read"):
        km.keys.import_fernet_key_file("seed", tmp_path / "missing.key")
