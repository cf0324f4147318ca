"""Key lifecycle: create, rotate, states, dates, policies, revocation, destruction."""

from __future__ import annotations

import datetime as _dt

import attrs
import pytest

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm, KeyKind, KeyUsage
from keymgmt.errors import (
    AlreadyExistsError,
    DecryptionError,
    DestroyedKeyError,
    InvalidArgumentError,
    KeyNotFoundError,
    KeyStateError,
    KeyUsageError,
    RevokedError,
    UnsupportedAlgorithmError,
)
from keymgmt.keys import TRANSITIONS, KeyState, RotationPolicy
from keymgmt.keys._format import parse_header
from keymgmt.revocation import RevocationReason, SubjectKind
from keymgmt.testing import FakeClock

DAY = _dt.timedelta(days=1)


def _where(error: BaseException) -> tuple[object, object]:
    """The (key_name, version) attributes a keymgmt error carries."""
    return vars(error).get("key_name"), vars(error).get("version")


def _generation(km: KeyManager) -> int:
    return km._store.backend.generation()


# -- create / get / list ---------------------------------------------------------------


def test_create_defaults_to_an_active_aes_256_gcm_primary_version_1(km: KeyManager) -> None:
    info = km.keys.create("payments")
    assert info.algorithm is Algorithm.AES_256_GCM
    assert info.kind is KeyKind.SYMMETRIC
    assert info.usage is KeyUsage.ENCRYPT_DECRYPT
    assert info.primary_version == 1
    assert [(v.version, v.state, v.is_primary) for v in info.versions] == [
        (1, KeyState.ACTIVE, True)
    ]


def test_metadata_is_frozen_and_holds_no_material(km: KeyManager) -> None:
    info = km.keys.create("payments")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        info.name = "other"  # type: ignore[misc]
    fields = {f.name for f in attrs.fields(type(info))} | {
        f.name for f in attrs.fields(type(info.primary))
    }
    assert not fields & {"material", "key", "secret", "plaintext"}


def test_create_twice_is_refused_and_writes_nothing(km: KeyManager) -> None:
    km.keys.create("payments")
    before = _generation(km)
    with pytest.raises(AlreadyExistsError) as caught:
        km.keys.create("payments")
    assert _where(caught.value)[0] == "payments"
    assert _generation(km) == before


@pytest.mark.parametrize("name", ["", "has space", "a#1", "-lead", "x" * 129, "ü"])
def test_invalid_names_are_refused(km: KeyManager, name: str) -> None:
    with pytest.raises(InvalidArgumentError):
        km.keys.create(name)


def test_unknown_algorithm_is_refused_with_its_name(km: KeyManager) -> None:
    before = _generation(km)
    with pytest.raises(UnsupportedAlgorithmError, match="rot13"):
        km.keys.create("k", "rot13")
    assert _generation(km) == before


def test_a_symmetric_key_cannot_be_created_for_signing(km: KeyManager) -> None:
    with pytest.raises(KeyUsageError):
        km.keys.create("k", usage=KeyUsage.SIGN_VERIFY)


def test_unknown_key_is_a_lookup_error_naming_the_key(km: KeyManager) -> None:
    with pytest.raises(KeyNotFoundError, match="'nobody'") as caught:
        km.keys.get("nobody")
    assert _where(caught.value)[0] == "nobody"
    with pytest.raises(KeyNotFoundError):
        km.encrypt("nobody", b"x")


def test_list_returns_every_key_sorted_by_name(km: KeyManager) -> None:
    for name in ("zeta", "alpha", "mid"):
        km.keys.create(name)
    assert [k.name for k in km.keys.list()] == ["alpha", "mid", "zeta"]


# -- rotation ------------------------------------------------------------------------


def test_rotate_makes_a_new_primary_and_the_old_version_decrypt_only(km: KeyManager) -> None:
    km.keys.create("k")
    old = km.encrypt("k", b"before")
    new_version = km.keys.rotate("k")
    assert (new_version.version, new_version.is_primary) == (2, True)
    info = km.keys.get("k")
    assert [(v.version, v.state) for v in info.versions] == [
        (1, KeyState.DEACTIVATED),
        (2, KeyState.ACTIVE),
    ]
    assert parse_header(km.encrypt("k", b"after")).version == 2
    assert km.decrypt(old) == b"before"


def test_rotation_by_age_happens_on_the_next_encrypt(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k", policy=RotationPolicy(rotation_period=30 * DAY))
    assert parse_header(km.encrypt("k", b"x")).version == 1
    clock.advance(days=31)
    assert parse_header(km.encrypt("k", b"x")).version == 2
    assert km.keys.get("k").primary_version == 2


def test_rotation_by_use_count(km: KeyManager) -> None:
    km.keys.create("k", policy=RotationPolicy(rotate_after_uses=3))
    versions = [parse_header(km.encrypt("k", b"x")).version for _ in range(7)]
    assert versions == [1, 1, 1, 2, 2, 2, 3]
    assert km.keys.get("k").version(1).uses == 3  # type: ignore[union-attr]


def test_rotate_after_uses_above_the_hard_cap_is_refused(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError, match="rotate_after_uses"):
        km.keys.create("k", policy=RotationPolicy(rotate_after_uses=(1 << 31) + 1))


def test_run_maintenance_rotates_keys_that_are_due(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k", policy=RotationPolicy(rotation_period=DAY))
    clock.advance(days=2)
    km.keys.run_maintenance()
    assert km.keys.get("k").primary_version == 2


# -- dates ---------------------------------------------------------------------------


def test_a_key_is_pre_active_until_its_activation_date(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k", activation_date=clock.now() + DAY)
    assert km.keys.get("k").primary.state is KeyState.PRE_ACTIVE
    with pytest.raises(KeyStateError, match="pre-active") as caught:
        km.encrypt("k", b"x")
    assert _where(caught.value) == ("k", 1)
    clock.advance(days=1)
    assert km.decrypt(km.encrypt("k", b"x")) == b"x"


def test_after_the_expiry_date_versions_only_decrypt(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k", expiry_date=clock.now() + DAY)
    ciphertext = km.encrypt("k", b"x")
    clock.advance(days=2)
    with pytest.raises(KeyStateError, match="deactivated"):
        km.encrypt("k", b"y")
    assert km.decrypt(ciphertext) == b"x"


def test_naive_dates_are_refused(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError, match="timezone-aware"):
        km.keys.create("k", expiry_date=_dt.datetime(2031, 1, 1))


# -- suspension ----------------------------------------------------------------------


def test_suspended_version_decrypts_but_does_not_encrypt(km: KeyManager) -> None:
    km.keys.create("k")
    ciphertext = km.encrypt("k", b"x")
    assert km.keys.suspend("k", 1).state is KeyState.SUSPENDED
    with pytest.raises(KeyStateError, match="suspended"):
        km.encrypt("k", b"x")
    assert km.decrypt(ciphertext) == b"x"
    km.keys.resume("k", 1)
    assert km.decrypt(km.encrypt("k", b"y")) == b"y"


def test_resuming_a_version_that_is_not_suspended_is_refused(km: KeyManager) -> None:
    km.keys.create("k")
    with pytest.raises(KeyStateError, match="not suspended"):
        km.keys.resume("k", 1)


# -- revocation ----------------------------------------------------------------------


def test_compromised_version_never_encrypts_and_decrypts_only_when_allowed(
    km: KeyManager,
) -> None:
    km.keys.create("k")
    ciphertext = km.encrypt("k", b"secret")
    km.keys.revoke("k", 1, reason=RevocationReason.KEY_COMPROMISE)
    assert km.keys.get("k").primary.state is KeyState.COMPROMISED
    with pytest.raises(RevokedError):
        km.encrypt("k", b"x")
    with pytest.raises(RevokedError, match="allow_compromised") as caught:
        km.decrypt(ciphertext)
    assert _where(caught.value) == ("k", 1)
    assert km.decrypt(ciphertext, allow_compromised=True) == b"secret"


def test_revocation_is_recorded_in_the_registry(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.revoke("k", 1, reason="superseded")
    found = km.revocation.get(SubjectKind.KEY, "k#1")
    assert found is not None
    assert found.reason is RevocationReason.SUPERSEDED


def test_other_reasons_deactivate(km: KeyManager) -> None:
    km.keys.create("k")
    ciphertext = km.encrypt("k", b"x")
    km.keys.revoke("k", 1, reason="cessation-of-operation")
    assert km.keys.get("k").primary.state is KeyState.DEACTIVATED
    with pytest.raises(RevokedError, match="cessation-of-operation"):
        km.encrypt("k", b"x")
    assert km.decrypt(ciphertext) == b"x"


def test_revoking_the_whole_key_records_every_version_and_the_key(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.rotate("k")
    km.keys.revoke("k", reason="key-compromise")
    assert all(
        km.revocation.is_revoked(SubjectKind.KEY, subject) for subject in ("k", "k#1", "k#2")
    )
    assert {v.state for v in km.keys.get("k").versions} == {KeyState.COMPROMISED}


def test_a_revocation_made_directly_in_the_registry_is_honoured(km: KeyManager) -> None:
    km.keys.create("k")
    ciphertext = km.encrypt("k", b"x")
    km.revocation.revoke(SubjectKind.KEY, "k#1", RevocationReason.KEY_COMPROMISE)
    with pytest.raises(RevokedError):
        km.encrypt("k", b"x")
    with pytest.raises(RevokedError):
        km.decrypt(ciphertext)
    assert km.keys.get("k").primary.state is KeyState.COMPROMISED


def test_revoking_with_an_unknown_reason_writes_nothing(km: KeyManager) -> None:
    km.keys.create("k")
    before = _generation(km)
    with pytest.raises(InvalidArgumentError):
        km.keys.revoke("k", 1, reason="bored")
    assert _generation(km) == before


# -- destruction ---------------------------------------------------------------------


def test_destruction_waits_seven_days_by_default(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k")
    ciphertext = km.encrypt("k", b"x")
    km.keys.rotate("k")
    info = km.keys.destroy("k", 1)
    assert info.version(1).destroy_at == clock.now() + 7 * DAY  # type: ignore[union-attr]
    clock.advance(days=6)
    assert km.decrypt(ciphertext) == b"x"
    clock.advance(days=2)
    with pytest.raises(DestroyedKeyError, match="'k' version 1") as caught:
        km.decrypt(ciphertext)
    assert _where(caught.value) == ("k", 1)


def test_destroyed_material_is_erased_from_the_store(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k")
    km.keys.rotate("k")
    km.keys.destroy("k", 1, grace=DAY)
    clock.advance(days=2)
    km.keys.run_maintenance()
    record = km._store.get_json("keyver", "k#1")
    assert record is not None
    assert record["material"] is None
    assert record["state"] == "destroyed"
    assert km.keys.get("k").version(1).destroyed_at == clock.now()  # type: ignore[union-attr]


def test_cancelled_destruction_keeps_the_version(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k")
    ciphertext = km.encrypt("k", b"x")
    km.keys.rotate("k")
    km.keys.destroy("k", 1)
    km.keys.cancel_destruction("k", 1)
    clock.advance(days=30)
    assert km.decrypt(ciphertext) == b"x"
    assert km.keys.get("k").version(1).destroy_at is None  # type: ignore[union-attr]


def test_cancelling_after_the_grace_period_is_too_late(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k")
    km.keys.rotate("k")
    km.keys.destroy("k", 1, grace=DAY)
    clock.advance(days=2)
    with pytest.raises(DestroyedKeyError):
        km.keys.cancel_destruction("k", 1)


def test_the_primary_version_alone_cannot_be_destroyed(km: KeyManager) -> None:
    km.keys.create("k")
    before = _generation(km)
    with pytest.raises(KeyStateError, match="primary") as caught:
        km.keys.destroy("k", 1)
    assert _where(caught.value) == ("k", 1)
    assert _generation(km) == before


def test_destroying_the_whole_key_stops_encryption_at_once(
    km: KeyManager, clock: FakeClock
) -> None:
    km.keys.create("k")
    ciphertext = km.encrypt("k", b"x")
    km.keys.destroy("k")
    with pytest.raises(KeyStateError):
        km.encrypt("k", b"y")
    assert km.decrypt(ciphertext) == b"x"
    clock.advance(days=8)
    with pytest.raises(DestroyedKeyError):
        km.decrypt(ciphertext)
    assert km.keys.get("k").primary.state is KeyState.DESTROYED


def test_destroying_a_compromised_version_ends_destroyed_compromised(
    km: KeyManager, clock: FakeClock
) -> None:
    km.keys.create("k")
    km.keys.rotate("k")
    km.keys.revoke("k", 1, reason="key-compromise")
    km.keys.destroy("k", 1, grace=_dt.timedelta(0))
    assert km.keys.get("k").version(1).state is KeyState.DESTROYED_COMPROMISED  # type: ignore[union-attr]


def test_compromise_after_destruction_is_recorded(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k")
    km.keys.rotate("k")
    km.keys.destroy("k", 1, grace=_dt.timedelta(0))
    km.keys.revoke("k", 1, reason="key-compromise")
    assert km.keys.get("k").version(1).state is KeyState.DESTROYED_COMPROMISED  # type: ignore[union-attr]


def test_a_version_number_that_does_not_exist_is_a_lookup_error(km: KeyManager) -> None:
    km.keys.create("k")
    with pytest.raises(KeyNotFoundError) as caught:
        km.keys.revoke("k", 9)
    assert _where(caught.value) == ("k", 9)


# -- the table ---------------------------------------------------------------------


def test_destroyed_compromised_is_final() -> None:
    assert TRANSITIONS[KeyState.DESTROYED_COMPROMISED] == frozenset()


def test_every_state_can_reach_a_destroyed_state() -> None:
    for start in KeyState:
        seen, todo = {start}, [start]
        while todo:
            for nxt in TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen & {KeyState.DESTROYED, KeyState.DESTROYED_COMPROMISED}


def test_a_failed_decrypt_changes_nothing(km: KeyManager) -> None:
    km.keys.create("k")
    ciphertext = bytearray(km.encrypt("k", b"x"))
    ciphertext[-1] ^= 1
    before = _generation(km)
    with pytest.raises(DecryptionError):
        km.decrypt(bytes(ciphertext))
    assert _generation(km) == before
