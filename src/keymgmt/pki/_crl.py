"""CRLs built in bulk, and an O(1) index over CRLs we are given.

Two facts shape this module. ``CertificateRevocationListBuilder`` copies its
list on every ``add_revoked_certificate`` call (quadratic: 100k entries took
17 s), so the revoked entries are built first and handed to the builder's
constructor once. And ``get_revoked_certificate_by_serial_number`` scans the
list linearly, so verification indexes each CRL once into a dict.

A revoke never touches a CRL: it writes one registry entry. The CRL is built
from the registry when asked for (``CertificateAuthority.crl``) or when the
last one is due.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Final, NamedTuple

from cryptography import x509

from keymgmt.pki._keys import spki_der
from keymgmt.pki._signer import CASigner, sign_crl
from keymgmt.revocation import RevocationReason

__all__ = [
    "CRLEntry",
    "CRLIndex",
    "build_crl",
    "reason_flag",
    "reason_from_flag",
    "removed_serials",
]

_FLAGS: Final = {
    RevocationReason.UNSPECIFIED: x509.ReasonFlags.unspecified,
    RevocationReason.KEY_COMPROMISE: x509.ReasonFlags.key_compromise,
    RevocationReason.CA_COMPROMISE: x509.ReasonFlags.ca_compromise,
    RevocationReason.AFFILIATION_CHANGED: x509.ReasonFlags.affiliation_changed,
    RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
    RevocationReason.CESSATION_OF_OPERATION: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.CERTIFICATE_HOLD: x509.ReasonFlags.certificate_hold,
    RevocationReason.PRIVILEGE_WITHDRAWN: x509.ReasonFlags.privilege_withdrawn,
    RevocationReason.AA_COMPROMISE: x509.ReasonFlags.aa_compromise,
}
_REASONS: Final = {flag: reason for reason, flag in _FLAGS.items()}
_PROGRESS_MASK: Final = 4096 - 1  # build_crl reports progress every 4,096 entries


def reason_flag(reason: RevocationReason) -> x509.ReasonFlags:
    """The ``cryptography`` flag for a revocation reason."""
    return _FLAGS[reason]


def reason_from_flag(flag: x509.ReasonFlags | None) -> RevocationReason:
    """The revocation reason for a ``cryptography`` flag (None/removeFromCRL → unspecified)."""
    return (
        _REASONS.get(flag, RevocationReason.UNSPECIFIED) if flag else RevocationReason.UNSPECIFIED
    )


class CRLEntry(NamedTuple):
    """One revoked certificate on a CRL."""

    serial: int
    revoked_at: _dt.datetime
    reason: RevocationReason
    invalidity_date: _dt.datetime | None = None


def build_crl(
    *,
    issuer: x509.Certificate,
    key: CASigner,
    entries: Iterable[CRLEntry],
    number: int,
    this_update: _dt.datetime,
    next_update: _dt.datetime,
    delta_of: int | None = None,
    removed: Sequence[int] = (),
    progress: Callable[[int, int], None] | None = None,
) -> x509.CertificateRevocationList:
    """Sign a CRL over ``entries`` in one pass.

    Args:
        issuer: the CA certificate (issuer name, key identifier).
        key: the CA's private key, or an external signer (a key in a token).
        entries: the revoked certificates.
        number: the CRL number (strictly increasing per CA).
        this_update: thisUpdate.
        next_update: nextUpdate.
        delta_of: make a delta CRL against this base CRL number.
        removed: for a delta CRL, serials on the base CRL that are revoked no
            more (a released hold): listed with ``removeFromCRL`` (RFC 5280
            5.2.4, 5.3.1) and dated ``this_update``, or a relying party
            holding base + delta keeps them on hold until the next complete
            CRL.
        progress: called as ``progress(done, total)`` every 4,096 entries and
            once all are in (for a progress bar; it must not raise).

    Returns:
        the signed CRL.
    """
    revoked: list[x509.RevokedCertificate] = []
    append = revoked.append
    builder_cls = x509.RevokedCertificateBuilder
    reason_exts: dict[RevocationReason, x509.CRLReason] = {
        reason: x509.CRLReason(flag)
        for reason, flag in _FLAGS.items()
        if reason is not RevocationReason.UNSPECIFIED
    }
    listed = entries if isinstance(entries, Sequence) else list(entries)
    total = len(listed) + len(removed)
    for done, entry in enumerate(listed, 1):
        if progress is not None and done & _PROGRESS_MASK == 0:
            progress(done, total)
        b = builder_cls().serial_number(entry.serial).revocation_date(entry.revoked_at)
        ext = reason_exts.get(entry.reason)
        if ext is not None:  # RFC 5280 5.3.1: unspecified SHOULD be absent
            b = b.add_extension(ext, critical=False)
        if entry.invalidity_date is not None:
            b = b.add_extension(x509.InvalidityDate(entry.invalidity_date), critical=False)
        append(b.build())
    if removed:
        removal = x509.CRLReason(x509.ReasonFlags.remove_from_crl)
        for serial in removed:
            append(
                builder_cls(serial_number=serial, revocation_date=this_update)
                .add_extension(removal, critical=False)
                .build()
            )
    if progress is not None:
        progress(total, total)
    try:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        )
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    extensions = [
        x509.Extension(aki.oid, False, aki),
        x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
    ]
    if delta_of is not None:
        extensions.append(
            x509.Extension(x509.DeltaCRLIndicator.oid, True, x509.DeltaCRLIndicator(delta_of))
        )
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=issuer.subject,
        last_update=this_update,
        next_update=next_update,
        extensions=extensions,
        revoked_certificates=revoked,
    )
    return sign_crl(key, builder)


def removed_serials(base: dict[int, CRLEntry], current: Sequence[CRLEntry]) -> list[int]:
    """The serials on a base CRL that are revoked no more (a released hold), sorted."""
    now_revoked = {entry.serial for entry in current}
    return sorted(serial for serial in base if serial not in now_revoked)


class CRLIndex:
    """A CRL's entries by serial (one dict probe per lookup), plus its numbers."""

    __slots__ = ("base_number", "crl", "entries", "number")

    def __init__(self, crl: x509.CertificateRevocationList) -> None:
        self.crl = crl
        self.entries: dict[int, CRLEntry] = {}
        for revoked in crl:
            reason = RevocationReason.UNSPECIFIED
            invalidity = None
            for ext in revoked.extensions:
                if isinstance(ext.value, x509.CRLReason):
                    reason = reason_from_flag(ext.value.reason)
                elif isinstance(ext.value, x509.InvalidityDate):
                    invalidity = ext.value.invalidity_date_utc
            self.entries[revoked.serial_number] = CRLEntry(
                revoked.serial_number, revoked.revocation_date_utc, reason, invalidity
            )
        self.number: int | None = None
        self.base_number: int | None = None
        for ext in crl.extensions:
            if isinstance(ext.value, x509.CRLNumber):
                self.number = ext.value.crl_number
            elif isinstance(ext.value, x509.DeltaCRLIndicator):
                self.base_number = ext.value.crl_number

    @property
    def is_delta(self) -> bool:
        """Whether this is a delta CRL."""
        return self.base_number is not None


class CRLIndexCache:
    """An LRU of :class:`CRLIndex` keyed by the CRL's signature and the key that verified it.

    Not by the signature alone: with ECDSA anyone can compute a public key
    under which a published signature verifies over a message of their
    choosing, so a CRL with another CRL's signature bytes but other contents
    (signed, say, by an attacker's CA under another trust anchor of the same
    verifier) must not share its index. Under one key, equal signatures mean
    equal signed contents (anything else is a forgery of that key), so the
    pair names the contents without hashing the whole CRL on every use (a
    100,000-entry CRL takes about 0.1 s to fingerprint). Callers look an
    index up only after checking the CRL's signature with ``signer``.
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._items: OrderedDict[tuple[bytes, bytes], CRLIndex] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, crl: x509.CertificateRevocationList, signer: x509.Certificate) -> CRLIndex:
        """The index of ``crl`` (whose signature ``signer``'s key verified), built once."""
        key = (crl.signature, spki_der(signer))
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        index = CRLIndex(crl)
        with self._lock:
            self._items[key] = index
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return index
