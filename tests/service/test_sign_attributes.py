"""The sign policy's subject attributes: O, OU ... are certified only where a rule allows them."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keymgmt.errors import AccessDeniedError, InvalidArgumentError
from keymgmt.server import Operation, ServicePolicy

from .conftest import Material, ServerProcess

POLICY = ServicePolicy.from_json(
    {
        "rules": [
            {
                "principals": ["app-*"],
                "operations": ["sign"],
                "profiles": ["tls-client"],
                "names": ["{principal}"],
                "attributes": {
                    "O": ["Example Corp"],
                    "OU": ["{principal}", "team-*"],
                    "emailAddress": ["*@example.com"],
                },
            },
            {
                "principals": ["app-*"],
                "operations": ["sign"],
                "profiles": ["tls-server"],
                "names": ["{principal}"],
            },
        ]
    }
)


def _allows(profile: str, *attributes: tuple[str, str | None], principal: str = "app-1") -> bool:
    return POLICY.allows(
        principal, Operation.SIGN, profile=profile, names=[principal], attributes=attributes
    )


def test_attributes_whose_values_match_the_rule_are_allowed() -> None:
    assert _allows("tls-client", ("O", "Example Corp"), ("OU", "team-pay"), ("OU", "app-1"))


def test_an_attribute_value_outside_the_patterns_is_denied() -> None:
    assert not _allows("tls-client", ("O", "Evil Corp"))


def test_principal_in_an_attribute_pattern_is_the_callers_name_only() -> None:
    assert not _allows("tls-client", ("OU", "app-2"))


def test_an_attribute_the_rule_does_not_list_is_denied() -> None:
    assert not _allows("tls-client", ("O", "Example Corp"), ("L", "Paris"))


def test_a_rule_without_attributes_allows_common_names_only() -> None:
    assert _allows("tls-server")
    assert not _allows("tls-server", ("O", "Example Corp"))


def test_a_value_that_is_not_text_matches_no_pattern() -> None:
    assert not _allows("tls-client", ("O", None))


def test_email_address_is_named_by_its_rfc_4514_spelling_or_alias() -> None:
    assert _allows("tls-client", ("1.2.840.113549.1.9.1", "ops@example.com"))


def test_the_denial_names_the_attributes_the_csr_holds() -> None:
    with pytest.raises(AccessDeniedError, match=r"also holds L, O\)$"):
        POLICY.authorize(
            "app-1",
            Operation.SIGN,
            profile="tls-client",
            names=["app-1"],
            attributes=[("O", "Evil"), ("L", "x")],
        )


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ([], "attributes must be an object"),
        ({"CN": ["x"]}, "judged by 'names'"),
        ({"O": "Example"}, "attributes O must be a list"),
        ({"O": [""]}, "attributes O must be a list"),
        ({"": ["x"]}, "non-empty strings"),
    ],
)
def test_malformed_attributes_are_refused(attributes: object, message: str) -> None:
    rule = {
        "principals": ["a"],
        "operations": ["sign"],
        "profiles": ["tls-client"],
        "names": ["a"],
        "attributes": attributes,
    }
    with pytest.raises(InvalidArgumentError, match=message):
        ServicePolicy.from_json({"rules": [rule]})


def _csr(common_name: str, *extra: x509.NameAttribute) -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), *extra])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def test_the_service_certifies_subject_attributes_its_policy_allows(
    server: ServerProcess, material: Material
) -> None:
    org = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Corp")
    unit = x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "team-payments")
    with material.client(server.url, "app-3") as client:
        leaf, _chain = client.sign_csr("issuing", _csr("app-3", org, unit), profile="tls-client")
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) == [org]
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME) == [unit]


def test_the_service_refuses_a_subject_attribute_value_its_policy_does_not_allow(
    server: ServerProcess, material: Material
) -> None:
    org = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Other Corp")
    with (
        material.client(server.url, "app-3") as client,
        pytest.raises(AccessDeniedError, match="also holds O"),
    ):
        client.sign_csr("issuing", _csr("app-3", org), profile="tls-client")
