"""The key distribution center (``km.kdc``): principals, policy, grants, and the server side.

The protocol itself is sans-IO (:mod:`keymgmt.kdc._protocol`); this class
is the stateful part that answers it. :meth:`KeyDistributionCenter.handle`
takes request bytes and returns reply bytes (an ERROR message when it
refuses); it reads time from the injected clock and keys from the store.

Record kinds (all sealed by the keyring):

``kdc-principal`` / *name*
    a principal: its credential kind, the long-term symmetric key (never
    leaves the store except once at registration or credential rotation)
    or the certificate DER, whether it is enabled, its credential version.
``kdc-policy`` / ``policy``
    the authorization :class:`~keymgmt.kdc.Policy` as one JSON document.
``kdc-grant`` / ``key:<name>:<id>`` or ``ticket:<client>:<id>``
    one record per key grant or ticket issued: who got what, when, until
    when (:meth:`GrantRecord.to_bytes`: length-prefixed fields, not JSON;
    older JSON records are still read). :meth:`compromise` reads them to
    say what was exposed. A key grant's name holds the key name, not the
    version (older records, ``key:<name>#<version>:<id>``, are still read):
    the id comes from the request, so a replay after a rotation names the
    same record. An authentic request that is refused leaves a marker of
    kind ``refused`` under its grant's name (so its replay, anywhere, once
    what refused it changed, conflicts with it); :meth:`grants` skips them.
    Not for a principal revoked for good (nothing about it can change).
``kdc-meta`` / ``signing-key``
    an Ed25519 signing key, only for a KDC built without a ``signer`` (the
    façade's KDC signs with the managed key pair ``kdc-signing`` in
    ``km.keys``).

Every decision is audited: grants as ``kdc.grant-key`` / ``kdc.grant-ticket``
(outcome ``ok``), refusals as ``kdc.request`` (outcome ``denied`` with a
``reason``). Freshness: one bounded replay cache per principal
(:class:`~keymgmt.kdc.PrincipalReplayCache`) refuses replays in this
process; grant ids are derived from (principal, nonce), so a granted request
replayed to another process on the same store (or after a restart, or after
the key rotated) finds its grant record and is refused too.

A certificate principal is refused, and named on the signed revocation
list, once its certificate or a CA certificate above it is revoked in
``km.revocation`` (at its CA): the same entries the CRLs and OCSP answer
from, one dict probe each (see ``certificate_subjects``), or once the
signing key of a CA of its chain is revoked for a compromise
(``ca-compromise``).

A grant's transaction expects (``Txn.expect``) the records its decision
took from the caches: the principal's and a ticket's peer's records at the
revision cached, the policy's, and the registry entries that would refuse
it as absent; so it never commits on a record another process changed,
whatever this process wrote before, and the re-run checks again.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol, cast

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding

from keymgmt import _codec
from keymgmt._context import Context
from keymgmt._secret import SecretBytes
from keymgmt._store import Txn
from keymgmt.errors import (
    AlreadyExistsError,
    CertificateError,
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
    NotFoundError,
    ProtocolError,
    ReplayError,
    RevokedError,
    StaleMessageError,
    StoreError,
)
from keymgmt.kdc import _protocol as p
from keymgmt.kdc import _wire as w
from keymgmt.kdc._events import (
    DEFAULT_SKEW,
    AuthKind,
    ErrorCode,
    RevokedEntry,
    SymmetricCredential,
)
from keymgmt.kdc._policy import AccessRule, Policy
from keymgmt.kdc._replays import PrincipalReplayCache
from keymgmt.kdc._wire import MessageType
from keymgmt.pki._parse import checked_certificate
from keymgmt.revocation import REVOCATION_KIND, RevocationReason, SubjectKind
from keymgmt.storage import Record

if TYPE_CHECKING:
    from keymgmt.kdc._compromise import CompromiseReport, Playbook

__all__ = [
    "CertificateSubjects",
    "CertificateVerifier",
    "DistributableKey",
    "GrantRecord",
    "KdcSettings",
    "KeyDistributionCenter",
    "KeySource",
    "PrincipalInfo",
    "Signer",
    "StoredSigner",
]

PRINCIPAL_KIND: Final = "kdc-principal"
POLICY_KIND: Final = "kdc-policy"
GRANT_KIND: Final = "kdc-grant"
META_KIND: Final = "kdc-meta"
_POLICY_NAME: Final = "policy"
_GRANT_FORMAT: Final = b"\x01"
_GRANT_SCHEMA: Final = (
    w.Field("id", 32, 32),
    w.Field("kind", 1, 16),
    w.Field("principal", 1, w.NAME_MAX),
    w.Field("issued_at", 8, 8),
    w.Field("expires_at", 8, 8),
    w.Field("key_name", 0, w.NAME_MAX),
    w.Field("version", 0, 4),
    w.Field("peer", 0, w.NAME_MAX),
    w.Field("auth", 1, 16),
)
_SIGNING_NAME: Final = "signing-key"


# -- what the KDC needs from other parts ----------------------------------------


@attrs.frozen(kw_only=True)
class DistributableKey:
    """The current primary version of a named symmetric key, ready to hand out."""

    name: str
    version: int
    algorithm: str
    material: SecretBytes = attrs.field(repr=False)
    #: When the version stops being the active primary by schedule (expiry,
    #: scheduled destruction, rotation by age), if known: grants end there.
    valid_until: _dt.datetime | None = None


class KeySource(Protocol):
    """Where the KDC gets named keys (``km.keys`` through an adapter)."""

    def current(self, name: str) -> DistributableKey:
        """The primary version of ``name`` if it may be distributed.

        Raises:
            KeyNotFoundError: no such key.
            RevokedError: the version is revoked or compromised.
            KeyStateError: the version's state forbids distribution.
        """
        ...


class Signer(Protocol):
    """The KDC's Ed25519 signing key."""

    def sign(self, data: bytes) -> bytes:
        """A raw 64-byte Ed25519 signature of ``data``.

        Raises:
            KeyStateError: the key cannot sign (revoked, compromised, destroyed).
        """
        ...

    def public_key(self) -> bytes:
        """The raw 32-byte public key clients pin."""
        ...


@attrs.frozen
class StoredSigner:
    """A :class:`Signer` over an Ed25519 key held in memory (unsealed from the store)."""

    key: ed25519.Ed25519PrivateKey = attrs.field(repr=False)

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``."""
        return self.key.sign(data)

    def public_key(self) -> bytes:
        """The raw public key."""
        return self.key.public_key().public_bytes_raw()


#: Checks a principal's certificate at a time; raises CertificateError subclasses.
CertificateVerifier = Callable[[x509.Certificate, _dt.datetime], None]


class CertificateSubjects(Protocol):
    """Where a principal's certificate and the CA certificates above it sit in the registry.

    Subjects are ``km.revocation`` certificate subjects, ``"<ca>:<serial
    hex>"``; the façade answers from ``km.pki``.
    """

    def subject(self, certificate: x509.Certificate) -> str | None:
        """The subject of a certificate one of the store's CAs issued, else None.

        The same for the certificate's whole life (the KDC caches it).
        """
        ...

    def issuers(self, ca: str) -> Sequence[str]:
        """The subjects of CA ``ca``'s current certificate and of those above it.

        Nearest first; empty for a root CA. Asked afresh on every check: a
        sub-CA's renewal gives it another certificate (and its old one may
        be revoked as superseded without revoking what the CA issued).
        """
        ...

    def key_compromise(self, ca: str) -> _dt.datetime | None:
        """When CA ``ca``'s signing key was revoked for a compromise, else None.

        Whoever holds that key can sign anything: every certificate below
        the CA stops vouching for its holder (``ca-compromise``), a root's
        included, though nothing revokes them one by one. The answer may
        change only with a revocation of a key (the KDC's revocation list
        is cached per such change).
        """
        ...

    def key_subjects(self, ca: str) -> Sequence[str]:
        """The ``km.revocation`` key subjects whose revocation compromises CA ``ca``'s key.

        Its version (``"name#version"``) and the whole key (``"name"``);
        empty for an unknown CA. A grant to a principal below the CA
        depends on them staying absent (its commit checks them).
        """
        ...


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # A string or a negative lifetime failed only at the first request (a
    # TypeError out of handle(), or grants born expired).
    if not isinstance(value, _dt.timedelta) or value <= _dt.timedelta(0):
        raise InvalidArgumentError(f"KdcSettings.{attribute.name} must be a positive timedelta")


def _count(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgumentError(f"KdcSettings.{attribute.name} must be an int of at least 1")


@attrs.frozen(kw_only=True)
class KdcSettings:
    """Lifetimes and windows of one KDC.

    Attributes:
        skew: allowed clock skew for request timestamps (both ways).
        key_grant_lifetime: how long a client may use a granted key before
            asking again (and so learning of a revocation).
        ticket_lifetime: how long a session ticket is valid.
        revocation_list_lifetime: how long a revocation list is current.
        replay_capacity: the most request nonces remembered per principal
            (each principal has its own bounded cache, so one cannot narrow
            another's freshness window).

    Raises:
        InvalidArgumentError: a lifetime or the skew that is not a positive
            timedelta, a capacity that is not an int of at least 1.
    """

    skew: _dt.timedelta = attrs.field(default=DEFAULT_SKEW, validator=_positive)
    key_grant_lifetime: _dt.timedelta = attrs.field(
        default=_dt.timedelta(minutes=15), validator=_positive
    )
    ticket_lifetime: _dt.timedelta = attrs.field(
        default=_dt.timedelta(hours=1), validator=_positive
    )
    revocation_list_lifetime: _dt.timedelta = attrs.field(
        default=_dt.timedelta(minutes=15), validator=_positive
    )
    replay_capacity: int = attrs.field(default=100_000, validator=_count)


@attrs.frozen(kw_only=True)
class PrincipalInfo:
    """A registered principal (never its key)."""

    name: str
    credential: str  # "symmetric" or "certificate"
    enabled: bool
    revoked: bool
    credential_version: int
    created_at: _dt.datetime
    certificate_serial: str | None = None
    certificate_issuer: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "name": self.name,
            "credential": self.credential,
            "enabled": self.enabled,
            "revoked": self.revoked,
            "credential_version": self.credential_version,
            "created_at": self.created_at.isoformat(),
            "certificate_serial": self.certificate_serial,
            "certificate_issuer": self.certificate_issuer,
        }

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)


@attrs.frozen(kw_only=True)
class GrantRecord:
    """One key version or ticket the KDC handed out.

    A record of kind ``"refused"`` is no grant: it marks an authentic
    request the KDC refused (``key_name`` or ``peer`` holds what it asked
    for), named as its grant would have been, so the same request replayed
    later (to any KDC process on the store) conflicts with it. ``grants()``
    and compromise reports skip these markers.
    """

    id: str
    kind: str  # "key", "ticket", or "refused" (a consumed request; see above)
    principal: str
    issued_at: _dt.datetime
    expires_at: _dt.datetime
    key_name: str | None = None
    version: int | None = None
    peer: str | None = None
    auth: str = "symmetric"

    @property
    def key_id(self) -> str | None:
        """``"name#version"`` for key grants."""
        return None if self.key_name is None else f"{self.key_name}#{self.version}"

    @property
    def refused(self) -> bool:
        """Whether this marks a refused request rather than a grant."""
        return self.kind == "refused"

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "id": self.id,
            "kind": self.kind,
            "principal": self.principal,
            "issued_at": _codec.to_micros(self.issued_at),
            "expires_at": _codec.to_micros(self.expires_at),
            "key_name": self.key_name,
            "version": self.version,
            "peer": self.peer,
            "auth": self.auth,
        }

    def to_bytes(self) -> bytes:
        """The stored form: a format byte, then the fields in the KDC wire codec.

        Written on every grant, so not JSON: a few length-prefixed fields
        cost a fraction of a JSON encoding (absent values are empty fields).
        """
        return _GRANT_FORMAT + w.encode_fields(
            [
                self.id.encode(),
                self.kind.encode(),
                self.principal.encode("utf-8"),
                w.u64(_codec.to_micros(self.issued_at)),
                w.u64(_codec.to_micros(self.expires_at)),
                b"" if self.key_name is None else self.key_name.encode("utf-8"),
                b"" if self.version is None else w.u32(self.version),
                b"" if self.peer is None else self.peer.encode("utf-8"),
                self.auth.encode(),
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> GrantRecord:
        """Inverse of :meth:`to_bytes` (and reads the older JSON records too).

        Raises:
            IntegrityError: malformed record.
        """
        if data[:1] != _GRANT_FORMAT:
            return cls.from_json(_codec.loads(data))  # IntegrityError if not JSON either
        try:
            id_, kind, principal, issued, expires, key_name, version, peer, auth = w.decode_fields(
                data[1:], _GRANT_SCHEMA, "grant record"
            )
            return cls(
                id=id_.decode("ascii"),
                kind=kind.decode("ascii"),
                principal=principal.decode("utf-8"),
                issued_at=_codec.from_micros(w.read_u64(issued)),
                expires_at=_codec.from_micros(w.read_u64(expires)),
                key_name=key_name.decode("utf-8") if key_name else None,
                version=w.read_u32(version) if version else None,
                peer=peer.decode("utf-8") if peer else None,
                auth=auth.decode("ascii"),
            )
        except (MalformedInputError, UnicodeDecodeError, OverflowError):
            raise IntegrityError("a KDC grant record is malformed") from None

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> GrantRecord:
        """Inverse of :meth:`to_json`.

        Raises:
            IntegrityError: malformed record.
        """
        try:
            return cls(
                id=str(value["id"]),
                kind=str(value["kind"]),
                principal=str(value["principal"]),
                issued_at=_codec.from_micros(int(value["issued_at"])),
                expires_at=_codec.from_micros(int(value["expires_at"])),
                key_name=value["key_name"],
                version=value["version"],
                peer=value["peer"],
                auth=str(value["auth"]),
            )
        except (KeyError, TypeError, ValueError):
            raise IntegrityError("a KDC grant record is malformed") from None

    @property
    def record_name(self) -> str:
        """Where it is stored (prefix-searchable by key name or client).

        A key grant is named by the key *name* and the grant id, not the
        version it handed out: the id is derived from (principal, request
        nonce), so the same request replayed to another KDC process after
        the key rotated names the same record, and its create-only put
        conflicts (records written before were named
        ``key:<name>#<version>:<id>``; ``key_grant_prefixes`` finds both).
        """
        if self.kind == "key" or (self.kind == "refused" and self.key_name is not None):
            return f"key:{self.key_name}:{self.id}"
        return f"ticket:{self.principal}:{self.id}"

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)


def _is_compromise(reason: str) -> bool:
    """Whether a registry reason value says the key is in someone else's hands."""
    try:
        return RevocationReason(reason).is_compromise
    except ValueError:  # pragma: no cover - the registry stores only known reasons
        return False


def key_grant_prefixes(key_name: str) -> tuple[str, str]:
    """The grant-record name prefixes of every grant of ``key_name``.

    ``key:<name>:`` (the current naming) and ``key:<name>#`` (records
    written before, named by version). Key names hold neither ``:`` nor
    ``#`` in the key store, but a :class:`KeySource` may be anything, so a
    caller filters what it reads by the decoded key name.
    """
    return f"key:{key_name}:", f"key:{key_name}#"


@attrs.frozen
class _Principal:
    """The in-memory view of a principal record."""

    name: str
    credential: str
    enabled: bool
    credential_version: int
    created_at: _dt.datetime
    aead: AESGCM | None = attrs.field(repr=False, eq=False)
    certificate: x509.Certificate | None = attrs.field(repr=False, eq=False)
    #: ``"<ca>:<serial hex>"``: the certificate's registry subject, when a CA
    #: of the store issued it.
    certificate_subject: str | None = None
    #: the record's revision when read (0: unknown): a grant's commit checks
    #: that the record is still at it (``Txn.expect``)
    revision: int = attrs.field(default=0, eq=False)

    @classmethod
    def from_json(cls, value: dict[str, Any], revision: int = 0) -> _Principal:
        try:
            cert = None
            aead = None
            if value["credential"] == "symmetric":
                aead = AESGCM(_codec.b64d(value["key"]))
            else:
                cert = x509.load_der_x509_certificate(_codec.b64d(value["certificate"]))
            return cls(
                name=str(value["name"]),
                credential=str(value["credential"]),
                enabled=bool(value["enabled"]),
                credential_version=int(value["credential_version"]),
                created_at=_codec.from_micros(int(value["created_at"])),
                aead=aead,
                certificate=cert,
                revision=revision,
            )
        except (KeyError, TypeError, ValueError):
            raise IntegrityError("a KDC principal record is malformed") from None


class _Refusal(Exception):
    """A decision to refuse a request: audited, then answered with ERROR."""

    def __init__(self, code: ErrorCode, reason: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        #: the request's consumed nonce, to record with the refusal (see GrantRecord)
        self.marker: GrantRecord | None = None


_REPLAY_MESSAGE: Final = "the request was seen before"
_HOLD: Final = RevocationReason.CERTIFICATE_HOLD.value
#: how many lifted holds' marker revisions a KDC remembers (see ``_recheck``)
_KNOWN_MARKERS_MAX: Final = 4096


class _Basis(NamedTuple):
    """What a grant was decided on, for its commit to check (see ``_record``).

    ``reads`` are the records the decision took from this process's caches,
    as ``(kind, name, revision)``: the principal's and (for a ticket) the
    peer's record, the policy, and the registry entries that would have
    refused it (the principal's, the peer's, the key's and the version's,
    a certificate principal's certificate, the CA certificates above it and
    those CAs' signing keys),
    expected at the revision this process knows (0: absent). The grant's
    transaction expects them (``Txn.expect``), so it cannot commit after
    another process changed one of them, whether or not this process has
    written before; the re-run re-checks (``_recheck``).
    """

    #: credential versions of the principal and of a ticket's peer
    versions: tuple[int, int | None]
    reads: tuple[tuple[str, str, int], ...]
    #: the registry record names among ``reads`` (read afresh on a re-run)
    registry: tuple[str, ...]


class _Batch:
    """What :meth:`KeyDistributionCenter.handle_many` writes once, at the end."""

    def __init__(self) -> None:
        self.position = 0
        #: (reply position, grant, audit operation, audit object, what it was
        #: decided on)
        self.grants: list[tuple[int, GrantRecord, str, str, _Basis]] = []
        #: (audit object, audit keyword arguments, consumed-request marker) of
        #: refused requests
        self.refusals: list[tuple[str, dict[str, Any], GrantRecord | None]] = []


def _stage_grant(txn: Txn, grant: GrantRecord, operation: str, object: str) -> None:
    """Stage a grant record (create-only) and its audit entry."""
    txn.put(GRANT_KIND, grant.record_name, grant.to_bytes())
    txn.audit(
        operation,
        object,
        principal=grant.principal,
        grant=grant.id,
        expires_at=grant.expires_at.isoformat(),
        auth=grant.auth,
    )


def _marker(grant: GrantRecord) -> GrantRecord:
    """The marker of a refused request that would have been ``grant`` (same record name)."""
    return attrs.evolve(
        grant,
        kind="refused",
        expires_at=grant.issued_at,
        key_name=grant.key_name if grant.kind == "key" else None,
        version=None,
    )


def _needs_marker(refusal: _Refusal) -> bool:
    """Whether a refused authentic request leaves a marker (see ``_handle_request``).

    Not when it was refused because its own principal is revoked for good
    (any reason but ``certificate-hold``): such a principal is never served
    again, so no replay of the request can ever be granted, and markers
    would only let whoever holds its (stolen) key grow the store. Its audit
    entry is still written. A hold, and every other cause, can change.
    """
    return not (
        refusal.reason == "principal-revoked"
        and refusal.details.get("revocation_reason", _HOLD) != _HOLD
    )


def _stage_marker(txn: Txn, marker: GrantRecord, *, first: bool) -> None:
    """Stage a refused request's marker (create-only), unless a record has its name.

    The first attempt writes without reading (create-only): a grant or
    marker of the same request conflicts, and the re-run finds it and
    writes nothing (the request is recorded already).
    """
    if first or txn.get(GRANT_KIND, marker.record_name) is None:
        txn.put(GRANT_KIND, marker.record_name, marker.to_bytes())


def _grant_id(principal: str, nonce: bytes) -> str:
    """The id of the grant answering ``principal``'s request ``nonce`` (128 bits, hex)."""
    return hashlib.blake2b(
        p.scoped_nonce(principal, nonce), digest_size=16, person=b"keymgmt-kdc-gid"
    ).hexdigest()


_WILDCARDS: Final = frozenset("*?[]")
_CERTIFICATE_PREFIX: Final = f"{SubjectKind.CERTIFICATE.value}:"
# Registry record names (``"<kind>:<subject>"``), built without an Enum
# attribute lookup on the grant path.
_KEY_PREFIX: Final = f"{SubjectKind.KEY.value}:"
_PRINCIPAL_PREFIX: Final = f"{SubjectKind.PRINCIPAL.value}:"


def _new_principal_name(name: str) -> None:
    """Check a name to register: valid, and free of the policy's wildcard characters.

    Policy entries are patterns, so a principal called ``ops[1]`` could not
    be granted on its own (``ops[1]`` also matches ``ops1``), nor one called
    ``*``. Principals registered before this check keep working.

    Raises:
        InvalidArgumentError: an empty, oversize or non-printable name, or one
            with ``*``, ``?``, ``[`` or ``]``.
    """
    p.name_bytes(name, "principal name")
    if not _WILDCARDS.isdisjoint(name):
        raise InvalidArgumentError(
            f"principal name {name!r} holds a policy wildcard (* ? [ ]); choose another"
        )


def _capped(
    principal: _Principal, lifetime_end: _dt.datetime, valid_until: _dt.datetime | None
) -> _dt.datetime:
    """When a grant or ticket ends: its lifetime, cut at the key's schedule and at the
    expiry of a certificate principal's certificate (nothing granted outlives the
    credential it was granted to)."""
    end = lifetime_end if valid_until is None else min(lifetime_end, valid_until)
    if principal.certificate is not None:
        end = min(end, principal.certificate.not_valid_after_utc)
    return end


def _commit_with_file(
    transact: Callable[[Callable[[Txn], None]], None],
    run: Callable[[Txn], None],
    credential: SymmetricCredential,
    write_to: str | os.PathLike[str] | None,
) -> None:
    """Commit ``run`` with the credential file written first, removed if nothing was written.

    The other order (commit, then write) loses the only copy of the key when
    the write fails, and the principal is left with a key nobody holds. The
    file is removed only when the change certainly did not land: a refusal
    raised before the commit (the name is taken, no such principal) or a
    conflict. On a storage failure or an interruption the commit may have
    landed, so the file is kept (compare its key with the principal's
    ``credential_version``, or rotate again).
    """
    _check_path(write_to)
    written = None if write_to is None else credential.to_file(write_to)
    try:
        transact(run)
    except KeyMgmtError as exc:
        if written is not None and (
            isinstance(exc, ConflictError) or not isinstance(exc, StoreError)
        ):
            written.unlink(missing_ok=True)
        raise


def _check_path(write_to: object) -> None:
    """Refuse a ``write_to`` that is not a path (``Path(5)`` is a TypeError).

    Raises:
        InvalidArgumentError: neither None, a str nor an os.PathLike.
    """
    if write_to is not None and not isinstance(write_to, str | os.PathLike):
        raise InvalidArgumentError(f"write_to must be a path, not {type(write_to).__name__}")
    if write_to is not None and "\x00" in os.fspath(write_to):
        raise InvalidArgumentError("write_to may not hold a null byte")


def _certificate_issuer_id(cert: x509.Certificate) -> str:
    return cert.issuer.rfc4514_string()


def _certificate_names(cert: x509.Certificate) -> set[str]:
    names = {str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)}
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return names
    names.update(san.get_values_for_type(x509.DNSName))
    names.update(san.get_values_for_type(x509.UniformResourceIdentifier))
    names.update(san.get_values_for_type(x509.RFC822Name))
    return names


class KeyDistributionCenter:
    """The centralized key server of one store (``km.kdc``).

    Args:
        context: the store, revocation registry, clock and randomness.
        keys: where named keys come from (``None``: key requests are refused
            as not found).
        verify_certificate: checks a certificate principal's certificate
            (chain, validity, revocation) at a time; default: its validity
            dates only (the façade passes ``km.pki.verify``).
        settings: lifetimes and windows.
        playbook: how :meth:`compromise` revokes and rotates key versions and
            certificates (default: key versions are revoked in the registry
            only, nothing is rotated, certificates are not revoked at a CA).
        signer: the KDC's Ed25519 signing key, which signs replies to
            certificate principals and revocation lists (the façade passes a
            managed key pair from ``km.keys``; default: an Ed25519 key sealed
            in a ``kdc-meta`` record, for KDCs built without a key store).
        certificate_subjects: where a principal's certificate and the CA
            certificates above it sit in ``km.revocation`` (the façade
            answers from ``km.pki``): once one of them is revoked there (at
            its CA), or the signing key of a CA of the chain is revoked for
            a compromise, the principal's requests are refused and the
            principal is on the revocation list (default: none; only
            ``verify_certificate`` sees revocations).
    """

    def __init__(
        self,
        context: Context,
        *,
        keys: KeySource | None = None,
        verify_certificate: CertificateVerifier | None = None,
        settings: KdcSettings | None = None,
        playbook: Playbook | None = None,
        signer: Signer | None = None,
        certificate_subjects: CertificateSubjects | None = None,
    ) -> None:
        self._ctx = context
        self._playbook = playbook
        self._store = context.store
        self._keys = keys
        self._verify_certificate = verify_certificate
        self._certificate_subjects = certificate_subjects
        if settings is not None and not isinstance(settings, KdcSettings):
            raise InvalidArgumentError("settings must be a KdcSettings")
        self.settings = settings or KdcSettings()
        self._replays = PrincipalReplayCache(
            window=self.settings.skew,
            max_skew=self.settings.skew,
            capacity=self.settings.replay_capacity,
            clock=context.clock,
        )
        self._lock = threading.Lock()
        self._principals: dict[str, _Principal] = {}
        self._epoch = 0  # moves on every noted principal or policy change
        #: the policy and its record's revision (0: absent)
        self._policy: tuple[Policy, int] | None = None
        #: registry record names found present but not a revocation (a lifted
        #: hold's marker) -> their revision, so a grant's commit expects that
        #: revision rather than absence (bounded: cleared when full)
        self._registry_revisions: dict[str, int] = {}
        self._signer = signer
        #: (registry change counts of keys, principals and certificates, and the
        #: version of ``_holders``; the entries derived from certificates;
        #: how many entries; the encoded body)
        self._revocations_cache: (
            tuple[tuple[int, int, int, int], tuple[RevokedEntry, ...], int, bytes] | None
        ) = None
        #: (registry change counts of keys and principals, their entries, the
        #: principal entries by name)
        self._direct_cache: (
            tuple[tuple[int, int], builtins.list[RevokedEntry], dict[str, RevokedEntry]] | None
        ) = None
        #: certificate principals: name -> their certificate's registry
        #: subject; None until the first revocation list loads it, then kept
        #: current from the principal changes noted in ``_dirty``.
        self._holders: dict[str, str] | None = None
        self._holders_version = 0
        self._dirty: set[str] = set()
        self._tracking = False  # whether changes are noted in _dirty (once loading began)
        self._list_lock = threading.Lock()  # one revocation list body built at a time
        self._store.watch(PRINCIPAL_KIND, POLICY_KIND)
        self._store.subscribe(self._on_change)

    def __repr__(self) -> str:
        return f"KeyDistributionCenter(settings={self.settings!r})"

    # -- caches -------------------------------------------------------------------

    # The caches are filled only when no change was noted while the record
    # was being read (the epoch did not move): a rotation, disable or policy
    # change that commits between the read and the fill cannot leave the
    # old record cached. Unknown names are not cached, so requests in made-up
    # names cannot grow the table.

    def _on_change(self, records: Sequence[Record]) -> None:
        with self._lock:
            for record in records:
                if record.kind == PRINCIPAL_KIND:
                    self._epoch += 1
                    self._principals.pop(record.name, None)
                    if self._tracking:
                        self._dirty.add(record.name)
                elif record.kind == POLICY_KIND:
                    self._epoch += 1
                    self._policy = None

    def _principal(self, name: str) -> _Principal | None:
        self._store.sync()
        with self._lock:
            cached = self._principals.get(name)
            epoch = self._epoch
        if cached is not None:
            return cached
        value, revision = self._store.get_json_with_revision(PRINCIPAL_KIND, name)
        if value is None:
            return None
        found = self._loaded(value, revision)
        with self._lock:
            if self._epoch == epoch:
                self._principals[name] = found
        return found

    def _loaded(self, value: dict[str, Any], revision: int = 0) -> _Principal:
        """A principal record, with its certificate's registry subject resolved."""
        found = _Principal.from_json(value, revision)
        if found.certificate is None or self._certificate_subjects is None:
            return found
        subject = self._certificate_subjects.subject(found.certificate)
        return found if subject is None else attrs.evolve(found, certificate_subject=subject)

    def _chain_revocation(self, subject: str, issuers: Sequence[str]) -> tuple[str, int] | None:
        """(reason, revoked-at µs) of a certificate and its issuers' certificates
        revoked in the registry: a dict probe each, no sync.

        The nearest revoked one, unless one above it was revoked for a
        compromise (that outranks a milder reason below, say ``superseded``).
        """
        index = self._ctx.revocation.index
        prefix = _CERTIFICATE_PREFIX
        found: tuple[str, int] | None = None
        for name in (subject, *issuers):
            entry = cast("tuple[str, int, int | None] | None", index.get(prefix + name))
            if entry is not None:
                if _is_compromise(entry[0]):
                    return entry[0], entry[1]
                if found is None:
                    found = entry[0], entry[1]
        return found

    def _certificate_chain(self, principal: _Principal) -> tuple[str, ...]:
        """The registry subjects of the principal's certificate and of the CA
        certificates above it as the CAs stand now (empty: none we resolve)."""
        subject = principal.certificate_subject
        if subject is None or self._certificate_subjects is None:
            return ()
        return (subject, *self._certificate_subjects.issuers(subject.partition(":")[0]))

    def _certificate_revocation(self, principal: _Principal) -> tuple[str, int] | None:
        """Whether the principal's certificate, or a CA certificate above it as the CAs
        stand now, is revoked in the registry, or the key of a CA of its chain is
        compromised (the caller has synced the store)."""
        return self._chain_state(self._certificate_chain(principal))

    def _chain_state(
        self, chain: tuple[str, ...], known: dict[str, _dt.datetime | None] | None = None
    ) -> tuple[str, int] | None:
        """(reason, revoked-at µs) of what refuses a certificate chain, or None.

        A revocation of the certificate or of a CA certificate above it (a
        dict probe each), or else the compromise of the signing key of a CA
        of the chain (``ca-compromise``: one question per CA; ``known``
        remembers the answers across the principals of one list). A
        compromise of its own certificate's key outranks the CA's.
        """
        if not chain:
            return None
        revoked = self._chain_revocation(chain[0], chain[1:])
        if revoked is not None and _is_compromise(revoked[0]):
            return revoked
        subjects = self._certificate_subjects
        if subjects is None:  # pragma: no cover - no chain without it
            return revoked
        for subject in chain:
            ca = subject.partition(":")[0]
            if known is None:
                at = subjects.key_compromise(ca)
            elif ca in known:
                at = known[ca]
            else:
                at = known[ca] = subjects.key_compromise(ca)
            if at is not None:
                return RevocationReason.CA_COMPROMISE.value, _codec.to_micros(at)
        return revoked

    def _forget(self, name: str) -> None:
        with self._lock:
            self._epoch += 1
            self._principals.pop(name, None)
            if self._tracking:
                self._dirty.add(name)

    def policy(self) -> Policy:
        """The current authorization policy."""
        return self._policy_state()[0]

    def _policy_state(self) -> tuple[Policy, int]:
        """The current policy and its record's revision (0: none stored)."""
        self._store.sync()
        with self._lock:
            cached = self._policy
            epoch = self._epoch
        if cached is not None:
            return cached
        value, revision = self._store.get_json_with_revision(POLICY_KIND, _POLICY_NAME)
        state = (Policy() if value is None else Policy.from_json(value), revision)
        with self._lock:
            if self._epoch == epoch:
                self._policy = state
        return state

    def _signing(self) -> Signer:
        signer = self._signer
        if signer is not None:
            return signer
        fresh = self._ctx.randomness.token_bytes(32)

        def run(txn: Txn) -> bytes:
            stored = txn.get_json(META_KIND, _SIGNING_NAME)
            if stored is not None:
                return _codec.b64d(stored["private"])
            txn.put_json(
                META_KIND,
                _SIGNING_NAME,
                {"private": _codec.b64e(fresh), "created_at": _codec.to_micros(txn.now)},
            )
            public = ed25519.Ed25519PrivateKey.from_private_bytes(fresh).public_key()
            txn.audit("kdc.signing-key.create", "kdc", public_key=public.public_bytes_raw().hex())
            return fresh

        signer = StoredSigner(
            ed25519.Ed25519PrivateKey.from_private_bytes(self._store.transact(run))
        )
        self._signer = signer
        return signer

    @property
    def public_key(self) -> bytes:
        """The KDC's Ed25519 public key (raw 32 bytes) that clients pin."""
        return self._signing().public_key()

    # -- principals ---------------------------------------------------------------

    def _info(self, principal: _Principal) -> PrincipalInfo:
        cert = principal.certificate
        return PrincipalInfo(
            name=principal.name,
            credential=principal.credential,
            enabled=principal.enabled,
            revoked=self._ctx.revocation.is_revoked(SubjectKind.PRINCIPAL, principal.name)
            or self._certificate_revocation(principal) is not None,
            credential_version=principal.credential_version,
            created_at=principal.created_at,
            certificate_serial=None if cert is None else format(cert.serial_number, "x"),
            certificate_issuer=None if cert is None else _certificate_issuer_id(cert),
        )

    def register(
        self, name: str, *, write_to: str | os.PathLike[str] | None = None
    ) -> SymmetricCredential:
        """Register a principal with a new long-term symmetric key.

        The key is returned here (and optionally written to ``write_to``,
        mode 0600, before the registration commits and removed if it does
        not) and never again.

        Raises:
            AlreadyExistsError: the name is taken.
            InvalidArgumentError: a bad name (policy wildcards ``* ? [ ]``
                included), or ``write_to`` exists or cannot be written.
        """
        _new_principal_name(name)
        key = self._ctx.randomness.token_bytes(32)
        _check_path(write_to)
        if write_to is not None and Path(write_to).exists():
            raise InvalidArgumentError(f"{write_to} exists already")

        def run(txn: Txn) -> None:
            if txn.get(PRINCIPAL_KIND, name) is not None:
                raise AlreadyExistsError(f"principal {name!r} exists already", principal=name)
            txn.put_json(
                PRINCIPAL_KIND,
                name,
                {
                    "name": name,
                    "credential": "symmetric",
                    "key": _codec.b64e(key),
                    "enabled": True,
                    "credential_version": 1,
                    "created_at": _codec.to_micros(txn.now),
                },
            )
            txn.audit("kdc.register", f"principal:{name}", credential="symmetric")
            txn.after_commit(lambda: self._forget(name))

        credential = SymmetricCredential(
            principal=name, key=SecretBytes(key), kdc_public_key=self.public_key
        )
        _commit_with_file(self._store.transact, run, credential, write_to)
        return credential

    def register_certificate(self, name: str, certificate: x509.Certificate) -> PrincipalInfo:
        """Register a principal that authenticates with ``certificate``'s key.

        The certificate must name the principal (subject CN or a SAN) and
        pass the certificate check now.

        Raises:
            AlreadyExistsError: the name is taken.
            InvalidArgumentError: a bad name, or the certificate names
                someone else.
            MalformedInputError: certificate material pyca cannot parse
                (a duplicate extension, an unsupported name type).
            CertificateVerificationError / CertificateRevokedError: the
                certificate does not verify now.
        """
        _new_principal_name(name)
        if not isinstance(certificate, x509.Certificate):
            raise InvalidArgumentError("certificate must be a cryptography x509.Certificate")
        checked_certificate(certificate)
        if name not in _certificate_names(certificate):
            raise InvalidArgumentError(
                f"the certificate does not name principal {name!r} (subject CN or SAN)",
                principal=name,
            )
        self._check_certificate(certificate, self._ctx.clock.now())
        der = certificate.public_bytes(Encoding.DER)

        def run(txn: Txn) -> None:
            if txn.get(PRINCIPAL_KIND, name) is not None:
                raise AlreadyExistsError(f"principal {name!r} exists already", principal=name)
            txn.put_json(
                PRINCIPAL_KIND,
                name,
                {
                    "name": name,
                    "credential": "certificate",
                    "certificate": _codec.b64e(der),
                    "enabled": True,
                    "credential_version": 1,
                    "created_at": _codec.to_micros(txn.now),
                },
            )
            txn.audit(
                "kdc.register",
                f"principal:{name}",
                credential="certificate",
                serial=format(certificate.serial_number, "x"),
            )
            txn.after_commit(lambda: self._forget(name))

        self._store.transact(run)
        return self.get(name)

    def _check_certificate(self, cert: x509.Certificate, at: _dt.datetime) -> None:
        if self._verify_certificate is not None:
            self._verify_certificate(cert, at)
            return
        from keymgmt.errors import CertificateVerificationError

        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise CertificateVerificationError(
                "the certificate is not valid at this time", reason="expired"
            )

    def get(self, name: str) -> PrincipalInfo:
        """A principal's metadata.

        Raises:
            NotFoundError: no such principal.
        """
        found = self._principal(name)
        if found is None:
            raise NotFoundError(f"no principal named {name!r}", principal=name)
        return self._info(found)

    def list(self) -> list[PrincipalInfo]:
        """Every registered principal, by name."""
        values = self._store.list_json(PRINCIPAL_KIND)
        return [self._info(self._loaded(value)) for _, value in values]

    def _update(self, name: str, operation: str, change: Callable[[dict[str, Any]], None]) -> None:
        def run(txn: Txn) -> None:
            value = txn.get_json(PRINCIPAL_KIND, name)
            if value is None:
                raise NotFoundError(f"no principal named {name!r}", principal=name)
            change(value)
            txn.put_json(PRINCIPAL_KIND, name, value)
            txn.audit(operation, f"principal:{name}")
            txn.after_commit(lambda: self._forget(name))

        self._store.transact(run)

    def disable(self, name: str) -> None:
        """Refuse the principal's requests until :meth:`enable` (reversible).

        Raises:
            NotFoundError: no such principal.
        """
        self._update(name, "kdc.disable", lambda v: v.update(enabled=False))

    def enable(self, name: str) -> None:
        """Serve a disabled principal again (a revoked one stays refused).

        Raises:
            NotFoundError: no such principal.
        """
        self._update(name, "kdc.enable", lambda v: v.update(enabled=True))

    def revoke(
        self, name: str, reason: RevocationReason | str = RevocationReason.UNSPECIFIED
    ) -> None:
        """Revoke a principal for good (``km.revocation``, kind ``principal``).

        Raises:
            NotFoundError: no such principal.
            InvalidArgumentError: an unknown reason.
        """

        def run(txn: Txn) -> None:
            self._stage_principal_revocation(txn, name, reason)

        self._store.transact(run)

    def _stage_principal_revocation(
        self, txn: Txn, name: str, reason: RevocationReason | str
    ) -> None:
        value = txn.get_json(PRINCIPAL_KIND, name)
        if value is None:
            raise NotFoundError(f"no principal named {name!r}", principal=name)
        value["enabled"] = False
        txn.put_json(PRINCIPAL_KIND, name, value)
        self._ctx.revocation.stage(txn, SubjectKind.PRINCIPAL, name, reason)
        txn.audit("kdc.revoke", f"principal:{name}", reason=RevocationReason.parse(reason).value)
        txn.after_commit(lambda: self._forget(name))

    def rotate_credential(
        self, name: str, *, write_to: str | os.PathLike[str] | None = None
    ) -> SymmetricCredential:
        """Give a symmetric principal a new long-term key; the old one stops working.

        Tickets already sealed under the old key stop opening at the service.
        With ``write_to``, the new credential is written there (mode 0600)
        *before* the change commits, and removed if it does not: a file that
        cannot be written leaves the old key working.

        Raises:
            NotFoundError: no such principal.
            InvalidArgumentError: a certificate principal (renew its
                certificate), or ``write_to`` exists or cannot be written.
            RevokedError: the principal is revoked.
        """
        key = self._ctx.randomness.token_bytes(32)
        if self._ctx.revocation.is_revoked(SubjectKind.PRINCIPAL, name):
            raise RevokedError(f"principal {name!r} is revoked", principal=name)

        def run(txn: Txn) -> None:
            value = txn.get_json(PRINCIPAL_KIND, name)
            if value is None:
                raise NotFoundError(f"no principal named {name!r}", principal=name)
            if value["credential"] != "symmetric":
                raise InvalidArgumentError(
                    f"principal {name!r} authenticates with a certificate; renew it instead"
                )
            value["key"] = _codec.b64e(key)
            value["credential_version"] = int(value["credential_version"]) + 1
            txn.put_json(PRINCIPAL_KIND, name, value)
            txn.audit(
                "kdc.rotate-credential",
                f"principal:{name}",
                credential_version=value["credential_version"],
            )
            txn.after_commit(lambda: self._forget(name))

        credential = SymmetricCredential(
            principal=name, key=SecretBytes(key), kdc_public_key=self.public_key
        )
        _commit_with_file(self._store.transact, run, credential, write_to)
        return credential

    # -- policy -------------------------------------------------------------------

    def _change_policy(
        self, operation: str, object: str, change: Callable[[Policy], Policy], **details: Any
    ) -> Policy:
        def run(txn: Txn) -> Policy:
            value = txn.get_json(POLICY_KIND, _POLICY_NAME)
            current = Policy() if value is None else Policy.from_json(value)
            updated = change(current)
            txn.put_json(POLICY_KIND, _POLICY_NAME, updated.to_json())
            txn.audit(operation, object, **details)

            def apply() -> None:
                with self._lock:
                    self._epoch += 1  # a read in flight must not cache the old policy
                    # Read again (with the new revision, which grants expect).
                    self._policy = None

            txn.after_commit(apply)
            return updated

        return self._store.transact(run)

    def grant(
        self, principal: str, *, keys: Iterable[str] = (), peers: Iterable[str] = ()
    ) -> Policy:
        """Allow ``principal`` (a name or pattern) the named ``keys`` and session ``peers``.

        Names or glob patterns (``"app/*"``). Returns the new policy.

        Raises:
            InvalidArgumentError: a bad pattern, or nothing to grant.
        """
        keys, peers = tuple(keys), tuple(peers)
        if not keys and not peers:
            raise InvalidArgumentError("grant at least one key or peer")
        AccessRule(principal=principal, keys=keys, peers=peers)  # validate early
        return self._change_policy(
            "kdc.policy.grant",
            f"principal:{principal}",
            lambda pol: pol.granting(principal, keys=keys, peers=peers),
            keys=",".join(keys),
            peers=",".join(peers),
        )

    def withdraw(
        self, principal: str, *, keys: Iterable[str] = (), peers: Iterable[str] = ()
    ) -> Policy:
        """Remove entries from ``principal``'s own rule. Returns the new policy.

        Only that rule changes: a pattern rule (``"a*"``) that also matches
        the principal keeps allowing what it allows (check the returned
        policy's :meth:`~keymgmt.kdc.Policy.allows_key`).

        Raises:
            InvalidArgumentError: a bad pattern, or nothing to withdraw.
        """
        keys, peers = tuple(keys), tuple(peers)
        if not keys and not peers:
            raise InvalidArgumentError("withdraw at least one key or peer")
        AccessRule(principal=principal, keys=keys, peers=peers)  # validate early
        return self._change_policy(
            "kdc.policy.withdraw",
            f"principal:{principal}",
            lambda pol: pol.withdrawing(principal, keys=keys, peers=peers),
            keys=",".join(keys),
            peers=",".join(peers),
        )

    def set_policy(self, policy: Policy) -> Policy:
        """Replace the whole policy (for example one loaded from a reviewed file).

        Raises:
            InvalidArgumentError: not a Policy.
        """
        if not isinstance(policy, Policy):
            raise InvalidArgumentError("set_policy takes a Policy")
        return self._change_policy(
            "kdc.policy.set", "kdc-policy", lambda _: policy, rules=len(policy.rules)
        )

    # -- grants -------------------------------------------------------------------

    def grants(
        self, *, key: str | None = None, principal: str | None = None
    ) -> builtins.list[GrantRecord]:
        """Recorded grants: all, of one key version (``"name#version"``), or to a principal.

        A ``key`` without ``#`` selects every version of that key.

        Raises:
            InvalidArgumentError: a ``key`` or ``principal`` that is not a str.
        """
        if not isinstance(key, str | None) or not isinstance(principal, str | None):
            raise InvalidArgumentError("key and principal are names (str) or None")
        store = self._store
        prefixes: tuple[str, ...] = ("",)
        if key is not None:
            prefixes = key_grant_prefixes(key.partition("#")[0])
        records = (
            GrantRecord.from_bytes(store.keyring.unseal(GRANT_KIND, r.name, r.data))
            for prefix in prefixes
            for r in store.backend.list(GRANT_KIND, prefix=prefix)
        )
        found = [g for g in records if not g.refused]  # markers of refused requests
        if key is not None:
            found = [
                g
                for g in found
                if g.kind == "key" and (g.key_id == key if "#" in key else g.key_name == key)
            ]
        if principal is not None:
            found = [g for g in found if g.principal == principal or g.peer == principal]
        return found

    # -- the server side of the protocol ------------------------------------------

    def handle(self, data: bytes) -> bytes:
        """Answer one request: reply bytes, or an ERROR message when refused.

        Never raises for bad input: every refusal is audited (``kdc.request``,
        outcome ``denied``) and answered with an ERROR message. A grant's
        reply is returned only once its grant record and audit entry have
        committed.

        Raises:
            StoreError: the grant record could not be written (no reply).
        """
        return self._handle(data, None)

    def handle_many(self, requests: Sequence[bytes]) -> builtins.list[bytes]:
        """Answer a batch of requests with one store write (group commit).

        Each request is checked and answered exactly as :meth:`handle` would
        (same refusals, same replies), but the grant records and audit
        entries of the whole batch — refusals included — are written in
        **one** transaction, and no reply is returned before that
        transaction has committed. A batch therefore costs one durable
        commit instead of one per request; a server that has several
        requests waiting (or a client fetching several keys) uses it to
        spread the cost of the grant log.

        A request whose grant record turns out to exist already when the
        batch commits (the same request replayed to another KDC process on
        this store) is answered with a ``replay`` ERROR instead, and audited
        as refused in the same write.

        Args:
            requests: request messages, answered in order.

        Returns:
            one reply (or ERROR message) per request, in order.

        Raises:
            StoreError: the batch could not be written; no reply is released.
            InvalidArgumentError: ``requests`` is not a sequence (of messages).
        """
        if isinstance(requests, bytes | bytearray | memoryview | str) or not isinstance(
            requests, Sequence
        ):
            raise InvalidArgumentError("handle_many takes a sequence of request messages")
        batch = _Batch()
        replies: builtins.list[bytes] = []
        for data in requests:
            batch.position = len(replies)
            replies.append(self._handle(data, batch))
        if batch.grants or batch.refusals:
            for position, (code, message) in self._record_batch(batch).items():
                replies[position] = p.build_error(code, message)
        return replies

    def _handle(self, data: bytes, batch: _Batch | None) -> bytes:
        try:
            kind = w.peek_type(data)
            if kind is MessageType.REVOCATION_LIST_REQUEST:
                _, (nonce,) = w.decode(data, MessageType.REVOCATION_LIST_REQUEST)
                if len(nonce) not in (0, p.NONCE_LEN):
                    raise MalformedInputError("a revocation list nonce is 16 bytes")
                try:
                    return self.revocation_list(nonce=nonce)
                except (ProtocolError, KeyStateError, KeyUsageError) as exc:
                    return p.build_error(ErrorCode.UNAVAILABLE, exc.message)
            return self._handle_request(data, batch)
        except _Refusal as refusal:
            refused = (
                refusal.details.pop("object", "kdc"),
                {"outcome": "denied", "reason": refusal.reason, **refusal.details},
                refusal.marker,
            )
            reply = p.build_error(refusal.code, refusal.message)
        except MalformedInputError as exc:
            refused = ("kdc", {"outcome": "denied", "reason": "malformed"}, None)
            reply = p.build_error(ErrorCode.MALFORMED, exc.message)
        if batch is None:
            self._record_refusal(*refused)
        else:
            batch.refusals.append(refused)
        return reply

    def _record_refusal(
        self, object: str, details: dict[str, Any], marker: GrantRecord | None
    ) -> None:
        """Audit a refusal; with the marker of its consumed request, in the same write."""
        if marker is None:
            self._store.audit("kdc.request", object, **details)
            return
        attempts = 0

        def run(txn: Txn) -> None:
            nonlocal attempts
            attempts += 1
            _stage_marker(txn, marker, first=attempts == 1)
            txn.audit("kdc.request", object, **details)

        self._store.transact(run)

    def _handle_request(self, data: bytes, batch: _Batch | None = None) -> bytes:
        envelope = p.parse_request(data)
        name = envelope.principal
        subject = f"principal:{name}"
        principal = self._principal(name)
        try:
            if principal is None:
                raise DecryptionError()
            if envelope.auth_kind is AuthKind.SYMMETRIC:
                if principal.aead is None:
                    raise DecryptionError()
                body = p.open_request(envelope, aead=principal.aead)
            else:
                cert = principal.certificate
                if cert is None:
                    raise InvalidSignatureError()
                body = p.open_request(envelope, public_key=cert.public_key())
        except (DecryptionError, InvalidSignatureError):
            raise _Refusal(
                ErrorCode.AUTHENTICATION,
                "authentication",
                "the request could not be authenticated",
                object=subject,
            ) from None
        assert principal is not None
        # From here on the request is authentic: a refusal (but a replay,
        # which is recorded already) leaves a marker named as its grant
        # would have been, so the same request replayed to another KDC
        # process, a restarted one, or this one after what refused it has
        # changed (a policy, a key, a disabled principal enabled, a hold
        # released) conflicts with it. Markers cost a record in the write
        # the refusal's audit entry needs anyway. A principal revoked for
        # good leaves none (see _needs_marker).
        try:
            return self._authentic(envelope, principal, body, batch)
        except _Refusal as refusal:
            now = self._ctx.clock.now()
            # A replay is recorded already; a request stamped too long ago can
            # never be fresh again (one stamped too far ahead can).
            if (
                refusal.reason != "replay"
                and not (refusal.reason == "stale" and body.timestamp <= now)
                and _needs_marker(refusal)
            ):
                target = body.target
                is_key = envelope.kind is MessageType.KEY_REQUEST
                refusal.marker = GrantRecord(
                    id=_grant_id(name, body.nonce),
                    kind="refused",
                    principal=name,
                    issued_at=now,
                    expires_at=now,
                    key_name=target if is_key else None,
                    peer=None if is_key else target,
                    auth=principal.credential,
                )
            raise

    def _authentic(
        self,
        envelope: p.RequestEnvelope,
        principal: _Principal,
        body: p.RequestBody,
        batch: _Batch | None,
    ) -> bytes:
        """An authenticated request: check its principal and freshness, then answer it."""
        name = principal.name
        subject = f"principal:{name}"
        # A revoked or disabled principal is refused before its nonce is
        # remembered: its (possibly stolen) key cannot fill the replay cache.
        revoked = self._ctx.revocation.get(SubjectKind.PRINCIPAL, name)
        if revoked is not None:
            raise _Refusal(
                ErrorCode.REVOKED,
                "principal-revoked",
                "the principal is revoked",
                object=subject,
                revocation_reason=revoked.reason.value,
            )
        chain = (
            ()
            if principal.certificate_subject is None  # symmetric: no call on the hot path
            else self._certificate_chain(principal)
        )
        cert_revoked = self._chain_state(chain) if chain else None
        if cert_revoked is not None:
            # Revoked at its CA (ca.revoke, a compromise of its key): the same
            # registry entry the CRL and OCSP answer from, one dict probe.
            raise _Refusal(
                ErrorCode.REVOKED,
                "certificate-revoked",
                "the principal's certificate is revoked",
                object=subject,
                revocation_reason=cert_revoked[0],
            )
        if not principal.enabled:
            raise _Refusal(
                ErrorCode.DISABLED,
                "principal-disabled",
                "the principal is disabled",
                object=subject,
            )
        now = self._ctx.clock.now()
        try:
            self._replays.check_and_insert(name, body.nonce, body.timestamp, at=now)
        except StaleMessageError:
            raise _Refusal(
                ErrorCode.STALE,
                "stale",
                "the request timestamp is outside the allowed skew",
                object=subject,
            ) from None
        except ReplayError:
            raise _Refusal(
                ErrorCode.REPLAY, "replay", "the request was seen before", object=subject
            ) from None
        return self._answer(envelope, principal, body, now, batch, chain)

    def _answer(
        self,
        envelope: p.RequestEnvelope,
        principal: _Principal,
        body: p.RequestBody,
        now: _dt.datetime,
        batch: _Batch | None,
        chain: tuple[str, ...],
    ) -> bytes:
        """An authenticated, fresh request whose nonce is consumed: grant or refuse it.

        ``chain``: the registry subjects of a certificate principal's
        certificate and of the CA certificates above it (found unrevoked).
        """
        subject = f"principal:{principal.name}"
        if principal.certificate is not None:
            try:
                self._check_certificate(principal.certificate, now)
            except CertificateError as exc:
                raise _Refusal(
                    ErrorCode.REVOKED
                    if isinstance(exc, RevokedError)
                    else ErrorCode.AUTHENTICATION,
                    "certificate",
                    "the principal's certificate does not verify",
                    object=subject,
                    certificate_reason=str(getattr(exc, "reason", "")),
                ) from None
        if envelope.kind is MessageType.KEY_REQUEST:
            return self._grant_key(envelope, principal, body, now, batch, chain)
        return self._grant_ticket(envelope, principal, body, now, batch, chain)

    def _reply(
        self,
        kind: MessageType,
        principal: _Principal,
        body: p.RequestBody,
        nonce: bytes,
        inner: Sequence[bytes],
    ) -> bytes:
        protection: dict[str, Any] = (
            {"aead": principal.aead}
            if principal.aead is not None
            else {"client_share": body.reply_share, "kdc_signing_key": self._signing()}
        )
        try:
            return p.build_reply(
                kind,
                principal.name,
                nonce,
                inner,
                randomness=self._ctx.randomness,
                **protection,
            )
        except (KeyStateError, KeyUsageError) as exc:  # the KDC's signing key cannot sign
            raise _Refusal(
                ErrorCode.UNAVAILABLE,
                "kdc-signing-key",
                "the KDC cannot sign replies now",
                object=f"principal:{principal.name}",
                detail=exc.message,
            ) from None
        except DecryptionError:  # a low-order X25519 share: no key can be agreed
            raise _Refusal(
                ErrorCode.MALFORMED,
                "bad-share",
                "the request's reply share is not a usable X25519 public key",
                object=f"principal:{principal.name}",
            ) from None

    def _grant_key(
        self,
        envelope: p.RequestEnvelope,
        principal: _Principal,
        body: p.RequestBody,
        now: _dt.datetime,
        batch: _Batch | None = None,
        chain: tuple[str, ...] = (),
    ) -> bytes:
        key_name = body.target
        subject = f"principal:{principal.name}"
        policy, policy_revision = self._policy_state()
        if not policy.allows_key(principal.name, key_name):
            raise _Refusal(
                ErrorCode.DENIED,
                "policy",
                f"the policy does not allow key {key_name!r}",
                object=subject,
                key=key_name,
            )
        revocation = self._ctx.revocation
        if revocation.is_revoked(SubjectKind.KEY, key_name):
            raise _Refusal(
                ErrorCode.REVOKED,
                "key-revoked",
                f"key {key_name!r} is revoked",
                object=subject,
                key=key_name,
            )
        if self._keys is None:
            raise _Refusal(
                ErrorCode.NOT_FOUND,
                "not-found",
                f"no key named {key_name!r}",
                object=subject,
                key=key_name,
            )
        try:
            key = self._keys.current(key_name)
        except (KeyNotFoundError, InvalidArgumentError):
            # A name the policy allows (a pattern may admit anything) but
            # the key store refuses as a key name names no key either.
            raise _Refusal(
                ErrorCode.NOT_FOUND,
                "not-found",
                f"no key named {key_name!r}",
                object=subject,
                key=key_name,
            ) from None
        except RevokedError:
            raise _Refusal(
                ErrorCode.REVOKED,
                "key-revoked",
                f"key {key_name!r} is revoked",
                object=subject,
                key=key_name,
            ) from None
        except (KeyStateError, KeyUsageError) as exc:
            raise _Refusal(
                ErrorCode.KEY_STATE,
                "key-state",
                f"key {key_name!r} cannot be distributed",
                object=subject,
                key=key_name,
                detail=exc.message,
            ) from None
        key_id = f"{key.name}#{key.version}"
        if revocation.is_revoked(SubjectKind.KEY, key_id):
            raise _Refusal(
                ErrorCode.REVOKED,
                "key-revoked",
                f"key {key_id} is revoked",
                object=subject,
                key=key_id,
            )
        grant = GrantRecord(
            id=_grant_id(principal.name, body.nonce),
            kind="key",
            principal=principal.name,
            issued_at=now,
            expires_at=_capped(principal, now + self.settings.key_grant_lifetime, key.valid_until),
            key_name=key.name,
            version=key.version,
            auth=principal.credential,
        )
        reply = self._reply(
            MessageType.KEY_REPLY,
            principal,
            body,
            body.nonce,
            [
                key.name.encode("utf-8"),
                w.u32(key.version),
                key.algorithm.encode(),
                key.material.reveal(),
                p.ts(grant.issued_at),
                p.ts(grant.expires_at),
                bytes.fromhex(grant.id),
            ],
        )
        registry: tuple[str, ...] = (
            _PRINCIPAL_PREFIX + principal.name,
            _KEY_PREFIX + key_name,
            _KEY_PREFIX + key_id,
        )
        if chain:
            registry += tuple([_CERTIFICATE_PREFIX + name for name in chain])
            registry += self._chain_keys(chain)
        basis = self._basis(
            (principal.credential_version, None),
            (principal, None),
            policy_revision,
            registry,
        )
        self._record(grant, "kdc.grant-key", key_id, basis, batch)
        return reply

    def _grant_ticket(
        self,
        envelope: p.RequestEnvelope,
        principal: _Principal,
        body: p.RequestBody,
        now: _dt.datetime,
        batch: _Batch | None = None,
        chain: tuple[str, ...] = (),
    ) -> bytes:
        service = body.target
        subject = f"principal:{principal.name}"
        policy, policy_revision = self._policy_state()
        if not policy.allows_peer(principal.name, service):
            raise _Refusal(
                ErrorCode.DENIED,
                "policy",
                f"the policy does not allow peer {service!r}",
                object=subject,
                peer=service,
            )
        target = self._principal(service)
        if target is None:
            raise _Refusal(
                ErrorCode.NOT_FOUND,
                "not-found",
                f"no principal named {service!r}",
                object=subject,
                peer=service,
            )
        if self._ctx.revocation.is_revoked(SubjectKind.PRINCIPAL, service):
            raise _Refusal(
                ErrorCode.REVOKED,
                "peer-revoked",
                f"principal {service!r} is revoked",
                object=subject,
                peer=service,
            )
        if not target.enabled:
            raise _Refusal(
                ErrorCode.DISABLED,
                "peer-disabled",
                f"principal {service!r} is disabled",
                object=subject,
                peer=service,
            )
        if target.aead is None:
            raise _Refusal(
                ErrorCode.UNAVAILABLE,
                "peer-has-no-key",
                f"principal {service!r} has no symmetric key to seal tickets under",
                object=subject,
                peer=service,
            )
        rng = self._ctx.randomness
        session_key = rng.token_bytes(32)
        grant = GrantRecord(
            id=_grant_id(principal.name, body.nonce),
            kind="ticket",
            principal=principal.name,
            issued_at=now,
            expires_at=_capped(principal, now + self.settings.ticket_lifetime, None),
            peer=service,
            auth=principal.credential,
        )
        ticket_id = bytes.fromhex(grant.id)
        ticket = p.seal_ticket(
            target.aead,
            rng,
            client=principal.name,
            service=service,
            session_key=session_key,
            issued_at=grant.issued_at,
            expires_at=grant.expires_at,
            ticket_id=ticket_id,
        )
        reply = self._reply(
            MessageType.TICKET_REPLY,
            principal,
            body,
            body.nonce,
            [
                service.encode("utf-8"),
                session_key,
                p.ts(grant.issued_at),
                p.ts(grant.expires_at),
                ticket_id,
                ticket,
            ],
        )
        registry: tuple[str, ...] = (
            _PRINCIPAL_PREFIX + principal.name,
            _PRINCIPAL_PREFIX + service,
        )
        if chain:
            registry += tuple([_CERTIFICATE_PREFIX + name for name in chain])
            registry += self._chain_keys(chain)
        basis = self._basis(
            (principal.credential_version, target.credential_version),
            (principal, target),
            policy_revision,
            registry,
        )
        self._record(grant, "kdc.grant-ticket", f"{principal.name}>{service}", basis, batch)
        return reply

    def _chain_keys(self, chain: tuple[str, ...]) -> tuple[str, ...]:
        """The registry names of the signing keys of the CAs of a certificate chain."""
        subjects = self._certificate_subjects
        if subjects is None:  # pragma: no cover - no chain without it
            return ()
        cas = dict.fromkeys(subject.partition(":")[0] for subject in chain)
        return tuple(_KEY_PREFIX + key for ca in cas for key in subjects.key_subjects(ca))

    def _basis(
        self,
        versions: tuple[int, int | None],
        principals: tuple[_Principal, _Principal | None],
        policy_revision: int,
        registry: tuple[str, ...],
    ) -> _Basis:
        """What a grant was decided on: the cached records its commit expects."""
        known = self._registry_revisions
        principal, peer = principals
        # Absent (0) unless known as a lifted hold's marker (rare: usually empty).
        entries = (
            [(REVOCATION_KIND, name, known.get(name, 0)) for name in registry]
            if known
            else [(REVOCATION_KIND, name, 0) for name in registry]
        )
        if peer is None:
            return _Basis(
                versions,
                (
                    (PRINCIPAL_KIND, principal.name, principal.revision),
                    (POLICY_KIND, _POLICY_NAME, policy_revision),
                    *entries,
                ),
                registry,
            )
        return _Basis(
            versions,
            (
                (PRINCIPAL_KIND, principal.name, principal.revision),
                (POLICY_KIND, _POLICY_NAME, policy_revision),
                (PRINCIPAL_KIND, peer.name, peer.revision),
                *entries,
            ),
            registry,
        )

    def _record(
        self,
        grant: GrantRecord,
        operation: str,
        object: str,
        basis: _Basis,
        batch: _Batch | None = None,
    ) -> None:
        # The grant id is derived from (principal, request nonce), so a request
        # replayed to another KDC process (or after a restart), which its
        # in-memory replay cache cannot know, finds its grant record already
        # written and is refused here: compare-and-set settles a race.
        # The first attempt does not read the record: its put must create it
        # (compare-and-set on "absent"), so a replay conflicts and the re-run
        # reads the record and refuses. That saves a backend read per grant.
        # The records the decision took from this process's caches (the
        # principal, the policy, the registry entries that would refuse it)
        # are expected at the revisions it knows: whatever this process wrote
        # before, the commit conflicts when another process changed one, and
        # the re-run checks again on fresh records.
        if batch is not None:  # written with the whole batch (handle_many)
            batch.grants.append((batch.position, grant, operation, object, basis))
            return
        attempts = 0

        def run(txn: Txn) -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                if txn.get(GRANT_KIND, grant.record_name) is not None:
                    raise _Refusal(
                        ErrorCode.REPLAY,
                        "replay",
                        _REPLAY_MESSAGE,
                        object=f"principal:{grant.principal}",
                    )
                refusal = self._recheck(txn, grant, basis)
                if refusal is not None:
                    raise refusal
            else:
                expect = txn.expect
                for kind, name, revision in basis.reads:
                    expect(kind, name, revision)
            _stage_grant(txn, grant, operation, object)

        self._store.transact(run)

    def _recheck(self, txn: Txn, grant: GrantRecord, basis: _Basis) -> _Refusal | None:
        """After a write conflict: check the grant again on fresh records, for this attempt.

        The registry entries that would refuse it are read in ``txn`` first
        (so the commit checks them at the revision read), then the store is
        synced and the decision taken again (:meth:`_revoked_meanwhile`);
        the principal, peer and policy records it was taken on are expected
        at the revisions the sync left in the caches. A registry record found
        present but not revoked (a lifted hold's marker) is remembered, so
        the next grant expects its revision instead of conflicting again.
        """
        backend = self._store.backend
        found = {}
        for name in basis.registry:
            record = backend.get(REVOCATION_KIND, name)
            found[name] = 0 if record is None else record.revision
            txn.expect(REVOCATION_KIND, name, found[name])
        checked: builtins.list[tuple[str, str, int]] = []
        refusal = self._revoked_meanwhile(grant, basis.versions, checked)
        if refusal is not None:
            return refusal
        # Expected as they were checked (a later read could be newer than that).
        for kind, name, revision in checked:
            txn.expect(kind, name, revision)
        index = self._ctx.revocation.index
        known = self._registry_revisions
        for name, revision in found.items():
            if revision and name not in index:  # a marker, not a revocation
                if len(known) >= _KNOWN_MARKERS_MAX:
                    known.clear()
                known[name] = revision
        return None

    def _revoked_meanwhile(
        self,
        grant: GrantRecord,
        versions: tuple[int, int | None],
        checked: builtins.list[tuple[str, str, int]] | None = None,
    ) -> _Refusal | None:
        """After a write conflict: did another process revoke what the grant hands out?

        A conflict means someone else wrote since this process last synced
        (every write moves the audit head, which a grant's commit compares
        and sets), perhaps a compromise response whose revocation this
        process has not taken in yet: without looking again, it would hand
        out the compromised version after the response, and the response's
        report (read before this grant was written) would not name it. The
        same for access the policy withdrew meanwhile (the cached policy
        allowed it), and for a principal (or a ticket's peer) disabled or
        given a new long-term key meanwhile: the request was made with the
        old key, or the ticket sealed under it. Only re-runs pay for the sync.

        ``checked`` (when given) gets the principal, policy and peer records
        it decided on, as ``(kind, name, revision)``, for the commit to expect.
        """
        self._store.sync(force=True)
        registry = self._ctx.revocation
        subject = f"principal:{grant.principal}"
        revoked = registry.get(SubjectKind.PRINCIPAL, grant.principal)
        if revoked is not None:
            return _Refusal(
                ErrorCode.REVOKED,
                "principal-revoked",
                "the principal is revoked",
                object=subject,
                revocation_reason=revoked.reason.value,
            )
        current = self._principal(grant.principal)
        if current is not None and checked is not None:
            checked.append((PRINCIPAL_KIND, current.name, current.revision))
        if current is not None and self._certificate_revocation(current) is not None:
            return _Refusal(
                ErrorCode.REVOKED,
                "certificate-revoked",
                "the principal's certificate is revoked",
                object=subject,
            )
        if current is None or current.credential_version != versions[0]:
            # Its long-term key was replaced (a leak?): the request was made with the old one.
            return _Refusal(
                ErrorCode.AUTHENTICATION,
                "authentication",
                "the request could not be authenticated",
                object=subject,
            )
        if not current.enabled:
            return _Refusal(
                ErrorCode.DISABLED,
                "principal-disabled",
                "the principal is disabled",
                object=subject,
            )
        # Access withdrawn meanwhile (the policy cache was refreshed by the sync).
        policy, policy_revision = self._policy_state()
        if checked is not None:
            checked.append((POLICY_KIND, _POLICY_NAME, policy_revision))
        if grant.kind == "key" and not policy.allows_key(grant.principal, str(grant.key_name)):
            return _Refusal(
                ErrorCode.DENIED,
                "policy",
                f"the policy does not allow key {grant.key_name!r}",
                object=subject,
                key=str(grant.key_name),
            )
        if grant.peer is not None and not policy.allows_peer(grant.principal, grant.peer):
            return _Refusal(
                ErrorCode.DENIED,
                "policy",
                f"the policy does not allow peer {grant.peer!r}",
                object=subject,
                peer=grant.peer,
            )
        if grant.kind == "key":
            if registry.is_revoked(SubjectKind.KEY, str(grant.key_name)) or registry.is_revoked(
                SubjectKind.KEY, str(grant.key_id)
            ):
                return _Refusal(
                    ErrorCode.REVOKED,
                    "key-revoked",
                    f"key {grant.key_id} is revoked",
                    object=subject,
                    key=str(grant.key_id),
                )
        elif grant.peer is not None:
            if registry.is_revoked(SubjectKind.PRINCIPAL, grant.peer):
                return _Refusal(
                    ErrorCode.REVOKED,
                    "peer-revoked",
                    f"principal {grant.peer!r} is revoked",
                    object=subject,
                    peer=grant.peer,
                )
            peer = self._principal(grant.peer)
            if peer is not None and checked is not None:
                checked.append((PRINCIPAL_KIND, peer.name, peer.revision))
            if peer is None or not peer.enabled or peer.credential_version != versions[1]:
                # Disabled, or its key replaced: the ticket is sealed under the old one.
                return _Refusal(
                    ErrorCode.UNAVAILABLE,
                    "peer-changed",
                    f"principal {grant.peer!r} changed meanwhile; ask again",
                    object=subject,
                    peer=grant.peer,
                )
        return None

    def _record_batch(self, batch: _Batch) -> dict[int, tuple[ErrorCode, str]]:
        """Write a batch's grant records and audit entries in one transaction.

        Returns the positions of requests refused at commit time (replayed,
        or revoked by another process meanwhile) and the error to answer.
        """
        attempts = 0

        def run(txn: Txn) -> dict[int, tuple[ErrorCode, str]]:
            nonlocal attempts
            attempts += 1
            refused: dict[int, tuple[ErrorCode, str]] = {}
            names: set[str] = set()
            expected: set[tuple[str, str, int]] = set()
            for position, grant, operation, object, basis in batch.grants:
                name = grant.record_name
                if name in names or (attempts > 1 and txn.get(GRANT_KIND, name) is not None):
                    refused[position] = (ErrorCode.REPLAY, _REPLAY_MESSAGE)
                    txn.audit(
                        "kdc.request",
                        f"principal:{grant.principal}",
                        outcome="denied",
                        reason="replay",
                    )
                    continue
                if attempts > 1:
                    refusal = self._recheck(txn, grant, basis)
                else:
                    refusal = None
                    for read in basis.reads:
                        if read not in expected:  # a batch's grants share most of them
                            expected.add(read)
                            txn.expect(*read)
                if refusal is not None:  # see _record
                    refused[position] = (refusal.code, refusal.message)
                    names.add(name)
                    if _needs_marker(refusal):
                        _stage_marker(txn, _marker(grant), first=False)  # its nonce is spent
                    txn.audit(
                        "kdc.request",
                        refusal.details.pop("object"),
                        outcome="denied",
                        reason=refusal.reason,
                        **refusal.details,
                    )
                    continue
                names.add(name)
                _stage_grant(txn, grant, operation, object)
            for object, details, marker in batch.refusals:
                if marker is not None and marker.record_name not in names:
                    names.add(marker.record_name)
                    _stage_marker(txn, marker, first=attempts == 1)
                txn.audit("kdc.request", object, **details)
            return refused

        return self._store.transact(run)

    # -- revocation list ----------------------------------------------------------

    def revocation_list(self, *, nonce: bytes = b"") -> bytes:
        """The current revocation list of key versions and principals, signed.

        Its number is the store generation its entries reflect (it only
        grows): the store is synced first, at once, so a revocation another
        process committed is in the list, and the number is the generation
        this process has taken in — never one whose writes the entries miss.
        It is current until ``now + settings.revocation_list_lifetime``. One
        message holds it, so it is bounded (about 40,000 entries with short
        names).

        Raises:
            ProtocolError: too many revocations for one message.
            InvalidArgumentError: a nonce that is not empty or 16 bytes.
        """
        if not isinstance(nonce, bytes) or len(nonce) not in (0, p.NONCE_LEN):
            raise InvalidArgumentError("a revocation list nonce is empty or 16 bytes")
        self._store.sync(force=True)
        number = self._store.synced_generation
        now = self._ctx.clock.now()
        count, body = self._revocation_list_body()
        try:
            return p.build_revocation_list(
                self._signing(),
                number=number,
                this_update=now,
                next_update=now + self.settings.revocation_list_lifetime,
                nonce=nonce,
                body=body,
            )
        except MalformedInputError:
            raise ProtocolError(
                f"{count} revocations do not fit in one revocation list message"
            ) from None

    def _revocation_list_body(self) -> tuple[int, bytes]:
        """The encoded revocation entries, and how many: rebuilt only when they change.

        Anyone may ask for the list, unauthenticated, and the registry also
        holds every revoked certificate (a million, for a big CA): reading
        all of it per request would let one client keep the KDC busy. The
        list holds the key and principal revocations, plus a ``principal``
        entry for each certificate principal whose certificate is revoked
        in the registry (at its CA), so clients and ticket receivers refuse
        it as they refuse a revoked principal. The body is cached under the
        registry's change counts of the three kinds and the version of the
        table of certificate principals (read before the entries, so a
        change made meanwhile makes the next request rebuild); a request
        costs a store sync and one signature. A certificate revocation
        rebuilds it from the cached key and principal entries and one
        registry probe per certificate principal, never a registry scan.
        """
        registry = self._ctx.revocation
        with self._list_lock:
            version, holders = self._certificate_holders()
            stamp = (
                registry.changes(SubjectKind.KEY),
                registry.changes(SubjectKind.PRINCIPAL),
                registry.changes(SubjectKind.CERTIFICATE),
                version,
            )
            cached = self._revocations_cache
            if cached is not None and cached[0] == stamp:
                return cached[2], cached[3]
            direct, named = self._direct_entries(stamp[:2])
            derived = []
            # The CA chains as the CAs stand now, once per CA (a renewal
            # changes a sub-CA's certificate; a revocation moves the stamp).
            chains: dict[str, Sequence[str]] = {}
            # A CA's key compromise, asked once per CA (a key revocation moves the stamp).
            compromised: dict[str, _dt.datetime | None] = {}
            for name, subject in holders.items():
                ca = subject.partition(":")[0]
                issuers = chains.get(ca)
                if issuers is None and self._certificate_subjects is not None:
                    issuers = chains[ca] = self._certificate_subjects.issuers(ca)
                found_revocation = self._chain_state((subject, *(issuers or ())), compromised)
                if found_revocation is None:
                    continue
                reason, revoked_at = found_revocation
                own = named.get(name)
                # A principal revoked itself is listed once, under the
                # stronger reason (a compromise of its certificate's key
                # outranks, say, superseded: the registry's own rule).
                if own is not None and not (
                    _is_compromise(reason) and not _is_compromise(own.reason)
                ):
                    continue
                derived.append(
                    RevokedEntry(
                        SubjectKind.PRINCIPAL.value, name, reason, _codec.from_micros(revoked_at)
                    )
                )
            derived.sort(key=lambda e: e.subject)
            found = tuple(derived)
            if cached is not None and cached[0][:2] == stamp[:2] and cached[1] == found:
                # Another certificate was revoked, none of a principal: same body.
                self._revocations_cache = (stamp, found, cached[2], cached[3])
                return cached[2], cached[3]
            replaced = {e.subject for e in found}
            entries = [
                e for e in direct if named.get(e.subject) is not e or e.subject not in replaced
            ]
            entries.extend(found)
            entries.sort(key=lambda e: (e.kind, e.subject))
            body = p.revocation_list_body(entries)
            self._revocations_cache = (stamp, found, len(entries), body)
            return len(entries), body

    def _direct_entries(
        self, stamp: tuple[int, int]
    ) -> tuple[builtins.list[RevokedEntry], dict[str, RevokedEntry]]:
        """The registry's key and principal revocations, and the principals' by name.

        Cached per change of those two kinds; a rebuild reads the registry's
        names of the two kinds (:meth:`~keymgmt.revocation.RevocationRegistry.names`),
        never a pass over its certificates.
        """
        cached = self._direct_cache
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        registry = self._ctx.revocation
        index = registry.index
        entries = []
        for name in (*registry.names(SubjectKind.KEY), *registry.names(SubjectKind.PRINCIPAL)):
            value = index.get(name)
            if value is not None:  # dropped since the names were read: the stamp moved
                kind, _, subject = name.partition(":")
                reason, revoked_at, _ = cast("tuple[str, int, int | None]", value)
                entries.append(RevokedEntry(kind, subject, reason, _codec.from_micros(revoked_at)))
        principal = SubjectKind.PRINCIPAL.value
        named = {e.subject: e for e in entries if e.kind == principal}
        self._direct_cache = (stamp, entries, named)
        return entries, named

    def _certificate_holders(self) -> tuple[int, dict[str, str]]:
        """The certificate principals and their certificates' registry subjects, kept current.

        Loaded from the store once (the first revocation list), then only
        the principals noted as changed since (registered, removed, given
        another certificate) are read again. Call under ``_list_lock``.

        Returns:
            a version that moves whenever the table changes, and the table.
        """
        with self._lock:
            holders = self._holders
            if holders is not None and not self._dirty:
                return self._holders_version, holders
            dirty, self._dirty = self._dirty, set()
            # From here on every change is noted: one made while the table
            # loads is read again next time (reading it twice is harmless).
            self._tracking = True
        if holders is None:
            holders = {}
            for name, value in self._store.list_json(PRINCIPAL_KIND):
                found = self._holder_name(value)
                if found is not None:
                    holders[name] = found
            self._holders = holders
            self._holders_version += 1
            return self._holders_version, holders
        changed = False
        for name in dirty:
            stored = self._store.get_json(PRINCIPAL_KIND, name)
            found = None if stored is None else self._holder_name(stored)
            if holders.get(name) != found:
                changed = True
                if found is None:
                    holders.pop(name, None)
                else:
                    holders[name] = found
        if changed:
            self._holders_version += 1
        return self._holders_version, holders

    def _holder_name(self, value: dict[str, Any]) -> str | None:
        """The registry subject of a principal record's certificate, if we resolve one."""
        if value.get("credential") != "certificate" or self._certificate_subjects is None:
            return None
        return self._loaded(value).certificate_subject

    # -- compromise response --------------------------------------------------------

    def compromise(
        self,
        *,
        key: str | None = None,
        principal: str | None = None,
        certificate: x509.Certificate | None = None,
        reason: RevocationReason | str = RevocationReason.KEY_COMPROMISE,
        cascade: bool = True,
    ) -> CompromiseReport:
        """Respond to a compromise of a key version, a principal or a certificate.

        The whole playbook is **one** audited store transaction
        (:mod:`keymgmt.kdc._compromise`): revoke (so the KDC refuses further
        distribution and every part refuses the subject), rotate what must be
        replaced, make the new revocation list current, one
        ``kdc.compromise`` audit entry; a failure at any step writes
        nothing. A certificate's new CRL is signed right after the commit.
        The report of what was exposed is read in the same transaction.

        * ``key="name#version"`` (or ``"name"`` for its primary version): the
          version is marked compromised; if it was the primary the key is
          rotated; the report lists who received it and the data keys made
          under it (by id, with who asked).
        * ``principal="name"``: the principal is revoked. A symmetric
          principal's long-term key opens every reply and ticket sealed
          under it, so the key versions it received are exposed and, with
          ``cascade``, compromised and rotated in turn; its tickets (as
          client and as service) are exposed. A certificate principal's
          replies were forward-secret: they are listed as not exposed.
        * ``certificate=cert``: the certificate is revoked at the CA that
          issued it, principals registered with it are revoked, and the
          CA's new CRL is signed.

        Running it again is safe (revocations are idempotent; a version no
        longer primary is not rotated again).

        Raises:
            InvalidArgumentError: not exactly one subject, or a bad reason.
            NotFoundError / KeyNotFoundError: no such principal or key.
            MalformedInputError: a certificate pyca cannot parse.
        """
        from keymgmt.kdc._compromise import respond

        return respond(
            self,
            key=key,
            principal=principal,
            certificate=certificate,
            reason=reason,
            cascade=cascade,
        )
