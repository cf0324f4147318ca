"""Auditing the handshakes ``km.exchange`` runs: who, with whom, when, how it ended.

The handshake itself is sans-IO and never touches the store. A handshake
made by :class:`~keymgmt.exchange.Exchange` carries an observer (this
module's :class:`HandshakeAudit`) that it tells, in memory, when it completes
or fails; the observer turns that into ``exchange.handshake`` audit entries.

What is recorded
================

* **Accepted** (outcome ``accepted``, one entry per completed handshake per
  side): ``role``, ``local`` (our certificate's name), ``peer`` (the
  verified peer's name), ``group``, ``peer_key`` (the peer's signature
  algorithm), ``peer_serial`` (hex), ``hello`` (the first 16 bytes of
  SHA-256 of the ClientHello, hex: the same on both sides, so the two logs
  join), ``transcript`` (SHA-256 of the whole transcript, hex, also equal on
  both sides) and ``at`` (the handshake's time; the entry's own time is when
  it was written). Never a key, secret, share or the session id itself.
* **Refused** (outcome ``refused``: the peer's fault, a
  :class:`~keymgmt.errors.RemoteProtocolError`) and **failed** (outcome
  ``failed``: a local fault, such as a store the verifier could not read),
  *aggregated*: one entry per (role, local name, expected peer, outcome,
  error class, reason) and interval, with ``count``, ``first``, ``last``,
  and the last attempt's ``group``, ``hello`` and ``claimed`` (the name in a
  certificate chain that verified but whose holder then failed to prove the
  key, e.g. a man in the middle replaying the server's certificate:
  *claimed*, not authenticated).

Why refusals are aggregated
===========================

Everything a refused handshake carries is unauthenticated: anyone can send a
million malformed, stale or mis-signed hellos. One entry per refusal would
let such a flood grow the store without bound and put a store write (an
fsync with SQLite, ~0.3 ms here) on the responder's failure path. So a
refusal only increments a counter in memory, O(1) under a lock, and the
counters are written once per ``interval`` (default 10 s) — and at
:meth:`~keymgmt.exchange.Exchange.flush_audit` and ``km.close()``. The
aggregation key is made only of local choices (our name, the expected peer,
the error class, the code's ``reason`` strings), never of what the peer
sent; at most ``max_kinds`` (64) keys are kept per interval and anything
beyond folds into one ``reason="other"`` key per outcome (role and name
``"*"``). A flood therefore writes at most ``max_kinds + 2`` entries per
interval whatever its size.

Accepted handshakes are authenticated (the peer proved a certified key), so
each gets its own entry. How it is written is the policy's ``mode``:

* ``batched`` (the default): entries are buffered and written together, in
  one transaction, once ``batch_size`` (64) are pending, when the oldest has
  waited ``interval``, at :meth:`flush` and at ``km.close()``. A process that
  dies loses at most the pending ones (as with the keys' aggregated
  ``key.usage`` entries). A write that fails here is logged and retried at
  the next flush; at most ``16 * batch_size`` entries are kept meanwhile,
  beyond which the oldest are dropped and counted (an
  ``exchange.handshake.audit-dropped`` entry says how many). After a
  failed write the next automatic one waits ``interval`` (handshakes and
  refusals are only counted meanwhile: a store that is down costs no store
  call and no logged warning per handshake); :meth:`flush` always tries.
* ``each``: each accepted handshake is written before ``next_event``
  returns :class:`~keymgmt.exchange.HandshakeComplete`; if the write fails,
  the handshake fails (no unaudited session).
* ``off``: nothing is recorded.

Handshakes that end without an error and without completing (the peer went
away after the ClientHello) leave no entry: the sans-IO machine is never
told. A stream the caller ends with ``receive_data(b"")`` is refused as
truncated and counted.
"""

from __future__ import annotations

import datetime as _dt
import enum
import hashlib
import logging
import threading
from typing import TYPE_CHECKING, Any, Final

import attrs

from keymgmt._validators import enum_member, positive_int, positive_timedelta
from keymgmt.errors import RemoteProtocolError

if TYPE_CHECKING:
    from keymgmt._store import Store, Txn
    from keymgmt.algorithms import ExchangeGroup
    from keymgmt.exchange.handshake._connection import Session
    from keymgmt.exchange.handshake._verify import Credential, VerifiedPeer

__all__ = ["HandshakeAudit", "HandshakeAuditMode", "HandshakeAuditPolicy"]

_log = logging.getLogger("keymgmt.exchange")

OPERATION: Final = "exchange.handshake"
DROPPED_OPERATION: Final = "exchange.handshake.audit-dropped"
#: Pending accepted entries kept while writes fail, as a multiple of the batch size.
_BACKLOG_FACTOR: Final = 16
_ZERO: Final = _dt.timedelta(0)


class HandshakeAuditMode(enum.StrEnum):
    """How accepted handshakes are written (refusals are always aggregated)."""

    BATCHED = "batched"
    EACH = "each"
    OFF = "off"


def _mode(value: HandshakeAuditMode | str) -> HandshakeAuditMode:
    return enum_member(HandshakeAuditMode, value, "handshake audit mode")


@attrs.frozen(kw_only=True)
class HandshakeAuditPolicy:
    """How ``km.exchange`` audits its handshakes (see :mod:`keymgmt.exchange._audit`).

    Attributes:
        mode: ``batched`` (default), ``each`` or ``off``.
        batch_size: accepted entries written together in ``batched`` mode.
        interval: how long an accepted entry may wait, and how long refusals
            are counted before their aggregate entries are written.
        max_kinds: distinct refusal aggregates kept per interval; the rest
            fold into one ``reason="other"`` aggregate per outcome.

    Raises:
        InvalidArgumentError: an unknown mode, or a non-positive size or interval.
    """

    mode: HandshakeAuditMode = attrs.field(default=HandshakeAuditMode.BATCHED, converter=_mode)
    batch_size: int = attrs.field(default=64, validator=positive_int)
    interval: _dt.timedelta = attrs.field(
        default=_dt.timedelta(seconds=10), validator=positive_timedelta
    )
    max_kinds: int = attrs.field(default=64, validator=positive_int)


def hello_id(frame: bytes) -> str:
    """The audit's handle on one handshake: SHA-256 of the ClientHello frame, 16 bytes, hex."""
    return hashlib.sha256(frame).digest()[:16].hex()


def _local_name(credential: Credential) -> str:
    from keymgmt.exchange.handshake._verify import certificate_names

    names = certificate_names(credential.chain[0])
    return names[0] if names else "?"


def _key_name(key: object) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ecdsa-p{key.curve.key_size}"
    return type(key).__name__  # pragma: no cover - the verifier admits only these


# str, int, bool or None values (Txn.audit checks); Any so ** does not meet `actor`.
_Details = dict[str, Any]
# (role, our name, verified peer, group, ClientHello frame, transcript hash, time)
_Accepted = tuple[str, str, "VerifiedPeer", "ExchangeGroup", bytes, bytes, _dt.datetime]
# (role, local, expected peer, outcome, error class, reason)
_Key = tuple[str, str, str, str, str, str]


class _Aggregate:
    __slots__ = ("claimed", "count", "first", "group", "hello", "last")

    def __init__(self, at: _dt.datetime) -> None:
        self.count = 0
        self.first = at
        self.last = at
        self.group: str | None = None
        self.hello: str | None = None
        self.claimed: str | None = None


class HandshakeAudit:
    """The observer ``km.exchange`` gives its handshakes; writes the audit entries.

    Thread-safe: handshakes on many threads may report to one instance.

    Args:
        store: where the entries go.
        policy: how (see :class:`HandshakeAuditPolicy`).
    """

    def __init__(self, store: Store, policy: HandshakeAuditPolicy) -> None:
        self._store = store
        self._policy = policy
        self._lock = threading.Lock()
        self._pending: list[_Accepted] = []
        self._pending_since: _dt.datetime | None = None
        self._aggregates: dict[_Key, _Aggregate] = {}
        self._window_start: _dt.datetime | None = None
        self._dropped = 0
        self._names: dict[int, tuple[object, str]] = {}
        # When an automatic write last failed: the next waits an interval.
        self._failed_at: _dt.datetime | None = None

    @property
    def policy(self) -> HandshakeAuditPolicy:
        """The policy in force."""
        return self._policy

    @property
    def enabled(self) -> bool:
        """Whether handshakes are observed at all."""
        return self._policy.mode is not HandshakeAuditMode.OFF

    def set_policy(self, policy: HandshakeAuditPolicy) -> None:
        """Write what is pending, then follow ``policy``.

        Raises:
            KeyMgmtError: the pending entries could not be written (the
                policy is unchanged).
        """
        self.flush()
        self._policy = policy

    def _local(self, credential: Credential) -> str:
        # Cached per leaf certificate object -- public, unlike the credential,
        # whose private key this cache must not keep alive. The entry holds the
        # certificate, so its id cannot be reused while cached.
        leaf = credential.chain[0]
        cached = self._names.get(id(leaf))
        if cached is not None and cached[0] is leaf:
            return cached[1]
        name = _local_name(credential)
        if len(self._names) >= 1024:
            self._names.clear()
        self._names[id(leaf)] = (leaf, name)
        return name

    # -- what the handshake reports ------------------------------------------

    def accepted(
        self,
        *,
        role: str,
        credential: Credential,
        session: Session,
        hello: bytes,
        transcript: bytes,
        at: _dt.datetime,
    ) -> None:
        """A handshake completed: record it (``each``: now; ``batched``: soon).

        Raises:
            KeyMgmtError: (``each`` mode only) the entry could not be written.
        """
        mode = self._policy.mode
        if mode is HandshakeAuditMode.OFF:
            return
        # What the entry needs, kept as objects: the text is made when it is
        # written (in batched mode, off the handshake's own path mostly).
        local = self._local(credential)  # not the credential: it holds the private key
        record: _Accepted = (role, local, session.peer, session.group, hello, transcript, at)
        if mode is HandshakeAuditMode.EACH:
            self._write([record], {}, 0)
            self._maybe_flush(at)
            return
        with self._lock:
            # Read under the lock: a flush swaps the list, and an entry added
            # to the list it took would never be written.
            pending = self._pending
            if not pending:
                self._pending_since = at
            pending.append(record)
            limit = _BACKLOG_FACTOR * self._policy.batch_size
            if len(pending) > limit:  # writes have been failing: keep the newest
                excess = len(pending) - limit
                del pending[:excess]
                self._dropped += excess
            due = self._due(at)
        if due:
            self._flush_quietly(at)

    def _details(self, record: _Accepted) -> _Details:
        role, local, peer, group, hello, transcript, at = record
        return {
            "role": role,
            "local": local,
            "peer": peer.identity,
            "group": group.value,
            "peer_key": _key_name(peer.public_key),
            "peer_serial": format(peer.certificate.serial_number, "x"),
            "hello": hello_id(hello),
            "transcript": transcript.hex(),
            "at": at.isoformat(),
        }

    def refused(
        self,
        *,
        role: str,
        credential: Credential,
        expected_peer: str | None,
        error: BaseException,
        group: str | None,
        hello: bytes | None,
        claimed: str | None,
        at: _dt.datetime,
    ) -> None:
        """A handshake failed: count it in its aggregate. Never raises."""
        if self._policy.mode is HandshakeAuditMode.OFF:
            return
        try:
            outcome = "refused" if isinstance(error, RemoteProtocolError) else "failed"
            reason = getattr(error, "reason", None)
            key: _Key = (
                role,
                self._local(credential),
                expected_peer or "",
                outcome,
                type(error).__name__,
                "" if reason is None else str(reason),
            )
            with self._lock:
                aggregates = self._aggregates
                if not aggregates:
                    self._window_start = at
                entry = aggregates.get(key)
                if entry is None:
                    if len(aggregates) >= self._policy.max_kinds:
                        key = ("*", "*", "", outcome, "*", "other")
                        entry = aggregates.get(key)
                    if entry is None:
                        entry = aggregates[key] = _Aggregate(at)
                entry.count += 1
                entry.last = at
                entry.group = group
                entry.hello = None if hello is None else hello_id(hello)
                entry.claimed = claimed
            self._maybe_flush(at)
        except Exception:  # pragma: no cover - the audit must not mask the refusal
            _log.exception("recording a refused handshake failed")

    # -- writing ----------------------------------------------------------------

    def _due(self, at: _dt.datetime) -> bool:
        interval = self._policy.interval
        failed_at = self._failed_at
        # The last automatic write failed: wait an interval before the next
        # (unless the clock stepped back past the failure: then try again).
        if failed_at is not None and _ZERO <= at - failed_at < interval:
            return False
        if len(self._pending) >= self._policy.batch_size:
            return True
        # "Waited an interval", or the clock stepped back before the first
        # entry was counted: otherwise nothing would be written until the
        # clock caught up again (hours, if it was set back by hours).
        since = self._pending_since
        if self._pending and since is not None and not _ZERO <= at - since < interval:
            return True
        start = self._window_start
        return bool(self._aggregates) and start is not None and not _ZERO <= at - start < interval

    def _maybe_flush(self, at: _dt.datetime) -> None:
        with self._lock:
            due = self._due(at)
        if due:
            self._flush_quietly(at)

    def _flush_quietly(self, at: _dt.datetime) -> None:
        try:
            self.flush()
        except Exception:
            # Kept for the next flush (bounded, see accepted()); the
            # handshake that happened to trigger the write is not failed.
            # The next automatic try waits an interval: otherwise every
            # handshake and refusal (a flood's too) would try a store write
            # and log a traceback while the store is down.
            with self._lock:
                self._failed_at = at
            _log.warning(
                "writing handshake audit entries failed; will retry in %s",
                self._policy.interval,
                exc_info=True,
            )

    def flush(self) -> None:
        """Write every pending entry and aggregate now, in one transaction.

        Raises:
            KeyMgmtError: the store refused the write (nothing is lost: the
                entries stay pending).
        """
        with self._lock:
            pending, self._pending = self._pending, []
            aggregates, self._aggregates = self._aggregates, {}
            dropped, self._dropped = self._dropped, 0
            since, window = self._pending_since, self._window_start
            self._pending_since = self._window_start = None
        if not (pending or aggregates or dropped):
            return
        try:
            self._write(pending, aggregates, dropped)
            self._failed_at = None
        except BaseException:
            with self._lock:  # put them back, oldest first
                self._pending[:0] = pending
                self._pending_since = since if pending else self._pending_since
                for key, entry in aggregates.items():
                    current = self._aggregates.get(key)
                    if current is None:
                        self._aggregates[key] = entry
                    else:
                        current.count += entry.count
                        current.first = min(current.first, entry.first)
                if aggregates:
                    self._window_start = window
                self._dropped += dropped
            raise

    def _write(
        self, accepted: list[_Accepted], aggregates: dict[_Key, _Aggregate], dropped: int
    ) -> None:
        entries = [self._details(record) for record in accepted]
        refused: list[tuple[str, str, _Details]] = [
            (
                f"handshake:{local}",
                outcome,
                {
                    "role": role,
                    "local": local,
                    "peer": peer or None,
                    "error": error,
                    "reason": reason or None,
                    "count": entry.count,
                    "first": entry.first.isoformat(),
                    "last": entry.last.isoformat(),
                    "group": entry.group,
                    "hello": entry.hello,
                    "claimed": entry.claimed,
                },
            )
            for (role, local, peer, outcome, error, reason), entry in aggregates.items()
        ]

        def stage(txn: Txn) -> None:
            for details in entries:
                txn.audit(OPERATION, f"handshake:{details['local']}", outcome="accepted", **details)
            for obj, outcome, agg in refused:
                txn.audit(OPERATION, obj, outcome=outcome, **agg)
            if dropped:
                txn.audit(DROPPED_OPERATION, "exchange", outcome="dropped", count=dropped)

        self._store.transact(stage)

    def __repr__(self) -> str:
        return f"HandshakeAudit({self._policy.mode.value}, pending={len(self._pending)})"
