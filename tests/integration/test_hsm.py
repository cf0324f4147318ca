"""The master key in a PKCS#11 token (SoftHSM2 in CI): sealing goes through the HSM."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keymgmt import KeyManager
from keymgmt.errors import StoreUnavailableError, WrongPassphraseError
from keymgmt.keyring import KEYRING_RECORD, KdfProfile, Passphrase
from keymgmt.revocation import SubjectKind
from keymgmt.storage import ANY, Put, SQLiteBackend
from keymgmt.testing import SeededRandomness

pytestmark = pytest.mark.hsm

HsmKey = Callable[..., Any]


def _open(path: Path, source: Any, **kwargs: Any) -> KeyManager:
    return KeyManager.open(path, master_key=source, consistency_interval=0, **kwargs)


def _token_key(source: Any) -> Any:
    """The master key object in the token, through python-pkcs11 directly."""
    import pkcs11

    lib = pkcs11.lib(source.module)
    token = lib.get_token(token_label=source.token_label)
    session = token.open(user_pin=os.environ["KEYMGMT_TEST_PKCS11_PIN"], rw=True)
    (key,) = session.get_objects({pkcs11.Attribute.LABEL: source.key_label})
    return session, key


def test_a_store_sealed_under_the_hsm_reopens_with_the_token(
    hsm_key: HsmKey, store_path: Path
) -> None:
    with _open(store_path, hsm_key()) as km:
        km.revocation.revoke(SubjectKind.PRINCIPAL, "mallory")
    with _open(store_path, hsm_key(), create=False) as km:
        assert km.revocation.is_revoked(SubjectKind.PRINCIPAL, "mallory")
        assert km.audit.verify().entries >= 2


def test_the_master_key_in_the_token_is_sensitive_and_not_extractable(
    hsm_key: HsmKey, store_path: Path
) -> None:
    import pkcs11

    source = hsm_key()
    _open(store_path, source).close()
    session, key = _token_key(source)
    try:
        assert key[pkcs11.Attribute.SENSITIVE] is True
        assert key[pkcs11.Attribute.EXTRACTABLE] is False
        assert key[pkcs11.Attribute.TOKEN] is True
        with pytest.raises(pkcs11.AttributeSensitive):
            key[pkcs11.Attribute.VALUE]
    finally:
        session.close()


def test_the_store_cannot_be_opened_with_a_passphrase_instead_of_the_hsm(
    hsm_key: HsmKey, store_path: Path
) -> None:
    _open(store_path, hsm_key()).close()
    with pytest.raises(WrongPassphraseError, match="not a passphrase"):
        KeyManager.open(
            store_path, passphrase="guess", kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
        )


def test_the_store_cannot_be_opened_once_the_token_key_is_gone(
    hsm_key: HsmKey, store_path: Path
) -> None:
    source = hsm_key()
    _open(store_path, source).close()
    session, key = _token_key(source)
    key.destroy()
    session.close()
    with pytest.raises(WrongPassphraseError, match="no master key"):
        _open(store_path, hsm_key(), create=False)


def test_a_different_key_under_the_same_label_and_id_does_not_open_the_store(
    hsm_key: HsmKey, store_path: Path
) -> None:
    import pkcs11

    source = hsm_key()
    _open(store_path, source).close()
    session, key = _token_key(source)
    key_id = bytes(key[pkcs11.Attribute.ID])
    key.destroy()
    session.generate_key(
        pkcs11.KeyType.AES,
        256,
        id=key_id,
        label=source.key_label,
        store=True,
        template={pkcs11.Attribute.WRAP: True, pkcs11.Attribute.UNWRAP: True},
    )
    session.close()
    with pytest.raises(WrongPassphraseError, match="does not open this store"):
        _open(store_path, hsm_key(), create=False)


def test_a_wrong_pin_is_refused(hsm_key: HsmKey, store_path: Path) -> None:
    _open(store_path, hsm_key()).close()
    with pytest.raises(WrongPassphraseError, match="PIN"):
        _open(store_path, hsm_key(pin="not-the-pin"), create=False)


def test_an_unknown_token_is_unavailable(hsm_key: HsmKey, store_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="no single PKCS#11 token"):
        _open(store_path, hsm_key(token_label="no-such-token"))


def test_editing_the_stored_parameters_breaks_the_bound_associated_data(
    hsm_key: HsmKey, store_path: Path
) -> None:
    _open(store_path, hsm_key()).close()
    backend = SQLiteBackend(store_path)
    record = backend.get(*KEYRING_RECORD)
    assert record is not None
    value = json.loads(record.data)
    value["parameters"]["token"] = "another-token"
    backend.commit([Put(*KEYRING_RECORD, json.dumps(value).encode(), ANY)])
    backend.close()
    with pytest.raises(WrongPassphraseError, match="does not open this store"):
        _open(store_path, hsm_key(), create=False)


def test_unwrap_refuses_other_associated_data(hsm_key: HsmKey) -> None:
    _, master = hsm_key().create(SeededRandomness(1))
    wrapped = master.wrap(b"k" * 32, b"aad-1")
    assert master.unwrap(wrapped, b"aad-1") == b"k" * 32
    with pytest.raises(WrongPassphraseError):
        master.unwrap(wrapped, b"aad-2")


def test_unwrap_refuses_a_flipped_byte(hsm_key: HsmKey) -> None:
    _, master = hsm_key().create(SeededRandomness(1))
    wrapped = bytearray(master.wrap(b"k" * 32, b"aad"))
    for index in (1, len(wrapped) // 2, len(wrapped) - 1):
        damaged = bytearray(wrapped)
        damaged[index] ^= 0x01
        with pytest.raises(WrongPassphraseError):
            master.unwrap(bytes(damaged), b"aad")


def test_changing_from_a_passphrase_to_the_hsm_and_back_loses_nothing(
    hsm_key: HsmKey, store_path: Path
) -> None:
    with KeyManager.open(
        store_path, passphrase="first", kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
    ) as km:
        km.revocation.revoke(SubjectKind.PRINCIPAL, "eve")
        km.change_master_key(hsm_key())
    with pytest.raises(WrongPassphraseError):
        KeyManager.open(store_path, passphrase="first")
    with _open(store_path, hsm_key(), create=False) as km:
        assert km.revocation.is_revoked(SubjectKind.PRINCIPAL, "eve")
        km.change_master_key(Passphrase("second", KdfProfile.TESTING_ONLY_INSECURE))
    with KeyManager.open(store_path, passphrase="second", create=False) as km:
        assert km.revocation.is_revoked(SubjectKind.PRINCIPAL, "eve")
        km.audit.verify()


def test_the_pin_never_appears_in_repr(hsm_key: HsmKey) -> None:
    source = hsm_key()
    pin = os.environ["KEYMGMT_TEST_PKCS11_PIN"]
    _, master = source.create(SeededRandomness(2))
    assert pin not in repr(source)
    assert pin not in repr(master)


@given(
    key=st.integers(2, 8).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n)),
    aad=st.binary(max_size=64),
    other=st.binary(max_size=64),
)
@settings(max_examples=25)
def test_wrap_round_trips_and_binds_the_associated_data(
    hsm_key: HsmKey, key: bytes, aad: bytes, other: bytes
) -> None:
    _, master = hsm_key().create(SeededRandomness(3))
    wrapped = master.wrap(key, aad)
    assert key not in wrapped
    assert master.unwrap(wrapped, aad) == key
    if other != aad:
        with pytest.raises(WrongPassphraseError):
            master.unwrap(wrapped, other)
