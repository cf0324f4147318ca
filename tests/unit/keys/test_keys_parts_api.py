"""use_version and material_for_distribution: the key store's private API for its other parts."""

from __future__ import annotations

import pytest

from keymgmt import KeyManager
from keymgmt.algorithms import KeyUsage
from keymgmt.errors import InvalidArgumentError, KeyStateError, KeyUsageError, RevokedError
from keymgmt.hazmat import export_raw_key
from keymgmt.keys import KeyState, Operation
from keymgmt.keys._plumbing import LoadedVersion, material_for_distribution, use_version
from keymgmt.revocation import SubjectKind

# -- use -------------------------------------------------------------------------------


def test_use_hands_out_the_checked_primary(km: KeyManager) -> None:
    km.keys.create("signer", "ed25519")
    km.keys.rotate("signer")
    handle = use_version(km.keys, "signer", usage=KeyUsage.SIGN_VERIFY)
    assert isinstance(handle, LoadedVersion)
    assert (handle.name, handle.version, handle.state) == ("signer", 2, KeyState.ACTIVE)
    assert handle.algorithm.value == "ed25519"
    assert handle.loaded.private is not None


def test_use_never_shows_the_loaded_key_or_its_id(km: KeyManager) -> None:
    km.keys.create("signer", "ed25519")
    handle = use_version(km.keys, "signer", usage=KeyUsage.SIGN_VERIFY)
    assert "loaded" not in repr(handle)
    assert "key_id" not in repr(handle)


def test_use_refuses_the_wrong_usage(km: KeyManager) -> None:
    km.keys.create("signer", "ed25519")
    with pytest.raises(KeyUsageError, match="sign-verify"):
        use_version(km.keys, "signer", usage=KeyUsage.ENCRYPT_DECRYPT)


def test_a_suspended_version_may_process_but_not_protect(km: KeyManager) -> None:
    km.keys.create("signer", "ed25519")
    km.keys.suspend("signer", 1)
    with pytest.raises(KeyStateError, match="suspended"):
        use_version(km.keys, "signer", 1, usage=KeyUsage.SIGN_VERIFY)
    handle = use_version(
        km.keys, "signer", 1, usage=KeyUsage.SIGN_VERIFY, operation=Operation.PROCESS
    )
    assert handle.state is KeyState.SUSPENDED


def test_use_refuses_a_version_revoked_in_the_registry(km: KeyManager) -> None:
    km.keys.create("signer", "ed25519")
    use_version(km.keys, "signer", 1, usage=KeyUsage.SIGN_VERIFY)  # cached first
    km.revocation.revoke(SubjectKind.KEY, "signer#1", "key-compromise")
    with pytest.raises(RevokedError):
        use_version(km.keys, "signer", 1, usage=KeyUsage.SIGN_VERIFY)


def test_use_is_only_for_protect_or_process(km: KeyManager) -> None:
    km.keys.create("signer", "ed25519")
    with pytest.raises(InvalidArgumentError, match="protect or process"):
        use_version(km.keys, "signer", 1, usage=KeyUsage.SIGN_VERIFY, operation=Operation.EXPORT)


# -- material_for_distribution -----------------------------------------------------------


def test_distribution_hands_out_the_primary_material(km: KeyManager) -> None:
    km.keys.create("payments")
    km.keys.rotate("payments")
    handed = material_for_distribution(km.keys, "payments", recipient="kdc")
    assert handed.version.version == 2
    raw = export_raw_key(km, "payments", allow_plaintext=True)
    assert handed.material.reveal() == raw.reveal()
    assert raw.reveal().hex() not in repr(handed)


def test_distribution_is_audited_as_a_use_with_its_recipient(km: KeyManager) -> None:
    km.keys.create("payments")
    material_for_distribution(km.keys, "payments", recipient="kdc")
    material_for_distribution(km.keys, "payments", recipient="kdc")
    km.keys.flush_usage()
    entries = [
        dict(e.details)
        for e in km.audit.entries()
        if e.operation == "key.usage" and e.object == "payments#1"
    ]
    assert {"use": "distribute", "count": 2, "context": '{"recipient":"kdc"}'} in entries


def test_distribution_does_not_count_towards_the_rotation_limit(km: KeyManager) -> None:
    km.keys.create("payments")
    material_for_distribution(km.keys, "payments", recipient="kdc")
    km.keys.flush_usage()
    assert km.keys.get("payments").versions[0].uses == 0


@pytest.mark.parametrize("algorithm", ["ed25519", "x25519"])
def test_only_symmetric_keys_are_distributed(km: KeyManager, algorithm: str) -> None:
    km.keys.create("pair", algorithm)
    with pytest.raises(KeyUsageError):
        material_for_distribution(km.keys, "pair", recipient="kdc")


def test_a_suspended_primary_is_not_distributed(km: KeyManager) -> None:
    km.keys.create("payments")
    km.keys.suspend("payments", 1)
    with pytest.raises(KeyStateError, match="suspended"):
        material_for_distribution(km.keys, "payments", recipient="kdc")


def test_a_revoked_primary_is_not_distributed(km: KeyManager) -> None:
    km.keys.create("payments")
    material_for_distribution(km.keys, "payments", recipient="kdc")  # cached first
    km.revocation.revoke(SubjectKind.KEY, "payments#1", "key-compromise")
    with pytest.raises(RevokedError):
        material_for_distribution(km.keys, "payments", recipient="kdc")


def test_distribution_needs_a_recipient(km: KeyManager) -> None:
    km.keys.create("payments")
    with pytest.raises(InvalidArgumentError, match="recipient"):
        material_for_distribution(km.keys, "payments", recipient="")


# -- not on the public surface ----------------------------------------------------------


def test_key_store_has_no_public_method_handing_out_loaded_material(km: KeyManager) -> None:
    import keymgmt.keys

    assert not hasattr(km.keys, "use")
    assert not hasattr(km.keys, "material_for_distribution")
    assert "LoadedVersion" not in keymgmt.keys.__all__
    assert "DistributedMaterial" not in keymgmt.keys.__all__
