"""Which certificates a CA issued for each public key, and which keys it knows are compromised.

A revocation names one certificate, but a compromise is about a key: a CA
that renewed a certificate has issued two for the same key, and revoking
only the newer one for ``key-compromise`` would leave the older one valid
for whoever holds the key. So every CA keeps, per subject public key, the
serials it certified that key under (with their expiry), and a mark once
the key was revoked for a compromise; the issuing paths refuse a marked
key, and a compromise revocation revokes the key's other certificates.

Two record kinds, so that issuing costs the same whatever a key already
has (no record grows with the certificates of a key)::

    pki-key-cert / "<ca name>:<fingerprint>:<serial hex>"  {"not_after": µs}
        one per certificate, written (create-only, nothing read) in the
        issuing transaction; listed by the prefix "<ca name>:<fingerprint>:"
        only when a revocation spreads (rare; an index range on SQLite and
        PostgreSQL, a pass over the kind's records in memory);
    pki-key / "<ca name>:<fingerprint>"
        {"compromised": {"reason": ..., "serial": hex, "at": µs}} (absent, or
        ``{}`` as earlier versions wrote it, for a key not compromised)
        the key's head, fixed in size: every issuance for the key reads it
        and refuses a marked key. The store checks at commit every record a
        transaction only read (a ``Check`` of the revision read, absent
        included), so an issuance racing a compromise revocation (which marks
        the head, then revokes the certificates it can list) conflicts and
        re-runs into the refusal instead of committing a certificate the
        revocation could not see; and a revocation racing an issuance fails
        its own listing's check (a ``CheckList``: the new key-certificate
        record is a phantom) and re-runs, then revokes it too. (Before the
        store checked reads, every issuance wrote the head back.)

The fingerprint is the hex SHA-256 of the key's SubjectPublicKeyInfo DER.

A CA created before this index existed has no ``key_index`` mark in its
record; for it, :func:`legacy_serials` finds a key's certificates by
scanning what the CA issued (slow, and only on a compromise revocation).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Sequence
from typing import Any, Final

from cryptography import x509

from keymgmt import _codec
from keymgmt._store import Txn
from keymgmt.errors import RevokedError
from keymgmt.pki._keys import spki_der
from keymgmt.revocation import RevocationReason, RevocationRegistry, SubjectKind

__all__ = [
    "KEY_CERT_KIND",
    "KEY_INDEX_KIND",
    "check_not_compromised",
    "fingerprint",
    "legacy_serials",
    "same_key_serials",
    "spreads",
    "stage_compromised",
    "stage_issued",
    "stage_key_cert",
    "stage_key_head",
    "stage_key_revocation",
    "stage_public_key_compromise",
    "unexpired_serials",
]

KEY_INDEX_KIND: Final = "pki-key"
# Reasons that, on a CA certificate, are about the CA (its key), not one certificate.
_CA_WIDE: Final = frozenset(
    {RevocationReason.CESSATION_OF_OPERATION, RevocationReason.CERTIFICATE_HOLD}
)
KEY_CERT_KIND: Final = "pki-key-cert"


def fingerprint(public_key: Any) -> str:
    """The hex SHA-256 of ``public_key``'s SubjectPublicKeyInfo DER."""
    return hashlib.sha256(spki_der(public_key)).hexdigest()


def _name(ca: str, fp: str) -> str:
    return f"{ca}:{fp}"


def _refuse(ca: str, record: dict[str, Any]) -> None:
    mark = record.get("compromised")
    if mark is None:
        return
    reason = RevocationReason.parse(mark["reason"])
    if "key" in mark:  # found by the key store: a managed key pair was compromised
        raise RevokedError(
            f"the key pair {mark['key']} holding this public key was compromised "
            f"({reason.value}): the CA {ca!r} certifies it no more",
            ca=ca,
            reason=reason,
            serial=None,
            revoked_by=mark["key"],
        )
    by = mark.get("ca", ca)  # the CA whose revocation marked it (another CA of the store)
    raise RevokedError(
        f"the CA {by!r} revoked this public key for {reason.value} (certificate "
        f"{mark['serial']}): the CA {ca!r} certifies it no more",
        ca=ca,
        reason=reason,
        serial=int(mark["serial"], 16),
        revoked_by=by,
    )


def check_not_compromised(record: dict[str, Any] | None, ca: str) -> None:
    """Refuse a key whose index ``record`` (or None) is marked compromised.

    Raises:
        RevokedError: the key was revoked for a compromise (``reason``,
            ``serial`` of the revoked certificate, ``ca``).
    """
    if record is not None:
        _refuse(ca, record)


def stage_issued(txn: Txn, ca: str, fp: str, serial: int, not_after: int) -> None:
    """Record inside ``txn`` that ``ca`` certified the key ``fp`` under ``serial``.

    :func:`stage_key_head` then :func:`stage_key_cert`: the same work
    whatever the key already has (a read and one small create-only record).

    Raises:
        RevokedError: the key is marked compromised (nothing is written).
    """
    stage_key_head(txn, ca, fp)
    stage_key_cert(txn, ca, fp, serial, not_after)


#: The head of a key with no compromise mark, as earlier versions wrote it (``{}``).
_CLEAN_HEAD: Final = b"{}"


def stage_key_head(txn: Txn, ca: str, fp: str) -> None:
    """Refuse a compromised key inside ``txn``; the store checks the head's revision at commit.

    Call it before signing, in the issuing transaction: the refusal comes
    before any signature, and since the store checks every record a
    transaction only read (present or absent), a compromise mark committed
    meanwhile makes the issuance re-run into the refusal. A head without a
    mark (``{}``, as earlier versions wrote it) is recognised by its bytes.

    Raises:
        RevokedError: the key is marked compromised (nothing is written).
    """
    data = txn.get(KEY_INDEX_KIND, _name(ca, fp))
    if data is None or data == _CLEAN_HEAD:
        return
    check_not_compromised(_codec.loads(data), ca)


def stage_key_cert(txn: Txn, ca: str, fp: str, serial: int, not_after: int) -> None:
    """Write inside ``txn`` the create-only index record of ``serial`` for the key ``fp``.

    Its text is the canonical JSON of ``{"not_after": not_after}`` (what
    :func:`keymgmt._codec.dumps` writes), formatted directly.
    """
    txn.put(KEY_CERT_KIND, f"{_name(ca, fp)}:{serial:x}", b'{"not_after":%d}' % not_after)


def stage_compromised(
    txn: Txn, ca: str, fp: str, serial: int, reason: RevocationReason, *, by: str | None = None
) -> None:
    """Mark the key ``fp`` compromised at ``ca`` inside ``txn`` (first mark kept).

    ``by``: the CA whose certificate ``serial`` was revoked, when not ``ca``.
    """
    mark: dict[str, Any] = {"reason": reason.value, "serial": format(serial, "x")}
    if by is not None and by != ca:
        mark["ca"] = by
    _stage_mark(txn, ca, fp, mark)


def _stage_mark(txn: Txn, ca: str, fp: str, mark: dict[str, Any]) -> None:
    name = _name(ca, fp)
    record = txn.get_json(KEY_INDEX_KIND, name)
    if record is None or record.get("compromised") is None:
        txn.put_json(
            KEY_INDEX_KIND, name, {"compromised": {**mark, "at": _codec.to_micros(txn.now)}}
        )


def unexpired_serials(txn: Txn, ca: str, fp: str, *, expired_too: bool = False) -> list[int]:
    """The unexpired serials ``ca`` certified the key ``fp`` under (or all), as recorded."""
    now = _codec.to_micros(txn.now)
    prefix = f"{_name(ca, fp)}:"
    return sorted(
        int(name[len(prefix) :], 16)
        for name, data in txn.list(KEY_CERT_KIND, prefix=prefix)
        if expired_too or _codec.loads(data)["not_after"] >= now
    )


def legacy_serials(
    txn: Txn, ca: str, cert_kind: str, fp: str, *, expired_too: bool = False
) -> list[int]:
    """The unexpired serials (or all) ``ca`` certified ``fp`` under, by scanning its certificates.

    For a CA whose issuance predates the index (O(number issued)).
    """
    now = _codec.to_micros(txn.now)
    found = []
    for _, data in txn.list(cert_kind, prefix=f"{ca}:"):
        record = _codec.loads(data)
        if not expired_too and record["not_after"] < now:
            continue
        cert = x509.load_der_x509_certificate(_codec.b64d(record["der"]))
        if fingerprint(cert.public_key()) == fp:
            found.append(int(record["serial"], 16))
    return found


def _record_fingerprint(record: dict[str, Any]) -> str:
    cert = x509.load_der_x509_certificate(_codec.b64d(record["der"]))
    return fingerprint(cert.public_key())


def same_key_serials(
    txn: Txn, ca: str, cert_kind: str, record: dict[str, Any], *, indexed: bool
) -> list[int]:
    """The other unexpired serials ``ca`` certified the key of the certificate ``record`` under."""
    return _other_serials(
        txn, ca, cert_kind, record, _record_fingerprint(record), indexed=indexed, expired_too=False
    )


def _other_serials(
    txn: Txn,
    ca: str,
    cert_kind: str,
    record: dict[str, Any],
    fp: str,
    *,
    indexed: bool,
    expired_too: bool,
) -> list[int]:
    """The serials ``ca`` certified the key ``fp`` of ``record`` under, but its own."""
    serials = _key_serials(txn, ca, cert_kind, fp, indexed=indexed, expired_too=expired_too)
    serials.discard(int(record["serial"], 16))
    return sorted(serials)


def _key_serials(
    txn: Txn, ca: str, cert_kind: str, fp: str, *, indexed: bool, expired_too: bool
) -> set[int]:
    """The serials ``ca`` certified the key ``fp`` under (unexpired, or all).

    From the index, and for a CA older than the index also by a scan.
    """
    serials = set(unexpired_serials(txn, ca, fp, expired_too=expired_too))
    if not indexed:
        serials.update(legacy_serials(txn, ca, cert_kind, fp, expired_too=expired_too))
    return serials


def spreads(reason: RevocationReason, record: dict[str, Any]) -> bool:
    """Whether revoking the certificate ``record`` for ``reason`` revokes its key's others.

    A compromise is about the key, whatever the certificate. For a CA
    certificate, ``cessation-of-operation`` (the sub-CA stops) and a
    ``certificate-hold`` (the sub-CA is suspended; released together) are
    about the CA too. Any other reason is about that one certificate: the
    default ``unspecified`` is how a caller retires a sub-CA's old
    certificate after a renewal, and must not revoke the current one.
    """
    if reason.is_compromise:
        return True
    return bool(record.get("child_ca")) and reason in _CA_WIDE


def stage_key_revocation(
    txn: Txn,
    registry: RevocationRegistry,
    *,
    ca: str,
    cert_kind: str,
    serial: int,
    record: dict[str, Any],
    reason: RevocationReason,
    invalidity_date: _dt.datetime | None,
    indexed: bool,
    other_cas: Sequence[tuple[str, bool]] = (),
) -> list[dict[str, Any]]:
    """After revoking ``serial`` (``record``), revoke what else the store certified its key under.

    For a compromise (any certificate): every certificate ``ca`` issued for
    the same key, expired ones included (a relying party checking a
    signature made in the past must find each of them revoked), is revoked inside ``txn`` with the
    same reason and invalidity date, each audited as
    ``pki.revoke-same-key``, and the key is marked, so
    :func:`stage_issued` refuses it. A compromise is about the key
    wherever it is certified: the same is done at each of ``other_cas``
    (the store's other CAs, as ``(name, indexed)``), whose marks name
    ``ca`` as the CA that found the compromise. For a CA certificate's
    cessation of operation or hold (see :func:`spreads`): every unexpired
    one this CA issued.

    Returns:
        the records of the other certificates revoked (at any CA).
    """
    if not spreads(reason, record):
        return []
    fp = _record_fingerprint(record)
    if reason.is_compromise:
        stage_compromised(txn, ca, fp, serial, reason)
    found = [
        (ca, other)
        for other in _other_serials(
            txn, ca, cert_kind, record, fp, indexed=indexed, expired_too=reason.is_compromise
        )
    ]
    if reason.is_compromise:
        for other_ca, other_indexed in other_cas:
            if other_ca == ca:
                continue
            stage_compromised(txn, other_ca, fp, serial, reason, by=ca)
            serials = _key_serials(
                txn, other_ca, cert_kind, fp, indexed=other_indexed, expired_too=True
            )
            found.extend((other_ca, other) for other in sorted(serials))
    details: dict[str, Any] = {"reason": reason.value, "revoked_with": format(serial, "x")}
    revoked = _stage_revoke_found(
        txn, registry, cert_kind, found, reason, invalidity_date, details, origin=ca
    )
    return [other_record for _, other_record in revoked]


def stage_public_key_compromise(
    txn: Txn,
    registry: RevocationRegistry,
    *,
    cas: Sequence[tuple[str, bool]],
    cert_kind: str,
    fp: str,
    key_id: str,
    reason: RevocationReason,
) -> list[tuple[str, dict[str, Any]]]:
    """A managed key pair ``key_id`` whose public key is ``fp`` was compromised: act at every CA.

    The key store found the compromise (``km.compromise(key=...)``), not a
    CA: at each of ``cas`` (``(name, indexed)``) the key is marked, so the
    CA certifies it no more, and every certificate the CA issued for it,
    expired ones included, is revoked with ``reason`` (each audited as
    ``pki.revoke-same-key`` naming ``key_id``).

    Returns:
        ``(CA name, certificate record)`` of each certificate revoked.
    """
    found: list[tuple[str, int]] = []
    for ca, indexed in cas:
        _stage_mark(txn, ca, fp, {"reason": reason.value, "key": key_id})
        serials = _key_serials(txn, ca, cert_kind, fp, indexed=indexed, expired_too=True)
        found.extend((ca, serial) for serial in sorted(serials))
    details: dict[str, Any] = {"reason": reason.value, "compromised_key": key_id}
    return _stage_revoke_found(txn, registry, cert_kind, found, reason, None, details)


def _stage_revoke_found(
    txn: Txn,
    registry: RevocationRegistry,
    cert_kind: str,
    found: Sequence[tuple[str, int]],
    reason: RevocationReason,
    invalidity_date: _dt.datetime | None,
    details: dict[str, Any],
    *,
    origin: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Revoke each ``(CA, serial)`` of ``found`` in ``txn``; audit the new revocations.

    Returns:
        ``(CA name, certificate record)`` of each certificate revoked now
        (not those revoked so already, nor unknown serials).
    """
    out: list[tuple[str, dict[str, Any]]] = []
    for ca, serial in found:
        name = f"{ca}:{serial:x}"
        other_record = txn.get_json(cert_kind, name)
        if other_record is None:
            continue
        before = registry.get(SubjectKind.CERTIFICATE, name)
        after = registry.stage(
            txn, SubjectKind.CERTIFICATE, name, reason, invalidity_date=invalidity_date
        )
        if after == before:  # revoked so already (a repeated revoke): nothing new to audit
            continue
        extra = {"revoked_at_ca": origin} if origin is not None and ca != origin else {}
        txn.audit("pki.revoke-same-key", f"cert:{name}", **details, **extra)
        out.append((ca, other_record))
    return out
