"""A client for ``keymgmt serve``: the façade's shapes, over HTTPS with a client certificate."""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from keymgmt._secret import SecretBytes
from keymgmt.client._wire import exception_for
from keymgmt.errors import (
    DecryptionError,
    InvalidArgumentError,
    MalformedInputError,
    StoreUnavailableError,
)
from keymgmt.keys._format import Header, parse_header
from keymgmt.model import DataKey

__all__ = ["KeyServiceClient", "client_ssl_context"]

_KEEP_HEADERS: Final = ("retry-after", "allow")


class _NoKeyPassword(Exception):
    """Raised from the password callback: the key is encrypted and no passphrase was given."""


def _password_for(
    key_password: str | bytes | None,
) -> Callable[[], str | bytes]:
    """The password callback for ``load_cert_chain``; never lets OpenSSL prompt on the tty."""

    def password() -> str | bytes:
        if key_password is None:
            raise _NoKeyPassword
        return key_password

    return password


def client_ssl_context(
    *,
    ca: str | os.PathLike[str],
    certificate: str | os.PathLike[str] | None = None,
    private_key: str | os.PathLike[str] | None = None,
    key_password: str | bytes | None = None,
) -> ssl.SSLContext:
    """An SSL context that trusts ``ca`` and presents a client certificate.

    Args:
        ca: the CA bundle that issued the server's certificate.
        certificate: the client certificate (PEM, optionally with its chain).
        private_key: its private key (PEM); may be inside ``certificate``.
        key_password: the private key's passphrase when it is encrypted
            (``keymgmt ca issue --key-out`` writes encrypted keys). Without
            it an encrypted key is refused; OpenSSL never prompts.

    Raises:
        InvalidArgumentError: the files do not load, the key is encrypted
            and no ``key_password`` was given, or the passphrase is wrong.
    """
    try:
        context = ssl.create_default_context(cafile=os.fspath(ca))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if certificate is not None:
            context.load_cert_chain(
                os.fspath(certificate),
                None if private_key is None else os.fspath(private_key),
                password=_password_for(key_password),
            )
    except _NoKeyPassword:
        raise InvalidArgumentError(
            f"the client key {os.fspath(private_key or certificate or '')} is encrypted: "
            "give its passphrase (key_password=; for keymgmt remote, --key-passphrase-file "
            "or KEYMGMT_KEY_PASSPHRASE)"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        hint = " (wrong key passphrase?)" if key_password is not None else ""
        raise InvalidArgumentError(f"cannot load the client TLS material{hint}: {exc}") from None
    return context


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _field(answer: Mapping[str, Any], name: str) -> str:
    """A string field of a JSON answer; a missing or mistyped one is a malformed answer."""
    value = answer.get(name)
    if not isinstance(value, str):
        raise MalformedInputError(f"the service's answer has no string '{name}'")
    return value


def _unb64(answer: Mapping[str, Any], name: str) -> bytes:
    text = _field(answer, name)
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise MalformedInputError("the service answered with invalid base64") from None


@contextlib.contextmanager
def _answer_of(what: str) -> Iterator[None]:
    """Turn a success answer that does not have the documented shape into MalformedInputError."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise MalformedInputError(f"the service answered with a malformed {what}") from None


def _header(data: bytes) -> Header:
    try:
        return parse_header(data)
    except MalformedInputError:
        raise DecryptionError() from None


def _verification_failure(exc: BaseException) -> str | None:
    """OpenSSL's reason when ``exc`` was caused by a server certificate that did not verify."""
    seen: BaseException | None = exc
    for _ in range(8):  # httpx wraps httpcore's error, which wraps ssl's
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or "certificate verify failed")
        seen = seen.__cause__ or seen.__context__
    return None


def _key_of(data: bytes) -> str:
    # The library's ciphertexts name their key; so does the URL (the server
    # checks that both agree before it decrypts).
    return quote(_header(data).name, safe="")


class KeyServiceClient:
    """Speaks to a ``keymgmt serve`` instance; methods mirror the :class:`~keymgmt.KeyManager`.

    Errors come back as the same keymgmt exception classes the server's
    library raised (``DecryptionError``, ``AccessDeniedError``,
    ``KeyNotFoundError``, ...); HTTP-level refusals (401, 413, 429, 501) as
    :class:`~keymgmt.errors.ServiceError` with ``status`` and ``type``.

    Args:
        url: the service's base URL, e.g. ``https://127.0.0.1:8443``.
        ssl_context: from :func:`client_ssl_context` (trust + client certificate).
        timeout: seconds per request.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext, timeout: float = 10.0) -> None:
        if not url.startswith("https://"):
            raise InvalidArgumentError("the key service is reached over https:// only")
        self.url = url.rstrip("/")
        try:
            self._http = httpx.Client(base_url=self.url, verify=ssl_context, timeout=timeout)
        except httpx.InvalidURL as exc:
            raise InvalidArgumentError(f"not a valid service URL {url!r}: {exc}") from None

    @classmethod
    def from_files(
        cls,
        url: str,
        *,
        ca: str | os.PathLike[str],
        certificate: str | os.PathLike[str],
        private_key: str | os.PathLike[str],
        timeout: float = 10.0,
        key_password: str | bytes | None = None,
    ) -> KeyServiceClient:
        """A client presenting the certificate and key in these PEM files.

        Args:
            url: the service's base URL.
            ca: the CA bundle that issued the server's certificate.
            certificate: the client certificate (PEM, optionally with its chain).
            private_key: its private key (PEM).
            timeout: seconds per request.
            key_password: the private key's passphrase when it is encrypted.

        Raises:
            InvalidArgumentError: the files do not load (an encrypted key
                without ``key_password`` included) or the URL is not https.
        """
        context = client_ssl_context(
            ca=ca, certificate=certificate, private_key=private_key, key_password=key_password
        )
        return cls(url, ssl_context=context, timeout=timeout)

    def __repr__(self) -> str:
        return f"KeyServiceClient({self.url!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> KeyServiceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; raise the keymgmt exception for an error answer.

        Raises:
            StoreUnavailableError: the service cannot be reached.
            MalformedInputError: the answer's body does not decode.
            KeyMgmtError: the subclass the service's answer names.
        """
        try:
            response = self._http.request(
                method, path, json=json, content=content, headers=headers, params=params
            )
        except httpx.DecodingError:
            raise MalformedInputError(
                "the service answered with a body its Content-Encoding does not decode"
            ) from None
        except httpx.TransportError as exc:
            refused = _verification_failure(exc)
            if refused is not None:  # an impostor, or the wrong --ca: not an outage
                raise StoreUnavailableError(
                    f"the key service at {self.url} presented a certificate that does not "
                    f"verify against the given CA ({refused})"
                ) from None
            if isinstance(exc, httpx.RemoteProtocolError):
                # A server that refuses the client certificate ends a TLS 1.3
                # connection after the handshake, before any answer.
                raise StoreUnavailableError(
                    f"the key service at {self.url} closed the connection without answering "
                    "(does it trust this client's certificate: issued by its CA, not expired?)"
                ) from None
            raise StoreUnavailableError(
                f"cannot reach the key service at {self.url}: {type(exc).__name__}"
            ) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deeply
                body = None
            kept = {k: v for k, v in response.headers.items() if k.lower() in _KEEP_HEADERS}
            raise exception_for(response.status_code, body, kept)
        return response

    def _json(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The JSON object a success answer holds.

        Raises:
            MalformedInputError: the answer is not a JSON object (a proxy's
                page, another server on the port).
        """
        response = self.request(method, path, json=body)
        try:
            value = response.json()
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deeply
            raise MalformedInputError("the service answered with a body that is not JSON") from None
        if not isinstance(value, dict):
            raise MalformedInputError("the service answered with JSON that is not an object")
        return value

    @staticmethod
    def _ctx(context: Mapping[str, str] | None) -> dict[str, str]:
        return dict(context or {})

    # -- health -----------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /v1/health``."""
        value: dict[str, Any] = self._json("GET", "/v1/health")
        return value

    def ready(self) -> dict[str, Any]:
        """``GET /v1/ready``: the store answers; which parts are wired."""
        value: dict[str, Any] = self._json("GET", "/v1/ready")
        return value

    def whoami(self) -> str:
        """The principal the service sees in this client's certificate."""
        return _field(self._json("GET", "/v1/whoami"), "principal")

    # -- transit ----------------------------------------------------------------

    def create_key(self, name: str, *, algorithm: str | None = None) -> dict[str, Any]:
        """Create a named symmetric key on the service; its description."""
        body: dict[str, Any] = {"name": name}
        if algorithm is not None:
            body["algorithm"] = algorithm
        value: dict[str, Any] = self._json("POST", "/v1/transit/keys", body)
        return value

    def key_info(self, name: str) -> dict[str, Any]:
        """The description of a key (never its material)."""
        value: dict[str, Any] = self._json("GET", f"/v1/transit/keys/{quote(name, safe='')}")
        return value

    def encrypt(
        self,
        name: str,
        plaintext: bytes | bytearray | memoryview,
        context: Mapping[str, str] | None = None,
    ) -> bytes:
        """Encrypt under the primary version of key ``name`` (as ``km.encrypt``).

        Raises:
            KeyNotFoundError, KeyStateError, KeyUsageError, AccessDeniedError.
        """
        answer = self._json(
            "POST",
            f"/v1/transit/keys/{quote(name, safe='')}/encrypt",
            {"plaintext": _b64(bytes(plaintext)), "context": self._ctx(context)},
        )
        return _unb64(answer, "ciphertext")

    def decrypt(
        self, ciphertext: bytes | bytearray | memoryview, context: Mapping[str, str] | None = None
    ) -> bytes:
        """Decrypt a keymgmt ciphertext; it names its key (as ``km.decrypt``).

        Raises:
            DecryptionError: tampered, truncated, foreign or wrong context (opaque).
            DestroyedKeyError, RevokedError: the version it names cannot decrypt.
        """
        data = bytes(ciphertext)
        answer = self._json(
            "POST",
            f"/v1/transit/keys/{_key_of(data)}/decrypt",
            {"ciphertext": _b64(data), "context": self._ctx(context)},
        )
        return _unb64(answer, "plaintext")

    def generate_data_key(self, name: str, context: Mapping[str, str] | None = None) -> DataKey:
        """A fresh data key, in plaintext and wrapped under ``name`` (as ``km.generate_data_key``).

        Raises:
            As :meth:`encrypt`.
        """
        answer = self._json(
            "POST",
            f"/v1/transit/keys/{quote(name, safe='')}/datakey",
            {"context": self._ctx(context)},
        )
        wrapped = _unb64(answer, "ciphertext")
        header = _header(wrapped)
        return DataKey(
            plaintext=SecretBytes(_unb64(answer, "plaintext")),
            wrapped=wrapped,
            key_name=header.name,
            key_version=header.version,
        )

    def decrypt_data_key(
        self, wrapped: bytes | bytearray | memoryview, context: Mapping[str, str] | None = None
    ) -> SecretBytes:
        """The plaintext of a wrapped data key (as ``km.decrypt_data_key``).

        Raises:
            As :meth:`decrypt`.
        """
        return SecretBytes(self.decrypt(wrapped, context))

    def rewrap(
        self, ciphertext: bytes | bytearray | memoryview, context: Mapping[str, str] | None = None
    ) -> bytes:
        """Move a ciphertext or wrapped data key to its key's primary version (as ``km.rewrap``).

        Raises:
            As :meth:`decrypt` and :meth:`encrypt`.
        """
        data = bytes(ciphertext)
        answer = self._json(
            "POST",
            f"/v1/transit/keys/{_key_of(data)}/rewrap",
            {"ciphertext": _b64(data), "context": self._ctx(context)},
        )
        return _unb64(answer, "ciphertext")

    # -- pki --------------------------------------------------------------------

    def ca_certificates(self) -> dict[str, x509.Certificate]:
        """Every CA the service's store holds, by name."""
        answer = self._json("GET", "/v1/pki/cas")
        with _answer_of("CA list"):
            return {
                str(ca["name"]): x509.load_pem_x509_certificate(ca["certificate"].encode("ascii"))
                for ca in answer["cas"]
            }

    def crl(self, ca: str) -> x509.CertificateRevocationList:
        """The current CRL of ``ca``."""
        response = self.request("GET", f"/v1/pki/cas/{quote(ca, safe='')}/crl")
        try:
            return x509.load_der_x509_crl(response.content)
        except ValueError:
            raise MalformedInputError("the service answered with a malformed CRL") from None

    def sign_csr(
        self, ca: str, csr: x509.CertificateSigningRequest, *, profile: str
    ) -> tuple[x509.Certificate, list[x509.Certificate]]:
        """Have ``ca`` issue a certificate for ``csr`` under ``profile``; ``(leaf, chain)``."""
        answer = self._json(
            "POST",
            f"/v1/pki/cas/{quote(ca, safe='')}/sign",
            {
                "csr": csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
                "profile": profile,
            },
        )
        with _answer_of("certificate"):
            leaf = x509.load_pem_x509_certificate(answer["certificate"].encode("ascii"))
            chain = [x509.load_pem_x509_certificate(c.encode("ascii")) for c in answer["chain"]]
        return leaf, chain

    def ocsp(self, request: ocsp.OCSPRequest | bytes, *, method: str = "POST") -> ocsp.OCSPResponse:
        """Ask the OCSP responder (RFC 6960 POST, or GET with the request in the URL)."""
        der = (
            request
            if isinstance(request, bytes)
            else request.public_bytes(serialization.Encoding.DER)
        )
        if method == "GET":
            response = self.request("GET", "/v1/pki/ocsp/" + _b64(der))
        elif method == "POST":
            response = self.request(
                "POST",
                "/v1/pki/ocsp",
                content=der,
                headers={"Content-Type": "application/ocsp-request"},
            )
        else:
            raise InvalidArgumentError("method must be 'GET' or 'POST'")
        try:
            return ocsp.load_der_ocsp_response(response.content)
        except ValueError:
            raise MalformedInputError(
                "the service answered with a malformed OCSP response"
            ) from None

    # -- kdc and revocation -------------------------------------------------------

    def kdc(self, message: bytes) -> bytes:
        """Send one KDC wire message; the reply message."""
        response = self.request(
            "POST",
            "/v1/kdc",
            content=message,
            headers={"Content-Type": "application/octet-stream"},
        )
        return response.content

    def revoke(self, kind: str, subject: str, reason: str = "unspecified") -> dict[str, Any]:
        """Revoke a key version, certificate or principal through the service."""
        value: dict[str, Any] = self._json(
            "POST", "/v1/revocations", {"kind": kind, "subject": subject, "reason": reason}
        )
        return value
