"""Who may do what through the service: rules over principals, operations and resources.

The principal is the identity in the caller's TLS client certificate (see
:func:`keymgmt.server.principal_of`). A :class:`ServicePolicy` is a list of
:class:`Rule` objects; a request is allowed when some rule names the
principal, the operation and the resource (a key name, a certificate profile
and the names the certificate would carry). Everything else is denied.

Patterns are shell-style (``fnmatch``, case-sensitive): ``app-*`` matches
``app-billing``. In ``names`` patterns ``{principal}`` stands for the caller's
own name, taken literally (a principal ``*.example.com`` matches only
itself), so ``["{principal}"]`` lets a client renew only its own
certificate. A ``sign`` rule's ``attributes`` judges the rest of a CSR's
subject (``{"O": ["Example Corp"], "OU": ["team-*"]}``): every attribute
but the common name must be listed there and match, else the rule does not
allow the request.

The JSON form (``keymgmt serve --policy FILE``)::

    {"rules": [
      {"principals": ["app-*"], "operations": ["encrypt", "decrypt"],
       "keys": ["payments-*"]},
      {"principals": ["app-*"], "operations": ["sign"],
       "profiles": ["tls-client"], "names": ["{principal}"]},
      {"principals": ["*"], "operations": ["kdc"]}
    ],
     "rate_limit": {"rate": 200.0, "burst": 400,
                    "principals": {"batch-*": {"rate": 5.0, "burst": 10}}}}
"""

from __future__ import annotations

import enum
import fnmatch
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from keymgmt.errors import AccessDeniedError, InvalidArgumentError

__all__ = ["Operation", "RateLimit", "Rule", "ServicePolicy"]


class Operation(enum.StrEnum):
    """What a request asks the service to do."""

    ENCRYPT = "encrypt"
    DECRYPT = "decrypt"
    DATAKEY = "datakey"
    REWRAP = "rewrap"
    CREATE_KEY = "create-key"
    READ_KEY = "read-key"
    SIGN = "sign"
    KDC = "kdc"
    REVOKE = "revoke"

    @property
    def on_key(self) -> bool:
        """Whether the operation names a key (and so needs a ``keys`` match)."""
        return self not in (Operation.SIGN, Operation.KDC, Operation.REVOKE)


_DECISIONS_MAX: Final = 65536
#: fnmatch's special characters, escaped in a principal put into a pattern.
_GLOB: Final = re.compile(r"([*?[])")

_RULE_FIELDS: Final = frozenset(
    {"principals", "operations", "keys", "profiles", "names", "subjects", "cas", "attributes"}
)
#: Subject attribute names a policy may spell otherwise than cryptography's
#: ``rfc4514_attribute_name`` does (it writes emailAddress as its dotted OID,
#: and the attributes it has a short name for only by that name).
_ATTRIBUTE_ALIASES: Final = {
    "emailAddress": "1.2.840.113549.1.9.1",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
}
#: The short names ``rfc4514_attribute_name`` writes (CN aside): any other
#: attribute is written as its dotted OID.
_SHORT_NAMES: Final = frozenset({"C", "L", "ST", "STREET", "O", "OU", "UID", "DC"})
_DOTTED_OID: Final = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
_POLICY_FIELDS: Final = frozenset({"rules", "rate_limit"})


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidArgumentError(f"policy: {what} must be a list of non-empty strings")
    return tuple(value)


def _attributes(value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Parse a sign rule's ``attributes``: ``{"O": ["Example Corp"], "OU": ["team-*"]}``.

    Raises:
        InvalidArgumentError: not an object of lists of non-empty strings, or
            it names the common name (which ``names`` judges).
    """
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            "policy: attributes must be an object of subject attribute name to patterns"
        )
    out = []
    for name, patterns in value.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("policy: attribute names must be non-empty strings")
        if name in ("CN", "2.5.4.3"):
            raise InvalidArgumentError(
                "policy: the common name is judged by 'names', not 'attributes'"
            )
        spelled = _ATTRIBUTE_ALIASES.get(name, name)
        # A name no CSR attribute is ever given as ("ou", "serialNumber")
        # would make the rule silently never match: refused here instead.
        if spelled not in _SHORT_NAMES and not _DOTTED_OID.fullmatch(spelled):
            raise InvalidArgumentError(
                f"policy: unknown subject attribute name {name!r}; use "
                f"{', '.join(sorted(_SHORT_NAMES))}, emailAddress or a dotted OID "
                "(such as 2.5.4.5 for serialNumber)"
            )
        out.append((spelled, _strings(patterns, f"attributes {name}")))
    return tuple(sorted(out))


@attrs.frozen(kw_only=True)
class Rule:
    """One grant: these principals may do these operations on these resources.

    Args:
        principals: patterns for the caller's name.
        operations: what the rule allows.
        keys: patterns for key names (for key operations).
        profiles: certificate profiles the caller may ask for (``sign``).
        names: patterns for every name in a CSR (``{principal}`` = the caller).
        subjects: patterns for ``"<kind>:<subject>"`` the caller may revoke
            (``revoke``), e.g. ``"principal:app-*"``.
        cas: patterns for the CAs that may sign for the caller (``sign``);
            empty means any CA of the store.
        attributes: for ``sign``, the subject attributes other than the
            common name a CSR may hold, as ``(name, patterns)`` pairs
            (names as RFC 4514 writes them: ``O``, ``OU``, ``C``, ``L``,
            ``ST``, ``STREET``, ``UID``, ``DC``, ``emailAddress``, else the
            dotted OID; :meth:`from_json` refuses any other name):
            every such attribute of the CSR must be listed and its value
            match a pattern (``{principal}`` = the caller). Empty: a CSR
            whose subject holds anything but common names is refused.
    """

    principals: tuple[str, ...]
    operations: frozenset[Operation]
    keys: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    cas: tuple[str, ...] = ()
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Rule:
        """Parse one rule.

        Raises:
            InvalidArgumentError: unknown fields, unknown operations, bad
                types, or an ``attributes`` name no subject attribute has.
        """
        if not isinstance(value, Mapping):
            raise InvalidArgumentError("policy: each rule must be an object")
        unknown = set(value) - _RULE_FIELDS
        if unknown:
            raise InvalidArgumentError(
                f"policy: unknown rule field(s): {', '.join(sorted(unknown))}"
            )
        if "principals" not in value or "operations" not in value:
            raise InvalidArgumentError("policy: a rule needs 'principals' and 'operations'")
        try:
            operations = frozenset(
                Operation(o) for o in _strings(value["operations"], "operations")
            )
        except ValueError:
            known = ", ".join(o.value for o in Operation)
            raise InvalidArgumentError(
                f"policy: unknown operation in {value['operations']!r}; expected: {known}"
            ) from None
        return cls(
            principals=_strings(value["principals"], "principals"),
            operations=operations,
            keys=_strings(value.get("keys", []), "keys"),
            profiles=_strings(value.get("profiles", []), "profiles"),
            names=_strings(value.get("names", []), "names"),
            subjects=_strings(value.get("subjects", []), "subjects"),
            cas=_strings(value.get("cas", []), "cas"),
            attributes=_attributes(value.get("attributes", {})),
        )

    def allows(
        self,
        principal: str,
        operation: Operation,
        *,
        key: str | None = None,
        profile: str | None = None,
        names: Iterable[str] = (),
        subject: str | None = None,
        ca: str | None = None,
        attributes: Iterable[tuple[str, str | None]] = (),
    ) -> bool:
        """Whether this rule alone allows the request.

        ``attributes``: for ``sign``, the CSR subject's attributes other
        than common names, as ``(RFC 4514 name, text)``; a value that is not
        text (None) matches no pattern.
        """
        if operation not in self.operations:
            return False
        if not any(fnmatch.fnmatchcase(principal, p) for p in self.principals):
            return False
        if operation.on_key and (
            key is None or not any(fnmatch.fnmatchcase(key, p) for p in self.keys)
        ):
            return False
        if operation is Operation.SIGN:
            if profile is None or profile not in self.profiles:
                return False
            if self.cas and (ca is None or not any(fnmatch.fnmatchcase(ca, p) for p in self.cas)):
                return False
            literal = _GLOB.sub(r"[\1]", principal)  # "*.example.com" is a name, not a pattern
            patterns = [p.replace("{principal}", literal) for p in self.names]
            wanted = list(names)
            if not wanted or not all(
                any(fnmatch.fnmatchcase(n, p) for p in patterns) for n in wanted
            ):
                return False
            if attributes and not self._allows_attributes(literal, attributes):
                return False
        if operation is Operation.REVOKE:
            return subject is not None and any(
                fnmatch.fnmatchcase(subject, p) for p in self.subjects
            )
        return True

    def _allows_attributes(
        self, literal_principal: str, attributes: Iterable[tuple[str, str | None]]
    ) -> bool:
        granted = dict(self.attributes)
        for name, value in attributes:
            patterns = granted.get(name)
            if value is None or patterns is None:
                return False
            if not any(
                fnmatch.fnmatchcase(value, p.replace("{principal}", literal_principal))
                for p in patterns
            ):
                return False
        return True


@attrs.frozen(kw_only=True)
class RateLimit:
    """Per-principal token buckets: ``rate`` requests per second, bursts of ``burst``.

    ``principals`` overrides both for principals matching a pattern (first
    match wins): ``(("batch-*", 5.0, 10),)``.
    """

    rate: float = 500.0
    burst: int = 1000
    principals: tuple[tuple[str, float, int], ...] = ()

    def __attrs_post_init__(self) -> None:
        for rate, burst in [(self.rate, self.burst), *((r, b) for _, r, b in self.principals)]:
            if not rate > 0 or burst < 1:
                raise InvalidArgumentError("policy: rate_limit needs rate > 0 and burst >= 1")

    def for_principal(self, principal: str) -> tuple[float, int]:
        """The ``(rate, burst)`` that applies to ``principal``."""
        for pattern, rate, burst in self.principals:
            if fnmatch.fnmatchcase(principal, pattern):
                return rate, burst
        return self.rate, self.burst

    @classmethod
    def from_json(cls, value: Any) -> RateLimit:
        """Parse ``{"rate": r, "burst": b, "principals": {"pattern": {"rate": .., "burst": ..}}}``.

        Raises:
            InvalidArgumentError: malformed values.
        """
        if not isinstance(value, Mapping) or set(value) - {"rate", "burst", "principals"}:
            raise InvalidArgumentError(
                "policy: 'rate_limit' takes 'rate', 'burst' and 'principals'"
            )
        overrides = value.get("principals", {})
        if not isinstance(overrides, Mapping):
            raise InvalidArgumentError("policy: rate_limit 'principals' must be an object")
        try:
            rate, burst = float(value.get("rate", 500.0)), int(value.get("burst", 1000))
            principals = tuple(
                (str(pattern), float(limit["rate"]), int(limit["burst"]))
                for pattern, limit in overrides.items()
            )
        except (TypeError, ValueError, KeyError, OverflowError):  # int(1e400): OverflowError
            raise InvalidArgumentError(
                "policy: rate limits need numeric 'rate' and 'burst'"
            ) from None
        return cls(rate=rate, burst=burst, principals=principals)


@attrs.frozen(kw_only=True)
class ServicePolicy:
    """The service's authorization policy: default deny, allow by :class:`Rule`."""

    rules: tuple[Rule, ...] = ()
    rate_limit: RateLimit = attrs.field(factory=RateLimit)
    # Decisions on (principal, operation, key): the policy never changes, and
    # the transit routes ask the same few questions on every request.
    _decisions: dict[tuple[str, Operation, str | None], bool] = attrs.field(
        factory=dict, init=False, repr=False, eq=False
    )

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ServicePolicy:
        """Parse the JSON form (see the module docstring).

        Raises:
            InvalidArgumentError: the policy is malformed.
        """
        if not isinstance(value, Mapping):
            raise InvalidArgumentError("policy: the top level must be an object")
        unknown = set(value) - _POLICY_FIELDS
        if unknown:
            raise InvalidArgumentError(f"policy: unknown field(s): {', '.join(sorted(unknown))}")
        rules = value.get("rules", [])
        if not isinstance(rules, list):
            raise InvalidArgumentError("policy: 'rules' must be a list")
        rate_limit = RateLimit.from_json(value.get("rate_limit", {}))
        return cls(rules=tuple(Rule.from_json(r) for r in rules), rate_limit=rate_limit)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ServicePolicy:
        """Read a JSON policy file.

        Raises:
            InvalidArgumentError: unreadable or malformed file.
        """
        try:
            value = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read policy file {path}: {exc.strerror}") from None
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deeply
            raise InvalidArgumentError(f"policy file {path} is not valid JSON") from None
        return cls.from_json(value)

    def allows(
        self,
        principal: str,
        operation: Operation,
        *,
        key: str | None = None,
        profile: str | None = None,
        names: Sequence[str] = (),
        subject: str | None = None,
        ca: str | None = None,
        attributes: Sequence[tuple[str, str | None]] = (),
    ) -> bool:
        """Whether some rule allows the request (``attributes``: see :meth:`Rule.allows`)."""
        simple = profile is None and not names and subject is None and ca is None and not attributes
        if simple:
            known = self._decisions.get((principal, operation, key))
            if known is not None:
                return known
        allowed = any(
            r.allows(
                principal,
                operation,
                key=key,
                profile=profile,
                names=names,
                subject=subject,
                ca=ca,
                attributes=attributes,
            )
            for r in self.rules
        )
        if simple:
            if len(self._decisions) >= _DECISIONS_MAX:
                self._decisions.clear()
            self._decisions[(principal, operation, key)] = allowed
        return allowed

    def authorize(
        self,
        principal: str,
        operation: Operation,
        *,
        key: str | None = None,
        profile: str | None = None,
        names: Sequence[str] = (),
        subject: str | None = None,
        ca: str | None = None,
        attributes: Sequence[tuple[str, str | None]] = (),
    ) -> None:
        """Raise unless some rule allows the request.

        Raises:
            AccessDeniedError: no rule allows it (``principal`` and ``operation``
                attributes say which request).
        """
        if not self.allows(
            principal,
            operation,
            key=key,
            profile=profile,
            names=names,
            subject=subject,
            ca=ca,
            attributes=attributes,
        ):
            target = f" on key {key!r}" if key is not None else ""
            if subject is not None:
                target = f" {subject!r}"
            if profile is not None:
                target = f" with profile {profile!r} for {', '.join(names) or 'no names'}"
                if ca is not None:
                    target += f" from CA {ca!r}"
                if attributes:
                    held = ", ".join(sorted({name for name, _ in attributes}))
                    target += f" (the CSR's subject also holds {held})"
            raise AccessDeniedError(
                f"principal {principal!r} may not {operation.value}{target}",
                principal=principal,
                operation=operation.value,
            )
