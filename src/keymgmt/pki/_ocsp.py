"""OCSP (RFC 6960): a sans-IO responder and a client-side response check.

The responder turns request bytes into signed response bytes and nothing
else: it never reads a socket, the store or the clock (``cryptography``
stamps producedAt from the system clock and offers no way to set it;
thisUpdate and nextUpdate follow the ``at`` given). The caller hands it
the issuer certificate, the signing key (the CA's own, or a delegated
responder's with the OCSPSigning EKU), a ``lookup(serial)`` that says good /
revoked / unknown, and the time. Malformed requests get a signed-nothing
``malformedRequest`` response, requests about another issuer
``unauthorized``; a nonce in the request is echoed in the response. A nonce
must be 1 to 32 bytes (RFC 8954 2.1; RFC 9654 raises the bound to 128, but
32 is what every client sends and what :func:`build_ocsp_request` allows):
any other length is ``malformedRequest``, so the responder never signs back
empty or attacker-sized nonces.

:func:`check_ocsp_response` is the client side: it matches the response to
the certificate and issuer, checks who signed it (the issuer or a responder
the issuer delegated to), the freshness window and the nonce. A response
without nextUpdate (RFC 6960 4.2.2.1: "newer information is always
available") is accepted only while its thisUpdate is at most ``max_age``
(default :data:`DEFAULT_OCSP_MAX_AGE`, 7 days) old: otherwise a response
captured once would vouch for the certificate forever.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Callable
from typing import Final

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from keymgmt.clock import ensure_aware
from keymgmt.errors import (
    CertificateError,
    InvalidArgumentError,
    InvalidSignatureError,
    KeyMgmtError,
    MalformedInputError,
)
from keymgmt.pki._crl import CRLEntry, reason_flag, reason_from_flag
from keymgmt.pki._keys import public_key_bits, verify_signature
from keymgmt.pki._parse import load_ocsp_request, load_ocsp_response
from keymgmt.pki._signer import CASigner, sha1_key_hash, sign_ocsp
from keymgmt.revocation import RevocationReason

__all__ = [
    "DEFAULT_OCSP_MAX_AGE",
    "CertStatus",
    "OCSPResponder",
    "OCSPStatus",
    "build_ocsp_request",
    "check_ocsp_response",
]


class CertStatus(enum.StrEnum):
    """What OCSP says about a certificate."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@attrs.frozen(kw_only=True)
class OCSPStatus:
    """A checked OCSP answer about one certificate."""

    status: CertStatus
    serial: int
    this_update: _dt.datetime
    next_update: _dt.datetime | None
    revoked_at: _dt.datetime | None = None
    reason: RevocationReason | None = None


#: ``lookup(serial)`` → (status, the revocation entry when revoked).
StatusLookup = Callable[[int], tuple[CertStatus, CRLEntry | None]]


def _issuer_hashes(
    issuer: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    name = hashes.Hash(algorithm)
    name.update(issuer.subject.public_bytes())
    # The key hash covers the BIT STRING contents of subjectPublicKey only.
    key = hashes.Hash(algorithm)
    key.update(public_key_bits(issuer))
    return name.finalize(), key.finalize()


_MIN_NONCE: Final = 1
_MAX_NONCE: Final = 32  # RFC 8954 2.1 (RFC 9654 allows up to 128: see the module doc)


class OCSPResponder:
    """A sans-IO OCSP responder for one issuer.

    Args:
        issuer: the CA certificate whose certificates this responder answers for.
        key: the signing key: the CA's (a private key or a key in a token),
            or the delegated responder's.
        lookup: ``serial -> (CertStatus, CRLEntry | None)``.
        responder_cert: the delegated responder certificate (issued by
            ``issuer`` with the OCSPSigning EKU); None when the CA signs.
        validity: how long a response is fresh (nextUpdate - thisUpdate).
    """

    def __init__(
        self,
        *,
        issuer: x509.Certificate,
        key: CASigner,
        lookup: StatusLookup,
        responder_cert: x509.Certificate | None = None,
        validity: _dt.timedelta = _dt.timedelta(hours=12),
    ) -> None:
        if not isinstance(validity, _dt.timedelta):
            raise InvalidArgumentError(
                "OCSP response validity must be a datetime.timedelta, "
                f"got {type(validity).__name__}"
            )
        if validity <= _dt.timedelta(0):
            raise InvalidArgumentError("OCSP response validity must be positive")
        self._issuer = issuer
        self._key = key
        self._lookup = lookup
        self._responder = responder_cert or issuer
        self._delegated = responder_cert is not None
        self._validity = validity
        self._hashes: dict[str, tuple[bytes, bytes]] = {}

    def _hashes_for(self, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
        found = self._hashes.get(algorithm.name)
        if found is None:
            found = self._hashes[algorithm.name] = _issuer_hashes(self._issuer, algorithm)
        return found

    def respond(self, request: bytes, *, at: _dt.datetime) -> bytes:
        """Answer one DER OCSP request with a signed DER response.

        Never raises for bad requests: they get ``malformedRequest`` (or
        ``unauthorized`` for another issuer) as the protocol says; so does a
        nonce outside 1 to 32 bytes (RFC 8954 2.1).

        Raises:
            InvalidArgumentError: ``at`` is naive, or ``at`` plus the
                responder's validity is after the year 9999.
        """
        at = ensure_aware(at, "at")
        try:
            parsed = load_ocsp_request(request)
        except CertificateError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        except InvalidArgumentError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if parsed.serial_number <= 0:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        algorithm = parsed.hash_algorithm
        if (parsed.issuer_name_hash, parsed.issuer_key_hash) != self._hashes_for(algorithm):
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        status, entry = self._lookup(parsed.serial_number)
        cert_status = {
            CertStatus.GOOD: ocsp.OCSPCertStatus.GOOD,
            CertStatus.REVOKED: ocsp.OCSPCertStatus.REVOKED,
            CertStatus.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN,
        }[status]
        this_update = at.replace(microsecond=0)
        try:
            next_update = this_update + self._validity
        except OverflowError:
            raise InvalidArgumentError(
                f"an OCSP response at {this_update.isoformat()} valid for {self._validity} "
                "would end after the year 9999"
            ) from None
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=parsed.issuer_name_hash,
            issuer_key_hash=parsed.issuer_key_hash,
            serial_number=parsed.serial_number,
            algorithm=algorithm,
            cert_status=cert_status,
            this_update=this_update,
            next_update=next_update,
            revocation_time=entry.revoked_at if entry and status is CertStatus.REVOKED else None,
            revocation_reason=(
                reason_flag(entry.reason) if entry and status is CertStatus.REVOKED else None
            ),
        )
        if self._delegated:
            builder = builder.certificates([self._responder])
        for ext in parsed.extensions:
            if isinstance(ext.value, x509.OCSPNonce):
                if not _MIN_NONCE <= len(ext.value.nonce) <= _MAX_NONCE:
                    return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
                builder = builder.add_extension(ext.value, critical=False)
        try:
            response = sign_ocsp(self._key, builder, responder=self._responder)
        except ValueError:  # something in the request cannot be echoed back
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        return response.public_bytes(serialization.Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def build_ocsp_request(
    cert: x509.Certificate, issuer: x509.Certificate, *, nonce: bytes | None = None
) -> bytes:
    """A DER OCSP request for ``cert`` (SHA-256 cert id), with an optional nonce.

    Raises:
        InvalidArgumentError: the nonce is not bytes, is empty or is longer
            than 32 bytes; ``cert`` or ``issuer`` is not a certificate.
    """
    _check_certificates(cert, issuer)
    if nonce is not None and not isinstance(nonce, bytes):
        raise InvalidArgumentError(f"an OCSP nonce is bytes, got {type(nonce).__name__}")
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256())
    if nonce is not None:
        if not _MIN_NONCE <= len(nonce) <= _MAX_NONCE:
            raise InvalidArgumentError("an OCSP nonce is 1 to 32 bytes")
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _check_certificates(cert: object, issuer: object) -> None:
    for what, value in (("cert", cert), ("issuer", issuer)):
        if not isinstance(value, x509.Certificate):
            raise InvalidArgumentError(
                f"{what} must be an x509.Certificate, got {type(value).__name__}"
            )


def _fail(message: str, reason: str) -> CertificateError:
    from keymgmt.errors import CertificateVerificationError

    return CertificateVerificationError(message, reason=reason)


def _is_delegate(candidate: x509.Certificate, issuer: x509.Certificate, at: _dt.datetime) -> bool:
    # A delegated responder must carry id-pkix-ocsp-nocheck (RFC 6960
    # 4.2.2.2.1): its own revocation status is not something this check can
    # learn, so one without it is not trusted (fail closed). A key usage, when
    # present, must allow signing (RFC 5280 4.2.1.3: digitalSignature), as
    # the responder side requires of the certificates it is configured with.
    try:
        candidate.verify_directly_issued_by(issuer)
        eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        candidate.extensions.get_extension_for_class(x509.OCSPNoCheck)
        try:
            usage = candidate.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
    except (ValueError, TypeError, x509.ExtensionNotFound):
        return False
    except Exception:  # InvalidSignature and friends
        return False
    if usage is not None and not usage.digital_signature:
        return False
    return (
        ExtendedKeyUsageOID.OCSP_SIGNING in eku
        and candidate.not_valid_before_utc <= at <= candidate.not_valid_after_utc
    )


_POLICY_HASHES: Final = frozenset({"sha256", "sha384", "sha512"})  # as for certificates

#: How old (thisUpdate before the validation time) a response without
#: nextUpdate may be and still count (:func:`check_ocsp_response`'s ``max_age``).
DEFAULT_OCSP_MAX_AGE: Final = _dt.timedelta(days=7)


def check_ocsp_response(
    response: bytes | ocsp.OCSPResponse,
    *,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    at: _dt.datetime,
    nonce: bytes | None = None,
    skew: _dt.timedelta = _dt.timedelta(minutes=5),
    max_age: _dt.timedelta = DEFAULT_OCSP_MAX_AGE,
) -> OCSPStatus:
    """Check an OCSP response about ``cert`` and return what it says.

    Args:
        response: DER bytes or a parsed response.
        cert: the certificate asked about.
        issuer: its issuer.
        at: the validation time; the response must be fresh then.
        nonce: the nonce sent in the request (must be echoed) or None.
        skew: clock tolerance on thisUpdate/nextUpdate.
        max_age: for a response without nextUpdate, how long after its
            thisUpdate (plus ``skew``) it still counts; older is stale.

    Returns:
        the status (good, revoked with time and reason, unknown).

    Raises:
        MalformedInputError: the response does not parse.
        CertificateVerificationError: unsuccessful, about another certificate,
            wrongly signed, stale (past nextUpdate, or without nextUpdate and
            older than ``max_age``) or not yet valid, or the nonce does not
            match (``reason`` = ``ocsp-...``).
        InvalidArgumentError: naive ``at``, a negative ``max_age``, or an
            argument of the wrong type.
    """
    at = ensure_aware(at, "at")
    _check_certificates(cert, issuer)
    for what, value in (("skew", skew), ("max_age", max_age)):
        if not isinstance(value, _dt.timedelta):
            raise InvalidArgumentError(
                f"{what} must be a datetime.timedelta, got {type(value).__name__}"
            )
    if nonce is not None and not isinstance(nonce, bytes):
        raise InvalidArgumentError(f"an OCSP nonce is bytes, got {type(nonce).__name__}")
    if max_age < _dt.timedelta(0):
        raise InvalidArgumentError("the OCSP max_age must not be negative")
    parsed = response if isinstance(response, ocsp.OCSPResponse) else load_ocsp_response(response)
    try:
        return _check(parsed, cert, issuer, at, nonce, skew, max_age)
    except KeyMgmtError:
        raise
    except Exception as exc:  # lazily parsed fields of a hostile response
        raise MalformedInputError(f"malformed OCSP response: {exc}") from None


def _check(
    parsed: ocsp.OCSPResponse,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    at: _dt.datetime,
    nonce: bytes | None,
    skew: _dt.timedelta,
    max_age: _dt.timedelta,
) -> OCSPStatus:
    if parsed.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise _fail(
            f"the OCSP responder answered {parsed.response_status.name.lower()}",
            "ocsp-unsuccessful",
        )
    single = None
    for candidate in parsed.responses:
        if candidate.serial_number != cert.serial_number:
            continue
        if (candidate.issuer_name_hash, candidate.issuer_key_hash) == _issuer_hashes(
            issuer, candidate.hash_algorithm
        ):
            single = candidate
            break
    if single is None:
        raise _fail("the OCSP response is about another certificate", "ocsp-mismatch")
    signer = issuer
    for extra in parsed.certificates:
        if extra != issuer and _is_delegate(extra, issuer, at):
            signer = extra
            break
    if not _responder_matches(parsed, signer):
        raise _fail("the OCSP response names another responder", "ocsp-bad-signature")
    digest = parsed.signature_hash_algorithm
    if digest is not None and digest.name not in _POLICY_HASHES:
        # The algorithm policy applies to responses as to certificates and CRLs.
        raise _fail(
            f"the OCSP response is signed with {digest.name}, below the algorithm policy",
            "ocsp-bad-signature",
        )
    try:
        verify_signature(
            signer.public_key(),
            parsed.signature,
            parsed.tbs_response_bytes,
            parsed.signature_hash_algorithm,
        )
    except InvalidSignatureError:
        raise _fail("the OCSP response signature does not verify", "ocsp-bad-signature") from None
    this_update = single.this_update_utc
    next_update = single.next_update_utc
    # Differences, not sums: a nextUpdate of 9999-12-31T23:59:59Z plus the
    # skew is past what a datetime holds.
    if this_update - at > skew:
        raise _fail("the OCSP response is not yet valid", "ocsp-not-yet-valid")
    if next_update is not None and at - next_update > skew:
        raise _fail("the OCSP response is stale", "ocsp-stale")
    if next_update is None and at - this_update - skew > max_age:
        raise _fail(
            "the OCSP response has no nextUpdate and its thisUpdate is "
            f"{(at - this_update).total_seconds():.0f} s old, more than the "
            f"{max_age.total_seconds():.0f} s allowed",
            "ocsp-stale",
        )
    if nonce is not None:
        echoed = None
        for ext in parsed.extensions:
            if isinstance(ext.value, x509.OCSPNonce):
                echoed = ext.value.nonce
        if echoed != nonce:
            raise _fail("the OCSP response does not echo our nonce", "ocsp-nonce")
    status = single.certificate_status
    if status is ocsp.OCSPCertStatus.GOOD:
        return OCSPStatus(
            status=CertStatus.GOOD,
            serial=cert.serial_number,
            this_update=this_update,
            next_update=next_update,
        )
    if status is ocsp.OCSPCertStatus.REVOKED:
        return OCSPStatus(
            status=CertStatus.REVOKED,
            serial=cert.serial_number,
            this_update=this_update,
            next_update=next_update,
            revoked_at=single.revocation_time_utc,
            reason=reason_from_flag(single.revocation_reason),
        )
    return OCSPStatus(
        status=CertStatus.UNKNOWN,
        serial=cert.serial_number,
        this_update=this_update,
        next_update=next_update,
    )


def _responder_matches(parsed: ocsp.OCSPResponse, signer: x509.Certificate) -> bool:
    if parsed.responder_name is not None:
        return parsed.responder_name == signer.subject
    key_hash = parsed.responder_key_hash
    if key_hash is None:
        return False
    return sha1_key_hash(signer) == key_hash
