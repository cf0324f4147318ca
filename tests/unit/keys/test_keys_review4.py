"""Fourth review of the key store: each test is a defect found and fixed."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from keymgmt import KeyManager, KeyState
from keymgmt.errors import InvalidArgumentError, KeyStateError
from keymgmt.revocation import RevocationReason, SubjectKind
from keymgmt.testing import FakeClock

# -- export_sealed to an unusable recipient ---------------------------------------------


def test_export_sealed_to_a_low_order_point_is_refused_before_anything_is_read_or_audited(
    km: KeyManager,
) -> None:
    km.keys.create("k")
    before = len(list(km.audit.entries()))
    low_order = x25519.X25519PublicKey.from_public_bytes(bytes(32))
    with pytest.raises(InvalidArgumentError, match="not a usable X25519 public key"):
        km.keys.export_sealed("k", recipient=low_order)
    assert [e.operation for e in km.audit.entries()][before:] == []


# -- rotation of a key revoked as a whole ----------------------------------------------------


@pytest.mark.parametrize("reason", ["key-compromise", "superseded"])
def test_rotate_refuses_a_key_revoked_as_a_whole(km: KeyManager, reason: str) -> None:
    km.keys.create("k")
    km.keys.revoke("k", reason=reason)
    with pytest.raises(KeyStateError) as refused:
        km.keys.rotate("k")
    assert refused.value.message == (
        f"key 'k' is revoked as a whole ({reason}): every version, present and future, "
        "is revoked; create a key under another name"
    )
    assert [v.version for v in km.keys.get("k").versions] == [1]  # nothing written


def test_rotate_refuses_a_key_revoked_as_a_whole_in_the_registry_only(km: KeyManager) -> None:
    km.keys.create("k")
    km.revocation.revoke(SubjectKind.KEY, "k", RevocationReason.KEY_COMPROMISE)
    with pytest.raises(KeyStateError, match="revoked as a whole"):
        km.keys.rotate("k")


def test_rotate_after_revoking_every_version_one_by_one_still_renews(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.revoke("k", 1, reason="key-compromise")
    assert km.keys.rotate("k").state is KeyState.ACTIVE
    assert km.decrypt(km.encrypt("k", b"m")) == b"m"


def test_compromise_playbook_does_not_rotate_a_key_revoked_as_a_whole(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.revoke("k", reason="key-compromise")
    report = km.compromise(key="k#1")
    assert report.rotated == ()
    assert [v.version for v in km.keys.get("k").versions] == [1]


# -- verify takes the byte views decrypt takes -----------------------------------------------


def test_verify_accepts_a_signature_in_a_memoryview_of_wider_items(km: KeyManager) -> None:
    km.keys.create("ss", "ed25519")
    signature = km.sign("ss", b"m")
    assert len(signature) % 2 == 0
    km.verify("ss", b"m", memoryview(signature).cast("H"))


# -- a verification with a compromised version is audited as such ----------------------------


def test_a_verify_with_a_compromised_version_is_audited_as_compromised(km: KeyManager) -> None:
    km.keys.create("s", "ed25519")
    signature = km.sign("s", b"m")
    km.keys.revoke("s", 1, reason="key-compromise")
    km.verify("s", b"m", signature, allow_compromised=True)
    km.keys.flush_usage()
    uses = [e.details["use"] for e in km.audit.entries() if e.operation == "key.usage"]
    assert uses == ["sign", "verify-compromised"]


def test_a_verify_with_a_merely_revoked_version_is_not_audited_as_compromised(
    km: KeyManager,
) -> None:
    km.keys.create("s", "ed25519")
    signature = km.sign("s", b"m")
    km.keys.revoke("s", 1, reason="superseded")
    km.verify("s", b"m", signature, allow_compromised=True)
    km.keys.flush_usage()
    uses = [e.details["use"] for e in km.audit.entries() if e.operation == "key.usage"]
    assert uses == ["sign", "verify"]


# -- a primary is destroyed only with its key ------------------------------------------------


@pytest.mark.parametrize("reason", ["key-compromise", "superseded"])
def test_destroying_a_revoked_primary_alone_is_refused_so_the_key_can_still_rotate(
    km: KeyManager, reason: str
) -> None:
    km.keys.create("k")
    km.keys.revoke("k", 1, reason=reason)
    with pytest.raises(KeyStateError) as refused:
        km.keys.destroy("k", 1)
    assert refused.value.message == (
        "key 'k' version 1 is the primary; rotate first or destroy the whole key"
    )
    assert km.keys.get("k").versions[0].destroy_at is None  # nothing written
    assert km.keys.rotate("k").version == 2
    assert km.keys.destroy("k", 1).versions[0].destroy_at is not None  # now it may go


def test_destroying_an_expired_primary_alone_is_refused(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k", expiry_date=clock.now() + dt.timedelta(days=1))
    clock.advance(days=2)
    with pytest.raises(KeyStateError, match="is the primary; rotate first"):
        km.keys.destroy("k", 1)


# -- an expired key is not renewed ----------------------------------------------------------------


def test_rotate_refuses_an_expired_key(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k", expiry_date=clock.now() + dt.timedelta(days=1))
    clock.advance(days=2)
    with pytest.raises(KeyStateError) as refused:
        km.keys.rotate("k")
    assert refused.value.message == (
        "key 'k' expired at 2030-01-02T00:00:00+00:00: every version, present and future, "
        "is deactivated; create a key under another name"
    )
    assert [v.version for v in km.keys.get("k").versions] == [1]


def test_decrypt_of_a_two_dimensional_memoryview_reads_its_bytes(km: KeyManager) -> None:
    km.keys.create("k")
    ciphertext = bytes(km.encrypt("k", b"abcde"))
    assert len(ciphertext) % 2 == 0
    grid = memoryview(ciphertext).cast("B", (2, len(ciphertext) // 2))
    assert km.decrypt(grid) == b"abcde"  # the bytes it holds, as for a flat view


def test_parse_header_of_a_two_dimensional_memoryview_reads_its_bytes(km: KeyManager) -> None:
    from keymgmt.keys import parse_header

    km.keys.create("k")
    ciphertext = bytes(km.encrypt("k", b"abcde"))
    grid = memoryview(ciphertext).cast("B", (1, len(ciphertext)))
    assert parse_header(grid) == parse_header(ciphertext)
