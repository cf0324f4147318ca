"""Principals: registration, credentials, disable/enable, revoke, rotate, listing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from keymgmt import KeyManager
from keymgmt.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    MalformedInputError,
    NotFoundError,
    RevokedError,
)
from keymgmt.kdc import KeyDistributionCenter, SymmetricCredential
from keymgmt.revocation import SubjectKind


def test_register_returns_a_fresh_32_byte_key_once(kdc: KeyDistributionCenter) -> None:
    credential = kdc.register("alice")
    assert len(credential.key) == 32
    assert credential.kdc_public_key == kdc.public_key
    assert "alice" in repr(credential)
    assert credential.key.reveal().hex() not in repr(credential)


def test_register_is_audited_without_the_key(km: KeyManager, kdc: KeyDistributionCenter) -> None:
    kdc.register("alice")
    entry = km.audit.tail(1)[0]
    assert (entry.operation, entry.object) == ("kdc.register", "principal:alice")
    assert entry.details == {"credential": "symmetric"}


def test_duplicate_registration_is_refused(kdc: KeyDistributionCenter) -> None:
    kdc.register("alice")
    with pytest.raises(AlreadyExistsError, match="principal 'alice' exists already"):
        kdc.register("alice")


@pytest.mark.parametrize("name", ["", "a\nb", "x" * 256])
def test_bad_principal_names_are_refused(kdc: KeyDistributionCenter, name: str) -> None:
    with pytest.raises(InvalidArgumentError, match="principal name"):
        kdc.register(name)


def test_credential_file_is_private_and_round_trips(
    kdc: KeyDistributionCenter, tmp_path: Path
) -> None:
    path = tmp_path / "alice.cred"
    credential = kdc.register("alice", write_to=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SymmetricCredential.from_file(path) == credential


def test_credential_file_is_never_overwritten(kdc: KeyDistributionCenter, tmp_path: Path) -> None:
    path = tmp_path / "alice.cred"
    path.write_text("keep me")
    with pytest.raises(InvalidArgumentError, match="exists already"):
        kdc.register("alice", write_to=path)
    assert path.read_text() == "keep me"
    with pytest.raises(NotFoundError):
        kdc.get("alice")


def test_garbage_credential_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.cred"
    path.write_text("{}")
    with pytest.raises(MalformedInputError, match="not a keymgmt KDC credential file"):
        SymmetricCredential.from_file(path)


def test_get_and_list_show_metadata_only(kdc: KeyDistributionCenter) -> None:
    kdc.register("bob")
    kdc.register("alice")
    assert [p.name for p in kdc.list()] == ["alice", "bob"]
    info = kdc.get("alice")
    assert (info.credential, info.enabled, info.revoked, info.credential_version) == (
        "symmetric",
        True,
        False,
        1,
    )


def test_unknown_principal_is_not_found(kdc: KeyDistributionCenter) -> None:
    with pytest.raises(NotFoundError, match="no principal named 'ghost'"):
        kdc.get("ghost")
    with pytest.raises(NotFoundError):
        kdc.disable("ghost")


def test_disable_and_enable_are_audited(km: KeyManager, kdc: KeyDistributionCenter) -> None:
    kdc.register("alice")
    kdc.disable("alice")
    assert not kdc.get("alice").enabled
    kdc.enable("alice")
    assert kdc.get("alice").enabled
    assert [e.operation for e in km.audit.tail(2)] == ["kdc.disable", "kdc.enable"]


def test_revoke_records_a_principal_revocation(km: KeyManager, kdc: KeyDistributionCenter) -> None:
    kdc.register("alice")
    kdc.revoke("alice", "key-compromise")
    found = km.revocation.get(SubjectKind.PRINCIPAL, "alice")
    assert found is not None
    assert found.reason.value == "key-compromise"
    info = kdc.get("alice")
    assert (info.revoked, info.enabled) == (True, False)


def test_rotate_credential_bumps_the_version(kdc: KeyDistributionCenter) -> None:
    old = kdc.register("alice")
    new = kdc.rotate_credential("alice")
    assert new.key != old.key
    assert kdc.get("alice").credential_version == 2


def test_revoked_principal_cannot_rotate(kdc: KeyDistributionCenter) -> None:
    kdc.register("alice")
    kdc.revoke("alice")
    with pytest.raises(RevokedError):
        kdc.rotate_credential("alice")


def test_another_kdc_on_the_same_store_sees_principals(
    km: KeyManager, kdc: KeyDistributionCenter
) -> None:
    kdc.register("alice")
    other = KeyDistributionCenter(km._context)
    assert other.get("alice").name == "alice"
    assert other.public_key == kdc.public_key
