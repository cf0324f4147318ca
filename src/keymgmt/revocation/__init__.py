"""The revocation registry shared by keys, PKI, KDC and the handshake."""

from keymgmt.revocation._registry import (
    REVOCATION_KIND,
    Revocation,
    RevocationReason,
    RevocationRegistry,
    SubjectKind,
)

__all__ = [
    "REVOCATION_KIND",
    "Revocation",
    "RevocationReason",
    "RevocationRegistry",
    "SubjectKind",
]
