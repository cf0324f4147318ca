"""Typing test: key pairs' public halves as users write them, checked by mypy --strict.

``assert_type`` pins the types mypy infers; the functions also run under pytest.
"""

from __future__ import annotations

from typing import assert_type

from keymgmt import KeyState, RevokedError
from keymgmt.public import ForensicPublicKey, PublicKey
from keymgmt.testing import in_memory_manager


def test_public_key_and_forensic_public_key_types() -> None:
    with in_memory_manager() as km:
        km.keys.create("signer", "ed25519")
        public = km.public_key("signer")
        assert_type(public, PublicKey)
        assert_type(km.keys.public_key("signer", 1), PublicKey)
        assert_type(public.fingerprint(), str)
        km.keys.revoke("signer", 1, reason="key-compromise")
        try:
            km.public_key("signer")
        except RevokedError as exc:
            assert_type(exc.message, str)
        forensic = km.keys.forensic_public_key("signer", 1)
        assert_type(forensic, ForensicPublicKey)
        assert_type(forensic.state, KeyState)
        assert_type(forensic.revocation_reason, str | None)
        assert_type(forensic.kid, str)
        assert forensic.fingerprint() == public.fingerprint()


def test_data_key_log_policy_types() -> None:
    from keymgmt.keys import DataKeyIssue, DataKeyLogMode, DataKeyLogPolicy

    with in_memory_manager() as km:
        km.keys.create("payments")
        assert_type(km.keys.data_key_log_policy, DataKeyLogPolicy)
        assert_type(km.keys.data_key_log_policy.mode, DataKeyLogMode)
        km.keys.data_key_log_policy = DataKeyLogPolicy(mode="batched", batch_size=4096)
        km.generate_data_key("payments")
        issued = km.keys.data_keys_issued("payments")
        assert_type(issued, list[DataKeyIssue])
        assert len(issued) == 1
