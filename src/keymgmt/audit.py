"""The audit log: every state change, chained by hash, with a sealed head.

Each entry records who did what to which object and how it ended — never key
material or plaintext. Entry ``n`` stores the hash of entry ``n - 1``; the
store keeps a *sealed* head (the last sequence number and hash) that only the
master key can produce. So:

* editing an entry breaks its hash;
* deleting or reordering entries breaks the ``prev`` links or the numbering;
* truncating the tail leaves entries the sealed head does not end on;
* rewriting the head needs the master key.

:meth:`AuditLog.verify` walks the chain and says where it breaks.

Key *use* (each encrypt, sign, ...) is not chained one entry per call — that
would put a database write on every encryption. Usage is counted in memory
and written as aggregated ``key.usage`` entries; see :mod:`keymgmt.keys`.
"""

from __future__ import annotations

import binascii
import contextvars
import datetime as _dt
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from keymgmt import _codec
from keymgmt.errors import AuditChainError, IntegrityError, InvalidArgumentError

if TYPE_CHECKING:
    from keymgmt._store import Store
    from keymgmt.storage import Record

__all__ = [
    "AUDIT_HEAD",
    "act_as",
    "current_actor",
    "AUDIT_KIND",
    "AuditEntry",
    "AuditLog",
    "AuditReport",
    "AuditSink",
    "DetailValue",
    "check_details",
]

AUDIT_KIND: Final = "audit"
AUDIT_HEAD: Final = ("meta", "audit-head")
_GENESIS: Final = bytes(32)
_sha256 = hashlib.sha256
_DOMAIN: Final = b"keymgmt/audit/v1\x00"

DetailValue = str | int | bool | None

# Canonical JSON pieces for the fast path of :func:`encode_entry`: the same
# settings as :func:`keymgmt._codec.dumps` (sorted keys, no whitespace, no
# ASCII escaping), so the bytes are identical (verify() recomputes every hash
# with ``_codec.dumps``; the property tests compare the two encoders).
_json_str: Callable[[str], str] = json.encoder.encode_basestring
_b2a = binascii.b2a_base64
_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")


def check_details(details: Mapping[str, Any]) -> dict[str, DetailValue]:
    """Return ``details`` as a plain dict, refusing values that could carry secrets.

    Raises:
        InvalidArgumentError: a key is not a string, or a value is not str,
            int, bool or None (bytes, :class:`~keymgmt.SecretBytes`, floats
            and arbitrary objects are refused).
    """
    out: dict[str, DetailValue] = {}
    for key, value in details.items():
        if not isinstance(key, str):
            raise InvalidArgumentError("audit detail names must be strings")
        if not isinstance(value, str | int | bool | None):
            # bytes, SecretBytes and arbitrary objects could carry secrets.
            raise InvalidArgumentError(
                f"audit detail {key!r} must be str, int, bool or None, not {type(value).__name__}"
            )
        out[str(key)] = value
    return out


def entry_text(
    actor: str,
    operation: str,
    object: str,
    outcome: str,
    details: Mapping[str, DetailValue],
) -> tuple[str, str]:
    """The canonical JSON of an entry's fields that do not depend on its place in the chain.

    Two pieces of the text :func:`encode_entry` writes: ``{"actor":...,
    "details":{...}`` and ``,"object":...,"operation":...,"outcome":...``
    (the stored form puts ``"hash"`` between them, the hashed body does
    not). :meth:`keymgmt._store.Txn.audit` builds them when the entry is
    staged and :func:`encode_chained` completes them (UTF-8 encoded) at
    commit, so the commit only adds the sequence number, time and hashes.
    Not checked for lone surrogates: encoding the text refuses them.
    ``details`` must already be accepted by :func:`check_details`.
    """
    # Keys in sorted order: actor, details, [hash,] object, operation,
    # outcome, prev, seq, time -- exactly what json.dumps(sort_keys=True)
    # writes; "hash" sorts between "details" and "object".
    details_json = _codec.dumps_text(details) if details else "{}"
    return (
        f'{{"actor":{_json_str(actor)},"details":{details_json}',
        f',"object":{_json_str(object)},"operation":{_json_str(operation)}'
        f',"outcome":{_json_str(outcome)}',
    )


def encode_chained(
    seq: int, micros: int, prev_b64: bytes, head: bytes, middle: bytes
) -> tuple[bytes, bytes, bytes]:
    """Hash and encode one chain entry from its :func:`entry_text` pieces, as UTF-8.

    Returns (hash, its base64, stored form); ``prev_b64`` is the previous
    entry's hash as :func:`keymgmt._codec.b64e` gives it, ASCII-encoded (the
    previous call's second result). The text is encoded once: the hashed
    body and the stored form are assembled from the same bytes. Integers
    are written as json writes them (``%d``, whatever an int subclass
    prints).
    """
    tail = b'%s,"prev":"%s","seq":%d,"time":%d}' % (middle, prev_b64, seq, micros)
    digest = _sha256(_DOMAIN + head + tail).digest()
    # _codec.b64e, inline: once per entry (32 bytes: 43 characters, no padding).
    digest_b64 = _b2a(digest, newline=False)[:43].translate(_TO_URLSAFE)
    return digest, digest_b64, b'%s,"hash":"%s"%s' % (head, digest_b64, tail)


def encode_entry(
    seq: int,
    micros: int,
    prev_b64: str,
    actor: str,
    operation: str,
    object: str,
    outcome: str,
    details: Mapping[str, DetailValue],
) -> tuple[bytes, str, bytes]:
    """Hash and encode one chain entry in one pass: (hash, its base64, stored form).

    No :class:`AuditEntry` is built (arguments positional). The hashed body
    and the stored form share every field but the hash, so the canonical
    JSON is written once. ``micros`` is the entry time as
    :func:`keymgmt._codec.to_micros` gives it, ``prev_b64`` the previous
    entry's hash as :func:`keymgmt._codec.b64e` gives it (the previous
    call's second result), ``details`` already accepted by
    :func:`check_details`. The store's append path does the same in two
    steps (:func:`entry_text`, encoded, when the entry is staged;
    :func:`encode_chained` at commit).

    Raises:
        InvalidArgumentError: a text field holds a lone surrogate.
    """
    head, middle = entry_text(actor, operation, object, outcome, details)
    try:
        head_utf8, middle_utf8 = head.encode(), middle.encode()
    except UnicodeEncodeError:
        raise InvalidArgumentError("text must be valid Unicode (no lone surrogates)") from None
    digest, digest_b64, stored = encode_chained(
        seq, micros, prev_b64.encode(), head_utf8, middle_utf8
    )
    return digest, digest_b64.decode(), stored


@attrs.frozen(kw_only=True)
class AuditEntry:
    """One audit log entry."""

    seq: int
    time: _dt.datetime
    actor: str
    operation: str
    object: str
    outcome: str
    details: Mapping[str, DetailValue] = attrs.field(factory=dict)
    prev_hash: bytes = attrs.field(repr=False)
    hash: bytes = attrs.field(repr=False)

    def _body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": _codec.to_micros(self.time),
            "actor": self.actor,
            "operation": self.operation,
            "object": self.object,
            "outcome": self.outcome,
            "details": dict(self.details),
            "prev": _codec.b64e(self.prev_hash),
        }

    @staticmethod
    def compute_hash(body: Mapping[str, Any]) -> bytes:
        """The chain hash of an entry body (everything but its own hash)."""
        return hashlib.sha256(_DOMAIN + _codec.dumps(body)).digest()

    @classmethod
    def create(
        cls,
        *,
        seq: int,
        time: _dt.datetime,
        actor: str,
        operation: str,
        object: str,
        outcome: str,
        details: Mapping[str, Any],
        prev_hash: bytes,
    ) -> AuditEntry:
        """Build an entry and compute its hash (checking ``details`` first)."""
        entry, _stored = cls.chained(
            seq=seq,
            time=time,
            actor=actor,
            operation=operation,
            object=object,
            outcome=outcome,
            details=check_details(details),
            prev_hash=prev_hash,
        )
        return entry

    @classmethod
    def chained(
        cls,
        *,
        seq: int,
        time: _dt.datetime,
        actor: str,
        operation: str,
        object: str,
        outcome: str,
        details: Mapping[str, DetailValue],
        prev_hash: bytes,
    ) -> tuple[AuditEntry, bytes]:
        """Build the next entry of the chain and its stored form in one pass.

        The same entry and bytes as ``create(...)`` then ``encode()``, but
        the canonical JSON is written once (see :func:`encode_entry`).
        ``details`` must already have passed :func:`check_details`.

        Raises:
            InvalidArgumentError: a text field holds a lone surrogate.
        """
        digest, _digest_b64, stored = encode_entry(
            seq,
            _codec.to_micros(time),
            _codec.b64e(prev_hash),
            actor,
            operation,
            object,
            outcome,
            details,
        )
        entry = cls(
            seq=seq,
            time=time,
            actor=actor,
            operation=operation,
            object=object,
            outcome=outcome,
            details=details,
            prev_hash=prev_hash,
            hash=digest,
        )
        return entry, stored

    def encode(self) -> bytes:
        """The stored form: canonical JSON of the body plus the hash."""
        return _codec.dumps({**self._body(), "hash": _codec.b64e(self.hash)})

    @classmethod
    def decode(cls, data: bytes) -> AuditEntry:
        """Parse the stored form (does not check the hash).

        Raises:
            IntegrityError: the stored entry is not well-formed.
        """
        value = _codec.loads(data)
        try:
            return cls(
                seq=int(value["seq"]),
                time=_codec.from_micros(int(value["time"])),
                actor=str(value["actor"]),
                operation=str(value["operation"]),
                object=str(value["object"]),
                outcome=str(value["outcome"]),
                details=dict(value["details"]),
                prev_hash=_codec.b64d(value["prev"]),
                hash=_codec.b64d(value["hash"]),
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            raise IntegrityError("an audit entry is malformed") from None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (for ``--format json`` and notebooks)."""
        return {
            "seq": self.seq,
            "time": self.time.isoformat(),
            "actor": self.actor,
            "operation": self.operation,
            "object": self.object,
            "outcome": self.outcome,
            "details": dict(self.details),
        }

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)


#: Receives every entry after it is committed (logging, SIEM forwarding, ...).
AuditSink = Callable[[AuditEntry], None]


@attrs.frozen
class AuditReport:
    """The result of a successful :meth:`AuditLog.verify`."""

    entries: int
    head_hash: bytes = attrs.field(repr=lambda h: h.hex()[:16] + "...")


def entry_name(seq: int) -> str:
    """Record name of audit entry ``seq`` (zero-padded so names sort by number)."""
    return f"{seq:020d}"


class AuditLog:
    """Read and verify the store's audit chain."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __repr__(self) -> str:
        return "AuditLog()"

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)

    def entries(self, *, start: int = 1) -> Iterator[AuditEntry]:
        """Iterate entries in order from sequence number ``start``.

        This reads; it does not verify (use :meth:`verify`).

        Raises:
            InvalidArgumentError: ``start`` is not an int.
            IntegrityError: a stored entry is malformed.
        """
        if isinstance(start, bool) or not isinstance(start, int):
            raise InvalidArgumentError("start must be an int")
        if start <= 1:
            for record in self._store.backend.list(AUDIT_KIND):
                yield AuditEntry.decode(record.data)
            return
        # Entries are numbered without gaps: read from ``start`` on, one by one,
        # instead of loading the whole log.
        seq = start
        while (found := self._store.backend.get(AUDIT_KIND, entry_name(seq))) is not None:
            yield AuditEntry.decode(found.data)
            seq += 1

    def tail(self, count: int = 20) -> list[AuditEntry]:
        """The last ``count`` entries, oldest first (reads only those).

        The entries end at the one the sealed head names (read first):
        entries another writer appends meanwhile are not included.

        Raises:
            InvalidArgumentError: ``count`` is negative.
            IntegrityError: the sealed head or an entry is damaged.
            AuditChainError: an entry the sealed head covers is missing (the
                log was truncated or edited; :meth:`verify` says more).
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidArgumentError("count must be an int >= 0")
        if count == 0:
            return []
        seq, _ = self._store.audit_head()
        found = []
        for number in range(max(1, seq - count + 1), seq + 1):
            record = self._store.backend.get(AUDIT_KIND, entry_name(number))
            if record is None:
                raise AuditChainError(
                    f"audit entry {number} is missing, but the sealed head names entry {seq} "
                    "(the log was truncated or edited)",
                    position=number,
                )
            found.append(AuditEntry.decode(record.data))
        return found

    def verify(self) -> AuditReport:
        """Walk the whole chain and check it against the sealed head.

        Another writer may append while the log is read: each append moves
        the sealed head in the same write, so entries past the head read
        first are checked against the head read again (and the entries
        appended after the listing are read too) before anything is called
        appended outside keymgmt. A head that names an older entry than this
        process has seen it name (cut entries under an older sealed head put
        back) is reported too.

        Raises:
            AuditChainError: with ``position`` (the sequence number where the
                chain breaks, or None when the sealed head itself is missing or
                fails authentication) and a message saying what is wrong.
        """
        seen = self._store.head_seen  # before the head is read: heads only move on
        head_seq, head_hash, head_found = self._sealed_head()
        prev = _GENESIS
        count = 0
        for record in self._store.backend.list(AUDIT_KIND):
            prev = _check_entry(record, count + 1, prev)
            count += 1
        if count > head_seq:
            # Appended after the head was read, by keymgmt (the head has
            # moved on since) or outside it (it has not).
            fresh_seq, fresh_hash, fresh_found = self._sealed_head()
            if fresh_seq > head_seq:
                head_seq, head_hash, head_found = fresh_seq, fresh_hash, fresh_found
                while count < head_seq:
                    later = self._store.backend.get(AUDIT_KIND, entry_name(count + 1))
                    if later is None:
                        break
                    prev = _check_entry(later, count + 1, prev)
                    count += 1
        if not head_found and count:
            raise AuditChainError(
                f"the sealed audit head is missing but the log holds {count} entries",
                position=None,
            )
        if head_seq < seen:  # a head never goes back
            raise AuditChainError(
                f"the sealed audit head names entry {head_seq}, but this process saw it name "
                f"entry {seen} (entries after {head_seq} were cut and an older head put back, "
                "or the store was restored)",
                position=head_seq + 1,
            )
        if count < head_seq:
            raise AuditChainError(
                f"the audit log ends at entry {count} but its sealed head names entry "
                f"{head_seq} (entries {count + 1}..{head_seq} were removed: truncated)",
                position=count + 1,
            )
        if count > head_seq:
            raise AuditChainError(
                f"audit entries {head_seq + 1}..{count} are not covered by the sealed head "
                "(appended outside keymgmt)",
                position=head_seq + 1,
            )
        if prev != (head_hash if head_seq else _GENESIS):
            raise AuditChainError(
                f"audit entry {count} does not match the sealed head "
                "(it was edited, or the head belongs to another log)",
                position=count,
            )
        return AuditReport(entries=count, head_hash=prev)

    def _sealed_head(self) -> tuple[int, bytes, bool]:
        """(last sequence number, its hash, whether the head record exists), read now."""
        record = self._store.backend.get(*AUDIT_HEAD)  # one read: the record and its value
        if record is None:
            return 0, _GENESIS, False
        try:
            value = _codec.loads(self._store.keyring.unseal(*AUDIT_HEAD, record.data))
            head_seq, head_hash = int(value["seq"]), _codec.b64d(value["hash"])
        except IntegrityError:
            raise AuditChainError(
                "the sealed audit head fails authentication (it was edited or replaced)",
                position=None,
            ) from None
        return head_seq, head_hash, True


def _check_entry(record: Record, expected: int, prev: bytes) -> bytes:
    """Check that ``record`` is chain entry ``expected``, following ``prev``; its hash.

    Raises:
        AuditChainError: it is malformed, misplaced, edited or not linked to ``prev``.
    """
    try:
        entry = AuditEntry.decode(record.data)
    except IntegrityError:
        raise AuditChainError(
            f"audit entry at {record.name} is malformed", position=expected
        ) from None
    if record.name != entry_name(entry.seq) or entry.seq != expected:
        raise AuditChainError(
            f"audit entry {expected} is missing or out of order "
            f"(found entry {entry.seq} at {record.name})",
            position=expected,
        )
    try:
        digest = AuditEntry.compute_hash(entry._body())
    except InvalidArgumentError:  # NaN, a lone surrogate: nothing keymgmt writes
        digest = None
    if digest != entry.hash:
        raise AuditChainError(
            f"audit entry {entry.seq} was edited (hash mismatch)", position=entry.seq
        )
    if entry.prev_hash != prev:
        raise AuditChainError(
            f"audit entry {entry.seq} does not follow entry {entry.seq - 1} "
            f"(entry {entry.seq - 1} or {entry.seq} was edited, removed or reordered)",
            position=entry.seq,
        )
    return entry.hash


def genesis() -> bytes:
    """The ``prev`` hash of the first entry."""
    return _GENESIS


# Who the audit log names as the actor. A service sets it per request (the
# authenticated principal); each asyncio task and each thread started with a
# copied context sees its own value, so concurrent requests never mix.
_ACTOR: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "keymgmt_audit_actor", default=None
)


def act_as(actor: str) -> contextvars.Token[str | None]:
    """Name ``actor`` in audit entries written from the current context.

    Returns the token for :meth:`contextvars.ContextVar.reset`. Prefer
    :meth:`keymgmt.KeyManager.acting_as`, which resets by itself; a server
    sets it once per request task and lets the task end.

    Raises:
        InvalidArgumentError: ``actor`` is empty or not a string.
    """
    if not isinstance(actor, str) or not actor:
        raise InvalidArgumentError("the audit actor must be a non-empty string")
    return _ACTOR.set(actor)


def current_actor() -> str | None:
    """The actor set by :func:`act_as` for the current context, if any."""
    return _ACTOR.get()
