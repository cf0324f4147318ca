"""Certificate policy processing (RFC 5280 6.1.2-6.1.5) over a built path.

Both path engines build and check the path; this module then runs the
policy part of RFC 5280's algorithm over it, with the default initial
inputs (user-initial-policy-set = {anyPolicy}; initial-explicit-policy,
initial-policy-mapping-inhibit and initial-any-policy-inhibit all false,
PKITS's "default settings"). Under those inputs a path fails only when a
certificate's policy constraints require an explicit policy
(``requireExplicitPolicy``) and the valid policy tree is empty by then, or
a CA maps to or from anyPolicy.

The tree keeps, per depth, nodes of (valid policy, expected policy set,
parent); qualifiers are not kept (nothing here uses them).
``cryptography`` does not parse the policyMappings extension, so its DER is
read here (a sequence of OID pairs).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from cryptography import x509
from cryptography.x509.oid import CertificatePoliciesOID, ExtensionOID

from keymgmt.errors import CertificateVerificationError
from keymgmt.pki._failure import VerificationFailure, refusal

__all__ = ["check_policies", "parse_policy_mappings"]

_ANY = CertificatePoliciesOID.ANY_POLICY
_DECISIVE = frozenset({ExtensionOID.POLICY_CONSTRAINTS, ExtensionOID.POLICY_MAPPINGS})


@attrs.define(eq=False)
class _Node:
    policy: x509.ObjectIdentifier
    expected: set[x509.ObjectIdentifier]
    parent: _Node | None
    children: int = 0


def _ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_oid(oid)


def _value(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> object:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _tlv(data: bytes, at: int) -> tuple[int, bytes, int]:
    """(tag, contents, next offset) of the DER element at ``at``.

    Raises:
        ValueError: truncated or malformed.
    """
    if at + 2 > len(data):
        raise ValueError("truncated DER")
    tag = data[at]
    length = data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or at + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    if at + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[at : at + length], at + length


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
    tag, body, end = _tlv(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("policyMappings is not a sequence")
    pairs = []
    at = 0
    while at < len(body):
        tag, pair, at = _tlv(body, at)
        first_tag, first, middle = _tlv(pair, 0)
        second_tag, second, end = _tlv(pair, middle)
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


def check_policies(chain: Sequence[x509.Certificate]) -> None:
    """Run RFC 5280 policy processing (default initial inputs) over ``chain``.

    Args:
        chain: the path, leaf first, trust anchor last.

    Raises:
        CertificateVerificationError: ``invalid-path``: an explicit policy is
            required and no policy is acceptable, or a mapping involves
            anyPolicy or cannot be read.
    """
    # Under the default initial inputs only a policyConstraints or a
    # policyMappings extension can make a path fail: without one (every path
    # keymgmt issues) there is nothing to compute.
    if not any(ext.oid in _DECISIVE for cert in chain[:-1] for ext in cert.extensions):
        return
    certs = list(reversed(chain[:-1]))  # from the anchor's subject down to the leaf
    n = len(certs)
    levels: list[list[_Node]] | None = [[_Node(_ANY, {_ANY}, None)]]
    explicit = inhibit_any = mapping = n + 1
    for i, cert in enumerate(certs, start=1):
        self_issued = cert.issuer == cert.subject
        policies = _value(cert, x509.CertificatePolicies)
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
        constraints = _value(cert, x509.PolicyConstraints)
        if isinstance(constraints, x509.PolicyConstraints):
            if constraints.require_explicit_policy is not None:
                explicit = min(explicit, constraints.require_explicit_policy)
            if constraints.inhibit_policy_mapping is not None:
                mapping = min(mapping, constraints.inhibit_policy_mapping)
        inhibit = _value(cert, x509.InhibitAnyPolicy)
        if isinstance(inhibit, x509.InhibitAnyPolicy):
            inhibit_any = min(inhibit_any, inhibit.skip_certs)
    # Wrap-up (6.1.5): the leaf's own requireExplicitPolicy of 0 counts.
    explicit = max(explicit - 1, 0)
    if certs:
        constraints = _value(certs[-1], x509.PolicyConstraints)
        if (
            isinstance(constraints, x509.PolicyConstraints)
            and constraints.require_explicit_policy == 0
        ):
            explicit = 0
    if explicit <= 0 and levels is None and certs:
        raise _refused(certs[-1])


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
