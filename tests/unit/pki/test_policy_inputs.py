"""RFC 5280's initial policy inputs on verify: the policy set and the three flags.

The chains here are built with ``cryptography`` directly (keymgmt's CAs
assert no certificate policies): an Ed25519 anchor, one intermediate and a
leaf, each asserting the policies a test gives, verified by a store-less
verifier whose lookup says "not revoked".
"""

from __future__ import annotations

import datetime as _dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtensionOID
from hypothesis import given
from hypothesis import strategies as st

from keymgmt import KeyManager
from keymgmt.errors import CertificateVerificationError, InvalidArgumentError
from keymgmt.pki import CertificateAuthority, CertificateVerifier, VerificationFailure
from keymgmt.pki._policy import ANY_POLICY, PolicyInputs, policy_oids
from keymgmt.testing._pki import name as _name

AT = _dt.datetime(2026, 6, 1, tzinfo=_dt.UTC)
P1 = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")
P2 = x509.ObjectIdentifier("1.3.6.1.4.1.55555.2")


def _policies(oids: tuple[x509.ObjectIdentifier, ...]) -> x509.CertificatePolicies:
    return x509.CertificatePolicies([x509.PolicyInformation(oid, None) for oid in oids])


def _oid_der(oid: x509.ObjectIdentifier) -> bytes:
    arcs = [int(a) for a in oid.dotted_string.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return bytes([0x06, len(body)]) + bytes(body)


def _mapping(
    issuer: x509.ObjectIdentifier, subject: x509.ObjectIdentifier
) -> x509.Extension[x509.UnrecognizedExtension]:
    pair = _oid_der(issuer) + _oid_der(subject)
    inner = bytes([0x30, len(pair)]) + pair
    der = bytes([0x30, len(inner)]) + inner
    return x509.Extension(
        ExtensionOID.POLICY_MAPPINGS,
        False,
        x509.UnrecognizedExtension(ExtensionOID.POLICY_MAPPINGS, der),
    )


_KEYS = {n: ed25519.Ed25519PrivateKey.generate() for n in ("root", "ca", "leaf")}


def _cert(
    cn: str,
    issuer_cn: str,
    *,
    ca: bool,
    policies: tuple[x509.ObjectIdentifier, ...] = (),
    extra: tuple[x509.Extension[x509.ExtensionType], ...] = (),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer_cn))
        .public_key(_KEYS[cn].public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(AT - _dt.timedelta(days=1))
        .not_valid_after(AT + _dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if policies:
        builder = builder.add_extension(_policies(policies), critical=False)
    for ext in extra:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    return builder.sign(_KEYS[issuer_cn], None)


def _verify(
    ca_policies: tuple[x509.ObjectIdentifier, ...],
    leaf_policies: tuple[x509.ObjectIdentifier, ...],
    ca_extra: tuple[x509.Extension[x509.ExtensionType], ...] = (),
    **inputs: object,
) -> frozenset[x509.ObjectIdentifier]:
    root = _cert("root", "root", ca=True)
    ca = _cert("ca", "root", ca=True, policies=ca_policies, extra=ca_extra)
    leaf = _cert("leaf", "ca", ca=False, policies=leaf_policies)
    verifier = CertificateVerifier(trust_anchors=[root], registry=lambda issuer, cert: None)
    path = verifier.verify(leaf, intermediates=[ca], at=AT, **inputs)  # type: ignore[arg-type]
    return path.policies


def _refused(*args: object, **inputs: object) -> None:
    with pytest.raises(CertificateVerificationError) as caught:
        _verify(*args, **inputs)  # type: ignore[arg-type]
    assert getattr(caught.value, "reason", None) is VerificationFailure.INVALID_PATH


def test_default_inputs_report_the_policies_the_path_is_valid_for() -> None:
    assert _verify((P1, P2), (P1,)) == {P1}


def test_a_path_without_policies_is_valid_for_none_by_default() -> None:
    assert _verify((), ()) == frozenset()


def test_initial_policy_set_narrows_the_reported_policies() -> None:
    assert _verify((P1, P2), (P1, P2), initial_policy_set=[P2]) == {P2}


def test_initial_policy_set_without_a_match_is_valid_but_empty() -> None:
    assert _verify((P1,), (P1,), initial_policy_set=["1.3.6.1.4.1.55555.2"]) == frozenset()


def test_explicit_policy_refuses_a_path_without_an_acceptable_policy() -> None:
    _refused((P1,), (P1,), initial_policy_set=[P2], initial_explicit_policy=True)


def test_explicit_policy_refuses_a_path_without_policies() -> None:
    _refused((), (), initial_explicit_policy=True)


def test_explicit_policy_accepts_a_path_with_an_acceptable_policy() -> None:
    assert _verify((P1,), (P1,), initial_policy_set=[P1], initial_explicit_policy=True) == {P1}


def test_a_policy_mapping_carries_the_users_policy_to_the_leafs() -> None:
    mapped = _verify((P1,), (P2,), (_mapping(P1, P2),), initial_policy_set=[P1])
    assert mapped == {P2}


def test_mapping_inhibit_stops_a_mapped_policy() -> None:
    _refused(
        (P1,),
        (P2,),
        (_mapping(P1, P2),),
        initial_policy_set=[P1],
        initial_explicit_policy=True,
        initial_policy_mapping_inhibit=True,
    )


def test_any_policy_in_a_ca_stands_for_the_leafs_policy() -> None:
    assert _verify((ANY_POLICY,), (P1,), initial_explicit_policy=True) == {P1}


def test_any_policy_inhibit_makes_any_policy_match_nothing() -> None:
    _refused((ANY_POLICY,), (P1,), initial_explicit_policy=True, initial_any_policy_inhibit=True)


def test_keymgmt_issued_chain_with_explicit_policy_is_refused(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    cert = issuing.issue(public_key=key.public_key(), subject="svc", names=["svc.example"])
    assert km.pki.verify(cert).policies == frozenset()
    with pytest.raises(CertificateVerificationError) as caught:
        km.pki.verify(cert, initial_explicit_policy=True)
    assert getattr(caught.value, "reason", None) is VerificationFailure.INVALID_PATH


@pytest.mark.parametrize(
    "bad",
    [[], ["not-an-oid"], ["1.2..3"], ["3.1"], ["1.40.1"], [""], [b"1.2.3"], [12]],
    ids=repr,
)
def test_malformed_initial_policy_set_is_invalid_argument(bad: list[object]) -> None:
    with pytest.raises(InvalidArgumentError):
        policy_oids(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("flag", ["initial_explicit_policy", "initial_any_policy_inhibit"])
def test_non_bool_flag_is_invalid_argument(flag: str) -> None:
    with pytest.raises(InvalidArgumentError):
        PolicyInputs.of(**{flag: 1})  # type: ignore[arg-type]


def test_default_inputs_are_shared_and_default() -> None:
    assert PolicyInputs.of() is PolicyInputs.of()
    assert PolicyInputs.of().is_default
    assert not PolicyInputs.of(initial_policy_set=[P1]).is_default


_arcs = st.tuples(
    st.integers(0, 2), st.integers(0, 39), st.lists(st.integers(0, 2**64), max_size=6)
).map(lambda t: [t[0], t[1], *t[2]])


@given(st.lists(_arcs, min_size=1, max_size=4))
def test_dotted_policy_oids_parse_to_the_same_identifiers(arcs: list[list[int]]) -> None:
    texts = [".".join(map(str, a)) for a in arcs]
    assert {o.dotted_string for o in policy_oids(texts)} == set(texts)


@given(st.text(max_size=30))
def test_any_text_is_a_policy_oid_or_invalid_argument(text: str) -> None:
    try:
        parsed = policy_oids([text])
    except InvalidArgumentError:
        return
    assert {o.dotted_string for o in parsed} == {text}
