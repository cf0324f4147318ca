"""The service policy: default deny, patterns, profiles and names, strict parsing."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt.errors import AccessDeniedError, InvalidArgumentError
from keymgmt.server import Operation, RateLimit, ServicePolicy

POLICY = ServicePolicy.from_json(
    {
        "rules": [
            {"principals": ["app-*"], "operations": ["encrypt", "decrypt"], "keys": ["pay-*"]},
            {
                "principals": ["app-*"],
                "operations": ["sign"],
                "profiles": ["tls-client"],
                "names": ["{principal}", "*.svc.internal"],
            },
            {"principals": ["ops"], "operations": ["revoke"], "subjects": ["principal:*"]},
        ]
    }
)


def test_empty_policy_denies_everything() -> None:
    assert not ServicePolicy().allows("anyone", Operation.KDC)


def test_rule_allows_matching_principal_operation_and_key() -> None:
    assert POLICY.allows("app-1", Operation.ENCRYPT, key="pay-eu")


def test_rule_refuses_a_key_outside_its_patterns() -> None:
    assert not POLICY.allows("app-1", Operation.ENCRYPT, key="payroll")


def test_rule_refuses_an_operation_it_does_not_name() -> None:
    assert not POLICY.allows("app-1", Operation.REWRAP, key="pay-eu")


def test_key_operation_without_key_is_refused() -> None:
    assert not POLICY.allows("app-1", Operation.ENCRYPT)


def test_sign_allows_the_callers_own_name() -> None:
    assert POLICY.allows("app-1", Operation.SIGN, profile="tls-client", names=["app-1"])


def test_sign_refuses_someone_elses_name() -> None:
    assert not POLICY.allows("app-1", Operation.SIGN, profile="tls-client", names=["app-2"])


def test_sign_refuses_when_any_name_is_outside_the_patterns() -> None:
    names = ["app-1", "a.svc.internal", "evil.example"]
    assert not POLICY.allows("app-1", Operation.SIGN, profile="tls-client", names=names)


def test_sign_refuses_a_profile_not_listed() -> None:
    assert not POLICY.allows("app-1", Operation.SIGN, profile="intermediate", names=["app-1"])


def test_sign_refuses_a_csr_with_no_names() -> None:
    assert not POLICY.allows("app-1", Operation.SIGN, profile="tls-client", names=[])


def test_sign_rule_with_cas_refuses_other_cas() -> None:
    policy = ServicePolicy.from_json(
        {
            "rules": [
                {
                    "principals": ["*"],
                    "operations": ["sign"],
                    "profiles": ["tls-client"],
                    "names": ["{principal}"],
                    "cas": ["issuing-*"],
                }
            ]
        }
    )
    request = {"profile": "tls-client", "names": ["a"]}
    assert policy.allows("a", Operation.SIGN, ca="issuing-eu", **request)  # type: ignore[arg-type]
    assert not policy.allows("a", Operation.SIGN, ca="root", **request)  # type: ignore[arg-type]


def test_revoke_matches_kind_and_subject() -> None:
    assert POLICY.allows("ops", Operation.REVOKE, subject="principal:app-1")
    assert not POLICY.allows("ops", Operation.REVOKE, subject="key:pay-eu#1")


def test_authorize_raises_access_denied_naming_the_request() -> None:
    with pytest.raises(AccessDeniedError) as info:
        POLICY.authorize("app-1", Operation.DECRYPT, key="hr-salaries")
    assert info.value.message == "principal 'app-1' may not decrypt on key 'hr-salaries'"
    assert info.value.principal == "app-1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"rulez": []}, "policy: unknown field(s): rulez"),
        ({"rules": {}}, "policy: 'rules' must be a list"),
        ({"rules": [{"principals": ["a"]}]}, "policy: a rule needs 'principals' and 'operations'"),
        (
            {"rules": [{"principals": ["a"], "operations": ["fly"]}]},
            "policy: unknown operation in ['fly']; expected: encrypt, decrypt, datakey, rewrap,"
            " create-key, read-key, sign, kdc, revoke",
        ),
        (
            {"rules": [{"principals": "a", "operations": ["kdc"]}]},
            "policy: principals must be a list of non-empty strings",
        ),
        (
            {"rules": [{"principals": ["a"], "operations": ["kdc"], "colour": 1}]},
            "policy: unknown rule field(s): colour",
        ),
        ({"rate_limit": {"rate": 0}}, "policy: rate_limit needs rate > 0 and burst >= 1"),
        ({"rate_limit": {"rate": "x"}}, "policy: rate limits need numeric 'rate' and 'burst'"),
    ],
)
def test_malformed_policy_is_refused_with_a_reason(document: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        ServicePolicy.from_json(document)
    assert info.value.message == message


def test_rate_limit_override_applies_to_matching_principals() -> None:
    limit = RateLimit.from_json(
        {"rate": 10, "burst": 20, "principals": {"batch-*": {"rate": 1, "burst": 2}}}
    )
    assert limit.for_principal("batch-7") == (1.0, 2)
    assert limit.for_principal("app-1") == (10.0, 20)


def test_policy_file_that_is_not_json_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "policy.json"
    path.write_text("{")
    with pytest.raises(InvalidArgumentError, match="is not valid JSON"):
        ServicePolicy.load(path)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(_json)
def test_any_json_parses_or_raises_invalid_argument(document: Any) -> None:
    with contextlib.suppress(InvalidArgumentError):
        ServicePolicy.from_json(document)
