"""Property-test your own code with keymgmt's Hypothesis strategies.

``Vault`` below stands for your application code: it stores records
encrypted under a managed key and trusts certificates only when keymgmt
verifies them. The tests draw keys, contexts, ciphertexts (valid and
mutated) and certificate chains (valid and deliberately broken) from
``keymgmt.testing.strategies``.

Run: python examples/08_hypothesis_test_of_your_code.py
(or put the test functions in a test_*.py file and run pytest).
Needs the ``testing`` extra (pytest and hypothesis).
"""

from __future__ import annotations

from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

import keymgmt
from keymgmt.algorithms import KeyKind
from keymgmt.testing import in_memory_manager
from keymgmt.testing import strategies as kst

# Reproducible runs, no example database in the working directory. In your own
# suite, register profiles like this one in conftest.py.
settings.register_profile("keymgmt-example", derandomize=True, database=None)
settings.load_profile("keymgmt-example")

# --- your code -----------------------------------------------------------------


class VaultError(Exception):
    """Your application's own error."""


class Vault:
    """Application code under test: encrypted records and a trust decision."""

    def __init__(self, km: keymgmt.KeyManager, key: str) -> None:
        self.km, self.key = km, key

    def seal(self, record: bytes, owner: str) -> bytes:
        return bytes(self.km.encrypt(self.key, record, {"owner": owner}))

    def open(self, blob: bytes, owner: str) -> bytes:
        try:
            return self.km.decrypt(blob, {"owner": owner})
        except keymgmt.KeyMgmtError as exc:
            raise VaultError("record unreadable") from exc

    def trusts(self, case: kst.ChainCase, leaf: x509.Certificate) -> bool:
        try:
            self.km.pki.verify(
                leaf,
                intermediates=[case.intermediate],
                trust_anchors=[case.root],
                crls=list(case.crls),
                at=case.at,
                name=case.dns_name,
            )
        except keymgmt.KeyMgmtError:
            return False
        return True


# --- your tests -----------------------------------------------------------------

AEAD = kst.key_specs(kinds=[KeyKind.SYMMETRIC]).filter(lambda s: s.algorithm.value != "fernet")


@settings(max_examples=20, deadline=None)
@given(kst.managed_keys(AEAD), kst.plaintexts(max_size=256), st.text(min_size=1, max_size=20))
def test_vault_round_trips_any_record(key: kst.ManagedKey, record: bytes, owner: str) -> None:
    vault = Vault(key.manager, key.name)
    assert vault.open(vault.seal(record, owner), owner) == record


@settings(max_examples=20, deadline=None)
@given(kst.managed_keys(AEAD), kst.plaintexts(max_size=64), st.text(min_size=1, max_size=20))
def test_vault_refuses_another_owners_record(
    key: kst.ManagedKey, record: bytes, owner: str
) -> None:
    vault = Vault(key.manager, key.name)
    blob = vault.seal(record, owner)
    try:
        vault.open(blob, owner + "x")
    except VaultError:
        return
    raise AssertionError("another owner read the record")


@settings(max_examples=30, deadline=None)
@given(kst.managed_keys(AEAD), kst.plaintexts(max_size=64), st.data())
def test_vault_turns_any_tampering_into_its_own_error(
    key: kst.ManagedKey, record: bytes, data: st.DataObject
) -> None:
    vault = Vault(key.manager, key.name)
    blob = vault.seal(record, "alice")
    tampered = data.draw(kst.mutated(blob))  # a flipped bit, a cut, extra bytes, ...
    try:
        vault.open(tampered, "alice")
    except VaultError:
        return
    raise AssertionError("a tampered blob opened")


@settings(max_examples=10, deadline=None)
@given(kst.certificate_chains(defects=[None, *kst.CHAIN_DEFECTS]))
def test_vault_trusts_exactly_the_valid_chains(case: kst.ChainCase) -> None:
    with in_memory_manager() as km:
        assert Vault(km, "unused").trusts(case, case.leaf) is (case.defect is None)


if __name__ == "__main__":
    for test in (
        test_vault_round_trips_any_record,
        test_vault_refuses_another_owners_record,
        test_vault_turns_any_tampering_into_its_own_error,
        test_vault_trusts_exactly_the_valid_chains,
    ):
        test()  # @given functions run their examples when called
        print("passed:", test.__name__)
