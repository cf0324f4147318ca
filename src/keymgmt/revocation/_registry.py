"""One registry says whether a key version, a certificate or a principal is revoked.

Every part asks here: the key store before using a version, the PKI when it
builds CRLs and answers OCSP, the KDC before distributing a key or serving a
principal, the handshake before trusting a peer. Entries are sealed records
in the store (kind ``revocation``) and mirrored in a dict, so a lookup is one
hash probe whatever the size; other processes' revocations arrive through
:meth:`keymgmt._store.Store.sync`.

Subjects are plain strings, one namespace per :class:`SubjectKind`:
``key`` → ``"name#version"`` (or ``"name"`` for a whole key),
``certificate`` → ``"<issuer id>:<serial hex>"``, ``principal`` → its name.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import enum
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import attrs

from keymgmt import _codec
from keymgmt._store import Store, Txn
from keymgmt._validators import enum_member
from keymgmt.clock import ensure_aware
from keymgmt.errors import IntegrityError, InvalidArgumentError
from keymgmt.storage import Record

__all__ = [
    "REVOCATION_KIND",
    "Revocation",
    "RevocationReason",
    "RevocationRegistry",
    "SubjectKind",
]

REVOCATION_KIND: Final = "revocation"


class SubjectKind(enum.StrEnum):
    """What a revocation is about."""

    KEY = "key"
    CERTIFICATE = "certificate"
    PRINCIPAL = "principal"


class RevocationReason(enum.StrEnum):
    """RFC 5280 CRLReason values, by name. :attr:`code` is the RFC number."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key-compromise"
    CA_COMPROMISE = "ca-compromise"
    AFFILIATION_CHANGED = "affiliation-changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation-of-operation"
    CERTIFICATE_HOLD = "certificate-hold"
    PRIVILEGE_WITHDRAWN = "privilege-withdrawn"
    AA_COMPROMISE = "aa-compromise"

    @property
    def code(self) -> int:
        """The CRLReason code from RFC 5280 section 5.3.1."""
        return _CODES[self]

    @property
    def is_compromise(self) -> bool:
        """Whether the reason says the key is in someone else's hands."""
        return self in (
            RevocationReason.KEY_COMPROMISE,
            RevocationReason.CA_COMPROMISE,
            RevocationReason.AA_COMPROMISE,
        )

    @classmethod
    def parse(cls, value: str | RevocationReason) -> RevocationReason:
        """Member for ``value`` (also accepts ``_`` for ``-``).

        Raises:
            InvalidArgumentError: no such reason.
        """
        try:
            return cls(str(value).replace("_", "-").lower())
        except ValueError:
            names = ", ".join(r.value for r in cls)
            raise InvalidArgumentError(
                f"unknown revocation reason {value!r}; expected one of: {names}"
            ) from None


_CODES: Final = {
    RevocationReason.UNSPECIFIED: 0,
    RevocationReason.KEY_COMPROMISE: 1,
    RevocationReason.CA_COMPROMISE: 2,
    RevocationReason.AFFILIATION_CHANGED: 3,
    RevocationReason.SUPERSEDED: 4,
    RevocationReason.CESSATION_OF_OPERATION: 5,
    RevocationReason.CERTIFICATE_HOLD: 6,
    RevocationReason.PRIVILEGE_WITHDRAWN: 9,
    RevocationReason.AA_COMPROMISE: 10,
}


@attrs.frozen(kw_only=True)
class Revocation:
    """One revocation: what, why, since when."""

    kind: SubjectKind
    subject: str
    reason: RevocationReason
    revoked_at: _dt.datetime
    invalidity_date: _dt.datetime | None = None

    def to_json(self) -> dict[str, object]:
        """The stored form."""
        return {
            "kind": self.kind.value,
            "subject": self.subject,
            "reason": self.reason.value,
            "revoked_at": _codec.to_micros(self.revoked_at),
            "invalidity_date": (
                None if self.invalidity_date is None else _codec.to_micros(self.invalidity_date)
            ),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Revocation:
        """Inverse of :meth:`to_json`.

        Raises:
            IntegrityError: the stored entry is malformed.
        """
        try:
            invalidity = value["invalidity_date"]
            return cls(
                kind=SubjectKind(value["kind"]),
                subject=str(value["subject"]),
                reason=RevocationReason(value["reason"]),
                revoked_at=_codec.from_micros(int(value["revoked_at"])),
                invalidity_date=None if invalidity is None else _codec.from_micros(int(invalidity)),
            )
        except (KeyError, ValueError, TypeError, OverflowError):
            raise IntegrityError("a revocation record is malformed") from None


def _kind(kind: SubjectKind | str) -> SubjectKind:
    return enum_member(SubjectKind, kind, "subject kind")


def _subject(subject: str) -> str:
    if not isinstance(subject, str) or not subject:
        raise InvalidArgumentError("the revocation subject must be a non-empty string")
    return subject


#: Record-name prefix per kind. SubjectKind is a StrEnum, so "key" finds the
#: same entry as SubjectKind.KEY: the hot path is one dict probe, no Enum call.
_PREFIXES: Final = {kind.value: f"{kind.value}:" for kind in SubjectKind}


def _name(kind: SubjectKind | str, subject: str) -> str:
    try:
        prefix = _PREFIXES.get(kind)
    except TypeError:  # unhashable
        prefix = None
    if prefix is None:
        _kind(kind)  # raises the typed error
    if type(subject) is not str or not subject:
        _subject(subject)
    return f"{prefix}{subject}"


def _release_marker(kind: SubjectKind, subject: str, at: _dt.datetime) -> dict[str, object]:
    """The stored form of a lifted hold: the subject is no longer revoked."""
    return {"kind": kind.value, "subject": subject, "released_at": _codec.to_micros(at)}


def _released(stored: Mapping[str, Any]) -> bool:
    """Whether a stored revocation entry is a lifted hold's marker."""
    return "released_at" in stored and "reason" not in stored


# Kept compact: at a million entries a tuple per entry instead of an attrs
# object saves a few hundred megabytes.
_Entry = tuple[str, int, int | None]  # (reason value, revoked_at µs, invalidity µs)


class RevocationRegistry:
    """The revocation registry of one store (``km.revocation``)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        #: how many times the mirror's entries of each kind were set or dropped
        self._changes: dict[str, int] = {}
        #: the index names of each kind but certificates (keys and principals
        #: are few; a CA's million certificates are not kept twice)
        self._names: dict[str, set[str]] = {}
        store.watch(REVOCATION_KIND)
        store.subscribe(self._on_change)
        for record in store.backend.list(REVOCATION_KIND):
            self._apply(record)

    def __repr__(self) -> str:
        return f"RevocationRegistry(entries={len(self._entries)})"

    def __len__(self) -> int:
        self._store.sync()
        return len(self._entries)

    # -- queries (O(1)) --------------------------------------------------------

    def get(self, kind: SubjectKind, subject: str) -> Revocation | None:
        """The revocation of ``subject``, or None if it is not revoked.

        Raises:
            InvalidArgumentError: unknown ``kind`` or an empty subject.
        """
        name = _name(kind, subject)
        self._store.sync()
        entry = self._entries.get(name)
        if entry is None:
            return None
        reason, revoked_at, invalidity = entry
        return Revocation(
            kind=SubjectKind(kind),
            subject=subject,
            reason=RevocationReason(reason),
            revoked_at=_codec.from_micros(revoked_at),
            invalidity_date=None if invalidity is None else _codec.from_micros(invalidity),
        )

    def is_revoked(self, kind: SubjectKind, subject: str) -> bool:
        """Whether ``subject`` is revoked. One dict lookup.

        Revocations by other processes are picked up at most
        ``consistency_interval`` seconds late (see :meth:`sync`).

        Raises:
            InvalidArgumentError: unknown ``kind`` or an empty subject.
        """
        name = _name(kind, subject)
        self._store.sync()
        return name in self._entries

    @property
    def index(self) -> Mapping[str, object]:
        """The live index behind :meth:`is_revoked`, keyed ``"<kind>:<subject>"``.

        For hot paths in keymgmt's own parts that precompute the names they
        probe (the key store checks every encryption's key version here):
        ``name in registry.index`` is one dict probe, without
        :meth:`is_revoked`'s argument checks and without a :meth:`sync`
        (the caller syncs the store itself). Read-only by contract: the
        registry alone changes it. The values are internal.
        """
        return self._entries

    def changes(self, kind: SubjectKind) -> int:
        """A number that grows whenever a revocation of ``kind`` is set or dropped.

        For caches of what is derived from one kind's revocations (the KDC's
        revocation list of keys and principals): equal numbers, same
        entries, without reading the others. It may also grow when nothing
        changed (a revocation applied again), never the other way round.
        Call after the store's ``sync`` (:meth:`__iter__` and :meth:`get`
        sync themselves; this does not).
        """
        return self._changes.get(_kind(kind).value, 0)

    def names(self, kind: SubjectKind) -> builtins.list[str]:
        """The :attr:`index` names (``"<kind>:<subject>"``) of ``kind``'s revocations.

        For keys and principals a copy of a set kept per kind, so it costs
        their number, not a pass over the index (which may hold a big CA's
        million certificates); for certificates it is that pass. Call after
        the store's ``sync``, as :meth:`changes`.

        Raises:
            InvalidArgumentError: unknown ``kind``.
        """
        wanted = _kind(kind).value
        with self._lock:
            if wanted != SubjectKind.CERTIFICATE.value:
                return builtins.list(self._names.get(wanted, ()))
            prefix = _PREFIXES[wanted]
            return [name for name in self._entries if name.startswith(prefix)]

    def __iter__(self) -> Iterator[Revocation]:
        self._store.sync()
        with self._lock:
            snapshot = list(self._entries.items())
        for name, (reason, revoked_at, invalidity) in snapshot:
            kind, _, subject = name.partition(":")
            yield Revocation(
                kind=SubjectKind(kind),
                subject=subject,
                reason=RevocationReason(reason),
                revoked_at=_codec.from_micros(revoked_at),
                invalidity_date=None if invalidity is None else _codec.from_micros(invalidity),
            )

    def list(
        self, kind: SubjectKind | None = None, *, prefix: str = ""
    ) -> builtins.list[Revocation]:
        """Every revocation (of ``kind``, whose subject starts with ``prefix``).

        Raises:
            InvalidArgumentError: unknown ``kind``.
        """
        wanted = None if kind is None else _kind(kind)
        return [
            r for r in self if (wanted is None or r.kind is wanted) and r.subject.startswith(prefix)
        ]

    def sync(self) -> None:
        """Pick up revocations made by other processes now."""
        self._store.sync(force=True)

    # -- changes ---------------------------------------------------------------

    def revoke(
        self,
        kind: SubjectKind,
        subject: str,
        reason: RevocationReason | str = RevocationReason.UNSPECIFIED,
        *,
        invalidity_date: _dt.datetime | None = None,
    ) -> Revocation:
        """Record a revocation in its own audited transaction; see :meth:`stage`."""
        return self._store.transact(
            lambda txn: self.stage(txn, kind, subject, reason, invalidity_date=invalidity_date)
        )

    def stage(
        self,
        txn: Txn,
        kind: SubjectKind,
        subject: str,
        reason: RevocationReason | str = RevocationReason.UNSPECIFIED,
        *,
        invalidity_date: _dt.datetime | None = None,
    ) -> Revocation:
        """Record a revocation inside another part's transaction.

        Revoking again is idempotent, except that a stronger reason replaces
        a weaker one: any other reason replaces ``certificate-hold``, and a
        compromise replaces any non-compromise reason (keeping the original
        date). A later call's ``invalidity_date`` fills in or replaces the
        stored one only when the reason is upgraded or none was stored.

        The invalidity date (RFC 5280 5.3.2: when the key was compromised or
        the subject otherwise became invalid) may not be after the
        revocation is recorded (``txn.now``; the revocation date of a new
        entry): a revocation cannot know the future, and a far-future date
        would sit on every CRL as if it meant something.

        Raises:
            InvalidArgumentError: bad kind, subject, reason or date (naive,
                or an invalidity date after the revocation).
        """
        name = _name(kind, subject)
        kind = _kind(kind)
        reason = RevocationReason.parse(reason)
        now = txn.now
        if invalidity_date is not None:
            invalidity_date = ensure_aware(invalidity_date, "invalidity_date")
            if invalidity_date > now:
                raise InvalidArgumentError(
                    f"the invalidity date {invalidity_date.isoformat()} is after the "
                    f"revocation ({now.isoformat()})",
                    subject=subject,
                )
        stored = txn.get_json(REVOCATION_KIND, name)
        existing = None if stored is None or _released(stored) else Revocation.from_json(stored)
        if existing is not None:
            upgrade = (
                existing.reason is RevocationReason.CERTIFICATE_HOLD
                and reason is not RevocationReason.CERTIFICATE_HOLD
            ) or (reason.is_compromise and not existing.reason.is_compromise)
            fills_date = existing.invalidity_date is None and invalidity_date is not None
            if not upgrade and not fills_date:
                return existing
            if not upgrade:
                reason = existing.reason
            if invalidity_date is None:
                invalidity_date = existing.invalidity_date
        revocation = Revocation(
            kind=kind,
            subject=subject,
            reason=reason,
            revoked_at=existing.revoked_at if existing else now,
            invalidity_date=invalidity_date,
        )
        txn.put_json(REVOCATION_KIND, name, revocation.to_json())
        txn.audit("revoke", name, reason=reason.value)
        txn.after_commit(lambda: self._set(name, revocation))
        return revocation

    def release_hold(self, kind: SubjectKind, subject: str) -> None:
        """Lift a ``certificate-hold`` (RFC 5280 removeFromCRL).

        Raises:
            InvalidArgumentError: the subject is not on hold (or bad kind/subject).
        """
        self._store.transact(lambda txn: self.stage_release_hold(txn, kind, subject))

    def stage_release_hold(
        self, txn: Txn, kind: SubjectKind, subject: str, *, required: bool = True
    ) -> bool:
        """Stage :meth:`release_hold` in the caller's transaction.

        Args:
            required: refuse a subject not on hold (else: leave it, return False).

        Returns:
            whether a hold was lifted.

        Raises:
            InvalidArgumentError: ``required`` and the subject is not on hold.
        """
        name = _name(kind, subject)
        stored = txn.get_json(REVOCATION_KIND, name)
        if stored is None or stored.get("reason") != RevocationReason.CERTIFICATE_HOLD:
            if required:
                raise InvalidArgumentError(f"{name} is not on hold", subject=subject)
            return False
        # A marker, not a delete: other processes learn of a lifted hold from
        # the change feed like any other change (a delete never shows up there).
        txn.put_json(REVOCATION_KIND, name, _release_marker(_kind(kind), subject, txn.now))
        txn.audit("revoke.release-hold", name)
        txn.after_commit(lambda: self._drop(name))
        return True

    # -- mirror ----------------------------------------------------------------

    def _set(self, name: str, revocation: Revocation) -> None:
        with self._lock:
            self._entries[name] = (
                revocation.reason.value,
                _codec.to_micros(revocation.revoked_at),
                None
                if revocation.invalidity_date is None
                else _codec.to_micros(revocation.invalidity_date),
            )
            kind = name.partition(":")[0]
            if kind != SubjectKind.CERTIFICATE.value:
                self._names.setdefault(kind, set()).add(name)
            self._count_change(name)  # after the entry: whoever sees the count sees it

    def _drop(self, name: str) -> None:
        with self._lock:
            if self._entries.pop(name, None) is not None:
                self._names.get(name.partition(":")[0], set()).discard(name)
                self._count_change(name)

    def _count_change(self, name: str) -> None:
        kind = name.partition(":")[0]
        self._changes[kind] = self._changes.get(kind, 0) + 1

    def _apply(self, record: Record) -> None:
        stored = _codec.loads(self._store.keyring.unseal(REVOCATION_KIND, record.name, record.data))
        if isinstance(stored, dict) and _released(stored):
            self._drop(record.name)
        else:
            self._set(record.name, Revocation.from_json(stored))

    def _on_change(self, records: Sequence[Record]) -> None:
        # A lifted hold is a marker record (see stage_release_hold), so it
        # arrives here like any other change: no scan of the held entries.
        for record in records:
            if record.kind == REVOCATION_KIND:
                self._apply(record)
