"""KeyStore: named keys with versions, lifecycle, AEAD encryption and data keys.

How it works
------------

A *key* is a name with an algorithm, a usage fixed at creation, a rotation
policy and a list of *versions*; exactly one version is the *primary*, the
one new encryptions use. Rotation adds a version, makes it primary and
deactivates the old primary (decrypt-only). Every ciphertext names its key
and version (:mod:`keymgmt.keys._format`), so decryption finds the version
by itself.

Records (all sealed by the keyring, bound to their kind and name):

* kind ``key``, name ``<name>`` — key metadata: random 8-byte key id,
  algorithm, usage, primary and latest version numbers, rotation policy,
  expiry date, imported flag.
* kind ``keyver``, name ``<name>#<version>`` — one version: algorithm,
  state, dates (created, activation, state change, scheduled and actual
  destruction), revocation reason, persisted use count, imported flag, and
  the material (raw symmetric key, or PKCS#8 DER for key pairs; ``null``
  once destroyed).

Every change is one :meth:`~keymgmt._store.Store.transact` call: version
records, the key record, the revocation entry (``km.revocation.stage``) and
the audit entries commit together or not at all.

States follow NIST SP 800-57 (:mod:`keymgmt.keys._states` holds the one
transition table and what each operation accepts). Dates act by
themselves: the activation date activates a pre-active version, the key's
expiry date deactivates its versions, and a scheduled destruction (default
grace period 7 days, cancellable) erases the material when the injected
clock passes it — the next operation that touches the version (or
:meth:`KeyStore.run_maintenance`) writes the erasure; until then the version
already counts as destroyed.

Revocation: a compromise reason moves versions to ``compromised`` (no new
encryption; decryption only with ``allow_compromised=True``), any other
reason to ``deactivated``. The revocation registry is also consulted on use,
so a version revoked directly through ``km.revocation`` is honoured too.

Caching and freshness
---------------------

Unsealed versions are cached as ready AEAD (or Fernet, or private key)
objects, keyed by the ciphertext prefix, so a decrypt of a cached version
does no store I/O and an encrypt reads nothing either. The cache is dropped
for a key when this process changes it, and when another process does:
the key store watches the ``key`` and ``keyver`` kinds, and
:meth:`~keymgmt._store.Store.sync` (called before each operation; it reads
the store at most once per ``consistency_interval`` seconds, default 1 s)
reports their changes. So a rotation or revocation made elsewhere is seen
within ``consistency_interval`` seconds; ``consistency_interval=0`` sees it
at once, at the price of one generation read per operation. :meth:`KeyStore.get`
reuses the key's records it read last (without material) while the store's
generation has not moved and no version's state is due to change by date or
revocation, so it stays as fresh as a store read.

Usage counting and audit
------------------------

Protecting operations are counted per version, in memory, and written
(added to the version's persisted count, plus aggregated ``key.usage`` audit
entries per operation and context) when a version has 65,536 unflushed
uses, every 1,024 uses once 60 s have passed since the last flush, before
rotation checks, on :meth:`KeyStore.flush_usage` and on ``km.close()``. No
encryption writes an audit entry of its own. Uses counted but not yet
flushed are lost if the process dies; the limit below leaves room for that.

Random 96-bit nonces must not be used for more than 2**32 messages per key
(NIST SP 800-38D); keymgmt caps each version at 2**31 protect operations and
rotates the key automatically when the primary reaches its policy's
``rotate_after_uses`` (by default that cap). Several processes may together
overshoot by at most 65,536 uses each before they see each other's counts.

Encryption contexts are recorded in the audit log (canonical JSON, in the
``key.usage`` entries). As in AWS KMS, contexts are **not secret**: never
put secrets in them.
"""

from __future__ import annotations

import base64
import builtins
import datetime as _dt
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import attrs
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.fernet import InvalidToken
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from keymgmt import _codec
from keymgmt._context import Context
from keymgmt._secret import SecretBytes
from keymgmt._store import Txn
from keymgmt.algorithms import Algorithm, KeyKind, KeyUsage
from keymgmt.audit import current_actor
from keymgmt.clock import ensure_aware
from keymgmt.errors import (
    AlreadyExistsError,
    ConflictError,
    DecryptionError,
    IntegrityError,
    InvalidArgumentError,
    InvalidSignatureError,
    KeyMgmtError,
    KeyNotFoundError,
    KeyStateError,
    KeyUsageError,
    MalformedInputError,
    RevokedError,
    UnsupportedAlgorithmError,
)
from keymgmt.keys import _datakeys, _format
from keymgmt.keys._format import ContextEncoder, PayloadType, check_name, require_bytes
from keymgmt.keys._handlers import AEAD_NONCE_SIZE, MaterialHandler, default_handlers
from keymgmt.keys._states import Operation, can_transition, effective_state, require
from keymgmt.model import (
    DataKey,
    KeyInfo,
    KeyState,
    KeyVersionInfo,
    RotationPolicy,
    WrappedKey,
)
from keymgmt.revocation import REVOCATION_KIND, RevocationReason, SubjectKind
from keymgmt.revocation._registry import _name as revocation_record_name
from keymgmt.storage import Record

if TYPE_CHECKING:
    from keymgmt.public import ForensicPublicKey, PublicKey

__all__ = [
    "DEFAULT_DESTRUCTION_GRACE",
    "KEY_KIND",
    "VERSION_KIND",
    "DistributedMaterial",
    "KeyRequest",
    "KeyStore",
    "LoadedVersion",
    "key_store_of",
]

KEY_KIND: Final = "key"
VERSION_KIND: Final = "keyver"
DEFAULT_DESTRUCTION_GRACE: Final = _dt.timedelta(days=7)
_RECORD_FORMAT: Final = 1
_FLUSH_EVERY: Final = 1 << 16
_FLUSH_CHECK_MASK: Final = 0x3FF
_FLUSH_INTERVAL: Final = 60.0
#: The most keys whose records get() keeps (the cache is emptied when full).
_META_MAX: Final = 4096
_LARGE: Final = 1 << 16  # from here on, one preallocated buffer (encrypt_into)
_DATA_KEY_SIZE: Final = 32
_TAG: Final = 16
_MAX_CONTEXT_BUCKETS: Final = 64
_OTHER_CONTEXT: Final = b"\xff"  # bucket for contexts beyond the bound
_NAME_LENGTH_AT: Final = 13  # header offset of the key name length
_PREFIX_OVERHEAD: Final = 18  # prefix length minus the name length
# Enum members as module constants: class-attribute access to an enum member
# costs about as much as the AEAD call on the hot path (Python 3.11).
_MESSAGE: Final = PayloadType.MESSAGE
_COMPROMISED: Final = KeyState.COMPROMISED
_ENCRYPT_DECRYPT: Final = KeyUsage.ENCRYPT_DECRYPT
_SIGN_VERIFY: Final = KeyUsage.SIGN_VERIFY
_SIGNATURE: Final = PayloadType.SIGNATURE
_BYTES_LIKE: Final = (bytes, bytearray, memoryview)
_SNAPSHOT_ATTEMPTS: Final = 50  # re-reads while rotations race a load


# -- records ---------------------------------------------------------------------


def _micros(value: _dt.datetime | None) -> int | None:
    return None if value is None else _codec.to_micros(value)


def _dt_or_none(value: Any) -> _dt.datetime | None:
    return None if value is None else _codec.from_micros(int(value))


@attrs.frozen(kw_only=True)
class _KeyRecord:
    name: str
    key_id: bytes
    algorithm: Algorithm
    usage: KeyUsage
    created_at: _dt.datetime
    primary: int
    latest: int
    rotation_period: _dt.timedelta | None
    rotate_after_uses: int | None
    expiry_date: _dt.datetime | None
    imported: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _RECORD_FORMAT,
            "name": self.name,
            "id": self.key_id.hex(),
            "algorithm": self.algorithm.value,
            "usage": self.usage.value,
            "created_at": _codec.to_micros(self.created_at),
            "primary": self.primary,
            "latest": self.latest,
            "rotation_period_us": (
                None
                if self.rotation_period is None
                else self.rotation_period // _dt.timedelta(microseconds=1)
            ),
            "rotate_after_uses": self.rotate_after_uses,
            "expiry_date": _micros(self.expiry_date),
            "imported": self.imported,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> _KeyRecord:
        try:
            if value["format"] != _RECORD_FORMAT:
                raise IntegrityError(f"unknown key record format {value['format']!r}")
            period = value["rotation_period_us"]
            return cls(
                name=str(value["name"]),
                key_id=bytes.fromhex(value["id"]),
                algorithm=Algorithm(value["algorithm"]),
                usage=KeyUsage(value["usage"]),
                created_at=_codec.from_micros(int(value["created_at"])),
                primary=int(value["primary"]),
                latest=int(value["latest"]),
                rotation_period=None if period is None else _dt.timedelta(microseconds=int(period)),
                rotate_after_uses=value["rotate_after_uses"],
                expiry_date=_dt_or_none(value["expiry_date"]),
                imported=bool(value["imported"]),
            )
        except (KeyError, ValueError, TypeError):
            raise IntegrityError("a key record is malformed") from None


@attrs.frozen(kw_only=True)
class _VersionRecord:
    name: str
    version: int
    algorithm: Algorithm
    state: KeyState
    created_at: _dt.datetime
    activation_date: _dt.datetime
    state_changed_at: _dt.datetime
    reason: str | None
    destroy_at: _dt.datetime | None
    destroyed_at: _dt.datetime | None
    material: bytes | None = attrs.field(repr=False)
    uses: int
    imported: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _RECORD_FORMAT,
            "name": self.name,
            "version": self.version,
            "algorithm": self.algorithm.value,
            "state": self.state.value,
            "created_at": _codec.to_micros(self.created_at),
            "activation_date": _codec.to_micros(self.activation_date),
            "state_changed_at": _codec.to_micros(self.state_changed_at),
            "reason": self.reason,
            "destroy_at": _micros(self.destroy_at),
            "destroyed_at": _micros(self.destroyed_at),
            "material": None if self.material is None else _codec.b64e(self.material),
            "uses": self.uses,
            "imported": self.imported,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> _VersionRecord:
        try:
            if value["format"] != _RECORD_FORMAT:
                raise IntegrityError(f"unknown key version record format {value['format']!r}")
            material = value["material"]
            return cls(
                name=str(value["name"]),
                version=int(value["version"]),
                algorithm=Algorithm(value["algorithm"]),
                state=KeyState(value["state"]),
                created_at=_codec.from_micros(int(value["created_at"])),
                activation_date=_codec.from_micros(int(value["activation_date"])),
                state_changed_at=_codec.from_micros(int(value["state_changed_at"])),
                reason=value["reason"],
                destroy_at=_dt_or_none(value["destroy_at"]),
                destroyed_at=_dt_or_none(value["destroyed_at"]),
                material=None if material is None else _codec.b64d(material),
                uses=int(value["uses"]),
                imported=bool(value["imported"]),
            )
        except (KeyError, ValueError, TypeError):
            raise IntegrityError("a key version record is malformed") from None


def _dying(primary: _VersionRecord) -> bool:
    """Whether a key's (settled) primary is destroyed or scheduled for destruction.

    The primary is destroyed only with the whole key (``schedule_destruction(name)``).
    """
    return primary.state.is_destroyed or primary.destroy_at is not None


def _refuse_dying(name: str, primary: _VersionRecord) -> None:
    """Refuse to rotate a :func:`_dying` key: it would get a fresh active version.

    Raises:
        KeyStateError: the key is destroyed, or its destruction is scheduled.
    """
    if not _dying(primary):
        return
    if primary.state.is_destroyed:
        raise KeyStateError(
            f"key {name!r} is destroyed; create a key under another name",
            key_name=name,
            version=primary.version,
        )
    raise KeyStateError(
        f"key {name!r} is scheduled for destruction; cancel_destruction first",
        key_name=name,
        version=primary.version,
    )


def _refuse_revoked_key(name: str, reason: RevocationReason | None) -> None:
    """Refuse to rotate a key revoked as a whole (registry subject ``name``).

    That revocation covers every version, present and future: a new version
    would be revoked from birth, and never encrypt.

    Raises:
        RevokedError: ``reason`` is not None.
    """
    if reason is None:
        return
    if reason is RevocationReason.CERTIFICATE_HOLD:  # temporary: the way out is to lift it
        raise RevokedError(
            f"key {name!r} is on hold as a whole (certificate-hold): every version, present "
            "and future, is held with it; lift the hold (km.revocation.release_hold) "
            "before rotating",
            key_name=name,
            reason=reason.value,
        )
    raise RevokedError(
        f"key {name!r} is revoked as a whole ({reason.value}): every version, present and "
        "future, is revoked; create a key under another name",
        key_name=name,
        reason=reason.value,
    )


def _expired(key: _KeyRecord, now: _dt.datetime) -> bool:
    """Whether the key's expiry date has passed (every version is deactivated)."""
    return key.expiry_date is not None and now >= key.expiry_date


def _refuse_expired(key: _KeyRecord, now: _dt.datetime) -> None:
    """Refuse to rotate an expired key: its new version would be deactivated from birth.

    Raises:
        KeyStateError: the key's expiry date has passed.
    """
    if not _expired(key, now):
        return
    assert key.expiry_date is not None
    raise KeyStateError(
        f"key {key.name!r} expired at {key.expiry_date.isoformat()}: every version, present "
        "and future, is deactivated; create a key under another name",
        key_name=key.name,
    )


def _vname(name: str, version: int) -> str:
    return f"{name}#{version}"


def _flat(view: memoryview) -> bytes | memoryview:
    """``view`` itself when it is a flat, contiguous byte view, else its bytes.

    The AEADs take only contiguous buffers (``BufferError`` otherwise), a
    view of wider items would have its length counted in items, not bytes,
    and a multi-dimensional view cannot be indexed or sliced as bytes.
    """
    if view.contiguous and view.itemsize == 1 and view.ndim == 1:
        return view
    return view.tobytes()


def _later(moment: _dt.datetime, period: _dt.timedelta) -> _dt.datetime | None:
    """``moment + period``, or None (never) past the end of the calendar."""
    try:
        return moment + period
    except OverflowError:
        return None


def _check_version(name: str, version: object) -> int:
    """``version`` if it is a positive int (not a bool, a float or a str)."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidArgumentError(
            f"version must be a positive integer, got {version!r}", key_name=name
        )
    return version


# -- the cache ---------------------------------------------------------------------


class _Usage:
    """Unflushed use counts of one version (kept across cache reloads)."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.total = 0  # protect operations not yet flushed
        self.buckets: dict[tuple[str, bytes], int] = {}


class _DataKeyCheck(NamedTuple):
    """What an ``each``-mode data-key transaction expects of one version (cached)."""

    #: (kind, name, revision) of the version record and its two revocation entries
    expected: tuple[tuple[str, str, int], ...]
    #: the compromise they record, or None
    reason: str | None
    #: the registry's key-revocation change count when they were read (None: unknown)
    changes: int | None


def _compromise_reason(
    stored: Mapping[str, Any] | None, entries: Iterable[Mapping[str, Any] | None]
) -> str | None:
    """The compromise a version record and its revocation entries record, or None."""
    if stored is not None and stored.get("state") in (
        KeyState.COMPROMISED.value,
        KeyState.DESTROYED_COMPROMISED.value,
    ):
        return str(stored.get("reason") or RevocationReason.KEY_COMPROMISE.value)
    for entry in entries:
        if entry is not None and "reason" in entry:
            try:
                parsed = RevocationReason.parse(str(entry["reason"]))
            except InvalidArgumentError:
                continue
            if parsed.is_compromise:
                return parsed.value
    return None


class _Loaded:
    """One unsealed version, ready to use. Replaced, never edited, on change."""

    __slots__ = (
        "aead",
        "algorithm",
        "base_uses",
        "check_at",
        "handler",
        "is_primary",
        "key_id",
        "loaded",
        "material",
        "name",
        "prefixes",
        "process_ok",
        "protect_limit",
        "protect_ok",
        "revocation_names",
        "state",
        "subject",
        "usage",
        "usage_counts",
        "verifier",
        "version",
    )

    name: str
    version: int
    algorithm: Algorithm
    usage: KeyUsage
    key_id: bytes
    state: KeyState
    handler: MaterialHandler
    loaded: Any  # what the handler built; None when destroyed
    material: bytes  # raw bytes, set only once distributed (material_for_distribution)
    aead: Any  # the AEAD object on the symmetric hot path, else None
    verifier: Any  # a signing version's bound public-key verify(signature, data), else None
    prefixes: dict[PayloadType, bytes]
    is_primary: bool
    protect_ok: bool
    process_ok: bool
    check_at: _dt.datetime | None
    base_uses: int
    protect_limit: int
    revocation_names: tuple[str, str]
    subject: str
    usage_counts: _Usage


@attrs.frozen(kw_only=True)
class LoadedVersion:
    """A checked, ready-to-use key version, for keymgmt's parts (:func:`._plumbing.use_version`).

    The PKI signs certificates with a CA's key pair through it. ``loaded``
    is what the algorithm's :class:`~keymgmt.keys.MaterialHandler` built from
    the material (an AEAD object for a symmetric key; an object whose
    ``private`` attribute is the private key for a key pair): it lives in
    this process only, never in a repr, and must not be kept beyond the
    operation it was asked for (ask again: a cached version costs no store
    read, and asking is what sees a rotation, revocation or destruction).

    Attributes:
        name: the key.
        version: the version number.
        algorithm: the key's algorithm.
        usage: the key's usage.
        key_id: the key's identifier (as in its ciphertexts).
        state: the version's effective state when it was checked.
        valid_until: the next scheduled change of that state (activation,
            expiry, scheduled destruction, rotation by age), if any.
        loaded: the handler's loaded form.
    """

    name: str
    version: int
    algorithm: Algorithm
    usage: KeyUsage
    key_id: bytes = attrs.field(repr=False)
    state: KeyState
    valid_until: _dt.datetime | None
    loaded: Any = attrs.field(repr=False, eq=False)


@attrs.frozen(kw_only=True)
class DistributedMaterial:
    """The raw symmetric material of a key's primary version, handed out for re-encryption.

    Returned by :func:`._plumbing.material_for_distribution` (the KDC seals it
    to a principal). ``material`` is redacted in every repr.

    Attributes:
        version: the version it belongs to (checked as for an encryption).
        material: the raw key bytes.
    """

    version: LoadedVersion
    material: SecretBytes = attrs.field(repr=False)


def _handle(loaded: _Loaded) -> LoadedVersion:
    return LoadedVersion(
        name=loaded.name,
        version=loaded.version,
        algorithm=loaded.algorithm,
        usage=loaded.usage,
        key_id=loaded.key_id,
        state=loaded.state,
        valid_until=loaded.check_at,
        loaded=loaded.loaded,
    )


@attrs.frozen(kw_only=True)
class KeyRequest:
    """One key to create in :meth:`KeyStore.create_many`.

    The fields are :meth:`KeyStore.create`'s arguments, plus ``actor``: who
    asks, named in the item's audit entry (default: the current actor, as
    for :meth:`KeyStore.create`). A server batching many callers' requests
    sets it per request.
    """

    name: str
    algorithm: Algorithm | str = Algorithm.AES_256_GCM
    usage: KeyUsage | str | None = None
    activation_date: _dt.datetime | None = None
    expiry_date: _dt.datetime | None = None
    policy: RotationPolicy | None = None
    actor: str | None = None


class KeyStore:
    """Named keys with versions (``km.keys``); see the module docstring.

    Build one from a :class:`~keymgmt._context.Context`; users get it as
    ``km.keys``. Safe to share between threads.
    """

    def __init__(
        self,
        context: Context,
        *,
        handlers: Mapping[Algorithm, MaterialHandler] | None = None,
    ) -> None:
        self._context = context
        self._store = context.store
        self._clock = context.clock
        self._random = context.randomness.token_bytes
        self._revocation = context.revocation
        self._handlers = dict(handlers) if handlers is not None else default_handlers()
        self._lock = threading.RLock()
        # One usage flush at a time: a flush subtracts what it wrote only
        # once it has committed, so a second flush running meanwhile would
        # write the same counts (and key.usage entries) again.
        self._flush_lock = threading.Lock()
        self._primary: dict[str, _Loaded] = {}
        self._by_prefix: dict[bytes, tuple[_Loaded, PayloadType]] = {}
        self._versions: dict[tuple[str, int], _Loaded] = {}
        self._usage: dict[tuple[str, int], _Usage] = {}
        self._data_keys = _datakeys.DataKeyLog()  # batched mode: written by flush_usage
        self._data_key_policy = _datakeys.DataKeyLogPolicy()
        self._data_key_writer = _datakeys.GroupCommit()  # each mode
        # each mode: per version, what its data keys' transactions expect
        # (see _refuse_compromised_in) and the registry's key-revocation
        # change count when it was read.
        self._data_key_checks: dict[tuple[str, int], _DataKeyCheck] = {}
        self._epoch = 0  # bumped by every invalidation (see _load)
        # get()'s records per key name (material left out) and the store
        # generation they were read at (see get).
        self._meta: dict[str, tuple[int, _KeyRecord, tuple[_VersionRecord, ...]]] = {}
        self._next_flush = time.monotonic() + _FLUSH_INTERVAL
        self._encode_context = ContextEncoder()
        self._revocation_mirror: Mapping[str, object] | None = getattr(
            self._revocation, "index", None
        )
        self._store.watch(KEY_KIND, VERSION_KIND)
        self._store.subscribe(self._on_change)

    def __repr__(self) -> str:
        return f"KeyStore(cached_versions={len(self._versions)})"

    def __reduce__(self) -> Any:
        raise TypeError("a KeyStore cannot be pickled")

    # -- handlers --------------------------------------------------------------------

    def _handler(self, algorithm: Algorithm) -> MaterialHandler:
        handler = self._handlers.get(algorithm)
        if handler is None:
            raise UnsupportedAlgorithmError(
                f"no handler for algorithm {algorithm.value!r} (not available here)",
                algorithm=algorithm.value,
            )
        return handler

    def _limit(self, handler: MaterialHandler, algorithm: Algorithm) -> int:
        cap = handler.usage_limit(algorithm)
        return (1 << 62) if cap is None else cap

    # -- creation ----------------------------------------------------------------------

    def create(
        self,
        name: str,
        algorithm: Algorithm | str = Algorithm.AES_256_GCM,
        *,
        usage: KeyUsage | str | None = None,
        activation_date: _dt.datetime | None = None,
        expiry_date: _dt.datetime | None = None,
        policy: RotationPolicy | None = None,
    ) -> KeyInfo:
        """Create a named key with a first version (the primary).

        Args:
            name: 1-128 letters, digits, ``.``, ``_``, ``-``.
            algorithm: AES-256-GCM by default; ChaCha20-Poly1305,
                AES-256-GCM-SIV, Fernet, or a key-pair algorithm.
            usage: fixed for the key's life (default: the algorithm's default).
            activation_date: version 1 is pre-active until then (default: now).
            expiry_date: after it, every version is deactivated (decrypt-only).
            policy: automatic rotation by age and by use count.

        Returns:
            The new key's metadata.

        Raises:
            InvalidArgumentError: bad name, dates or policy.
            UnsupportedAlgorithmError: unknown algorithm.
            KeyUsageError: the algorithm does not allow ``usage``.
            AlreadyExistsError: a key with this name exists.
        """
        run = self._create_run(
            name,
            algorithm,
            usage=usage,
            activation_date=activation_date,
            expiry_date=expiry_date,
            policy=policy,
            material=None,
        )
        return self._store.transact(run)

    def create_many(self, requests: Sequence[KeyRequest]) -> builtins.list[KeyInfo | Exception]:
        """Create several keys with one store commit (group commit), each on its own terms.

        Every request is validated, created and audited exactly as by
        :meth:`create` (one ``key.create`` audit entry per key, naming the
        request's ``actor``), and each has its own outcome: a refused request
        (a bad name, an existing key, an unknown algorithm, two requests for
        one name) gets its exception and writes nothing, without failing the
        others. The keys that can be created are written in one transaction
        of the store (one fsync on SQLite) instead of one each; see
        :meth:`~keymgmt._store.Store.transact_many` for the exact semantics.

        Args:
            requests: the keys to create.

        Returns:
            One outcome per request, in order: the new key's :class:`KeyInfo`,
            or the exception that refused it (a :class:`KeyMgmtError`
            subclass, as :meth:`create` would raise; ``StoreError`` for every
            item of a batch the backend failed to write).

        Raises:
            InvalidArgumentError: ``requests`` is not a sequence.
        """
        given: object = requests  # checked at run time: callers may be untyped
        if not isinstance(given, Sequence) or isinstance(given, str | bytes):
            raise InvalidArgumentError(
                f"create_many takes a sequence of KeyRequest, not {type(given).__name__}"
            )
        outcomes: builtins.list[KeyInfo | Exception | None] = [None] * len(requests)
        runs: builtins.list[Callable[[Txn], KeyInfo]] = []
        slots: builtins.list[int] = []
        for index, request in enumerate(requests):
            candidate: object = request  # checked at run time: callers may be untyped
            if not isinstance(candidate, KeyRequest):
                outcomes[index] = InvalidArgumentError(
                    f"create_many takes KeyRequest items, not {type(candidate).__name__}"
                )
                continue
            try:
                run = self._create_run(
                    request.name,
                    request.algorithm,
                    usage=request.usage,
                    activation_date=request.activation_date,
                    expiry_date=request.expiry_date,
                    policy=request.policy,
                    material=None,
                    actor=request.actor,
                )
            except KeyMgmtError as exc:
                outcomes[index] = exc
                continue
            slots.append(index)
            runs.append(run)
        for slot, outcome in zip(slots, self._store.transact_many(runs), strict=True):
            outcomes[slot] = outcome
        return [outcome for outcome in outcomes if outcome is not None]  # every slot is set

    def import_key(
        self,
        name: str,
        material: bytes | SecretBytes,
        *,
        algorithm: Algorithm | str,
        usage: KeyUsage | str | None = None,
        expiry_date: _dt.datetime | None = None,
        policy: RotationPolicy | None = None,
    ) -> KeyInfo:
        """Create a key whose first version is existing material, marked imported.

        Symmetric material is the raw key (32 bytes; for Fernet also the
        base64url key file text); key pairs take unencrypted PKCS#8 DER.

        Raises:
            InvalidArgumentError: the material is not bytes or not a key of ``algorithm``.
            UnsupportedAlgorithmError: unknown algorithm.
            AlreadyExistsError: a key with this name exists.
        """
        raw = (
            material.reveal()
            if isinstance(material, SecretBytes)
            else require_bytes(material, "the material")
        )
        run = self._create_run(
            name,
            algorithm,
            usage=usage,
            activation_date=None,
            expiry_date=expiry_date,
            policy=policy,
            material=raw,
        )
        return self._store.transact(run)

    def import_fernet_key_file(self, name: str, path: Any) -> KeyInfo:
        """Import a seed-style Fernet key file (``symmetric.key``) as a Fernet key.

        Raises:
            InvalidArgumentError: not a path, the file cannot be read, or it
                holds no Fernet key.
            AlreadyExistsError: a key with this name exists.
        """
        import os

        try:
            where = os.fspath(path)
        except TypeError:
            raise InvalidArgumentError(
                f"the key file path must be a str or path, not {type(path).__name__}"
            ) from None
        try:
            with open(where, "rb") as handle:
                data = handle.read(4096)
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read key file: {exc.strerror}") from None
        except ValueError:  # a null byte in the path
            raise InvalidArgumentError("cannot read key file: a null byte in its path") from None
        from keymgmt.keys._handlers import decode_fernet_key

        return self.import_key(name, decode_fernet_key(data), algorithm=Algorithm.FERNET)

    def _create_run(
        self,
        name: str,
        algorithm: Algorithm | str,
        *,
        usage: KeyUsage | str | None,
        activation_date: _dt.datetime | None,
        expiry_date: _dt.datetime | None,
        policy: RotationPolicy | None,
        material: bytes | None,
        actor: str | None = None,
    ) -> Callable[[Txn], KeyInfo]:
        """Validate a creation and build its transaction function (raises when refused)."""
        check_name(name)
        algorithm = Algorithm.parse(algorithm)
        handler = self._handler(algorithm)
        if usage is None:
            key_usage = handler.default_usage(algorithm)
        else:
            try:
                key_usage = KeyUsage(usage)
            except ValueError:
                raise InvalidArgumentError(
                    f"unknown key usage {usage!r}", key_name=name, usage=str(usage)
                ) from None
        if key_usage not in handler.usages(algorithm):
            allowed = ", ".join(sorted(u.value for u in handler.usages(algorithm)))
            raise KeyUsageError(
                f"{algorithm.value} keys cannot be used for {key_usage.value} (allowed: {allowed})",
                key_name=name,
                usage=key_usage.value,
            )
        candidate: object = policy  # checked at run time: callers may be untyped
        if candidate is not None and not isinstance(candidate, RotationPolicy):
            raise InvalidArgumentError(
                f"policy must be a RotationPolicy, not {type(candidate).__name__}", key_name=name
            )
        policy = policy or RotationPolicy()
        self._check_policy(policy, handler, algorithm, name)
        if activation_date is not None:
            activation_date = ensure_aware(activation_date, "activation_date")
        if expiry_date is not None:
            expiry_date = ensure_aware(expiry_date, "expiry_date")
        imported = material is not None
        if material is not None:
            stored = handler.check_material(algorithm, material)
        else:
            stored = handler.generate(algorithm, self._context.randomness)
        key_id = self._random(8)

        def run(txn: Txn) -> KeyInfo:
            if txn.get(KEY_KIND, name) is not None:
                raise AlreadyExistsError(f"key {name!r} exists already", key_name=name)
            now = txn.now
            activation = activation_date or now
            if expiry_date is not None and expiry_date <= activation:
                raise InvalidArgumentError(
                    "expiry_date must be after the activation date", key_name=name
                )
            key = _KeyRecord(
                name=name,
                key_id=key_id,
                algorithm=algorithm,
                usage=key_usage,
                created_at=now,
                primary=1,
                latest=1,
                rotation_period=policy.rotation_period,
                rotate_after_uses=policy.rotate_after_uses,
                expiry_date=expiry_date,
                imported=imported,
            )
            version = _VersionRecord(
                name=name,
                version=1,
                algorithm=algorithm,
                state=KeyState.ACTIVE if activation <= now else KeyState.PRE_ACTIVE,
                created_at=now,
                activation_date=activation,
                state_changed_at=now,
                reason=None,
                destroy_at=None,
                destroyed_at=None,
                material=stored,
                uses=0,
                imported=imported,
            )
            txn.put_json(KEY_KIND, name, key.to_json())
            txn.put_json(VERSION_KIND, _vname(name, 1), version.to_json())
            txn.audit(
                "key.import" if imported else "key.create",
                _vname(name, 1),
                actor=actor,
                algorithm=algorithm.value,
                usage=key_usage.value,
                imported=imported,
            )
            txn.after_commit(lambda: self._invalidate(name))
            return self._info(key, [version], now)

        return run

    def _check_policy(
        self, policy: RotationPolicy, handler: MaterialHandler, algorithm: Algorithm, name: str
    ) -> None:
        period: object = policy.rotation_period  # checked at run time: callers may be untyped
        if period is not None and (
            not isinstance(period, _dt.timedelta) or period <= _dt.timedelta(0)
        ):
            raise InvalidArgumentError(
                "rotation_period must be a positive timedelta", key_name=name
            )
        cap = self._limit(handler, algorithm)
        uses: object = policy.rotate_after_uses
        if uses is not None and (
            not isinstance(uses, int) or isinstance(uses, bool) or not 1 <= uses <= cap
        ):
            raise InvalidArgumentError(
                f"rotate_after_uses must be an integer 1..{cap} for {algorithm.value}",
                key_name=name,
            )

    # -- reading metadata --------------------------------------------------------------

    def get(self, name: str) -> KeyInfo:
        """Metadata of key ``name`` and its versions (never material).

        Applies scheduled destructions that are due first.

        Raises:
            KeyNotFoundError: no such key.
        """
        check_name(name)
        # The records read last time are reused while the store's generation
        # has not moved (nothing was written anywhere since: as fresh as a
        # read, for one small read) and every version's stored state is
        # still its effective state; when a date or a revocation moved one,
        # the transaction below writes the settled state first, as always.
        # The generation is read before the records, so a write racing the
        # read can only make the entry look older than it is.
        with self._lock:
            cached = self._meta.get(name)
            epoch = self._epoch
        generation = self._store.backend.generation()
        if cached is not None and cached[0] == generation:
            _, key, kept = cached
            now = self._clock.now()
            if all(self._effective(key, v, now)[0] is v.state for v in kept):
                return self._info(key, kept, now)
        # What _apply_due read (and settled) is what the store now holds: no second read.
        found = self._apply_due(name)
        if found is None:
            raise KeyNotFoundError(f"no key named {name!r}", key_name=name)
        key, versions = found
        with self._lock:
            if self._epoch == epoch:  # nothing in this process changed it meanwhile
                if len(self._meta) >= _META_MAX:
                    self._meta.clear()
                kept = tuple(attrs.evolve(v, material=None) for v in versions)
                self._meta[name] = (generation, key, kept)
        return self._info(key, versions, self._clock.now())

    def list(self) -> builtins.list[KeyInfo]:
        """Metadata of every key, sorted by name."""
        names = [n for n, _ in self._store.list_json(KEY_KIND)]
        out = []
        for name in names:
            try:
                out.append(self.get(name))
            except KeyNotFoundError:  # deleted meanwhile
                continue
        return out

    def _read(self, name: str) -> tuple[_KeyRecord, builtins.list[_VersionRecord]]:
        value = self._store.get_json(KEY_KIND, name)
        if value is None:
            raise KeyNotFoundError(f"no key named {name!r}", key_name=name)
        key = _KeyRecord.from_json(value)
        versions = [
            _VersionRecord.from_json(v)
            for _, v in self._store.list_json(VERSION_KIND, prefix=f"{name}#")
        ]
        versions.sort(key=lambda v: v.version)
        return key, versions

    def _whole_key_revocation(self, name: str) -> RevocationReason | None:
        """The reason of a revocation of key ``name`` as a whole, if the registry has one."""
        found = self._revocation.get(SubjectKind.KEY, name)
        return None if found is None else found.reason

    def _revoked(self, name: str, version: int) -> tuple[bool | None, str | None]:
        """Whether the registry revokes ``name#version`` (or the whole key), and why.

        A compromise in either entry wins: a version revoked for another
        reason (``superseded``) whose key is then revoked as a whole for a
        compromise is compromised, not merely deactivated.
        """
        own = self._revocation.get(SubjectKind.KEY, _vname(name, version))
        whole = self._revocation.get(SubjectKind.KEY, name)
        for found in (own, whole):
            if found is not None and found.reason.is_compromise:
                return True, found.reason.value
        found = own if own is not None else whole
        if found is None:
            return None, None
        return False, found.reason.value

    def _effective(
        self, key: _KeyRecord, version: _VersionRecord, now: _dt.datetime
    ) -> tuple[KeyState, str | None]:
        compromise, reason = self._revoked(key.name, version.version)
        state = effective_state(
            version.state,
            now=now,
            activation_date=version.activation_date,
            expiry_date=key.expiry_date,
            destroy_at=version.destroy_at,
            revoked_reason_is_compromise=compromise,
        )
        return state, version.reason or reason

    def _info(
        self, key: _KeyRecord, versions: Sequence[_VersionRecord], now: _dt.datetime
    ) -> KeyInfo:
        infos = []
        for v in versions:
            state, reason = self._effective(key, v, now)
            pending = self._usage.get((key.name, v.version))
            infos.append(
                KeyVersionInfo(
                    key_name=key.name,
                    version=v.version,
                    algorithm=v.algorithm,
                    state=state,
                    created_at=v.created_at,
                    activation_date=v.activation_date,
                    state_changed_at=v.state_changed_at,
                    is_primary=v.version == key.primary,
                    uses=v.uses + (pending.total if pending else 0),
                    imported=v.imported,
                    revocation_reason=reason,
                    destroy_at=v.destroy_at,
                    destroyed_at=v.destroyed_at,
                )
            )
        return KeyInfo(
            name=key.name,
            key_id=key.key_id.hex(),
            algorithm=key.algorithm,
            kind=key.algorithm.kind,
            usage=key.usage,
            created_at=key.created_at,
            primary_version=key.primary,
            policy=RotationPolicy(
                rotation_period=key.rotation_period, rotate_after_uses=key.rotate_after_uses
            ),
            expiry_date=key.expiry_date,
            imported=key.imported,
            versions=tuple(infos),
        )

    # -- lifecycle changes --------------------------------------------------------------

    def _txn_key(self, txn: Txn, name: str) -> _KeyRecord:
        value = txn.get_json(KEY_KIND, name)
        if value is None:
            raise KeyNotFoundError(f"no key named {name!r}", key_name=name)
        return _KeyRecord.from_json(value)

    def _txn_version(self, txn: Txn, name: str, version: int) -> _VersionRecord:
        value = txn.get_json(VERSION_KIND, _vname(name, version))
        if value is None:
            raise KeyNotFoundError(
                f"key {name!r} has no version {version}", key_name=name, version=version
            )
        return _VersionRecord.from_json(value)

    def _txn_versions(
        self, txn: Txn, key: _KeyRecord, version: int | None
    ) -> builtins.list[_VersionRecord]:
        if version is None:
            return [self._txn_version(txn, key.name, n) for n in range(1, key.latest + 1)]
        return [self._txn_version(txn, key.name, _check_version(key.name, version))]

    def _settle(
        self, txn: Txn, key: _KeyRecord, version: _VersionRecord, now: _dt.datetime
    ) -> _VersionRecord:
        """Bring a version's stored state up to its effective state (erasing due material)."""
        state, reason = self._effective(key, version, now)
        if state is version.state:
            return version
        changed = attrs.evolve(version, state=state, state_changed_at=now, reason=reason)
        if state.is_destroyed and version.material is not None:
            changed = attrs.evolve(changed, material=None, destroyed_at=now)
            # The replaced sealed record still holds the material until the
            # backend drops its old copies (SQLite's WAL).
            txn.after_commit(self._store.erase_residue)
            txn.audit(
                "key.destroy",
                _vname(key.name, version.version),
                state=state.value,
                scheduled_at=_codec.to_micros(version.destroy_at) if version.destroy_at else None,
            )
        return changed

    def _transition(
        self,
        txn: Txn,
        key: _KeyRecord,
        version: _VersionRecord,
        target: KeyState,
        now: _dt.datetime,
        *,
        reason: str | None = None,
    ) -> _VersionRecord:
        current = self._settle(txn, key, version, now)
        if not can_transition(current.state, target):
            raise KeyStateError(
                f"key {key.name!r} version {version.version} is {current.state.value} "
                f"and cannot become {target.value}",
                key_name=key.name,
                version=version.version,
                state=current.state.value,
            )
        if current.state is target and reason is None:
            return current
        return attrs.evolve(
            current, state=target, state_changed_at=now, reason=reason or current.reason
        )

    def rotate(self, name: str) -> KeyVersionInfo:
        """Add a new version and make it primary; the old primary becomes decrypt-only.

        A key whose destruction is scheduled (``schedule_destruction(name)``)
        or done is not renewed: cancel the destruction first, or create a
        key under another name. Nor is a key revoked as a whole
        (``revoke(name)`` without a version): that revocation covers every
        version, present and future; nor a key past its expiry date, which
        deactivates every version.

        Returns:
            The new primary version's metadata.

        Raises:
            KeyNotFoundError: no such key.
            KeyStateError: the key is destroyed, scheduled for destruction or
                past its expiry date; ``RevokedError`` when it is revoked as a whole.
        """
        check_name(name)
        version = self._rotate(name, reason="manual", only_if=None)
        # Flushed after, not before: a failed rotation writes nothing at all.
        self.flush_usage()
        return version

    def _rotate(
        self,
        name: str,
        *,
        reason: str,
        only_if: Callable[[_KeyRecord, _VersionRecord, _dt.datetime], bool] | None,
    ) -> KeyVersionInfo:
        key_value = self._store.get_json(KEY_KIND, name)
        if key_value is None:
            raise KeyNotFoundError(f"no key named {name!r}", key_name=name)
        algorithm = _KeyRecord.from_json(key_value).algorithm
        handler = self._handler(algorithm)
        material = handler.generate(algorithm, self._context.randomness)

        def run(txn: Txn) -> KeyVersionInfo:
            key = self._txn_key(txn, name)
            return self._stage_rotation(txn, key, material, trigger=reason, only_if=only_if)

        return self._store.transact(run)

    def stage_rotate(
        self, txn: Txn, name: str, *, if_primary: int | None = None, trigger: str = "manual"
    ) -> KeyVersionInfo | None:
        """Stage a rotation of ``name`` inside the caller's transaction (see :meth:`rotate`).

        For keymgmt's own multi-step operations (the compromise playbook):
        the new version's material is generated here, so ``txn``'s function
        must tolerate being re-run (it is: nothing leaves the transaction).
        Nothing is written unless ``txn`` commits; caches are updated after.

        Args:
            txn: the caller's transaction.
            name: the key.
            if_primary: rotate only if this version is still the primary
                (as seen inside ``txn``, so after the caller's staged writes).
            trigger: recorded in the ``key.rotate`` audit entry.

        Returns:
            the new primary version, or None when ``if_primary`` is not the
            primary or the key is destroyed, scheduled for destruction,
            revoked as a whole or expired.

        Raises:
            KeyNotFoundError: no such key.
        """
        check_name(name)
        key = self._txn_key(txn, name)
        if if_primary is not None and key.primary != if_primary:
            return None
        primary = self._settle(txn, key, self._txn_version(txn, name, key.primary), txn.now)
        if (
            _dying(primary)
            or self._whole_key_revocation(name) is not None
            or _expired(key, txn.now)
        ):
            return None  # a key being destroyed, revoked or expired is not renewed (_refuse_*)
        material = self._handler(key.algorithm).generate(key.algorithm, self._context.randomness)
        return self._stage_rotation(txn, key, material, trigger=trigger, only_if=None)

    def _stage_rotation(
        self,
        txn: Txn,
        key: _KeyRecord,
        material: bytes,
        *,
        trigger: str,
        only_if: Callable[[_KeyRecord, _VersionRecord, _dt.datetime], bool] | None,
    ) -> KeyVersionInfo:
        """Stage the rotation of ``key`` (as read in ``txn``) to a version of ``material``."""
        name = key.name
        now = txn.now
        old = self._txn_version(txn, name, key.primary)
        if only_if is not None and not only_if(key, old, now):
            settled = self._settle(txn, key, old, now)
            return self._info(key, [settled], now).versions[0]
        old_settled = self._settle(txn, key, old, now)
        _refuse_dying(name, old_settled)
        _refuse_revoked_key(name, self._whole_key_revocation(name))
        _refuse_expired(key, now)
        # A pre-active primary too: left pre-active, it would activate on its
        # date as a second active version beside the new primary.
        if old_settled.state in (KeyState.PRE_ACTIVE, KeyState.ACTIVE, KeyState.SUSPENDED):
            old_settled = attrs.evolve(
                old_settled, state=KeyState.DEACTIVATED, state_changed_at=now
            )
        if old_settled != old:
            txn.put_json(VERSION_KIND, _vname(name, old.version), old_settled.to_json())
        number = key.latest + 1
        new = _VersionRecord(
            name=name,
            version=number,
            algorithm=key.algorithm,
            state=KeyState.ACTIVE,
            created_at=now,
            activation_date=now,
            state_changed_at=now,
            reason=None,
            destroy_at=None,
            destroyed_at=None,
            material=material,
            uses=0,
            imported=False,
        )
        key = attrs.evolve(key, primary=number, latest=number)
        txn.put_json(KEY_KIND, name, key.to_json())
        txn.put_json(VERSION_KIND, _vname(name, number), new.to_json())
        txn.audit("key.rotate", _vname(name, number), previous=old.version, trigger=trigger)
        txn.after_commit(lambda: self._invalidate(name))
        return self._info(key, [new], now).versions[0]

    def suspend(self, name: str, version: int) -> KeyVersionInfo:
        """Suspend a version: no new protection until :meth:`resume`; it still decrypts.

        Raises:
            KeyNotFoundError: no such key or version.
            KeyStateError: the version's state does not allow suspension.
            InvalidArgumentError: ``version`` is not a positive int.
        """
        return self._set_state(name, version, KeyState.SUSPENDED, "key.suspend")

    def resume(self, name: str, version: int) -> KeyVersionInfo:
        """Return a suspended version to active.

        Raises:
            KeyNotFoundError: no such key or version.
            KeyStateError: the version is not suspended.
            InvalidArgumentError: ``version`` is not a positive int.
        """
        return self._set_state(name, version, KeyState.ACTIVE, "key.resume")

    def _set_state(
        self, name: str, version: int, target: KeyState, operation: str
    ) -> KeyVersionInfo:
        check_name(name)
        # Not None: _txn_versions would read every version (and the record
        # would be written as "name#None").
        _check_version(name, version)

        def run(txn: Txn) -> KeyVersionInfo:
            key = self._txn_key(txn, name)
            (record,) = self._txn_versions(txn, key, version)
            now = txn.now
            current = self._settle(txn, key, record, now)
            if target is KeyState.ACTIVE and current.state is not KeyState.SUSPENDED:
                raise KeyStateError(
                    f"key {name!r} version {version} is {current.state.value}, not suspended",
                    key_name=name,
                    version=version,
                    state=current.state.value,
                )
            changed = self._transition(txn, key, record, target, now)
            txn.put_json(VERSION_KIND, _vname(name, version), changed.to_json())
            txn.audit(operation, _vname(name, version), state=changed.state.value)
            txn.after_commit(lambda: self._invalidate(name))
            return self._info(key, [changed], now).versions[0]

        return self._store.transact(run)

    def revoke(
        self,
        name: str,
        version: int | None = None,
        *,
        reason: RevocationReason | str = RevocationReason.UNSPECIFIED,
        invalidity_date: _dt.datetime | None = None,
    ) -> KeyInfo:
        """Revoke one version (or every version) of a key, with a reason.

        A compromise reason moves the versions to ``compromised`` (never
        encrypts again; decrypts only with ``allow_compromised=True``); any
        other reason to ``deactivated`` (decrypt-only). The revocation is
        recorded in ``km.revocation`` (subject ``"name#version"``; a whole-key
        revocation also records ``"name"``) in the same transaction. Revoking
        the primary leaves the key without an encrypting version until
        :meth:`rotate`; revoking the whole key (``version=None``) is final:
        the revocation covers future versions too, so :meth:`rotate` refuses.

        Raises:
            KeyNotFoundError: no such key or version.
            InvalidArgumentError: unknown reason.
        """
        check_name(name)
        why = RevocationReason.parse(reason)
        self._store.transact(
            lambda txn: self.stage_revoke(
                txn, name, version, reason=why, invalidity_date=invalidity_date
            )
        )
        self.flush_usage()
        return self.get(name)

    def stage_revoke(
        self,
        txn: Txn,
        name: str,
        version: int | None = None,
        *,
        reason: RevocationReason | str = RevocationReason.UNSPECIFIED,
        invalidity_date: _dt.datetime | None = None,
    ) -> KeyInfo:
        """Stage :meth:`revoke` inside the caller's transaction (the compromise playbook's).

        The version records, the registry entries and the ``key.revoke``
        audit entry are written only if ``txn`` commits; the cache is
        dropped after it does.

        Returns:
            the key with the changed versions, as they will be once committed.

        Raises:
            KeyNotFoundError: no such key or version.
            InvalidArgumentError: unknown reason.
        """
        check_name(name)
        why = RevocationReason.parse(reason)
        key = self._txn_key(txn, name)
        now = txn.now
        changed = []
        for record in self._txn_versions(txn, key, version):
            current = self._settle(txn, key, record, now)
            if current.state.is_destroyed:
                target = KeyState.DESTROYED_COMPROMISED if why.is_compromise else current.state
            elif why.is_compromise:
                target = KeyState.COMPROMISED
            elif current.state in (KeyState.COMPROMISED, KeyState.DEACTIVATED):
                target = current.state
            else:
                target = KeyState.DEACTIVATED
            # A milder reason never overwrites a compromise (the registry keeps
            # the compromise too): the version says why it is compromised.
            milder = not why.is_compromise and current.state in (
                KeyState.COMPROMISED,
                KeyState.DESTROYED_COMPROMISED,
            )
            new = self._transition(
                txn, key, current, target, now, reason=None if milder else why.value
            )
            txn.put_json(VERSION_KIND, _vname(name, record.version), new.to_json())
            self._revocation.stage(
                txn,
                SubjectKind.KEY,
                _vname(name, record.version),
                why,
                invalidity_date=invalidity_date,
            )
            changed.append(new)
        if version is None:
            self._revocation.stage(txn, SubjectKind.KEY, name, why, invalidity_date=invalidity_date)
        txn.audit(
            "key.revoke",
            name if version is None else _vname(name, version),
            reason=why.value,
            versions=",".join(str(v.version) for v in changed),
        )
        txn.after_commit(lambda: self._invalidate(name))
        return self._info(key, changed, now)

    def schedule_destruction(
        self,
        name: str,
        version: int | None = None,
        *,
        grace: _dt.timedelta = DEFAULT_DESTRUCTION_GRACE,
    ) -> KeyInfo:
        """Schedule the material of one version (or all) to be destroyed after ``grace``.

        Until then :meth:`cancel_destruction` undoes it. Pre-active, active or
        suspended versions are deactivated first; the primary version of a key,
        in whatever state (a compromised one too), can only be destroyed with
        the whole key (``version=None``): rotate first to destroy it alone. After the grace
        period the version is destroyed: its material is erased from the
        store and decrypting with it raises :class:`DestroyedKeyError`.

        Raises:
            KeyNotFoundError: no such key or version.
            KeyStateError: the version is the primary, in any state (destroy
                the whole key or rotate first), or already destroyed.
            InvalidArgumentError: negative grace period.
        """
        check_name(name)
        if not isinstance(grace, _dt.timedelta) or grace < _dt.timedelta(0):
            raise InvalidArgumentError("grace must be a non-negative timedelta", key_name=name)

        def run(txn: Txn) -> KeyInfo:
            key = self._txn_key(txn, name)
            now = txn.now
            changed = []
            for record in self._txn_versions(txn, key, version):
                current = self._settle(txn, key, record, now)
                if current.state.is_destroyed:
                    if version is None:
                        changed.append(current)
                        if current != record:
                            txn.put_json(
                                VERSION_KIND, _vname(name, record.version), current.to_json()
                            )
                        continue
                    require(
                        Operation.SCHEDULE_DESTRUCTION,
                        current.state,
                        key_name=name,
                        version=record.version,
                    )
                # In any state: a key's primary goes only with the whole key
                # (rotate treats a key whose primary is dying as being destroyed).
                if version is not None and record.version == key.primary:
                    raise KeyStateError(
                        f"key {name!r} version {record.version} is the primary; rotate first "
                        "or destroy the whole key",
                        key_name=name,
                        version=record.version,
                        state=current.state.value,
                    )
                # A pre-active version too: left pre-active, it would activate
                # on its date and encrypt until its material is erased.
                if current.state in (KeyState.PRE_ACTIVE, KeyState.ACTIVE, KeyState.SUSPENDED):
                    current = self._transition(txn, key, current, KeyState.DEACTIVATED, now)
                require(
                    Operation.SCHEDULE_DESTRUCTION,
                    current.state,
                    key_name=name,
                    version=record.version,
                    allow_compromised=True,
                )
                due = _later(now, grace)
                if due is None:
                    raise InvalidArgumentError(
                        "grace reaches past the end of the calendar", key_name=name
                    )
                current = attrs.evolve(current, destroy_at=due)
                txn.put_json(VERSION_KIND, _vname(name, record.version), current.to_json())
                txn.audit(
                    "key.schedule-destruction",
                    _vname(name, record.version),
                    destroy_at=_codec.to_micros(due),
                )
                changed.append(current)
            txn.after_commit(lambda: self._invalidate(name))
            return self._info(key, changed, now)

        self._store.transact(run)
        if grace == _dt.timedelta(0):
            self._apply_due(name)
        return self.get(name)

    def cancel_destruction(self, name: str, version: int | None = None) -> KeyInfo:
        """Cancel a scheduled destruction that is not yet due.

        The versions stay deactivated (or compromised): a cancelled
        destruction does not re-activate anything; :meth:`rotate` to encrypt
        again.

        Raises:
            KeyNotFoundError: no such key or version.
            KeyStateError: nothing scheduled, or the version is already destroyed.
        """
        check_name(name)

        def run(txn: Txn) -> KeyInfo:
            key = self._txn_key(txn, name)
            now = txn.now
            changed = []
            for record in self._txn_versions(txn, key, version):
                current = self._settle(txn, key, record, now)
                if current.state.is_destroyed:
                    if version is None:
                        continue
                    require(Operation.PROCESS, current.state, key_name=name, version=record.version)
                if current.destroy_at is None:
                    if version is None:
                        continue
                    raise KeyStateError(
                        f"key {name!r} version {record.version} has no scheduled destruction",
                        key_name=name,
                        version=record.version,
                        state=current.state.value,
                    )
                current = attrs.evolve(current, destroy_at=None)
                txn.put_json(VERSION_KIND, _vname(name, record.version), current.to_json())
                txn.audit("key.cancel-destruction", _vname(name, record.version))
                changed.append(current)
            if version is None and not changed:
                raise KeyStateError(
                    f"key {name!r} has no scheduled destruction to cancel", key_name=name
                )
            txn.after_commit(lambda: self._invalidate(name))
            return self._info(key, changed, now)

        self._store.transact(run)
        return self.get(name)

    destroy = schedule_destruction

    def run_maintenance(self) -> None:
        """Apply what time has made due: erase destroyed material, rotate by age.

        Operations apply these lazily for the keys they touch; call this from
        a scheduler to apply them everywhere.
        """
        self.flush_usage()
        for name, _ in self._store.list_json(KEY_KIND):
            self._apply_due(name)
            self._rotate_if_due(name)

    def _apply_due(self, name: str) -> tuple[_KeyRecord, builtins.list[_VersionRecord]] | None:
        """Write the effective state of every version whose stored state lags (one txn).

        Returns the key and its versions as they now stand, or None when
        there is no such key.
        """

        def run(txn: Txn) -> tuple[_KeyRecord, builtins.list[_VersionRecord]] | None:
            value = txn.get_json(KEY_KIND, name)
            if value is None:
                return None
            key = _KeyRecord.from_json(value)
            now = txn.now
            dirty = False
            versions = []
            for number in range(1, key.latest + 1):
                record = self._txn_version(txn, name, number)
                settled = self._settle(txn, key, record, now)
                if settled != record:
                    txn.put_json(VERSION_KIND, _vname(name, number), settled.to_json())
                    dirty = True
                versions.append(settled)
            if dirty:
                txn.after_commit(lambda: self._invalidate(name))
            return key, versions

        return self._store.transact(run)

    def _rotate_if_due(self, name: str) -> None:
        def due(key: _KeyRecord, primary: _VersionRecord, now: _dt.datetime) -> bool:
            state, _ = self._effective(key, primary, now)
            if state is not KeyState.ACTIVE:
                return False
            if key.rotation_period is not None:
                due_at = _later(primary.activation_date, key.rotation_period)
                if due_at is not None and now >= due_at:
                    return True
            limit = self._rotation_threshold(key)
            return primary.uses >= limit

        try:
            self._rotate(name, reason="policy", only_if=due)
        except KeyNotFoundError:
            return

    def _rotation_threshold(self, key: _KeyRecord) -> int:
        cap = self._limit(self._handler(key.algorithm), key.algorithm)
        return cap if key.rotate_after_uses is None else min(cap, key.rotate_after_uses)

    # -- the cache ---------------------------------------------------------------------

    def _invalidate(self, name: str) -> None:
        with self._lock:
            self._epoch += 1
            self._meta.pop(name, None)
            self._primary.pop(name, None)
            for stale in [k for k in self._data_key_checks if k[0] == name]:
                self._data_key_checks.pop(stale, None)
            for number in [v for (n, v) in self._versions if n == name]:
                loaded = self._versions.pop((name, number))
                for payload_prefix in loaded.prefixes.values():
                    self._by_prefix.pop(payload_prefix, None)

    def _on_change(self, records: Sequence[Record]) -> None:
        names = set()
        for record in records:
            if record.kind == KEY_KIND:
                names.add(record.name)
            elif record.kind == VERSION_KIND:
                names.add(record.name.partition("#")[0])
        for name in names:
            self._invalidate(name)

    def _load(self, name: str, number: int | None) -> _Loaded:
        """Read, unseal and cache one version (the primary when ``number`` is None).

        The store is read without holding the cache lock (a transaction's
        callbacks take that lock while the store's write lock is held, so
        holding it across store calls could deadlock). An entry built from
        a read that an invalidation overtook is not cached: the epoch
        counter says so, and the load runs again.
        """
        while True:
            with self._lock:
                epoch = self._epoch
                known = None if number is None else self._versions.get((name, number))
            if known is not None:
                return known  # no store read for a version already cached
            loaded = self._read_version(name, number)
            with self._lock:
                if self._epoch != epoch:
                    continue  # invalidated meanwhile: what we read may be stale
                cached = self._versions.get((name, loaded.version))
                if cached is not None:
                    return cached
                self._versions[(name, loaded.version)] = loaded
                for payload, payload_prefix in loaded.prefixes.items():
                    self._by_prefix[payload_prefix] = (loaded, payload)
                if loaded.is_primary:
                    self._primary[name] = loaded
                return loaded

    def _read_version(self, name: str, number: int | None) -> _Loaded:
        """Build (not cache) the loaded form of a version from the store.

        The key record and the version record are two reads. When the
        primary is asked for, another process may rotate between them, which
        would pair the old primary number with a version record that is
        already deactivated; so the key record is read again afterwards and
        the pair is retried until both reads agree (a consistent snapshot).
        """
        for _attempt in range(_SNAPSHOT_ATTEMPTS):
            key_value = self._store.get_json(KEY_KIND, name)
            if key_value is None:
                raise KeyNotFoundError(f"no key named {name!r}", key_name=name)
            key = _KeyRecord.from_json(key_value)
            version = key.primary if number is None else number
            cached = self._versions.get((name, version))
            if cached is not None:
                return cached
            value = self._store.get_json(VERSION_KIND, _vname(name, version))
            if value is None:
                raise KeyNotFoundError(
                    f"key {name!r} has no version {version}", key_name=name, version=version
                )
            if number is not None or self._store.get_json(KEY_KIND, name) == key_value:
                break
        else:
            raise ConflictError(
                f"key {name!r} kept changing while it was read; try again", key_name=name
            )
        record = _VersionRecord.from_json(value)
        now = self._clock.now()
        state, _ = self._effective(key, record, now)
        if state.is_destroyed and record.material is not None:
            self._apply_due(name)
            return self._read_version(name, number)
        handler = self._handler(key.algorithm)
        loaded = _Loaded()
        loaded.name = name
        loaded.version = version
        loaded.algorithm = key.algorithm
        loaded.usage = key.usage
        loaded.key_id = key.key_id
        loaded.state = state
        loaded.handler = handler
        loaded.loaded = (
            None if record.material is None else handler.load(key.algorithm, record.material)
        )
        loaded.aead = (
            loaded.loaded
            if key.algorithm
            in (Algorithm.AES_256_GCM, Algorithm.CHACHA20_POLY1305, Algorithm.AES_256_GCM_SIV)
            else None
        )
        bind = getattr(handler, "bound_verifier", None)
        loaded.verifier = (
            bind(key.algorithm, loaded.loaded)
            if bind is not None and loaded.loaded is not None and key.usage is KeyUsage.SIGN_VERIFY
            else None
        )
        loaded.prefixes = {
            payload: _format.prefix(payload, key.algorithm, key.key_id, name, version)
            for payload in (PayloadType.MESSAGE, PayloadType.DATA_KEY, PayloadType.SIGNATURE)
        }
        loaded.is_primary = version == key.primary
        loaded.protect_ok = loaded.is_primary and state is KeyState.ACTIVE
        loaded.process_ok = state in (
            KeyState.ACTIVE,
            KeyState.SUSPENDED,
            KeyState.DEACTIVATED,
        )
        loaded.check_at = self._next_change(key, record, state, now)
        loaded.base_uses = record.uses
        loaded.protect_limit = self._rotation_threshold(key)
        loaded.subject = _vname(name, version)
        loaded.revocation_names = (
            f"{SubjectKind.KEY.value}:{loaded.subject}",
            f"{SubjectKind.KEY.value}:{name}",
        )
        with self._lock:
            loaded.usage_counts = self._usage.setdefault((name, version), _Usage())
        return loaded

    def _next_change(
        self, key: _KeyRecord, record: _VersionRecord, state: KeyState, now: _dt.datetime
    ) -> _dt.datetime | None:
        """The earliest future moment at which this cached version must be re-checked."""
        moments = []
        if state is KeyState.PRE_ACTIVE:
            moments.append(record.activation_date)
        if key.expiry_date is not None and state in (KeyState.ACTIVE, KeyState.SUSPENDED):
            moments.append(key.expiry_date)
        if record.destroy_at is not None and not state.is_destroyed:
            moments.append(record.destroy_at)
        if (
            key.rotation_period is not None
            and record.version == key.primary
            and state is KeyState.ACTIVE
        ):
            due_at = _later(record.activation_date, key.rotation_period)
            if due_at is not None:  # else never
                moments.append(due_at)
        return min(moments) if moments else None

    def _primary_for(self, name: str) -> _Loaded:
        loaded = self._primary.get(name)
        if loaded is None:
            check_name(name)
            loaded = self._load(name, None)
        return loaded

    def _refresh(self, loaded: _Loaded, *, primary: bool) -> _Loaded:
        """Time passed a boundary: settle states, rotate if due, reload.

        Returns the key's (possibly new) primary when ``primary``, else the
        same version, reloaded.
        """
        self.flush_usage()
        self._apply_due(loaded.name)
        if loaded.is_primary:
            self._rotate_if_due(loaded.name)
        self._invalidate(loaded.name)
        return self._load(loaded.name, None if primary else loaded.version)

    # -- protect -----------------------------------------------------------------------

    def _protector(self, name: str, usage: KeyUsage) -> _Loaded:
        """The primary version, checked for protection (the slow checks only when needed)."""
        if type(name) is not str:
            check_name(name)  # raises the typed error (a dict would not even hash)
        self._store.sync()
        loaded = self._primary.get(name)
        if loaded is None:
            loaded = self._primary_for(name)
        if loaded.check_at is not None and self._clock.now() >= loaded.check_at:
            loaded = self._refresh(loaded, primary=True)
        counts = loaded.usage_counts
        if counts.total + loaded.base_uses >= loaded.protect_limit:
            self.flush_usage()
            self._rotate_if_due(name)
            self._invalidate(name)
            loaded = self._primary_for(name)
        if not loaded.protect_ok or loaded.usage is not usage or self._is_revoked(loaded):
            self._refuse(loaded, Operation.PROTECT, usage=usage)
        return loaded

    def _is_revoked(self, loaded: _Loaded) -> bool:
        mirror = self._revocation_mirror
        if mirror is not None:
            # The registry's O(1) index (RevocationRegistry.index), probed directly: is_revoked()
            # validates its arguments on every call, which costs more than
            # the encryption it guards. The names are the registry's
            # ("key:<subject>"), precomputed per cached version.
            names = loaded.revocation_names
            return names[0] in mirror or names[1] in mirror
        is_revoked = self._revocation.is_revoked
        return is_revoked(SubjectKind.KEY, loaded.subject) or is_revoked(
            SubjectKind.KEY, loaded.name
        )

    def _refuse(
        self,
        loaded: _Loaded,
        operation: Operation,
        *,
        usage: KeyUsage,
        allow_compromised: bool = False,
    ) -> None:
        """Raise the precise error for a refused use (usage first, then state)."""
        if loaded.usage is not usage:
            raise KeyUsageError(
                f"key {loaded.name!r} is for {loaded.usage.value}, not {usage.value}",
                key_name=loaded.name,
                version=loaded.version,
                usage=loaded.usage.value,
            )
        compromise, reason = self._revoked(loaded.name, loaded.version)
        state = loaded.state
        if compromise is not None and not state.is_destroyed:
            if compromise:
                state = KeyState.COMPROMISED
            elif state in (KeyState.PRE_ACTIVE, KeyState.ACTIVE, KeyState.SUSPENDED):
                state = KeyState.DEACTIVATED
        if operation is Operation.PROTECT:
            if state is KeyState.ACTIVE and not loaded.is_primary:  # pragma: no cover
                raise KeyStateError(
                    f"key {loaded.name!r} version {loaded.version} is not the primary",
                    key_name=loaded.name,
                    version=loaded.version,
                    state=state.value,
                )
            if state is KeyState.ACTIVE:
                return
        require(
            operation,
            state,
            key_name=loaded.name,
            version=loaded.version,
            allow_compromised=allow_compromised,
            reason=reason,
        )

    def _compromised_now(self, loaded: _Loaded) -> bool:
        """Whether a version is compromised: its state, or the registry's reason for it."""
        return loaded.state is _COMPROMISED or (
            # revoked in the registry for a compromise, not for any reason
            self._is_revoked(loaded) and bool(self._revoked(loaded.name, loaded.version)[0])
        )

    def _count(self, loaded: _Loaded, operation: str, context: bytes, protect: bool) -> None:
        counts = loaded.usage_counts
        buckets = counts.buckets
        bucket = (operation, context)
        found = buckets.get(bucket)
        if found is not None:
            buckets[bucket] = found + 1
        else:
            self._count_new(buckets, bucket)
        if protect:
            counts.total = total = counts.total + 1
            if total >= _FLUSH_EVERY or (
                total & _FLUSH_CHECK_MASK == 0 and time.monotonic() >= self._next_flush
            ):
                self._flush(block=False)

    def encrypt(
        self,
        name: str,
        plaintext: bytes | bytearray | memoryview,
        context: Mapping[str, str] | None = None,
    ) -> bytes | bytearray:
        """Encrypt under the primary version of key ``name``.

        Args:
            name: the key.
            plaintext: what to encrypt.
            context: a str -> str mapping bound as associated data; the same
                mapping must be given to decrypt. Recorded in the audit log:
                **not secret**.

        Returns:
            The self-describing ciphertext (:mod:`keymgmt.keys._format`): a
            ``bytes`` for plaintexts under 64 KiB, a ``bytearray`` from 64 KiB
            on (written in one preallocated buffer; no second copy).

        Raises:
            KeyNotFoundError: no such key.
            KeyStateError: the primary version cannot encrypt (pre-active,
                suspended, deactivated); ``RevokedError`` when revoked or
                compromised; ``DestroyedKeyError`` when destroyed.
            KeyUsageError: the key is not an encryption key.
            InvalidArgumentError: bad context.
        """
        return self._encrypt(name, plaintext, context, _MESSAGE, "encrypt")

    def _encrypt(
        self,
        name: str,
        plaintext: bytes | bytearray | memoryview,
        context: Mapping[str, str] | None,
        payload: PayloadType,
        operation: str,
    ) -> bytes | bytearray:
        # The hot path: the checks of _protector inlined for the common case
        # (cached active primary, no dates pending, not revoked, under its
        # limits); anything else takes _protector's slow path.
        if type(plaintext) is memoryview:
            plaintext = _flat(plaintext)
        if type(name) is not str:
            check_name(name)  # raises the typed error (a dict would not even hash)
        self._store.sync()
        loaded = self._primary.get(name)
        mirror = self._revocation_mirror
        if (
            loaded is None
            or loaded.check_at is not None
            or not loaded.protect_ok
            or loaded.usage is not _ENCRYPT_DECRYPT
            or loaded.usage_counts.total + loaded.base_uses >= loaded.protect_limit
            or mirror is None
            or loaded.revocation_names[0] in mirror
            or loaded.revocation_names[1] in mirror
        ):
            loaded = self._protector(name, _ENCRYPT_DECRYPT)
        ctx = self._encode_context(context) if context else b""
        head = loaded.prefixes[payload]
        aead = loaded.aead
        if aead is None:
            return self._encrypt_other(loaded, plaintext, ctx, head, operation)
        aad = head + ctx if ctx else head
        nonce = self._random(AEAD_NONCE_SIZE)
        try:
            size = len(plaintext)
            if size < _LARGE:
                sealed: bytes = aead.encrypt(nonce, plaintext, aad)
                out: bytes | bytearray = head + nonce + sealed
            else:
                start = len(head) + AEAD_NONCE_SIZE
                out = bytearray(start + size + _TAG)
                out[: len(head)] = head
                out[len(head) : start] = nonce
                aead.encrypt_into(nonce, plaintext, aad, memoryview(out)[start:])
        except (TypeError, ValueError):
            raise InvalidArgumentError("plaintext must be bytes (at most 2**31 bytes)") from None
        # Usage counting, inlined (see _count).
        counts = loaded.usage_counts
        buckets = counts.buckets
        bucket = (operation, ctx)
        found = buckets.get(bucket)
        if found is not None:
            buckets[bucket] = found + 1
        else:
            self._count_new(buckets, bucket)
        counts.total = total = counts.total + 1
        if total >= _FLUSH_EVERY or (
            total & _FLUSH_CHECK_MASK == 0 and time.monotonic() >= self._next_flush
        ):
            self._flush(block=False)
        return out

    def _count_new(self, buckets: dict[tuple[str, bytes], int], bucket: tuple[str, bytes]) -> None:
        if len(buckets) < _MAX_CONTEXT_BUCKETS:
            buckets[bucket] = 1
        else:
            other = (bucket[0], _OTHER_CONTEXT)
            buckets[other] = buckets.get(other, 0) + 1

    def _encrypt_other(
        self,
        loaded: _Loaded,
        plaintext: bytes | bytearray | memoryview,
        ctx: bytes,
        head: bytes,
        operation: str,
    ) -> bytes:
        if not isinstance(plaintext, bytes | bytearray | memoryview):
            raise InvalidArgumentError("plaintext must be bytes")
        if loaded.algorithm is Algorithm.FERNET:
            if ctx:
                raise InvalidArgumentError(
                    "Fernet cannot bind an encryption context; use an AEAD key "
                    "(aes-256-gcm) for contexts",
                    key_name=loaded.name,
                )
            if head[3] != _MESSAGE:
                # Nothing binds the header's payload type to a Fernet token: a
                # message relabelled as a data key would unwrap (key substitution).
                raise InvalidArgumentError(
                    "Fernet cannot bind the payload type, so Fernet keys make no data "
                    "keys; use an AEAD key (aes-256-gcm) for data keys",
                    key_name=loaded.name,
                )
            token = loaded.loaded.encrypt_at_time(
                bytes(plaintext), int(self._clock.now().timestamp())
            )
            self._count(loaded, operation, ctx, True)
            return head + bytes(token)
        body = loaded.handler.encrypt(loaded.algorithm, loaded.loaded, bytes(plaintext), head + ctx)
        self._count(loaded, operation, ctx, True)
        return head + body

    # -- process -----------------------------------------------------------------------

    def _processor(
        self, ciphertext: bytes | bytearray | memoryview, allow_compromised: bool
    ) -> tuple[_Loaded, PayloadType, int]:
        """The version a ciphertext names, checked for processing."""
        self._store.sync()
        try:
            size = _PREFIX_OVERHEAD + ciphertext[_NAME_LENGTH_AT]
            head = ciphertext[:size]
            entry = self._by_prefix.get(head if type(head) is bytes else bytes(head))
        except (LookupError, TypeError):  # IndexError; KeyError from a mapping
            entry = None
            size = 0
        if entry is None:
            entry = self._resolve(ciphertext)
            size = _format.prefix_length(ciphertext)
        loaded, payload = entry
        if loaded.check_at is not None and self._clock.now() >= loaded.check_at:
            loaded = self._refresh(loaded, primary=False)
        if not loaded.process_ok or self._is_revoked(loaded):
            self._refuse(
                loaded, Operation.PROCESS, usage=loaded.usage, allow_compromised=allow_compromised
            )
        return loaded, payload, size

    def _resolve(self, ciphertext: bytes | bytearray | memoryview) -> tuple[_Loaded, PayloadType]:
        try:
            header = _format.parse_header(ciphertext)
        except MalformedInputError:
            raise DecryptionError() from None
        try:
            loaded = self._load(header.name, header.version)
        except (KeyNotFoundError, UnsupportedAlgorithmError):
            raise DecryptionError() from None
        if loaded.key_id != header.key_id or loaded.algorithm is not header.algorithm:
            raise DecryptionError()
        return loaded, header.payload

    def decrypt(
        self,
        ciphertext: bytes | bytearray | memoryview,
        context: Mapping[str, str] | None = None,
        *,
        allow_compromised: bool = False,
    ) -> bytes:
        """Decrypt a ciphertext made by :meth:`encrypt`, with the same context.

        The ciphertext names its key and version; no key name is needed.

        Raises:
            DecryptionError: tampered, truncated, foreign, or the context
                differs (one opaque error).
            DestroyedKeyError: the version it names was destroyed (says which).
            RevokedError: the version is compromised and ``allow_compromised``
                was not given.
        """
        return self._decrypt(ciphertext, context, allow_compromised, _MESSAGE, "decrypt")

    def _decrypt(
        self,
        ciphertext: bytes | bytearray | memoryview,
        context: Mapping[str, str] | None,
        allow_compromised: bool,
        payload: PayloadType,
        operation: str,
    ) -> bytes:
        # The body of _processor, inlined: this is the hot path.
        if type(ciphertext) is memoryview:
            ciphertext = _flat(ciphertext)
        self._store.sync()
        try:
            size = _PREFIX_OVERHEAD + ciphertext[_NAME_LENGTH_AT]
            cut = ciphertext[:size]
            entry = self._by_prefix.get(cut if type(cut) is bytes else bytes(cut))
        except (LookupError, TypeError):  # IndexError; KeyError from a mapping
            entry = None
        if entry is None:
            if not isinstance(ciphertext, bytes | bytearray | memoryview):
                raise DecryptionError()
            entry = self._resolve(ciphertext)
            size = _format.prefix_length(ciphertext)
        loaded, found = entry
        if loaded.check_at is not None and self._clock.now() >= loaded.check_at:
            loaded = self._refresh(loaded, primary=False)
        mirror = self._revocation_mirror
        if (
            not loaded.process_ok
            or mirror is None
            or loaded.revocation_names[0] in mirror
            or loaded.revocation_names[1] in mirror
        ) and (not loaded.process_ok or self._is_revoked(loaded)):
            self._refuse(
                loaded, Operation.PROCESS, usage=loaded.usage, allow_compromised=allow_compromised
            )
        if found is not payload:
            raise DecryptionError()
        try:
            ctx = self._encode_context(context) if context else b""
        except InvalidArgumentError:
            raise DecryptionError() from None
        head = loaded.prefixes[payload]
        aead = loaded.aead
        if aead is not None:
            end = size + AEAD_NONCE_SIZE
            length = len(ciphertext)
            if length < end + _TAG:
                raise DecryptionError()
            # Small inputs: slicing copies less than building memoryviews costs.
            view = memoryview(ciphertext) if length >= _LARGE else ciphertext
            try:
                plaintext: bytes = aead.decrypt(
                    view[size:end], view[end:], head + ctx if ctx else head
                )
            except (InvalidTag, ValueError):
                raise DecryptionError() from None
        elif loaded.algorithm is Algorithm.FERNET:
            # Fernet binds neither a context nor the payload type (see
            # _encrypt_other): Fernet keys hold messages only.
            if ctx or payload is not _MESSAGE:
                raise DecryptionError()
            token = bytes(ciphertext[size:])
            # Fernet's base64 decoder skips stray bytes and ignores unused
            # bits; keymgmt's parser is strict: only the canonical encoding.
            try:
                canonical = base64.urlsafe_b64encode(base64.urlsafe_b64decode(token)) == token
            except ValueError:
                canonical = False
            if not canonical:
                raise DecryptionError()
            try:
                plaintext = loaded.loaded.decrypt(token)
            except (InvalidToken, ValueError, TypeError):
                raise DecryptionError() from None
        else:
            if loaded.usage is not _ENCRYPT_DECRYPT:
                self._refuse(loaded, Operation.PROCESS, usage=_ENCRYPT_DECRYPT)
            try:
                plaintext = loaded.handler.decrypt(
                    loaded.algorithm, loaded.loaded, bytes(ciphertext[size:]), head + ctx
                )
            except KeyMgmtError:
                raise DecryptionError() from None
        if allow_compromised and self._compromised_now(loaded):
            operation += "-compromised"
        buckets = loaded.usage_counts.buckets
        bucket = (operation, ctx)
        seen = buckets.get(bucket)
        if seen is not None:
            buckets[bucket] = seen + 1
        else:
            self._count_new(buckets, bucket)
        return plaintext

    # -- envelope ----------------------------------------------------------------------

    def generate_data_key(self, name: str, context: Mapping[str, str] | None = None) -> DataKey:
        """A fresh 256-bit data key: its plaintext and its ciphertext under ``name``.

        Encrypt bulk data locally with ``plaintext``, keep ``wrapped`` beside
        it, and throw the plaintext away; :meth:`decrypt_data_key` returns it.

        Raises:
            As :meth:`encrypt`; ``InvalidArgumentError`` for a Fernet key (Fernet
            cannot bind the payload type, so Fernet keys make no data keys).
        """
        key = self._random(_DATA_KEY_SIZE)
        wrapped = bytes(
            self._encrypt(name, key, context, PayloadType.DATA_KEY, "generate-data-key")
        )
        header = _format.parse_header(wrapped)
        # Logged for compromise reports as the policy says (keymgmt.keys._datakeys).
        self._log_data_key(header.name, header.version, wrapped)
        return DataKey(
            plaintext=SecretBytes(key),
            wrapped=wrapped,
            key_name=header.name,
            key_version=header.version,
        )

    def data_keys_issued(
        self, name: str, version: int | None = None
    ) -> builtins.list[_datakeys.DataKeyIssue]:
        """The data keys generated under ``name`` (one version, or all), oldest first.

        A data key moved to a version by :meth:`rewrap` counts as generated
        under it (its new wrapped form is logged). Flushes this process's
        pending issuances first; another process's appear once it flushes
        (see :mod:`keymgmt.keys._datakeys`).

        Raises:
            InvalidArgumentError: an invalid name or version.
        """
        check_name(name)
        if version is not None:
            _check_version(name, version)
        self.flush_usage()
        return _datakeys.issued(self._store, name, version)

    def decrypt_data_key(
        self,
        wrapped: bytes | bytearray | memoryview,
        context: Mapping[str, str] | None = None,
        *,
        allow_compromised: bool = False,
    ) -> SecretBytes:
        """The plaintext of a wrapped data key from :meth:`generate_data_key`.

        Raises:
            As :meth:`decrypt` (a message ciphertext is refused with DecryptionError).
        """
        return SecretBytes(
            self._decrypt(
                wrapped, context, allow_compromised, PayloadType.DATA_KEY, "decrypt-data-key"
            )
        )

    def rewrap(
        self,
        ciphertext: bytes | bytearray | memoryview,
        context: Mapping[str, str] | None = None,
        *,
        allow_compromised: bool = False,
    ) -> bytes:
        """Re-encrypt a ciphertext or wrapped data key under its key's current primary.

        The plaintext never reaches the caller. The context stays the same.

        Raises:
            As :meth:`decrypt` for the old version and :meth:`encrypt` for the new.
        """
        if not isinstance(ciphertext, bytes | bytearray | memoryview):
            raise DecryptionError()
        if type(ciphertext) is memoryview:
            ciphertext = _flat(ciphertext)
        loaded, payload, _ = self._processor(ciphertext, allow_compromised)
        plaintext = self._decrypt(ciphertext, context, allow_compromised, payload, "rewrap-from")
        moved = bytes(self._encrypt(loaded.name, plaintext, context, payload, "rewrap-to"))
        if payload is PayloadType.DATA_KEY:
            # Logged under the version it now needs, as generate_data_key logs
            # a new one: a compromise report of that version must list it.
            header = _format.parse_header(moved)
            self._log_data_key(header.name, header.version, moved)
        return moved

    @property
    def data_key_log_policy(self) -> _datakeys.DataKeyLogPolicy:
        """How the data keys this store hands out are logged (see :mod:`keymgmt.keys._datakeys`).

        ``each`` by default: logged durably before each data key is returned.
        Setting it writes what is pending first.

        Raises:
            InvalidArgumentError: (setting) not a ``DataKeyLogPolicy``.
            KeyMgmtError: (setting) the pending issuances could not be written
                (the policy is unchanged).
        """
        return self._data_key_policy

    @data_key_log_policy.setter
    def data_key_log_policy(self, policy: _datakeys.DataKeyLogPolicy) -> None:
        candidate: object = policy
        if not isinstance(candidate, _datakeys.DataKeyLogPolicy):
            raise InvalidArgumentError("data_key_log_policy takes a DataKeyLogPolicy")
        self.flush_usage()
        self._data_key_policy = policy

    def _log_data_key(self, name: str, version: int, wrapped: bytes) -> None:
        """Log one issued data key as the policy says; raises (``each``) if it is not logged."""
        policy = self._data_key_policy
        entry: _datakeys.Pending = (name, version, wrapped, current_actor(), self._clock.now())
        if policy.mode is _datakeys.DataKeyLogMode.EACH:
            try:
                self._data_key_writer.write(
                    self._store, entry, self._refuse_compromised_in, self._store.actor
                )
            except RevokedError:
                self._invalidate(name)  # the cache said usable: reload it
                raise
            return
        pending = self._data_keys.pending
        pending.append(entry)  # one append, no store write
        if len(pending) >= policy.batch_size or entry[4] - pending[0][4] >= policy.interval:
            self._flush(block=False)

    def _refuse_compromised_in(self, txn: Txn, name: str, version: int, cached: bool) -> None:
        """Raise RevokedError when ``name#version`` is compromised, checked inside ``txn``.

        The version record and its (and its key's) revocation entries are
        checked at ``txn``'s commit, so a compromise committed between the
        encryption and this write makes the write run again (and refuse),
        and one committed after it lists the data key (its listing of the
        log is checked at its commit). When ``cached`` (the transaction's
        first run), they are not read here: what they said and their
        revisions are taken from :meth:`_data_key_check` and the commit
        expects those revisions (``txn.expect``), which is the same check as
        reading them (a record at the revision it was read at says what it
        said then; neither kind of record is ever deleted, so a revision is
        never reused). A stale entry conflicts: the run after it reads.
        """
        subject = _vname(name, version)
        if cached:
            check = self._data_key_check(name, version)
            for kind, record_name, revision in check.expected:
                txn.expect(kind, record_name, revision)
            reason = check.reason
        else:
            with self._lock:
                self._data_key_checks.pop((name, version), None)  # stale: read again later
            reason = _compromise_reason(
                txn.get_json(VERSION_KIND, subject),
                [
                    txn.get_json(REVOCATION_KIND, revocation_record_name(SubjectKind.KEY, target))
                    for target in (subject, name)
                ],
            )
        if reason is not None:
            raise RevokedError(
                f"key {name!r} version {version} is compromised ({reason}); "
                "the data key was not handed out",
                key_name=name,
                version=version,
                state=KeyState.COMPROMISED.value,
                reason=reason,
            )

    def _data_key_check(self, name: str, version: int) -> _DataKeyCheck:
        """What ``name#version``'s data-key transactions expect, cached per version.

        Read outside any transaction (records and revisions), refreshed when
        the registry's key revocations changed, and dropped when the version
        record is written here (a usage flush) or the key is invalidated.
        """
        changes = getattr(self._revocation, "changes", None)
        count = changes(SubjectKind.KEY) if changes is not None else None
        check = self._data_key_checks.get((name, version))
        if check is not None and check.changes == count:
            return check
        subject = _vname(name, version)
        epoch = self._epoch
        stored, revision = self._store.get_json_with_revision(VERSION_KIND, subject)
        expected = [(VERSION_KIND, subject, revision)]
        entries = []
        for target in (subject, name):
            record_name = revocation_record_name(SubjectKind.KEY, target)
            entry, entry_revision = self._store.get_json_with_revision(REVOCATION_KIND, record_name)
            entries.append(entry)
            expected.append((REVOCATION_KIND, record_name, entry_revision))
        check = _DataKeyCheck(tuple(expected), _compromise_reason(stored, entries), count)
        with self._lock:
            if self._epoch == epoch:  # else an invalidation or a flush overtook the reads
                self._data_key_checks[(name, version)] = check
        return check

    # -- key pairs: sign, verify, public key, import ------------------------------------

    def sign(self, name: str, data: bytes | bytearray | memoryview) -> bytes:
        """Sign ``data`` with the primary version of key pair ``name``.

        Returns:
            The keymgmt signature envelope (payload type 3): the header
            naming key, key id and version, then the plain signature, which
            ``keymgmt.public.Signature.decode(...).raw`` extracts for other tools.

        Raises:
            KeyNotFoundError: no such key.
            KeyUsageError: the key is not a signing key.
            KeyStateError: the primary cannot sign (``RevokedError`` when
                revoked, ``DestroyedKeyError`` when destroyed).
            InvalidArgumentError: ``data`` is not bytes.
        """
        message = require_bytes(data, "data")
        loaded = self._protector(name, _SIGN_VERIFY)
        sign = getattr(loaded.handler, "sign", None)
        if sign is None:  # pragma: no cover - every signing handler has sign()
            raise KeyUsageError(f"key {name!r} cannot sign", key_name=name)
        raw: bytes = sign(loaded.algorithm, loaded.loaded, message)
        self._count(loaded, "sign", b"", True)
        return loaded.prefixes[_SIGNATURE] + raw

    def verify(
        self,
        name: str,
        data: bytes | bytearray | memoryview,
        signature: bytes | bytearray | memoryview,
        *,
        version: int | None = None,
        allow_compromised: bool = False,
    ) -> None:
        """Check a signature made by :meth:`sign` (or a detached one with ``version``).

        Args:
            name: the key the signature must come from.
            data: the signed data.
            signature: a keymgmt signature envelope; or, with ``version``, the
                plain (detached) signature bytes.
            version: verify a detached signature with this version.
            allow_compromised: also accept a compromised version (to migrate).

        Raises:
            InvalidSignatureError: it does not verify, or names another key (opaque).
            KeyNotFoundError: no such key (or no such explicit ``version``).
            KeyUsageError: the key is not a signing key.
            DestroyedKeyError: the version was destroyed.
            RevokedError: the version is compromised and that was not allowed.
            InvalidArgumentError: ``data`` is not bytes, or ``version`` is not
                a positive int.
        """
        if not isinstance(signature, _BYTES_LIKE):
            raise InvalidSignatureError()
        if type(signature) is memoryview:
            signature = _flat(signature)  # slices and lengths in bytes, as decrypt takes it
        message = data if type(data) is bytes else require_bytes(data, "data")
        self._store.sync()
        # Fast path, as for decrypt: the exact header of a cached version of
        # this key needs no parsing (RSA verify leaves ~3 µs for all of this).
        size = _format.prefix_length(signature) if version is None else 0
        if size:
            head = signature[:size]
            entry = self._by_prefix.get(head if type(head) is bytes else bytes(head))
        else:
            entry = None
        if entry is not None and entry[1] is _SIGNATURE and entry[0].name == name:
            loaded = entry[0]
            raw = signature[size:]
        elif version is None:
            check_name(name)
            try:
                header = _format.parse_header(signature)
            except MalformedInputError:
                raise InvalidSignatureError() from None
            if header.payload is not _SIGNATURE or header.name != name:
                raise InvalidSignatureError()
            cut = bytes(signature[: header.prefix_length])
            entry = self._by_prefix.get(cut)
            if entry is None:
                try:
                    loaded = self._load(name, header.version)
                except KeyNotFoundError:
                    if self._store.get(KEY_KIND, name) is None:
                        raise
                    raise InvalidSignatureError() from None
                if loaded.key_id != header.key_id or loaded.algorithm is not header.algorithm:
                    raise InvalidSignatureError()
            else:
                loaded = entry[0]
            raw = bytes(signature[header.prefix_length :])
        else:
            check_name(name)
            loaded = self._load(name, _check_version(name, version))
            raw = bytes(signature)
        if loaded.check_at is not None and self._clock.now() >= loaded.check_at:
            loaded = self._refresh(loaded, primary=False)
        if not loaded.process_ok or loaded.usage is not _SIGN_VERIFY or self._is_revoked(loaded):
            self._refuse(
                loaded, Operation.PROCESS, usage=_SIGN_VERIFY, allow_compromised=allow_compromised
            )
        verifier = loaded.verifier
        if verifier is not None:
            try:
                verifier(raw if type(raw) is bytes else bytes(raw), message)
            except (InvalidSignature, ValueError, TypeError):
                raise InvalidSignatureError() from None
        else:
            check = getattr(loaded.handler, "verify", None)
            if check is None:  # pragma: no cover - every signing handler has verify()
                raise KeyUsageError(f"key {name!r} cannot verify", key_name=name)
            check(loaded.algorithm, loaded.loaded, bytes(raw), message)
        self._count(
            loaded,
            "verify-compromised"
            if allow_compromised and self._compromised_now(loaded)
            else "verify",
            b"",
            False,
        )

    def public_key(self, name: str, version: int | None = None) -> PublicKey:
        """The public half of a key-pair version, with its identity (name, version, key id).

        What a client encrypts to, verifies with, or is handed to publish.
        A **compromised** version's public key is refused (also when the
        registry alone says so): whoever encrypts to it writes for the
        attacker, and whoever verifies with it accepts the attacker's
        signatures. Every other version with material answers: pre-active
        (published ahead of its activation), active, suspended, and
        deactivated or revoked for another reason (verifiers need a retired
        version's public half for what it signed). An investigation gets a
        compromised version's public half from :meth:`forensic_public_key`.

        Args:
            name: the key pair.
            version: the version (default: the primary).

        Raises:
            KeyNotFoundError: no such key or version.
            KeyUsageError: the key is symmetric (it has no public half).
            RevokedError: the version is compromised (``reason`` says why;
                the message names :meth:`forensic_public_key`).
            DestroyedKeyError: the version was destroyed.
            InvalidArgumentError: an invalid name, or ``version`` is not a positive int.
        """
        from keymgmt.public import PublicKey

        loaded, state, reason = self._public_version(name, version)
        if state is _COMPROMISED:
            raise RevokedError(
                f"key {name!r} version {loaded.version} is compromised ({reason}): its public "
                "key is not handed out to encrypt to, verify with or publish; for an "
                f"investigation use km.keys.forensic_public_key({name!r}, {loaded.version})",
                key_name=name,
                version=loaded.version,
                state=state.value,
                reason=reason,
            )
        return PublicKey(
            algorithm=loaded.algorithm,
            key=self._public_of(loaded),
            key_name=name,
            version=loaded.version,
            key_id=loaded.key_id.hex(),
            usage=loaded.usage,
        )

    def forensic_public_key(self, name: str, version: int) -> ForensicPublicKey:
        """The public half of one key-pair version whatever its state, for an investigation.

        The explicit way to the public key of a **compromised** version,
        which :meth:`public_key` refuses: which certificates and exports
        bear it, what it signed. The :class:`~keymgmt.public.ForensicPublicKey`
        it returns carries the version's state and revocation reason and
        cannot encrypt, verify or export itself (use ``km.verify(...,
        allow_compromised=True)`` to check what the version signed). The
        version must be named: there is no default.

        Args:
            name: the key pair.
            version: the version to examine.

        Raises:
            KeyNotFoundError: no such key or version.
            KeyUsageError: the key is symmetric (it has no public half).
            DestroyedKeyError: the version was destroyed (its key is gone).
            InvalidArgumentError: an invalid name, or ``version`` is not a positive int.
        """
        from keymgmt.public import ForensicPublicKey

        if version is None:
            raise InvalidArgumentError(
                "forensic_public_key names the version to examine (no default)", key_name=name
            )
        loaded, state, reason = self._public_version(name, version)
        return ForensicPublicKey(
            algorithm=loaded.algorithm,
            key=self._public_of(loaded),
            key_name=name,
            version=loaded.version,
            key_id=loaded.key_id.hex(),
            usage=loaded.usage,
            state=state,
            revocation_reason=reason,
        )

    def _public_version(
        self, name: str, version: int | None
    ) -> tuple[_Loaded, KeyState, str | None]:
        """A key-pair version with material, its effective state and revocation reason.

        The state counts the registry's revocations and the dates that have
        passed since the version was cached (a scheduled destruction now due
        refuses it).

        Raises:
            KeyNotFoundError, KeyUsageError, DestroyedKeyError, InvalidArgumentError.
        """
        check_name(name)
        if version is not None:
            _check_version(name, version)
        self._store.sync()
        loaded = self._load(name, version)
        if loaded.algorithm.kind is KeyKind.SYMMETRIC:
            raise KeyUsageError(f"key {name!r} is symmetric and has no public key", key_name=name)
        if loaded.check_at is not None and self._clock.now() >= loaded.check_at:
            loaded = self._refresh(loaded, primary=version is None)
        state = loaded.state
        compromise, reason = self._revoked(name, loaded.version)
        if compromise and not state.is_destroyed:
            state = _COMPROMISED
        if state.is_destroyed or loaded.loaded is None:
            require(Operation.PROCESS, state, key_name=name, version=loaded.version)
        if state is _COMPROMISED and not compromise:
            # Compromised by its record alone: the registry's reason (if any)
            # is another one (a whole-key "superseded", say); the record's counts.
            reason = self._stored_reason(name, loaded.version)
        return loaded, state, reason

    def _stored_reason(self, name: str, version: int) -> str:
        """The reason a version record gives for its compromise (not in the registry)."""
        value = self._store.get_json(VERSION_KIND, _vname(name, version))
        stored = None if value is None else _VersionRecord.from_json(value).reason
        return stored or RevocationReason.KEY_COMPROMISE.value

    def _public_of(self, loaded: _Loaded) -> Any:
        public_of = getattr(loaded.handler, "public_key", None)
        if public_of is None:  # pragma: no cover - every key-pair handler has public_key()
            raise KeyUsageError(f"key {loaded.name!r} has no public key", key_name=loaded.name)
        return public_of(loaded.algorithm, loaded.loaded)

    def agree(
        self,
        name: str,
        peer: Any,
        *,
        info: bytes,
        length: int = 32,
    ) -> SecretBytes:
        """Derive a key shared with ``peer``, using the primary of key-agreement key ``name``.

        X25519 or ECDH P-256, then HKDF-SHA-256 over a label, both public
        keys and ``info`` (:func:`keymgmt.keys._asymmetric.agree`): the raw
        DH output never leaves. The peer derives the same key from its
        private key, this key's public half (:meth:`public_key`) and the
        same ``info``.

        Args:
            name: a key pair created with usage ``key-agreement``.
            peer: the peer's public key (a :class:`keymgmt.public.PublicKey`
                or a ``cryptography`` public key of the same algorithm).
            info: binds the derived key to its purpose; both sides pass the same.
            length: 16 to 64 bytes.

        Raises:
            KeyNotFoundError: no such key.
            KeyUsageError: not a key-agreement key, or ``peer`` is a
                :class:`~keymgmt.public.PublicKey` whose usage is another.
            KeyStateError: the primary cannot be used (``RevokedError``,
                ``DestroyedKeyError``).
            InvalidArgumentError: ``peer`` is not a key of the same algorithm,
                ``info`` is not bytes, or a bad ``length``.
        """
        from keymgmt.public import PublicKey

        info = require_bytes(info, "info")
        loaded = self._protector(name, KeyUsage.KEY_AGREEMENT)
        derive = getattr(loaded.handler, "agree", None)
        if derive is None:  # pragma: no cover - every agreement handler has agree()
            raise KeyUsageError(f"key {name!r} cannot agree", key_name=name)
        if isinstance(peer, PublicKey):
            if peer.usage is not None and peer.usage is not KeyUsage.KEY_AGREEMENT:
                # The peer's key is for signatures or encryption: a DH with it
                # uses that key outside its usage (cross-protocol).
                raise KeyUsageError(
                    f"the peer key {peer.kid or peer.algorithm.value} is for "
                    f"{peer.usage.value}, not key-agreement",
                    key_name=peer.key_name,
                    usage=peer.usage.value,
                )
            key = peer.key
        else:
            key = peer
        secret: SecretBytes = derive(loaded.algorithm, loaded.loaded, key, info=info, length=length)
        self._count(loaded, "agree", b"", True)
        return secret

    def import_private_key(
        self,
        name: str,
        data: bytes,
        *,
        passphrase: str | bytes | SecretBytes | None = None,
        algorithm: Algorithm | str | None = None,
        usage: KeyUsage | str | None = None,
        expiry_date: _dt.datetime | None = None,
        policy: RotationPolicy | None = None,
    ) -> KeyInfo:
        """Import a PEM or DER private key (encrypted or not) as a new key pair, marked imported.

        Args:
            name: the new key's name.
            data: the private key, PEM or DER, PKCS#8 or traditional.
            passphrase: opens an encrypted key.
            algorithm: store it as this algorithm (default: what the key is;
                e.g. pass ``ecdh-p256`` for a P-256 agreement key).
            usage: the key's usage (default: the algorithm's default).

        Raises:
            InvalidArgumentError: missing/unneeded passphrase, or the key is
                not of ``algorithm``.
            DecryptionError: wrong passphrase.
            MalformedInputError: not a private key.
            UnsupportedAlgorithmError: a key keymgmt does not manage.
            AlreadyExistsError: a key with this name exists.
        """
        from keymgmt.keys import _asymmetric
        from keymgmt.pem import load_private_key

        found, private = load_private_key(data, passphrase=passphrase)
        target = found if algorithm is None else Algorithm.parse(algorithm)
        if not _asymmetric.same_family(target, found):
            raise InvalidArgumentError(
                f"the key is a {found.value} key, not {target.value}", key_name=name
            )
        return self.import_key(
            name,
            _asymmetric.material_from_private(private),
            algorithm=target,
            usage=usage,
            expiry_date=expiry_date,
            policy=policy,
        )

    # -- usage accounting --------------------------------------------------------------

    def flush_usage(self) -> None:
        """Write unflushed use counts and their aggregated ``key.usage`` audit entries.

        Flushes run one at a time: this waits for a flush another thread has
        in flight, then writes what is still pending (so once it returns,
        every use and data key this process counted before the call is in
        the store).
        """
        self._flush(block=True)

    def _flush(self, *, block: bool) -> None:
        """Flush under the flush lock; ``block=False`` (the hot path's periodic
        trigger) skips the flush when another is in flight (a later trigger
        writes what it left)."""
        if not self._flush_lock.acquire(blocking=block):
            return
        try:
            self._flush_locked()
        finally:
            self._flush_lock.release()

    def _flush_locked(self) -> None:
        with self._lock:
            self._next_flush = time.monotonic() + _FLUSH_INTERVAL
            snapshot = {
                key: (usage.total, dict(usage.buckets))
                for key, usage in self._usage.items()
                if usage.total or usage.buckets
            }
            issued = self._data_keys.take()
        if not snapshot and not issued:
            return

        def run(txn: Txn) -> None:
            for (name, number), (total, buckets) in sorted(snapshot.items()):
                value = txn.get_json(VERSION_KIND, _vname(name, number))
                if value is not None and total:
                    record = _VersionRecord.from_json(value)
                    txn.put_json(
                        VERSION_KIND,
                        _vname(name, number),
                        attrs.evolve(record, uses=record.uses + total).to_json(),
                    )
                for (operation, ctx), count in sorted(buckets.items()):
                    # Aggregates of many callers' uses: they name the process's
                    # own actor, never whichever caller's context (see
                    # KeyManager.acting_as) happened to trigger the flush.
                    txn.audit(
                        "key.usage",
                        _vname(name, number),
                        actor=self._store.actor,
                        use=operation,
                        count=count,
                        context="<more contexts>"
                        if ctx == _OTHER_CONTEXT
                        else _format.context_json(ctx),
                    )
            _datakeys.DataKeyLog.stage(txn, issued, self._store.actor)

        try:
            self._store.transact(run)
        except BaseException:
            self._data_keys.put_back(issued)
            raise
        with self._lock:
            self._epoch += 1  # the version records' use counts moved
            for key, (total, buckets) in snapshot.items():
                self._meta.pop(key[0], None)
                usage = self._usage[key]
                usage.total -= total
                for bucket, count in buckets.items():
                    left = usage.buckets.get(bucket, 0) - count
                    if left > 0:
                        usage.buckets[bucket] = left
                    else:
                        usage.buckets.pop(bucket, None)
                loaded = self._versions.get(key)
                if loaded is not None:
                    loaded.base_uses += total
                if total:
                    self._data_key_checks.pop(key, None)  # its version record was written

    def close(self) -> None:
        """Flush use counts (called by ``km.close()``)."""
        self.flush_usage()

    # -- use by keymgmt's other parts (PKI signing, KDC distribution; see _plumbing) ---

    def _use(
        self,
        name: str,
        version: int | None = None,
        *,
        usage: KeyUsage,
        operation: Operation = Operation.PROTECT,
    ) -> LoadedVersion:
        """A version checked for ``operation`` with ``usage``, ready to use in this process.

        Private: keymgmt's parts call it through
        :func:`keymgmt.keys._plumbing.use_version` (the PKI signs certificates
        with a CA's key pair through it) instead of reading key records
        themselves. The returned ``loaded`` holds the key object itself (a
        key pair's private key), outside :mod:`keymgmt.hazmat`'s opt-in.
        The checks are an encryption's or a decryption's: the key's usage,
        the version's effective state for ``operation`` (dates and the
        revocation registry included; a compromised version is refused) and,
        for the primary, a rotation that is due. Nothing is audited here: the
        caller audits what it does with the version. A cached version costs
        no store read.

        Args:
            name: the key.
            version: the version (default: the primary).
            usage: the usage the caller needs (``KeyUsageError`` otherwise).
            operation: ``Operation.PROTECT`` (encrypt, sign: the version
                must be active; without ``version`` the primary) or
                ``Operation.PROCESS`` (decrypt, verify).

        Returns:
            the :class:`LoadedVersion`.

        Raises:
            KeyNotFoundError: no such key or version.
            KeyUsageError: the key is not for ``usage``.
            RevokedError: the version is revoked or compromised.
            DestroyedKeyError: the version's material was destroyed.
            KeyStateError: any other state ``operation`` does not accept.
            InvalidArgumentError: an invalid name or version, or an operation
                other than protect or process.
        """
        try:
            usage = KeyUsage(usage)
        except ValueError:
            raise InvalidArgumentError(f"unknown key usage {usage!r}", key_name=name) from None
        try:
            operation = Operation(operation)
        except ValueError:
            raise InvalidArgumentError(
                f"use() is for protect or process, not {operation!r}"
            ) from None
        if operation is Operation.PROTECT and version is None:
            loaded = self._protector(name, usage)  # syncs; rotation when due
        elif operation in (Operation.PROTECT, Operation.PROCESS):
            check_name(name)
            if version is not None:
                _check_version(name, version)
            self._store.sync()
            loaded = self._load(name, version)
            if loaded.check_at is not None and self._clock.now() >= loaded.check_at:
                loaded = self._refresh(loaded, primary=version is None)
            accepted = loaded.state is KeyState.ACTIVE or (
                operation is Operation.PROCESS and loaded.process_ok
            )
            if loaded.usage is not usage or not accepted or self._is_revoked(loaded):
                self._refuse(loaded, operation, usage=usage)
        else:
            raise InvalidArgumentError(f"use() is for protect or process, not {operation.value}")
        return _handle(loaded)

    def _material_for_distribution(self, name: str, *, recipient: str) -> DistributedMaterial:
        """The raw material of ``name``'s primary version, to be re-encrypted to ``recipient``.

        Private: the KDC, which seals the material to a principal, calls it
        through :func:`keymgmt.keys._plumbing.material_for_distribution`: the one place
        symmetric material leaves the key store other than an export. The
        version is checked as for an encryption (a symmetric
        encrypt-decrypt key; the primary, active, not revoked; a rotation
        that is due happens first). Each hand-out is counted like an
        encryption's use and audited in the aggregated ``key.usage``
        entries as ``use="distribute"`` with the recipient as context (no
        store write of its own); it does not count towards the version's
        rotation limit (the recipient's own uses are not known here).

        Args:
            name: the key.
            recipient: who the material is for (recorded in the audit log).

        Returns:
            the version and its material.

        Raises:
            KeyNotFoundError: no such key.
            KeyUsageError: not a symmetric encrypt-decrypt key.
            RevokedError: the primary is revoked or compromised.
            KeyStateError: the primary cannot encrypt (pre-active, suspended,
                deactivated, destroyed).
            InvalidArgumentError: an invalid name or an empty recipient.
        """
        if not recipient:
            raise InvalidArgumentError("a distribution needs a recipient")
        loaded = self._protector(name, KeyUsage.ENCRYPT_DECRYPT)
        if loaded.algorithm.kind is not KeyKind.SYMMETRIC:
            raise KeyUsageError(
                f"key {name!r} is not symmetric: only symmetric keys are distributed",
                key_name=name,
                version=loaded.version,
                usage=loaded.usage.value,
            )
        material: bytes | None = getattr(loaded, "material", None)
        if material is None:
            # Read once per cached version (the cache entry is replaced on
            # any change to the key, so this never outlives a destruction).
            value = self._store.get_json(VERSION_KIND, loaded.subject)
            material = None if value is None else _VersionRecord.from_json(value).material
            if material is None:
                raise KeyStateError(
                    f"key {name!r} version {loaded.version} has no material",
                    key_name=name,
                    version=loaded.version,
                )
            loaded.material = material
        self._count(loaded, "distribute", self._encode_context({"recipient": recipient}), False)
        return DistributedMaterial(version=_handle(loaded), material=SecretBytes(material))

    # -- material for export (hazmat and wrapped export) -----------------------------------

    def _material(
        self, name: str, version: int | None, operation: str
    ) -> tuple[_KeyRecord, _VersionRecord]:
        """Read a version's material for export, checking state; audits the export."""
        check_name(name)
        self._apply_due(name)

        def run(txn: Txn) -> tuple[_KeyRecord, _VersionRecord]:
            key = self._txn_key(txn, name)
            (record,) = self._txn_versions(txn, key, key.primary if version is None else version)
            state, reason = self._effective(key, record, txn.now)
            require(Operation.EXPORT, state, key_name=name, version=record.version, reason=reason)
            if record.material is None:  # pragma: no cover - destroyed is refused above
                raise KeyStateError("no material", key_name=name, version=record.version)
            txn.audit(operation, _vname(name, record.version), algorithm=key.algorithm.value)
            return key, record

        return self._store.transact(run)

    def export_wrapped(
        self, name: str, version: int | None = None, *, kek: bytes | SecretBytes
    ) -> WrappedKey:
        """Export a version's material wrapped under a key-encryption key (RFC 5649).

        Args:
            name: the key.
            version: the version (default: the primary).
            kek: the recipient's 16, 24 or 32-byte key-encryption key.

        Raises:
            KeyNotFoundError: no such key or version.
            KeyStateError: the version is pre-active, compromised or destroyed.
            InvalidArgumentError: bad KEK size.
        """
        from keymgmt.keys._export import _kek_bytes, wrap_rfc5649

        _kek_bytes(kek)
        key, record = self._material(name, version, "key.export-wrapped")
        assert record.material is not None
        return wrap_rfc5649(
            record.material, kek, algorithm=key.algorithm, name=name, version=record.version
        )

    def export_sealed(
        self, name: str, version: int | None = None, *, recipient: X25519PublicKey
    ) -> WrappedKey:
        """Export a version's material sealed to an X25519 public key (HPKE, RFC 9180).

        The recipient opens it with :func:`keymgmt.keys.open_sealed_export`
        or any HPKE implementation (see :mod:`keymgmt.keys._export`).

        Raises:
            KeyNotFoundError: no such key or version.
            KeyStateError: the version is pre-active, compromised or destroyed.
            InvalidArgumentError: ``recipient`` is not an X25519 public key, or
                a low-order point (nothing is read or audited).
        """
        from keymgmt.keys._export import check_recipient, seal_export

        check_recipient(recipient)  # before the material is read and the export audited
        key, record = self._material(name, version, "key.export-sealed")
        assert record.material is not None
        return seal_export(
            record.material, recipient, algorithm=key.algorithm, name=name, version=record.version
        )


def key_store_of(keys: object) -> KeyStore:
    """The :class:`KeyStore` of a :class:`~keymgmt.KeyManager` (or the store itself).

    For the export functions that take either (``keymgmt.pem``, ``keymgmt.hazmat``).

    Raises:
        InvalidArgumentError: ``keys`` is neither.
    """
    if isinstance(keys, KeyStore):
        return keys
    store = getattr(keys, "keys", None)
    if isinstance(store, KeyStore):
        return store
    raise InvalidArgumentError(f"expected a KeyManager or its km.keys, not {type(keys).__name__}")
