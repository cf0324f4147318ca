"""The KDC's authorization policy, as data.

A :class:`Policy` is a tuple of :class:`AccessRule` values. A rule names the
principals it applies to (a name or a glob pattern), the named keys they may
obtain and the peers they may share session keys with (names or glob
patterns, matched case-sensitively with :func:`fnmatch.fnmatchcase`:
``*``, ``?``, ``[seq]``). Anything no rule allows is denied. The policy is
stored as one sealed JSON record and round-trips through
:meth:`Policy.to_json` / :meth:`Policy.from_json`, so it can be reviewed,
diffed and loaded from a file.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from keymgmt.errors import InvalidArgumentError, MalformedInputError

__all__ = ["AccessRule", "Policy"]


def _patterns(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item or not item.isprintable() or len(item) > 255:
            raise InvalidArgumentError(
                f"a policy pattern must be 1..255 printable characters, got {item!r}"
            )
        if item not in out:
            out.append(item)
    return tuple(out)


def _one_pattern(value: str) -> str:
    return _patterns((value,))[0]


def _matches(patterns: tuple[str, ...], name: str) -> bool:
    return any(p == name or fnmatch.fnmatchcase(name, p) for p in patterns)


@attrs.frozen(kw_only=True)
class AccessRule:
    """What the principals matching ``principal`` may do.

    Attributes:
        principal: a principal name or glob pattern.
        keys: named keys (or patterns) they may obtain.
        peers: principals (or patterns) they may get session tickets for.
    """

    principal: str = attrs.field(converter=_one_pattern)
    keys: tuple[str, ...] = attrs.field(default=(), converter=_patterns)
    peers: tuple[str, ...] = attrs.field(default=(), converter=_patterns)

    def applies_to(self, principal: str) -> bool:
        """Whether this rule speaks for ``principal``."""
        return _matches((self.principal,), principal)

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {"principal": self.principal, "keys": list(self.keys), "peers": list(self.peers)}


#: The most policy decisions one Policy remembers.
_MAX_DECISIONS: Final = 4096


def _rules(value: Iterable[AccessRule]) -> tuple[AccessRule, ...]:
    out = tuple(value)
    if not all(isinstance(r, AccessRule) for r in out):
        raise InvalidArgumentError("a policy is a sequence of AccessRule")
    return out


@attrs.frozen
class Policy:
    """Default-deny authorization: which principal may obtain which key, with which peer."""

    rules: tuple[AccessRule, ...] = attrs.field(default=(), converter=_rules)
    # Decisions already made by this (immutable) policy, so a request does
    # not match glob patterns again; bounded, dropped whole when full.
    _decisions: dict[tuple[bool, str, str], bool] = attrs.field(
        factory=dict, init=False, repr=False, eq=False
    )

    def allows_key(self, principal: str, key_name: str) -> bool:
        """Whether some rule lets ``principal`` obtain ``key_name``."""
        found = self._decisions.get((True, principal, key_name))
        if found is None:
            found = any(r.applies_to(principal) and _matches(r.keys, key_name) for r in self.rules)
            self._remember((True, principal, key_name), found)
        return found

    def allows_peer(self, principal: str, peer: str) -> bool:
        """Whether some rule lets ``principal`` share a session key with ``peer``."""
        found = self._decisions.get((False, principal, peer))
        if found is None:
            found = any(r.applies_to(principal) and _matches(r.peers, peer) for r in self.rules)
            self._remember((False, principal, peer), found)
        return found

    def _remember(self, question: tuple[bool, str, str], answer: bool) -> None:
        decisions = self._decisions
        if len(decisions) >= _MAX_DECISIONS:
            decisions.clear()
        decisions[question] = answer

    def for_principal(self, principal: str) -> tuple[AccessRule, ...]:
        """The rules that apply to ``principal``."""
        return tuple(r for r in self.rules if r.applies_to(principal))

    def granting(
        self, principal: str, *, keys: Iterable[str] = (), peers: Iterable[str] = ()
    ) -> Policy:
        """A copy with ``keys`` and ``peers`` added to ``principal``'s own rule."""
        keys, peers = _patterns(keys), _patterns(peers)
        rules = list(self.rules)
        for index, rule in enumerate(rules):
            if rule.principal == principal:
                rules[index] = AccessRule(
                    principal=principal, keys=rule.keys + keys, peers=rule.peers + peers
                )
                return Policy(tuple(rules))
        return Policy((*rules, AccessRule(principal=principal, keys=keys, peers=peers)))

    def withdrawing(
        self, principal: str, *, keys: Iterable[str] = (), peers: Iterable[str] = ()
    ) -> Policy:
        """A copy with ``keys`` and ``peers`` removed from ``principal``'s own rule."""
        drop_keys, drop_peers = set(_patterns(keys)), set(_patterns(peers))
        rules: list[AccessRule] = []
        for rule in self.rules:
            if rule.principal == principal:
                rule = AccessRule(
                    principal=principal,
                    keys=tuple(k for k in rule.keys if k not in drop_keys),
                    peers=tuple(p for p in rule.peers if p not in drop_peers),
                )
                if not rule.keys and not rule.peers:
                    continue
            rules.append(rule)
        return Policy(tuple(rules))

    def without_principal(self, principal: str) -> Policy:
        """A copy without ``principal``'s own rule."""
        return Policy(tuple(r for r in self.rules if r.principal != principal))

    def to_json(self) -> dict[str, Any]:
        """The stored (and reviewable) form."""
        return {"version": 1, "rules": [r.to_json() for r in self.rules]}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Policy:
        """Inverse of :meth:`to_json`.

        Raises:
            MalformedInputError: not a version-1 policy document.
            InvalidArgumentError: a bad pattern.
        """
        try:
            if value.get("version") != 1:
                raise MalformedInputError("unsupported policy document version")
            rules = tuple(
                AccessRule(
                    principal=_text(r["principal"], "principal"),
                    keys=_texts(r.get("keys", []), "keys"),
                    peers=_texts(r.get("peers", []), "peers"),
                )
                for r in value["rules"]
            )
        except (KeyError, TypeError, AttributeError):
            raise MalformedInputError("not a KDC policy document") from None
        return cls(rules)


def _text(value: object, what: str) -> str:
    """A policy document's string (a number or a list is refused, not converted)."""
    if not isinstance(value, str):
        raise MalformedInputError(f"a policy rule's {what} must be a string")
    return value


def _texts(value: object, what: str) -> tuple[str, ...]:
    """A policy document's list of strings (a bare string is not split into characters)."""
    if not isinstance(value, list):
        raise MalformedInputError(f"a policy rule's {what} must be a list of strings")
    return tuple(_text(item, what) for item in value)
