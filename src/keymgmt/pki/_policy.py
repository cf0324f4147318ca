"""Certificate policy processing (RFC 5280 6.1.2-6.1.6) over a built path.

Both path engines build and check the path; this module then runs the
policy part of RFC 5280's algorithm over it, with the caller's initial
inputs (:class:`PolicyInputs`, RFC 5280 6.1.1 c and e-g). Their defaults
are RFC 5280's and PKITS's "default settings": user-initial-policy-set =
{anyPolicy}; initial-explicit-policy, initial-policy-mapping-inhibit and
initial-any-policy-inhibit all false. Under those a path fails only when a
certificate's policy constraints require an explicit policy
(``requireExplicitPolicy``) and the valid policy tree is empty by then, or
a CA maps to or from anyPolicy. The result is the user-constrained policy
set (6.1.6): the policies of the path that the caller accepts.

The tree keeps, per depth, nodes of (valid policy, expected policy set,
parent); qualifiers are not kept (nothing here uses them).
``cryptography`` does not parse the policyMappings extension, so its DER is
read here (a sequence of OID pairs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import attrs
from cryptography import x509
from cryptography.x509.oid import CertificatePoliciesOID, ExtensionOID

from keymgmt.errors import CertificateVerificationError, InvalidArgumentError
from keymgmt.pki._failure import VerificationFailure, refusal
from keymgmt.pki._pathval import extension_value
from keymgmt.pki._signer import der_read

__all__ = ["ANY_POLICY", "PolicyInputs", "check_policies", "parse_policy_mappings", "policy_oids"]

_ANY = CertificatePoliciesOID.ANY_POLICY
#: The anyPolicy identifier (2.5.29.32.0): the default initial policy set.
ANY_POLICY: x509.ObjectIdentifier = _ANY
# Extensions without which, under the default inputs, the outcome is known
# without computing: a valid path whose user-constrained policy set is empty.
_POLICY_EXTENSIONS = frozenset(
    {
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.POLICY_CONSTRAINTS,
        ExtensionOID.POLICY_MAPPINGS,
        ExtensionOID.INHIBIT_ANY_POLICY,
    }
)
_OID_TEXT = re.compile(r"[0-2](\.(0|[1-9][0-9]{0,19}))+")


def policy_oids(
    policies: Iterable[x509.ObjectIdentifier | str],
) -> frozenset[x509.ObjectIdentifier]:
    """The policy identifiers ``policies`` name (objects or dotted strings).

    Args:
        policies: one or more policy OIDs, e.g. ``"2.16.840.1.101.3.2.1.48.1"``
            or ``x509.ObjectIdentifier(...)``; anyPolicy is ``"2.5.29.32.0"``.

    Returns:
        the set of identifiers.

    Raises:
        InvalidArgumentError: the set is empty, or an entry is neither an
            ObjectIdentifier nor a dotted OID string (first arc 0-2, second
            arc at most 39 under 0 and 1).
    """
    if isinstance(policies, str | x509.ObjectIdentifier):
        policies = [policies]
    given: object = policies
    if not isinstance(given, Iterable):
        raise InvalidArgumentError(
            f"the policy set must be OIDs or dotted strings, got {type(given).__name__}"
        )
    found: set[x509.ObjectIdentifier] = set()
    for policy in policies:
        if isinstance(policy, x509.ObjectIdentifier):
            found.add(policy)
            continue
        if not isinstance(policy, str) or not _OID_TEXT.fullmatch(policy):
            raise InvalidArgumentError(f"not a policy OID (dotted form expected): {policy!r}")
        first, second = (int(arc) for arc in policy.split(".")[:2])
        if first < 2 and second > 39:
            raise InvalidArgumentError(f"not a policy OID (second arc above 39): {policy!r}")
        found.add(x509.ObjectIdentifier(policy))
    if not found:
        raise InvalidArgumentError("the initial policy set needs at least one policy")
    return frozenset(found)


@attrs.frozen(kw_only=True)
class PolicyInputs:
    """RFC 5280's initial policy inputs (6.1.1 c, e, f, g), defaults as RFC 5280 and PKITS.

    Attributes:
        initial_policy_set: user-initial-policy-set: the policies the caller
            accepts (in the trust anchor's policy domain); ``{anyPolicy}``
            accepts any.
        initial_explicit_policy: the path must be valid for at least one
            policy of the set (else a valid path may end with none).
        initial_policy_mapping_inhibit: policy mapping is not allowed anywhere
            in the path.
        initial_any_policy_inhibit: anyPolicy in a certificate is not
            processed (it matches nothing) from the start.
    """

    initial_policy_set: frozenset[x509.ObjectIdentifier] = frozenset({_ANY})
    initial_explicit_policy: bool = False
    initial_policy_mapping_inhibit: bool = False
    initial_any_policy_inhibit: bool = False

    @classmethod
    def of(
        cls,
        *,
        initial_policy_set: Iterable[x509.ObjectIdentifier | str] | None = None,
        initial_explicit_policy: bool = False,
        initial_policy_mapping_inhibit: bool = False,
        initial_any_policy_inhibit: bool = False,
    ) -> PolicyInputs:
        """Inputs from keyword arguments, checked (``None`` set: ``{anyPolicy}``).

        Raises:
            InvalidArgumentError: a malformed or empty policy set, or a flag
                that is not a bool.
        """
        if (
            initial_policy_set is None
            and initial_explicit_policy is False
            and initial_policy_mapping_inhibit is False
            and initial_any_policy_inhibit is False
        ):
            return _DEFAULT  # the common case, without building anything
        flags = {
            "initial_explicit_policy": initial_explicit_policy,
            "initial_policy_mapping_inhibit": initial_policy_mapping_inhibit,
            "initial_any_policy_inhibit": initial_any_policy_inhibit,
        }
        for flag, value in flags.items():
            if not isinstance(value, bool):
                raise InvalidArgumentError(f"{flag} must be True or False, not {value!r}")
        policies = (
            frozenset({_ANY}) if initial_policy_set is None else policy_oids(initial_policy_set)
        )
        return cls(
            initial_policy_set=policies,
            initial_explicit_policy=initial_explicit_policy,
            initial_policy_mapping_inhibit=initial_policy_mapping_inhibit,
            initial_any_policy_inhibit=initial_any_policy_inhibit,
        )

    @property
    def is_default(self) -> bool:
        """Whether these are RFC 5280's default inputs."""
        return self == _DEFAULT


_DEFAULT: PolicyInputs = PolicyInputs()


@attrs.define(eq=False)
class _Node:
    policy: x509.ObjectIdentifier
    expected: set[x509.ObjectIdentifier]
    parent: _Node | None
    children: int = 0


def _ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_oid(oid)


def _oid(contents: bytes) -> x509.ObjectIdentifier:
    arcs: list[int] = []
    value = 0
    for byte in contents:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs or value or (contents and contents[-1] & 0x80):
        raise ValueError("bad OID")
    first = min(arcs[0] // 40, 2)
    return x509.ObjectIdentifier(".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]])))


def _mappings(cert: x509.Certificate) -> list[tuple[x509.ObjectIdentifier, x509.ObjectIdentifier]]:
    try:
        ext = _ext(cert, ExtensionOID.POLICY_MAPPINGS)
    except x509.ExtensionNotFound:
        return []
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):  # pragma: no cover - future parsing
        raise ValueError("unexpected policyMappings value")
    return parse_policy_mappings(value.value)


def parse_policy_mappings(
    der: bytes,
) -> list[tuple[x509.ObjectIdentifier, x509.ObjectIdentifier]]:
    """The (issuerDomainPolicy, subjectDomainPolicy) pairs of a policyMappings value.

    Raises:
        ValueError: not a DER ``SEQUENCE OF SEQUENCE { OID, OID }``.
    """
    tag, body, end = der_read(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("policyMappings is not a sequence")
    pairs = []
    at = 0
    while at < len(body):
        tag, pair, at = der_read(body, at)
        first_tag, first, middle = der_read(pair, 0)
        second_tag, second, end = der_read(pair, middle)
        if tag != 0x30 or first_tag != 0x06 or second_tag != 0x06 or end != len(pair):
            raise ValueError("bad policy mapping")
        pairs.append((_oid(first), _oid(second)))
    return pairs


def _prune(levels: list[list[_Node]]) -> None:
    # Remove childless nodes above the deepest level, bottom up (6.1.3 d.3).
    for depth in range(len(levels) - 2, -1, -1):
        kept = []
        for node in levels[depth]:
            if node.children:
                kept.append(node)
            elif node.parent is not None:
                node.parent.children -= 1
        levels[depth] = kept


def check_policies(
    chain: Sequence[x509.Certificate], inputs: PolicyInputs = _DEFAULT
) -> frozenset[x509.ObjectIdentifier]:
    """Run RFC 5280 policy processing over ``chain`` with the initial ``inputs``.

    Args:
        chain: the path, leaf first, trust anchor last.
        inputs: the initial policy inputs (default: RFC 5280's).

    Returns:
        the user-constrained policy set (6.1.6): the path's valid policies
        that the caller accepts; ``{anyPolicy}`` when any policy is; empty
        when none is (a valid outcome unless an explicit policy is required).

    Raises:
        CertificateVerificationError: ``invalid-path``: an explicit policy is
            required (by a certificate or by ``inputs``) and no acceptable
            policy is left, or a mapping involves anyPolicy or cannot be read.
    """
    default = inputs is _DEFAULT or inputs.is_default
    # Under the default inputs a path none of whose certificates carries a
    # policy extension (every path keymgmt issues) is valid with no policy:
    # there is nothing to compute.
    if default and not any(
        ext.oid in _POLICY_EXTENSIONS for cert in chain[:-1] for ext in cert.extensions
    ):
        return frozenset()
    certs = list(reversed(chain[:-1]))  # from the anchor's subject down to the leaf
    n = len(certs)
    levels: list[list[_Node]] | None = [[_Node(_ANY, {_ANY}, None)]]
    explicit = 0 if inputs.initial_explicit_policy else n + 1
    inhibit_any = 0 if inputs.initial_any_policy_inhibit else n + 1
    mapping = 0 if inputs.initial_policy_mapping_inhibit else n + 1
    for i, cert in enumerate(certs, start=1):
        self_issued = cert.issuer == cert.subject
        policies = extension_value(cert, x509.CertificatePolicies)
        if levels is not None and isinstance(policies, x509.CertificatePolicies):
            ids = [p.policy_identifier for p in policies]
            previous = levels[-1]
            level: list[_Node] = []

            def add(policy: x509.ObjectIdentifier, parent: _Node, into: list[_Node]) -> None:
                parent.children += 1
                into.append(_Node(policy, {policy}, parent))

            for policy in ids:
                if policy == _ANY:
                    continue
                parents = [p for p in previous if policy in p.expected]
                if not parents:
                    parents = [p for p in previous if p.policy == _ANY]
                for parent in parents:
                    add(policy, parent, level)
            if _ANY in ids and (inhibit_any > 0 or (i < n and self_issued)):
                for parent in previous:
                    have = {c.policy for c in level if c.parent is parent}
                    for policy in parent.expected:
                        if policy not in have:
                            add(policy, parent, level)
            levels.append(level)
            _prune(levels)
            if not level:
                levels = None
        elif not isinstance(policies, x509.CertificatePolicies):
            levels = None
        if explicit <= 0 and levels is None:
            raise _refused(cert)
        if i == n:
            break
        try:
            pairs = _mappings(cert)
        except ValueError:
            raise refusal(
                VerificationFailure.INVALID_PATH, "unreadable policy mappings", cert
            ) from None
        if any(_ANY in pair for pair in pairs):
            raise refusal(
                VerificationFailure.INVALID_PATH, "a policy mapping involves anyPolicy", cert
            )
        if pairs and levels is not None:
            _apply_mappings(levels, pairs, mapping > 0)
            if not levels[-1]:
                levels = None
        if not self_issued:
            explicit = max(explicit - 1, 0)
            mapping = max(mapping - 1, 0)
            inhibit_any = max(inhibit_any - 1, 0)
        constraints = extension_value(cert, x509.PolicyConstraints)
        if isinstance(constraints, x509.PolicyConstraints):
            if constraints.require_explicit_policy is not None:
                explicit = min(explicit, constraints.require_explicit_policy)
            if constraints.inhibit_policy_mapping is not None:
                mapping = min(mapping, constraints.inhibit_policy_mapping)
        inhibit = extension_value(cert, x509.InhibitAnyPolicy)
        if isinstance(inhibit, x509.InhibitAnyPolicy):
            inhibit_any = min(inhibit_any, inhibit.skip_certs)
    # Wrap-up (6.1.5): the leaf's own requireExplicitPolicy of 0 counts.
    explicit = max(explicit - 1, 0)
    if certs:
        constraints = extension_value(certs[-1], x509.PolicyConstraints)
        if (
            isinstance(constraints, x509.PolicyConstraints)
            and constraints.require_explicit_policy == 0
        ):
            explicit = 0
    accepted = _intersect(levels, inputs.initial_policy_set)
    if explicit <= 0 and not accepted and certs:
        raise _refused(certs[-1])
    return accepted


def _intersect(
    levels: list[list[_Node]] | None, wanted: frozenset[x509.ObjectIdentifier]
) -> frozenset[x509.ObjectIdentifier]:
    """The valid policy tree cut to the user's policies (6.1.5 g); its leaves' policies."""
    if levels is None or not levels[-1]:
        return frozenset()
    if _ANY in wanted:
        return frozenset(node.policy for node in levels[-1])
    # The valid_policy_node_set: nodes whose parent is an anyPolicy node.
    # Those with a policy the user does not accept go, with their subtrees.
    gone: set[int] = set()
    for level in levels[1:]:
        for node in level:
            parent = node.parent
            if parent is not None and (
                id(parent) in gone
                or (parent.policy == _ANY and node.policy != _ANY and node.policy not in wanted)
            ):
                gone.add(id(node))
    deepest = levels[-1]
    # An anyPolicy leaf stands for every policy the user accepts that no
    # node of the valid_policy_node_set names already.
    named = {
        node.policy
        for level in levels[1:]
        for node in level
        if id(node) not in gone and node.parent is not None and node.parent.policy == _ANY
    }
    extra: list[_Node] = []
    for node in deepest:
        if node.policy == _ANY and id(node) not in gone:
            gone.add(id(node))
            extra.extend(_Node(p, {p}, node.parent) for p in sorted(wanted - named, key=str))
    kept = [[node for node in level if id(node) not in gone] for level in levels]
    kept[-1].extend(extra)
    for level in kept:
        for node in level:
            node.children = 0
    for level in kept[1:]:
        for node in level:
            if node.parent is not None:
                node.parent.children += 1
    _prune(kept)
    return frozenset(node.policy for node in kept[-1])


def _apply_mappings(
    levels: list[list[_Node]],
    pairs: list[tuple[x509.ObjectIdentifier, x509.ObjectIdentifier]],
    allowed: bool,
) -> None:
    level = levels[-1]
    targets: dict[x509.ObjectIdentifier, set[x509.ObjectIdentifier]] = {}
    for issuer_policy, subject_policy in pairs:
        targets.setdefault(issuer_policy, set()).add(subject_policy)
    for issuer_policy, subjects in targets.items():
        matching = [node for node in level if node.policy == issuer_policy]
        if not allowed:
            for node in matching:
                level.remove(node)
                if node.parent is not None:
                    node.parent.children -= 1
            continue
        if matching:
            for node in matching:
                node.expected = set(subjects)
        else:
            for any_node in [node for node in level if node.policy == _ANY]:
                if any_node.parent is not None:
                    any_node.parent.children += 1
                level.append(_Node(issuer_policy, set(subjects), any_node.parent))
    _prune(levels)


def _refused(cert: x509.Certificate) -> CertificateVerificationError:
    return refusal(
        VerificationFailure.INVALID_PATH,
        "no acceptable certificate policy: an explicit policy is required "
        "(requireExplicitPolicy) and the path's policies do not agree",
        cert,
    )
