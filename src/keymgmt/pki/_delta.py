"""Delta CRLs that also say which certificates left the base CRL.

A delta CRL (RFC 5280 5.2.4) lists what changed since its base CRL. A
certificate whose ``certificate-hold`` was released is on the base but no
longer revoked: the delta must list it with the reason ``removeFromCRL``
(5.3.1), or a relying party holding base + delta keeps it on hold until the
next complete CRL. :func:`keymgmt.pki.build_crl` writes only revocation
reasons, so a delta with removals is built here; one without is left to it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence

from cryptography import x509

from keymgmt.pki._crl import CRLEntry, build_crl, reason_flag
from keymgmt.pki._signer import CASigner, sign_crl
from keymgmt.revocation import RevocationReason

__all__ = ["build_delta_crl", "removed_serials"]


def removed_serials(base: dict[int, CRLEntry], current: Sequence[CRLEntry]) -> list[int]:
    """The serials on the base CRL that are revoked no more (a released hold), sorted."""
    now_revoked = {entry.serial for entry in current}
    return sorted(serial for serial in base if serial not in now_revoked)


def build_delta_crl(
    *,
    issuer: x509.Certificate,
    key: CASigner,
    entries: Sequence[CRLEntry],
    removed: Sequence[int],
    number: int,
    base: int,
    this_update: _dt.datetime,
    next_update: _dt.datetime,
    progress: Callable[[int, int], None] | None = None,
) -> x509.CertificateRevocationList:
    """Sign a delta CRL: ``entries`` revoked, ``removed`` with ``removeFromCRL``.

    Args:
        issuer: the CA certificate.
        key: the CA's private key or an external signer.
        entries: what was revoked (or changed reason) since the base CRL.
        removed: serials on the base CRL that are no longer revoked; their
            entries are dated ``this_update`` (when the delta says so).
        number: this CRL's number.
        base: the base CRL's number (the delta CRL indicator).
        this_update: thisUpdate.
        next_update: nextUpdate.
        progress: as for :func:`keymgmt.pki.build_crl`.

    Returns:
        the signed delta CRL.
    """
    if not removed:
        return build_crl(
            issuer=issuer,
            key=key,
            entries=entries,
            number=number,
            this_update=this_update,
            next_update=next_update,
            delta_of=base,
            progress=progress,
        )
    revoked: list[x509.RevokedCertificate] = []
    for entry in entries:
        builder = x509.RevokedCertificateBuilder(
            serial_number=entry.serial, revocation_date=entry.revoked_at
        )
        if entry.reason is not RevocationReason.UNSPECIFIED:  # RFC 5280 5.3.1
            builder = builder.add_extension(x509.CRLReason(reason_flag(entry.reason)), False)
        if entry.invalidity_date is not None:
            builder = builder.add_extension(x509.InvalidityDate(entry.invalidity_date), False)
        revoked.append(builder.build())
    removal = x509.CRLReason(x509.ReasonFlags.remove_from_crl)
    for serial in removed:
        revoked.append(
            x509.RevokedCertificateBuilder(serial_number=serial, revocation_date=this_update)
            .add_extension(removal, critical=False)
            .build()
        )
    if progress is not None:
        progress(len(revoked), len(revoked))
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    crl = x509.CertificateRevocationListBuilder(
        issuer_name=issuer.subject,
        last_update=this_update,
        next_update=next_update,
        extensions=[
            x509.Extension(aki.oid, False, aki),
            x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
            x509.Extension(x509.DeltaCRLIndicator.oid, True, x509.DeltaCRLIndicator(base)),
        ],
        revoked_certificates=revoked,
    )
    return sign_crl(key, crl)
