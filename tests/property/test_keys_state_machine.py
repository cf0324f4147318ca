"""The key lifecycle against a tiny model: rotate, revoke (a version or the key), destroy,
cancel, use, time."""

from __future__ import annotations

import datetime as _dt
from typing import ClassVar

import attrs
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from keymgmt import KeyManager
from keymgmt.errors import DestroyedKeyError, KeyStateError, RevokedError
from keymgmt.keys import KeyState
from keymgmt.keys._format import parse_header
from keymgmt.testing import FakeClock, SeededRandomness

S = KeyState


@attrs.define
class _Version:
    state: KeyState
    destroy_at: _dt.datetime | None = None


@attrs.frozen
class _Sealed:
    ciphertext: bytes
    plaintext: bytes
    context: dict[str, str]
    version: int


class KeyLifecycle(RuleBasedStateMachine):
    """Drives one key through random operations; the model says what must happen."""

    sealed = Bundle("sealed")
    #: km.keys.create's algorithm (and usage) for the key under test.
    CREATE: ClassVar[dict[str, str]] = {}

    @initialize()
    def start(self) -> None:
        self.clock = FakeClock()
        self.km = KeyManager.in_memory(
            clock=self.clock, randomness=SeededRandomness(3), consistency_interval=0
        )
        self.km.keys.create("k", **self.CREATE)
        self.versions: dict[int, _Version] = {1: _Version(S.ACTIVE)}
        self.primary = 1
        self.revoked_whole = False  # revoke("k"): final, rotate refuses

    def teardown(self) -> None:
        if hasattr(self, "km"):
            self.km.close()

    # -- the model -----------------------------------------------------------------

    def state(self, number: int) -> KeyState:
        version = self.versions[number]
        if version.destroy_at is not None and self.clock.now() >= version.destroy_at:
            if version.state is S.COMPROMISED:
                return S.DESTROYED_COMPROMISED
            if not version.state.is_destroyed:
                return S.DESTROYED
        return version.state

    def settle(self, number: int) -> _Version:
        version = self.versions[number]
        version.state = self.state(number)
        return version

    versions_st = st.integers(min_value=1, max_value=6)

    # -- rules -------------------------------------------------------------------------

    @rule()
    def rotate(self) -> None:
        if self.revoked_whole:
            with pytest.raises(RevokedError, match="revoked as a whole"):
                self.km.keys.rotate("k")
            return
        info = self.km.keys.rotate("k")
        old = self.settle(self.primary)
        if old.state in (S.ACTIVE, S.SUSPENDED):
            old.state = S.DEACTIVATED
        self.primary = info.version
        assert info.version == max(self.versions) + 1
        self.versions[info.version] = _Version(S.ACTIVE)

    @rule(target=sealed, data=st.binary(max_size=64), tenant=st.sampled_from(["", "a", "b"]))
    def encrypt(self, data: bytes, tenant: str) -> _Sealed | None:
        context = {"tenant": tenant} if tenant else {}
        if self.state(self.primary) is S.ACTIVE:
            ciphertext = bytes(self.km.encrypt("k", data, context))
            assert parse_header(ciphertext).version == self.primary
            return _Sealed(ciphertext, data, context, self.primary)
        try:
            self.km.encrypt("k", data, context)
        except KeyStateError:
            return None
        raise AssertionError(f"encrypt with a {self.state(self.primary)} primary succeeded")

    @rule(item=sealed)
    def decrypt(self, item: _Sealed | None) -> None:
        if item is None:
            return
        state = self.state(item.version)
        if state.is_destroyed:
            for allow in (False, True):
                try:
                    self.km.decrypt(item.ciphertext, item.context, allow_compromised=allow)
                except DestroyedKeyError:
                    continue
                raise AssertionError("a destroyed version decrypted")
            return
        if state is S.COMPROMISED:
            try:
                self.km.decrypt(item.ciphertext, item.context)
            except RevokedError:
                pass
            else:
                raise AssertionError("a compromised version decrypted without the allowance")
            assert (
                self.km.decrypt(item.ciphertext, item.context, allow_compromised=True)
                == item.plaintext
            )
            return
        assert self.km.decrypt(item.ciphertext, item.context) == item.plaintext

    @rule(number=versions_st, compromise=st.booleans())
    def revoke(self, number: int, compromise: bool) -> None:
        if number not in self.versions:
            return
        reason = "key-compromise" if compromise else "superseded"
        self.km.keys.revoke("k", number, reason=reason)
        self.revoke_in_model(number, compromise)

    @rule(compromise=st.booleans())
    def revoke_whole_key(self, compromise: bool) -> None:
        reason = "key-compromise" if compromise else "superseded"
        self.km.keys.revoke("k", reason=reason)
        for number in self.versions:
            self.revoke_in_model(number, compromise)
        self.revoked_whole = True

    def revoke_in_model(self, number: int, compromise: bool) -> None:
        version = self.settle(number)
        if version.state.is_destroyed:
            if compromise:
                version.state = S.DESTROYED_COMPROMISED
        elif compromise:
            version.state = S.COMPROMISED
        elif version.state not in (S.COMPROMISED, S.DEACTIVATED):
            version.state = S.DEACTIVATED

    @rule(number=versions_st, days=st.integers(min_value=0, max_value=10))
    def destroy(self, number: int, days: int) -> None:
        if number not in self.versions:
            return
        version = self.settle(number)
        grace = _dt.timedelta(days=days)
        if version.state.is_destroyed:
            expected: type[Exception] | None = DestroyedKeyError
        elif number == self.primary:  # in any state: only with the whole key
            expected = KeyStateError
        else:
            expected = None
        if expected is not None:
            with pytest.raises(expected):
                self.km.keys.destroy("k", number, grace=grace)
            return
        self.km.keys.destroy("k", number, grace=grace)
        if version.state in (S.ACTIVE, S.SUSPENDED):
            version.state = S.DEACTIVATED
        version.destroy_at = self.clock.now() + grace

    @rule(number=versions_st)
    def cancel(self, number: int) -> None:
        if number not in self.versions:
            return
        version = self.settle(number)
        try:
            self.km.keys.cancel_destruction("k", number)
        except DestroyedKeyError:
            assert version.state.is_destroyed
            return
        except KeyStateError:
            assert version.destroy_at is None
            return
        assert not version.state.is_destroyed
        assert version.destroy_at is not None
        version.destroy_at = None

    @rule(hours=st.integers(min_value=1, max_value=24 * 10))
    def advance(self, hours: int) -> None:
        self.clock.advance(hours=hours)

    @rule()
    def maintenance(self) -> None:
        self.km.keys.run_maintenance()

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def states_match_the_model(self) -> None:
        info = self.km.keys.get("k")
        assert info.primary_version == self.primary
        assert {v.version: v.state for v in info.versions} == {
            n: self.state(n) for n in self.versions
        }
        assert sum(v.is_primary for v in info.versions) == 1

    @invariant()
    def destroyed_versions_hold_no_material(self) -> None:
        self.km.keys.get("k")  # any read applies destructions that are due
        for number in self.versions:
            if self.state(number).is_destroyed:
                record = self.km._store.get_json("keyver", f"k#{number}")
                assert record is not None
                assert record["material"] is None


TestKeyLifecycle = KeyLifecycle.TestCase


class KeyPairLifecycle(KeyLifecycle):
    """The same lifecycle for an HPKE key pair, whose public half must honour it too."""

    CREATE: ClassVar[dict[str, str]] = {"algorithm": "x25519", "usage": "encrypt-decrypt"}

    @invariant()
    def public_key_answers_by_state(self) -> None:
        for number in self.versions:
            state = self.state(number)
            if state.is_destroyed:
                with pytest.raises(DestroyedKeyError):
                    self.km.public_key("k", number)
            elif state is S.COMPROMISED:
                with pytest.raises(RevokedError, match="forensic_public_key"):
                    self.km.public_key("k", number)
            else:
                assert self.km.public_key("k", number).version == number
            if not state.is_destroyed:
                assert self.km.keys.forensic_public_key("k", number).state is state


TestKeyPairLifecycle = KeyPairLifecycle.TestCase
