"""Why a certificate was refused: the one failure vocabulary of both path engines."""

from __future__ import annotations

import enum

from cryptography import x509

from keymgmt.errors import CertificateVerificationError

__all__ = ["VerificationFailure", "refusal"]


class VerificationFailure(enum.StrEnum):
    """Why a certificate was refused (``CertificateVerificationError.reason``)."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    UNKNOWN_ISSUER = "unknown-issuer"
    WRONG_USAGE = "wrong-usage"
    NAME_MISMATCH = "name-mismatch"
    NAME_CONSTRAINTS = "name-constraints"
    NOT_A_CA = "not-a-ca"
    PATH_LENGTH = "path-length"
    BAD_SIGNATURE = "bad-signature"
    UNSUPPORTED_CRITICAL_EXTENSION = "unsupported-critical-extension"
    REVOKED = "revoked"
    REVOCATION_UNKNOWN = "revocation-unknown"
    INVALID_PATH = "invalid-path"


def refusal(
    failure: VerificationFailure, message: str, cert: x509.Certificate | None = None
) -> CertificateVerificationError:
    """The :class:`~keymgmt.errors.CertificateVerificationError` for ``failure``.

    ``reason`` and ``failure`` carry the :class:`VerificationFailure`;
    ``subject`` names the certificate at fault, when there is one.
    """
    return CertificateVerificationError(
        message,
        reason=failure,
        failure=failure,
        subject=None if cert is None else cert.subject.rfc4514_string(),
    )
