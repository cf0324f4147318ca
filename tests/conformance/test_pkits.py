"""NIST PKITS: keymgmt's path validation against an independent conformance suite.

The Public Key Interoperability Test Suite (NIST, "PKITS.pdf", test data of
2011) is a set of certification paths, each named for its expected outcome
under the suite's *default settings*: ``Valid...`` paths must be accepted,
``Invalid...`` paths refused. The data ships in the PyPI package
``cryptography-vectors`` (the ``conformance`` extra); this module skips when it
is missing, except in CI (``CI`` set), where a missing suite is a failure.

What one case is here:

* the end-entity certificate ``<Name>EE.crt``;
* trust anchor ``TrustAnchorRootCertificate.crt``;
* every other certificate of the suite as the untrusted pool (the verifier
  builds the path) and every CRL of the suite (the verifier picks the ones
  that apply: issuer name, signature, freshness, scope);
* validation time 2020-01-01 (PKITS's certificates and CRLs are valid
  2010-2030; the "bad date" cases are far outside that window);
* purpose "any", no expected name, revocation :attr:`RevocationPolicy.REQUIRE`
  (no status is a refusal, as PKITS expects for "missing CRL").

The default settings are initial-policy-set = {anyPolicy},
initial-explicit-policy, initial-policy-mapping-inhibit and
initial-any-policy-inhibit all false. The sub-cases PKITS runs with other
settings (for example 4.8.1.2-4.8.1.4, 4.8.2.2, 4.8.6.3, 4.10.1.2,
4.12.3.2) are in :data:`SETTINGS_CASES` and run with the verifier's
``initial_*`` keyword arguments. The twenty section-4.8/4.12 paths
whose file name carries no Valid/Invalid prefix (their outcome depends on
the settings) are run with the default-settings outcome from PKITS.pdf, in
:data:`DEFAULT_SETTINGS_OUTCOME`.

Every case keymgmt currently gets wrong is in :data:`EXPECTED_FAILURES`
with the reason, marked ``xfail(strict=True)``: a fix shows up as an
unexpected pass and the entry must go. Cases in :data:`INVALID_ACCEPTED`
are the dangerous kind: an invalid path accepted.
"""

from __future__ import annotations

import collections
import datetime as _dt
import os
import re
import warnings
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from keymgmt.errors import CertificateRevokedError, CertificateVerificationError
from keymgmt.pki import CertificateVerifier, Purpose, RevocationPolicy
from keymgmt.pki._policy import PolicyInputs, check_policies

try:
    import cryptography_vectors  # noqa: F401 - the data package
except ImportError:
    if os.environ.get("CI"):
        raise  # the conformance suite must run in CI: install the 'conformance' extra
    pytest.skip(
        "NIST PKITS data not installed (pip install 'keymgmt[conformance]', "
        "i.e. cryptography-vectors)",
        allow_module_level=True,
    )

DATA = Path(str(resources.files("cryptography_vectors"))) / "x509" / "PKITS_data"
AT = _dt.datetime(2020, 1, 1, tzinfo=_dt.UTC)
ANCHOR = "TrustAnchorRootCertificate.crt"

# Section of PKITS.pdf from the test name; first match wins, so the more
# specific names come first (a "BadCRLSignature" case is revocation, 4.4).
_SECTIONS: tuple[tuple[str, str], ...] = (
    ("4.15", r"deltaCRL"),
    ("4.14", r"(?i:distributionPoint)|IDP|onlyContains|onlySomeReasons|cRLIssuer"),
    ("4.16", r"CertificateExtension"),
    ("4.13", r"nameConstraints"),
    ("4.12", r"inhibitAnyPolicy"),
    ("4.11", r"inhibitPolicyMapping"),
    ("4.10", r"PolicyMapping|MappingFromanyPolicy|MappingToanyPolicy"),
    ("4.9", r"requireExplicitPolicy"),
    ("4.8", r"Polic|UserNoticeQualifier|CPSPointerQualifier"),
    ("4.7", r"keyUsage"),
    ("4.6", r"basicConstraints|cAFalse|pathLenConstraint"),
    ("4.5", r"BasicSelfIssued"),
    ("4.4", r"CRL|Revoked|SerialNumber"),
    ("4.3", r"NameChaining|NameUIDs|AttributeTypes|UTF8String"),
    ("4.2", r"notBefore|notAfter"),
    ("4.1", r"Signature|DSA|CertificatePath"),
)

SECTION_TITLES = {
    "4.1": "Signature verification",
    "4.2": "Validity periods",
    "4.3": "Verifying name chaining",
    "4.4": "Basic certificate revocation",
    "4.5": "Self-issued certificates",
    "4.6": "Basic constraints",
    "4.7": "Key usage",
    "4.8": "Certificate policies",
    "4.9": "Require explicit policy",
    "4.10": "Policy mappings",
    "4.11": "Inhibit policy mapping",
    "4.12": "Inhibit any policy",
    "4.13": "Name constraints",
    "4.14": "Distribution points",
    "4.15": "Delta CRLs",
    "4.16": "Private certificate extensions",
}

#: Outcome under the default settings of the paths named without a prefix
#: (PKITS.pdf sections 4.8 and 4.12): True = valid.
DEFAULT_SETTINGS_OUTCOME: dict[str, bool] = {
    "AllCertificatesNoPoliciesTest2": True,  # 4.8.2.1
    "DifferentPoliciesTest3": True,  # 4.8.3.1
    "DifferentPoliciesTest4": False,  # 4.8.4: empty valid_policy_tree, explicit policy required
    "DifferentPoliciesTest5": False,  # 4.8.5
    "OverlappingPoliciesTest6": True,  # 4.8.6.1
    "DifferentPoliciesTest7": False,  # 4.8.7
    "DifferentPoliciesTest8": False,  # 4.8.8
    "DifferentPoliciesTest9": False,  # 4.8.9
    "AllCertificatesSamePoliciesTest10": True,  # 4.8.10.1
    "AllCertificatesanyPolicyTest11": True,  # 4.8.11.1
    "DifferentPoliciesTest12": False,  # 4.8.12
    "AllCertificatesSamePoliciesTest13": True,  # 4.8.13
    "AnyPolicyTest14": True,  # 4.8.14
    "UserNoticeQualifierTest15": True,  # 4.8.15
    "UserNoticeQualifierTest16": True,  # 4.8.16
    "UserNoticeQualifierTest17": True,  # 4.8.17
    "UserNoticeQualifierTest18": True,  # 4.8.18
    "UserNoticeQualifierTest19": True,  # 4.8.19
    "CPSPointerQualifierTest20": True,  # 4.8.20
    "inhibitAnyPolicyTest3": True,  # 4.12.3.1
}

_P1, _P2, _P3, _P6 = (f"2.16.840.1.101.3.2.1.48.{i}" for i in (1, 2, 3, 6))


class SettingsCase(NamedTuple):
    """A PKITS sub-case run with initial policy inputs other than the defaults."""

    pkits_id: str
    name: str
    valid: bool
    policy_set: tuple[str, ...] | None = None  # None: {anyPolicy}
    explicit: bool = False
    mapping_inhibit: bool = False
    any_inhibit: bool = False

    def inputs(self) -> dict[str, object]:
        """The keyword arguments of ``CertificateVerifier.verify`` for this sub-case."""
        return {
            "initial_policy_set": self.policy_set,
            "initial_explicit_policy": self.explicit,
            "initial_policy_mapping_inhibit": self.mapping_inhibit,
            "initial_any_policy_inhibit": self.any_inhibit,
        }


#: PKITS sub-cases run with other initial inputs (PKITS.pdf 4.8, 4.10, 4.12;
#: the settings as PKITS.pdf gives them: policy set, initial-explicit-policy,
#: initial-policy-mapping-inhibit, initial-any-policy-inhibit).
SETTINGS_CASES: tuple[SettingsCase, ...] = (
    SettingsCase("4.8.1.1", "ValidCertificatePathTest1", True, explicit=True),
    SettingsCase("4.8.1.2", "ValidCertificatePathTest1", True, (_P1,), explicit=True),
    SettingsCase("4.8.1.3", "ValidCertificatePathTest1", False, (_P2,), explicit=True),
    SettingsCase("4.8.1.4", "ValidCertificatePathTest1", True, (_P1, _P2), explicit=True),
    SettingsCase("4.8.2.2", "AllCertificatesNoPoliciesTest2", False, explicit=True),
    SettingsCase("4.8.3.2", "DifferentPoliciesTest3", False, explicit=True),
    SettingsCase("4.8.3.3", "DifferentPoliciesTest3", False, (_P1, _P2), explicit=True),
    SettingsCase("4.8.6.2", "OverlappingPoliciesTest6", True, (_P1,)),
    SettingsCase("4.8.6.3", "OverlappingPoliciesTest6", False, (_P2,)),
    SettingsCase("4.8.10.2", "AllCertificatesSamePoliciesTest10", True, (_P1,)),
    SettingsCase("4.8.10.3", "AllCertificatesSamePoliciesTest10", True, (_P2,)),
    SettingsCase("4.8.11.2", "AllCertificatesanyPolicyTest11", True, (_P1,)),
    SettingsCase("4.8.13.1", "AllCertificatesSamePoliciesTest13", True, (_P1,)),
    SettingsCase("4.8.13.2", "AllCertificatesSamePoliciesTest13", True, (_P2,)),
    SettingsCase("4.8.13.3", "AllCertificatesSamePoliciesTest13", True, (_P3,)),
    SettingsCase("4.8.14.1", "AnyPolicyTest14", True, (_P1,)),
    SettingsCase("4.8.14.2", "AnyPolicyTest14", False, (_P2,), explicit=True),
    SettingsCase("4.8.18.1", "UserNoticeQualifierTest18", True, (_P1,)),
    SettingsCase("4.8.18.2", "UserNoticeQualifierTest18", True, (_P2,)),
    SettingsCase("4.10.1.1", "ValidPolicyMappingTest1", True, (_P1,)),
    SettingsCase("4.10.1.2", "ValidPolicyMappingTest1", False, (_P2,)),
    SettingsCase("4.10.1.3", "ValidPolicyMappingTest1", False, mapping_inhibit=True),
    SettingsCase("4.10.2.2", "InvalidPolicyMappingTest2", False, mapping_inhibit=True),
    SettingsCase("4.10.3.1", "ValidPolicyMappingTest3", False, (_P1,)),
    SettingsCase("4.10.3.2", "ValidPolicyMappingTest3", True, (_P2,)),
    SettingsCase("4.10.5.1", "ValidPolicyMappingTest5", True, (_P1,)),
    SettingsCase("4.10.5.2", "ValidPolicyMappingTest5", False, (_P6,)),
    SettingsCase("4.10.6.1", "ValidPolicyMappingTest6", True, (_P1,)),
    SettingsCase("4.10.6.2", "ValidPolicyMappingTest6", False, (_P6,)),
    SettingsCase("4.10.12.1", "ValidPolicyMappingTest12", True, (_P1,)),
    SettingsCase("4.10.12.2", "ValidPolicyMappingTest12", True, (_P2,)),
    SettingsCase("4.12.3.2", "inhibitAnyPolicyTest3", False, any_inhibit=True),
)

_DSA = (
    "DSA is outside keymgmt's algorithm policy (cryptography's web PKI policy, which the "
    "strict RFC 5280 validator applies too, so neither engine accepts what the other refuses "
    "on algorithm grounds)"
)

#: Cases keymgmt gets wrong today, with the reason. Each is xfail(strict).
EXPECTED_FAILURES: dict[str, str] = {
    # 4.1
    "ValidDSASignaturesTest4": _DSA,
    "ValidDSAParameterInheritanceTest5": (
        _DSA + "; cryptography also cannot load a DSA key whose parameters are inherited"
    ),
    # 4.14
    "ValidcRLIssuerTest30": (
        "the cRLIssuer's own certificate is covered only by the indirect CRL it signs itself; "
        "keymgmt does not let a CRL vouch for its own signer (deliberate: a compromised signer "
        "could then hide its own revocation when the issuer's CRL is withheld), so the status "
        "is unknown and REQUIRE refuses (fail closed)"
    ),
}


class Case(NamedTuple):
    """One PKITS path."""

    name: str
    section: str
    number: int
    valid: bool

    @property
    def pkits_id(self) -> str:
        """The test's number in PKITS.pdf (4.8.1 is also 4.1.1: run once, as 4.1.1)."""
        return f"{self.section}.{self.number}"


def section_of(name: str) -> str:
    """The PKITS.pdf section a test belongs to, from its name."""
    for section, pattern in _SECTIONS:
        if re.search(pattern, name):
            return section
    raise AssertionError(f"no PKITS section for {name}")


def expected_valid(name: str) -> bool:
    """Whether the path is valid under PKITS's default settings."""
    if name.startswith("Valid"):
        return True
    if name.startswith("Invalid"):
        return False
    return DEFAULT_SETTINGS_OUTCOME[name]


def _cases() -> Iterator[Case]:
    for path in sorted((DATA / "certs").glob("*EE.crt")):
        name = path.name.removesuffix("EE.crt")
        number = int(re.findall(r"Test(\d+)$", name)[0])
        yield Case(name, section_of(name), number, expected_valid(name))


CASES = sorted(_cases(), key=lambda c: (*map(int, c.section.split(".")), c.number))

#: The dangerous expected failures: invalid paths keymgmt accepts.
INVALID_ACCEPTED = sorted(c.name for c in CASES if not c.valid and c.name in EXPECTED_FAILURES)


def _load_cert(path: Path) -> x509.Certificate:
    with warnings.catch_warnings():
        # PKITS 4.4.14/15 carry a negative serial number on purpose.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_der_x509_certificate(path.read_bytes())


class Suite(NamedTuple):
    """The parsed suite: one verifier over the whole certificate pool, all CRLs."""

    verifier: CertificateVerifier
    crls: tuple[x509.CertificateRevocationList, ...]
    unparseable: tuple[str, ...]


@pytest.fixture(scope="module")
def suite() -> Suite:
    """Parse every certificate and CRL once; one verifier for all cases."""
    anchor = _load_cert(DATA / "certs" / ANCHOR)
    pool = []
    unparseable = []
    for path in sorted((DATA / "certs").glob("*.crt")):
        if path.name == ANCHOR or path.name.endswith("EE.crt"):
            continue
        try:
            pool.append(_load_cert(path))
        except ValueError:
            unparseable.append(path.name)
    crls = tuple(x509.load_der_x509_crl(p.read_bytes()) for p in sorted((DATA / "crls").glob("*")))
    verifier = CertificateVerifier(
        trust_anchors=[anchor], intermediates=pool, policy=RevocationPolicy.REQUIRE
    )
    return Suite(verifier, crls, tuple(unparseable))


def _accepts(suite: Suite, name: str, **inputs: Any) -> bool:
    cert = _load_cert(DATA / "certs" / f"{name}EE.crt")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            suite.verifier.verify(cert, crls=suite.crls, at=AT, purpose=Purpose.ANY, **inputs)
    except (CertificateVerificationError, CertificateRevokedError):
        return False
    return True


def _param(case: Case) -> object:
    marks = []
    if case.name in EXPECTED_FAILURES:
        marks.append(pytest.mark.xfail(strict=True, reason=EXPECTED_FAILURES[case.name]))
    return pytest.param(case, id=f"{case.pkits_id}-{case.name}", marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_pkits_path(suite: Suite, case: Case) -> None:
    """The verifier's answer for one PKITS path is PKITS's expected outcome."""
    assert _accepts(suite, case.name) is case.valid, (
        f"PKITS {case.pkits_id} {case.name}: expected "
        f"{'valid' if case.valid else 'invalid'} under the default settings"
    )


def _settings_param(case: SettingsCase) -> object:
    # A sub-case runs the same path as its default-settings case: when that
    # path is refused for a reason other than policies, a valid sub-case is
    # refused for the same reason.
    marks = []
    if case.valid and case.name in EXPECTED_FAILURES:
        marks.append(pytest.mark.xfail(strict=True, reason=EXPECTED_FAILURES[case.name]))
    return pytest.param(case, id=f"{case.pkits_id}-{case.name}", marks=marks)


@pytest.mark.parametrize("case", [_settings_param(c) for c in SETTINGS_CASES])
def test_pkits_path_with_initial_policy_inputs(suite: Suite, case: SettingsCase) -> None:
    """With PKITS's other initial settings, the verifier gives PKITS's outcome."""
    assert _accepts(suite, case.name, **case.inputs()) is case.valid, (
        f"PKITS {case.pkits_id} {case.name} with {case.inputs()}: expected "
        f"{'valid' if case.valid else 'invalid'}"
    )


def test_every_expected_failure_names_a_pkits_case() -> None:
    """EXPECTED_FAILURES and DEFAULT_SETTINGS_OUTCOME hold no stale names."""
    names = {c.name for c in CASES}
    assert set(EXPECTED_FAILURES) <= names
    assert set(DEFAULT_SETTINGS_OUTCOME) <= names
    assert {c.name for c in SETTINGS_CASES} <= names
    assert len(CASES) == 223
    unprefixed = {n for n in names if not n.startswith(("Valid", "Invalid"))}
    assert unprefixed == set(DEFAULT_SETTINGS_OUTCOME)


def test_pkits_summary(suite: Suite, capsys: pytest.CaptureFixture[str]) -> None:
    """Print per-section counts: passed, expected failures, invalid paths accepted."""
    passed: collections.Counter[str] = collections.Counter()
    failed: collections.Counter[str] = collections.Counter()
    accepted_invalid: collections.Counter[str] = collections.Counter()
    for case in CASES:
        if case.name in EXPECTED_FAILURES:
            failed[case.section] += 1
            accepted_invalid[case.section] += not case.valid
        else:
            passed[case.section] += 1
    lines = [
        f"PKITS: {sum(passed.values())} passed, {sum(failed.values())} expected failures "
        f"({len(INVALID_ACCEPTED)} of them invalid paths accepted) of {len(CASES)} paths; "
        f"{len(SETTINGS_CASES)} sub-cases with other initial policy inputs run separately"
    ]
    for section in SECTION_TITLES:
        lines.append(
            f"  {section:<5} {SECTION_TITLES[section]:<32} {passed[section]:>3} passed "
            f"{failed[section]:>3} expected failures ({accepted_invalid[section]} invalid accepted)"
        )
    if suite.unparseable:
        lines.append(f"  certificates cryptography cannot parse: {', '.join(suite.unparseable)}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert sum(passed.values()) + sum(failed.values()) == len(CASES)


# -- the policy engine alone -------------------------------------------------------
#
# These cases run keymgmt.pki._policy.check_policies directly over each PKITS
# policy path (built here by issuer name and signature), so the policy engine
# itself is measured on every policy case, mappings included, independently
# of which path engine verify() uses.

POLICY_SECTIONS = ("4.8", "4.9", "4.10", "4.11", "4.12")

#: Policy-engine cases that fail today, with the reason (xfail strict).
POLICY_ENGINE_FAILURES: dict[str, str] = {}


def _path_to_anchor(
    leaf: x509.Certificate, pool: list[x509.Certificate], anchor: x509.Certificate
) -> list[x509.Certificate]:
    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        top = path[-1]
        for candidate in [anchor, *pool]:
            if candidate in path or candidate.subject != top.issuer:
                continue
            try:
                top.verify_directly_issued_by(candidate)
            except Exception:  # not this issuer
                continue
            if candidate is anchor:
                return [*path, anchor]
            found = extend([*path, candidate])
            if found is not None:
                return found
        return None

    found = extend([leaf])
    assert found is not None, "no path to the PKITS trust anchor"
    return found


@pytest.fixture(scope="module")
def certificates() -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The trust anchor and every parseable CA certificate of the suite."""
    anchor = _load_cert(DATA / "certs" / ANCHOR)
    pool = []
    for path in sorted((DATA / "certs").glob("*.crt")):
        if path.name == ANCHOR or path.name.endswith("EE.crt"):
            continue
        try:
            pool.append(_load_cert(path))
        except ValueError:
            continue
    return anchor, pool


def _policy_param(case: Case) -> object:
    marks = []
    if case.name in POLICY_ENGINE_FAILURES:
        marks.append(pytest.mark.xfail(strict=True, reason=POLICY_ENGINE_FAILURES[case.name]))
    return pytest.param(case, id=f"{case.pkits_id}-{case.name}", marks=marks)


@pytest.mark.parametrize("case", [_policy_param(c) for c in CASES if c.section in POLICY_SECTIONS])
def test_pkits_policy_engine(
    certificates: tuple[x509.Certificate, list[x509.Certificate]], case: Case
) -> None:
    """check_policies alone gives PKITS's outcome on each policy path (default settings)."""
    anchor, pool = certificates
    chain = _path_to_anchor(_load_cert(DATA / "certs" / f"{case.name}EE.crt"), pool, anchor)
    try:
        check_policies(chain)
    except CertificateVerificationError:
        accepted = False
    else:
        accepted = True
    assert accepted is case.valid, f"path: {[c.subject.rfc4514_string() for c in chain]}"


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=f"{c.pkits_id}-{c.name}") for c in SETTINGS_CASES]
)
def test_pkits_policy_engine_with_initial_inputs(
    certificates: tuple[x509.Certificate, list[x509.Certificate]], case: SettingsCase
) -> None:
    """check_policies alone gives PKITS's outcome with the sub-case's initial inputs."""
    anchor, pool = certificates
    chain = _path_to_anchor(_load_cert(DATA / "certs" / f"{case.name}EE.crt"), pool, anchor)
    inputs = PolicyInputs.of(**case.inputs())  # type: ignore[arg-type]
    try:
        check_policies(chain, inputs)
    except CertificateVerificationError:
        accepted = False
    else:
        accepted = True
    assert accepted is case.valid, f"path: {[c.subject.rfc4514_string() for c in chain]}"


# -- why a path is refused ------------------------------------------------------------

REFUSAL_REASONS = {
    "InvalidUnknownCriticalCertificateExtensionTest2": "unsupported-critical-extension",
    "InvalidRevokedEETest3": "revoked",
    "InvalidMissingCRLTest1": "revocation-unknown",
    "InvalidEEnotAfterDateTest6": "expired",
    "InvalidCASignatureTest2": "bad-signature",
    "InvalidpathLenConstraintTest9": "path-length",
    "InvalidDNSnameConstraintsTest33": "name-constraints",
    "InvalidrequireExplicitPolicyTest3": "invalid-path",
    "DifferentPoliciesTest4": "invalid-path",
}


@pytest.mark.parametrize("name", sorted(REFUSAL_REASONS))
def test_pkits_refusal_names_the_reason(suite: Suite, name: str) -> None:
    """A refused PKITS path says why (the error's ``reason``), not a neighbouring reason."""
    cert = _load_cert(DATA / "certs" / f"{name}EE.crt")
    with pytest.raises((CertificateVerificationError, CertificateRevokedError)) as caught:
        suite.verifier.verify(cert, crls=suite.crls, at=AT, purpose=Purpose.ANY)
    error = caught.value
    reason = getattr(error, "failure", None) or getattr(error, "reason", None)
    assert str(reason) == REFUSAL_REASONS[name], str(error)
