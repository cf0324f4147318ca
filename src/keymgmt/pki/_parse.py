"""Strict loaders for what the outside world hands the PKI.

Every parser keymgmt exposes for X.509 material goes through here and turns
whatever ``cryptography`` raises on hostile input (ValueError, TypeError,
UnsupportedAlgorithm, Rust panics surfaced as exceptions) into
:class:`~keymgmt.errors.MalformedInputError`. PEM or DER is accepted; input
above :data:`MAX_INPUT` bytes is refused before parsing. Lazily-parsed
fields that matter (extensions, signature algorithm, public key) are touched
here so a malformed value fails at load time, not later inside issuance or
verification.
"""

from __future__ import annotations

from typing import Final

from cryptography import x509
from cryptography.x509 import ocsp

from keymgmt.errors import MalformedInputError

__all__ = [
    "MAX_INPUT",
    "checked_certificate",
    "checked_csr",
    "load_certificate",
    "load_certificates",
    "load_crl",
    "load_csr",
    "load_ocsp_request",
    "load_ocsp_response",
]

#: The largest encoded object accepted (a 1M-entry CRL is ~40 MB; allow 64 MiB).
MAX_INPUT: Final = 64 * 1024 * 1024

_PEM_MARK: Final = b"-----BEGIN"


def _bytes(data: bytes | str, what: str) -> bytes:
    if isinstance(data, str):
        data = data.encode("ascii", "replace")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedInputError(f"{what} must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise MalformedInputError(f"{what} is empty")
    if len(data) > MAX_INPUT:
        raise MalformedInputError(f"{what} is too large ({len(data)} bytes)", size=len(data))
    return data


def _is_pem(data: bytes) -> bool:
    return _PEM_MARK in data[:4096]


def _touch_extensions(extensions: x509.Extensions) -> None:
    for ext in extensions:
        _ = ext.value


def load_certificate(data: bytes | str) -> x509.Certificate:
    """Parse one certificate (PEM or DER).

    Raises:
        MalformedInputError: not a well-formed certificate.
    """
    raw = _bytes(data, "certificate")
    try:
        cert = (
            x509.load_pem_x509_certificate(raw)
            if _is_pem(raw)
            else x509.load_der_x509_certificate(raw)
        )
        _touch_extensions(cert.extensions)
        if cert.serial_number <= 0:
            raise MalformedInputError("malformed certificate: the serial number is not positive")
        _ = cert.subject.rfc4514_string()
        _ = cert.issuer.rfc4514_string()
        _ = cert.signature_algorithm_oid
        _ = cert.not_valid_after_utc
        cert.public_key()
    except MalformedInputError:
        raise
    except Exception as exc:  # cryptography raises several types on hostile DER
        raise MalformedInputError(f"malformed certificate: {_why(exc)}") from None
    return cert


def load_certificates(data: bytes | str) -> list[x509.Certificate]:
    """Parse a PEM bundle (or one DER certificate) into a list.

    Raises:
        MalformedInputError: nothing parses, or one of the certificates is malformed.
    """
    raw = _bytes(data, "certificate bundle")
    if not _is_pem(raw):
        return [load_certificate(raw)]
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except Exception as exc:
        raise MalformedInputError(f"malformed certificate bundle: {_why(exc)}") from None
    return [load_certificate(c.public_bytes(_DER)) for c in certs]


def load_csr(data: bytes | str) -> x509.CertificateSigningRequest:
    """Parse a PKCS#10 certificate signing request (PEM or DER); its signature is NOT checked here.

    Raises:
        MalformedInputError: not a well-formed CSR.
    """
    raw = _bytes(data, "certificate signing request")
    try:
        csr = x509.load_pem_x509_csr(raw) if _is_pem(raw) else x509.load_der_x509_csr(raw)
    except Exception as exc:
        raise MalformedInputError(f"malformed certificate signing request: {_why(exc)}") from None
    return checked_csr(csr)


def checked_csr(csr: x509.CertificateSigningRequest) -> x509.CertificateSigningRequest:
    """Touch what ``cryptography`` parses lazily in a CSR object (extensions, subject, key).

    For CSRs given as objects: the same checks :func:`load_csr` makes, so a
    duplicate extension or an unparseable key is a typed error there too.

    Raises:
        MalformedInputError: a part of the CSR does not parse.
    """
    try:
        _touch_extensions(csr.extensions)
        _ = csr.subject.rfc4514_string()
        csr.public_key()
        _ = csr.signature_algorithm_oid
    except Exception as exc:
        raise MalformedInputError(f"malformed certificate signing request: {_why(exc)}") from None
    return csr


def checked_certificate(cert: x509.Certificate) -> x509.Certificate:
    """Touch what ``cryptography`` parses lazily in a certificate object.

    For certificates given as objects (as :func:`checked_csr` for CSRs): a
    duplicate extension, a name form pyca cannot represent, an undecodable
    name or public key are a typed error here, not pyca's own exception later.

    Raises:
        MalformedInputError: a part of the certificate does not parse.
    """
    try:
        _touch_extensions(cert.extensions)
        _ = cert.subject.rfc4514_string()
        _ = cert.issuer.rfc4514_string()
        cert.public_key()
    except Exception as exc:  # cryptography raises several types on hostile DER
        raise MalformedInputError(f"malformed certificate material: {_why(exc)}") from None
    return cert


def load_crl(data: bytes | str) -> x509.CertificateRevocationList:
    """Parse a CRL (PEM or DER).

    Raises:
        MalformedInputError: not a well-formed CRL.
    """
    raw = _bytes(data, "CRL")
    try:
        crl = x509.load_pem_x509_crl(raw) if _is_pem(raw) else x509.load_der_x509_crl(raw)
        _touch_extensions(crl.extensions)
        _ = crl.issuer.rfc4514_string()
        _ = crl.last_update_utc
        _ = crl.signature_algorithm_oid
        for revoked in crl:
            _ = revoked.serial_number
            _ = revoked.revocation_date_utc
            _touch_extensions(revoked.extensions)
    except Exception as exc:
        raise MalformedInputError(f"malformed CRL: {_why(exc)}") from None
    return crl


def load_ocsp_request(data: bytes) -> ocsp.OCSPRequest:
    """Parse a DER OCSP request (one certificate, as every client sends).

    Raises:
        MalformedInputError: not a well-formed OCSP request.
    """
    raw = _bytes(data, "OCSP request")
    try:
        request = ocsp.load_der_ocsp_request(raw)
        _ = request.serial_number
        _ = request.issuer_key_hash
        _ = request.issuer_name_hash
        _ = request.hash_algorithm
        _touch_extensions(request.extensions)
    except Exception as exc:
        raise MalformedInputError(f"malformed OCSP request: {_why(exc)}") from None
    return request


def load_ocsp_response(data: bytes) -> ocsp.OCSPResponse:
    """Parse a DER OCSP response (signature not checked here).

    Raises:
        MalformedInputError: not a well-formed OCSP response.
    """
    raw = _bytes(data, "OCSP response")
    try:
        response = ocsp.load_der_ocsp_response(raw)
        if response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL:
            for single in response.responses:
                _ = single.serial_number
                _ = single.certificate_status
                _ = single.hash_algorithm
                _ = single.issuer_key_hash
                _ = single.issuer_name_hash
                _ = single.this_update_utc
                _ = single.next_update_utc
                if single.certificate_status is ocsp.OCSPCertStatus.REVOKED:
                    _ = single.revocation_time_utc
                    _ = single.revocation_reason
            _ = response.signature_hash_algorithm
            _ = response.responder_name
            _ = response.responder_key_hash
            _ = response.tbs_response_bytes
            _touch_extensions(response.extensions)
            _ = response.certificates
    except Exception as exc:
        raise MalformedInputError(f"malformed OCSP response: {_why(exc)}") from None
    return response


def _why(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


from cryptography.hazmat.primitives.serialization import Encoding as _Encoding  # noqa: E402

_DER: Final = _Encoding.DER
