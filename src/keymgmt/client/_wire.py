"""The service's error convention, shared by server and client.

Every refusal is ``{"error": {"type": ..., "message": ...}}`` with an HTTP
status. :data:`ERROR_TABLE` pairs each library exception class with its
status and type; the server uses it to answer, the client to raise the same
class again (so ``except DecryptionError`` works the same over the network).
Types not in the table (``unauthenticated``, ``rate_limited``,
``payload_too_large``, ``not_implemented``, ``not_found`` for a route, ...)
come back as :class:`~keymgmt.errors.ServiceError`.
"""

from __future__ import annotations

from typing import Any, Final

from keymgmt import errors

__all__ = ["ERROR_TABLE", "error_body", "exception_for", "status_for"]

# Most specific first: the first class the exception is an instance of wins.
ERROR_TABLE: Final[tuple[tuple[type[errors.KeyMgmtError], int, str], ...]] = (
    (errors.DecryptionError, 400, "decryption_failed"),
    (errors.InvalidSignatureError, 400, "invalid_signature"),
    (errors.MalformedInputError, 400, "malformed_input"),
    (errors.UnsupportedAlgorithmError, 400, "unsupported_algorithm"),
    (errors.InvalidArgumentError, 400, "invalid_argument"),
    (errors.KeyNotFoundError, 404, "key_not_found"),
    (errors.NotFoundError, 404, "not_found"),
    (errors.AlreadyExistsError, 409, "already_exists"),
    (errors.CertificateRevokedError, 403, "certificate_revoked"),
    (errors.CertificateVerificationError, 400, "certificate_verification_failed"),
    (errors.CertificateError, 400, "certificate_error"),
    (errors.DestroyedKeyError, 409, "key_destroyed"),
    (errors.RevokedError, 409, "subject_revoked"),
    (errors.KeyStateError, 409, "key_state"),
    (errors.KeyUsageError, 409, "key_usage"),
    (errors.AccessDeniedError, 403, "access_denied"),
    (errors.ReplayError, 400, "replay"),
    (errors.StaleMessageError, 400, "stale_message"),
    (errors.ProtocolError, 400, "protocol_error"),
    (errors.ConflictError, 503, "conflict"),
    (errors.StoreUnavailableError, 503, "store_unavailable"),
    (errors.StoreError, 503, "store_error"),
    (errors.IntegrityError, 500, "integrity_error"),
)

_BY_TYPE: Final = {kind: cls for cls, _status, kind in ERROR_TABLE}


def status_for(exc: BaseException) -> tuple[int, str, str]:
    """The HTTP status, error type and public message for ``exc``.

    Args:
        exc: any exception raised while handling a request.

    Returns:
        ``(status, type, message)``. keymgmt messages hold no secrets, so
        they are shown; any other exception gives
        ``(500, "internal", "internal server error")`` so nothing leaks.
    """
    if isinstance(exc, errors.ServiceError):
        return exc.status, exc.type, exc.message
    if isinstance(exc, errors.KeyMgmtError):
        for cls, status, kind in ERROR_TABLE:
            if isinstance(exc, cls):
                return status, kind, exc.message
        return 400, "keymgmt_error", exc.message
    return 500, "internal", "internal server error"


def error_body(kind: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON error body: ``{"error": {"type": kind, "message": message}}``."""
    return {"error": {"type": kind, "message": message}}


def exception_for(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> errors.KeyMgmtError:
    """The exception a client raises for an error answer.

    Args:
        status: the HTTP status.
        body: the decoded JSON body (anything; malformed bodies are tolerated).
        headers: the response headers worth keeping (``Retry-After``).
    """
    kind, message = "http_error", f"the service answered HTTP {status}"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        kind = str(body["error"].get("type", kind))
        message = str(body["error"].get("message", message))
    cls = _BY_TYPE.get(kind)
    if cls is errors.DecryptionError:
        return errors.DecryptionError()
    if cls is errors.InvalidSignatureError:
        return errors.InvalidSignatureError()
    if cls is not None:
        return cls(message, status=status, type=kind)
    return errors.ServiceError(status, kind, message, headers=headers)
