"""The authorization policy: default deny, names and patterns, stored as data."""

from __future__ import annotations

import pytest

from keymgmt import KeyManager
from keymgmt.errors import InvalidArgumentError, MalformedInputError
from keymgmt.kdc import AccessRule, KeyDistributionCenter, Policy


def test_empty_policy_denies_everything() -> None:
    policy = Policy()
    assert not policy.allows_key("alice", "payments")
    assert not policy.allows_peer("alice", "bob")


def test_rule_allows_exact_key_names_only_to_its_principal() -> None:
    policy = Policy((AccessRule(principal="alice", keys=["payments"]),))
    assert policy.allows_key("alice", "payments")
    assert not policy.allows_key("alice", "payments2")
    assert not policy.allows_key("mallory", "payments")


def test_glob_patterns_match_keys_peers_and_principals() -> None:
    policy = Policy((AccessRule(principal="svc-*", keys=["app/*"], peers=["db-?"]),))
    assert policy.allows_key("svc-web", "app/session")
    assert not policy.allows_key("svc-web", "other/session")
    assert policy.allows_peer("svc-web", "db-1")
    assert not policy.allows_peer("svc-web", "db-10")
    assert not policy.allows_key("web", "app/session")


def test_peer_rule_is_not_a_key_rule() -> None:
    policy = Policy((AccessRule(principal="alice", peers=["bob"]),))
    assert not policy.allows_key("alice", "bob")


def test_policy_round_trips_through_json() -> None:
    policy = Policy((AccessRule(principal="a", keys=["k1", "k*"], peers=["b"]),))
    assert Policy.from_json(policy.to_json()) == policy


def test_unknown_policy_document_version_is_refused() -> None:
    with pytest.raises(MalformedInputError, match="unsupported policy document version"):
        Policy.from_json({"version": 2, "rules": []})


def test_empty_pattern_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="policy pattern"):
        AccessRule(principal="alice", keys=[""])


def test_withdrawing_the_last_entry_drops_the_rule() -> None:
    policy = Policy().granting("alice", keys=["k"]).withdrawing("alice", keys=["k"])
    assert policy.rules == ()


def test_grant_is_stored_audited_and_survives_a_new_kdc(km: KeyManager) -> None:
    kdc = KeyDistributionCenter(km._context)
    kdc.grant("alice", keys=["payments"], peers=["bob"])
    again = KeyDistributionCenter(km._context)
    assert again.policy().allows_key("alice", "payments")
    entry = km.audit.tail(1)[0]
    assert (entry.operation, entry.object, entry.outcome) == (
        "kdc.policy.grant",
        "principal:alice",
        "ok",
    )
    assert entry.details == {"keys": "payments", "peers": "bob"}


def test_grant_of_nothing_is_refused(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError, match="grant at least one key or peer"):
        KeyDistributionCenter(km._context).grant("alice")


def test_set_policy_replaces_the_policy(km: KeyManager) -> None:
    kdc = KeyDistributionCenter(km._context)
    kdc.grant("alice", keys=["payments"])
    kdc.set_policy(Policy((AccessRule(principal="bob", keys=["reports"]),)))
    assert not kdc.policy().allows_key("alice", "payments")
    assert kdc.policy().allows_key("bob", "reports")
