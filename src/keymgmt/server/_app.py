"""The ASGI application: routes under ``/v1``, authentication, policy, limits, errors.

Request path, for an authenticated endpoint:

1. the TLS layer has checked the client's chain against the CA bundle;
2. :meth:`Service.authenticate` takes the verified chain the connection
   recorded, names the principal (CN, else first SAN), and refuses a revoked
   principal or certificate (registry lookups, O(1); the registry is kept
   fresh by a background sync every ``sync_interval`` seconds, or before
   every request when it is 0);
3. the per-principal token bucket takes one token (else 429);
4. the policy authorizes the principal for the operation and resource
   (else 403);
5. the body is read up to ``max_body`` bytes (else 413) and parsed strictly
   (else 400);
6. calls that write (create a key, sign a CSR or a CRL, KDC grants,
   revocations, syncs) run in worker threads, so a commit's fsync or
   round trip does not stall other connections. Reads — transit
   encrypt/decrypt/datakey/rewrap, key descriptions, CA certificates — run
   on the event loop (``inline_reads``): they are in-memory or one indexed
   store read, cheaper than the thread hop (measured here: a hop costs
   0.2-0.7 ms of CPU on a busy two-core machine, an in-memory AEAD call
   a few microseconds). The rare store access inside them (a key's first
   use, the usage-count flush once a minute) blocks the loop for one store
   read or write.

Every failure is ``{"error": {"type": ..., "message": ...}}`` with the
status from :mod:`keymgmt.server._errors`. One log line per request names
the principal, method, path, status and duration — never a body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as _dt
import email.utils
import functools
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final

import anyio
import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from keymgmt._version import __version__
from keymgmt.audit import act_as
from keymgmt.errors import (
    InvalidArgumentError,
    KeyMgmtError,
    KeyNotFoundError,
    MalformedInputError,
)
from keymgmt.revocation import RevocationReason, SubjectKind
from keymgmt.server._batch import GroupCommitter
from keymgmt.server._errors import ServiceError, error_body, status_for
from keymgmt.server._parts import CaInfo, ServiceParts
from keymgmt.server._policy import Operation, ServicePolicy
from keymgmt.server._ratelimit import TokenBucketLimiter
from keymgmt.server._tls import principal_of

__all__ = ["PeerIdentity", "Service", "TLS_STATE_KEY"]

#: Where the HTTP protocol leaves the connection's TLS facts when the server
#: does not fill the ASGI ``tls`` extension itself (uvicorn does not).
TLS_STATE_KEY: Final = "keymgmt.tls"

_LOG = logging.getLogger("keymgmt.server")
_KEY_NAME_MAX: Final = 200
_PEM_CHAIN: Final = "application/pem-certificate-chain"
_TRANSIT: Final = "/v1/transit/keys"
_FastRoute = tuple[Callable[[Request], Awaitable[Response]], dict[str, Any]]


@attrs.frozen(kw_only=True)
class PeerIdentity:
    """The authenticated caller: principal name and its verified certificate chain."""

    principal: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    subjects: tuple[tuple[SubjectKind, str], ...]
    #: When the first certificate of the chain expires (TLS checked validity
    #: at the handshake; a keep-alive connection outlives it).
    not_after: _dt.datetime = attrs.field(
        default=attrs.Factory(
            lambda self: min(c.not_valid_after_utc for c in self.chain), takes_self=True
        )
    )


def _tls_info(scope: Scope) -> Mapping[str, Any] | None:
    extensions = scope.get("extensions") or {}
    info = extensions.get("tls")
    if info is None:
        info = (scope.get("state") or {}).get(TLS_STATE_KEY)
    return info


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedInputError(f"'{field}' must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInputError(f"'{field}' is not valid base64") from None


def _context(body: Mapping[str, Any]) -> dict[str, str]:
    value = body.get("context", {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise MalformedInputError("'context' must be an object of strings")
    return value


def _key_name(request: Request) -> str:
    name = str(request.path_params["name"])
    if not name or len(name) > _KEY_NAME_MAX:
        raise InvalidArgumentError("the key name is empty or too long")
    return name


def _printable(value: Any) -> str:
    """``value`` for a log line: control characters escaped, so input cannot forge lines.

    The path is percent-decoded (``%0a`` is a newline) and a principal from a
    foreign CA's certificate is any text.
    """
    text = str(value)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _subject_attributes(csr: x509.CertificateSigningRequest) -> list[tuple[str, str | None]]:
    """The CSR subject's attributes other than common names, for the sign policy.

    As ``(RFC 4514 name, text)``; a value that is not text (a BIT STRING
    x500UniqueIdentifier) is None, which no policy pattern matches. The
    policy judges each of them (a rule's ``attributes``): anything in the
    subject is copied into the certificate, and a relying party that
    authorizes by organization would believe it.
    """
    return [
        (
            attribute.rfc4514_attribute_name,
            attribute.value if isinstance(attribute.value, str) else None,
        )
        for attribute in csr.subject
        if attribute.oid != NameOID.COMMON_NAME
    ]


def _http_date(when: _dt.datetime) -> str:
    return email.utils.format_datetime(when.astimezone(_dt.UTC), usegmt=True)


def error_response(exc: BaseException) -> JSONResponse:
    """The JSON error response for ``exc`` (see :mod:`keymgmt.server._errors`)."""
    status, kind, message = status_for(exc)
    headers = exc.headers if isinstance(exc, ServiceError) else {}
    return JSONResponse(error_body(kind, message), status_code=status, headers=headers)


class Service:
    """The key service: policy, limits and the library behind HTTP.

    Args:
        parts: the library seam (usually :class:`~keymgmt.server.ManagerParts`).
        policy: who may do what.
        max_body: the largest request body accepted, in bytes.
        sync_interval: seconds between background syncs with the store (so
            other processes' revocations are seen); 0 syncs before every
            authenticated request.
        monotonic: the clock for rate limits and the sync schedule.
        utcnow: the clock for cache headers.
        inline_reads: run reads on the event loop (see above); False sends
            every library call to worker threads.
        body_timeout: seconds a client may take to send its request body
            (a trickling client gets 408 instead of holding a connection).
    """

    def __init__(
        self,
        parts: ServiceParts,
        policy: ServicePolicy,
        *,
        max_body: int = 1 << 20,
        sync_interval: float = 0.25,
        monotonic: Callable[[], float] = time.monotonic,
        utcnow: Callable[[], _dt.datetime] = lambda: _dt.datetime.now(_dt.UTC),
        inline_reads: bool = True,
        body_timeout: float = 30.0,
    ) -> None:
        # Finite numbers only: a NaN sync interval is neither > 0 nor == 0,
        # so the service never synced (another process's revocations never
        # arrived), and an infinite body timeout is none.
        if (
            max_body < 1
            or not (math.isfinite(sync_interval) and sync_interval >= 0)
            or not (math.isfinite(body_timeout) and body_timeout > 0)
        ):
            raise InvalidArgumentError(
                "max_body must be >= 1, sync_interval a finite number >= 0 and "
                "body_timeout a finite number > 0"
            )
        self.body_timeout = body_timeout
        self.parts = parts
        self.policy = policy
        self.max_body = max_body
        self.sync_interval = sync_interval
        self.limiter = TokenBucketLimiter(
            policy.rate_limit.rate, policy.rate_limit.burst, clock=monotonic
        )
        self._utcnow = utcnow
        self.inline_reads = inline_reads
        self._identities = functools.lru_cache(maxsize=4096)(self._identity_from_pem)
        self._creates: GroupCommitter[tuple[str, str | None, str], dict[str, Any]] = GroupCommitter(
            parts.create_keys
        )
        # The transit actions by path suffix (built once; see _transit_route).
        self._transit_actions: dict[str, Callable[[Request], Awaitable[Response]]] = {
            "encrypt": self.encrypt,
            "decrypt": self.decrypt,
            "datakey": self.datakey,
            "rewrap": self.rewrap,
        }

    def __repr__(self) -> str:
        return f"Service({self.parts!r}, rules={len(self.policy.rules)})"

    # -- the ASGI app -----------------------------------------------------------

    def app(self) -> ASGIApp:
        """The Starlette application (ASGI 3)."""
        routes = [  # the hot paths first: Starlette tries routes in order
            Route("/v1/transit/keys/{name}/encrypt", self.encrypt, methods=["POST"]),
            Route("/v1/transit/keys/{name}/decrypt", self.decrypt, methods=["POST"]),
            Route("/v1/transit/keys/{name}/datakey", self.datakey, methods=["POST"]),
            Route("/v1/transit/keys/{name}/rewrap", self.rewrap, methods=["POST"]),
            Route("/v1/transit/keys/{name}", self.read_key, methods=["GET"]),
            Route("/v1/transit/keys", self.create_key, methods=["POST"]),
            Route("/v1/health", self.health, methods=["GET"]),
            Route("/v1/ready", self.ready, methods=["GET"]),
            Route("/v1/pki/cas", self.list_cas, methods=["GET"]),
            Route("/v1/pki/cas/{ca}/certificate", self.ca_certificate, methods=["GET"]),
            Route("/v1/pki/cas/{ca}/crl", self.crl, methods=["GET"]),
            Route("/v1/pki/cas/{ca}/sign", self.sign, methods=["POST"]),
            Route("/v1/pki/ocsp", self.ocsp_post, methods=["POST"]),
            Route("/v1/pki/ocsp/{request:path}", self.ocsp_get, methods=["GET"]),
            Route("/v1/kdc", self.kdc, methods=["POST"]),
            Route("/v1/revocations", self.revoke, methods=["POST"]),
            Route("/v1/whoami", self.whoami, methods=["GET"]),
        ]
        app = Starlette(
            routes=routes,
            exception_handlers={
                HTTPException: self._http_exception,
                KeyMgmtError: self._library_error,
                # Anything else: Starlette's ServerErrorMiddleware answers
                # with this (the JSON 500 "internal", no detail) instead of
                # its plain-text page, then re-raises for _Guard to log.
                Exception: self._library_error,
            },
            lifespan=self._lifespan,
        )
        # A trailing slash is an unknown route (JSON 404), not a redirect to
        # a URL built from the client's own Host header.
        app.router.redirect_slashes = False
        return _Guard(app, fast=self._transit_route)

    def _transit_route(self, method: str, path: str) -> _FastRoute | None:
        """The handler and path parameters of a transit request, or None.

        The transit routes carry nearly all traffic; :class:`_Guard` calls
        their handlers directly instead of through Starlette's middleware
        and router (about a sixth of a request's CPU time). Anything else
        (other routes, other methods, malformed paths) goes to Starlette,
        which answers 404 and 405 as before.
        """
        if not path.startswith(_TRANSIT):
            return None
        rest = path[len(_TRANSIT) :]
        if not rest:
            return (self.create_key, {}) if method == "POST" else None
        if rest[0] != "/":
            return None
        name, _, action = rest[1:].partition("/")
        if not name or "/" in action:
            return None
        if not action:
            return (self.read_key, {"name": name}) if method == "GET" else None
        handler = self._transit_actions.get(action)
        if handler is None or method != "POST":
            return None
        return handler, {"name": name}

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            if self.sync_interval > 0:
                group.start_soon(self._sync_forever)
            yield
            group.cancel_scope.cancel()

    async def _sync_forever(self) -> None:
        while True:
            await anyio.sleep(self.sync_interval)
            try:
                await run_in_threadpool(self.parts.sync)
            except KeyMgmtError as exc:  # the store is down: keep serving, say so
                _LOG.warning("store sync failed: %s", type(exc).__name__)

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {
            404: f"no route {request.url.path}",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code, str(exc.detail))
        return JSONResponse(
            error_body(kind, message), status_code=exc.status_code, headers=exc.headers
        )

    async def _library_error(self, request: Request, exc: Exception) -> Response:
        return error_response(exc)

    # -- plumbing ---------------------------------------------------------------

    def _identity_from_pem(self, chain_pem: tuple[str, ...]) -> PeerIdentity:
        try:
            chain = tuple(x509.load_pem_x509_certificate(p.encode("ascii")) for p in chain_pem)
        except ValueError:
            raise ServiceError(
                401, "unauthenticated", "the client certificate is unreadable"
            ) from None
        principal = principal_of(chain[0])
        if principal is None:
            raise ServiceError(
                401, "unauthenticated", "the client certificate names no principal (CN or SAN)"
            )
        subjects = [(SubjectKind.PRINCIPAL, principal)]
        subjects += self.parts.certificate_subjects(chain)
        return PeerIdentity(
            principal=principal, certificate=chain[0], chain=chain, subjects=tuple(subjects)
        )

    async def authenticate(self, request: Request) -> PeerIdentity:
        """The caller's identity, checked for revocation and rate-limited.

        Raises:
            ServiceError: 401 without a client certificate or when it (or its
                chain) has expired since the handshake, 403 when revoked, 429
                over the rate limit.
        """
        info = _tls_info(request.scope)
        chain = tuple((info or {}).get("client_cert_chain") or ())
        if not chain:
            raise ServiceError(
                401, "unauthenticated", "this endpoint needs a TLS client certificate"
            )
        if self.sync_interval == 0:  # before the chain is attributed to the store's CAs
            await run_in_threadpool(self.parts.sync)
        identity = self._identities(chain)
        if self._utcnow() > identity.not_after:
            raise ServiceError(
                401,
                "unauthenticated",
                "the client certificate (or its chain) has expired; connect again with a "
                "current one",
            )
        if len(identity.subjects) <= len(identity.chain):
            # A certificate the store's CAs did not issue, as far as this
            # process knew when it first saw the chain: a foreign CA's, or
            # one of a CA created since by another process. Look again, so
            # such a CA's revocations are not missed for the cached identity.
            subjects: tuple[tuple[SubjectKind, str], ...] = (
                (SubjectKind.PRINCIPAL, identity.principal),
                *self.parts.certificate_subjects(identity.chain),
            )
            identity = attrs.evolve(identity, subjects=subjects)
        for kind, subject in identity.subjects:
            revoked = self.parts.revocation(kind, subject)
            if revoked is not None:
                _LOG.warning("refused revoked %s %s", kind.value, _printable(subject))
                raise ServiceError(
                    403,
                    "revoked",
                    f"the client {kind.value} {subject!r} is revoked ({revoked.reason.value})",
                )
        self._limit(identity.principal)
        request.state.principal = identity.principal
        # Audit entries written for this request name the principal, not the
        # service: the request runs in its own task, so the value ends with it
        # (and worker threads get a copy of the task's context).
        act_as(identity.principal)
        return identity

    def _limit(self, who: str) -> None:
        rate, burst = self.policy.rate_limit.for_principal(who)
        wait = self.limiter.acquire(who, rate=rate, burst=burst)
        if wait is not None:
            raise ServiceError(
                429,
                "rate_limited",
                f"too many requests from {who!r}",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def _anonymous(self, request: Request) -> None:
        client = request.client.host if request.client else "unknown"
        self._limit(f"anonymous@{client}")

    async def body(self, request: Request) -> bytes:
        """The request body, at most ``max_body`` bytes.

        Raises:
            ServiceError: 413 when larger, 400 for a bad Content-Length or a
                client gone before its body arrived, 408 when it does not
                arrive within ``body_timeout``.
        """
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise ServiceError(400, "malformed_input", "bad Content-Length")
            if int(declared) > self.max_body:
                raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        try:
            # asyncio's own timeout: a tenth of the cost of an anyio cancel
            # scope, paid on every request with a body (uvicorn is asyncio).
            async with asyncio.timeout(self.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self.max_body:
                        raise self._too_large()
                    chunks.append(chunk)
        except TimeoutError:
            raise ServiceError(
                408, "request_timeout", f"the request body took over {self.body_timeout} s"
            ) from None
        except ClientDisconnect:  # the client's doing, not an internal error
            raise ServiceError(
                400, "client_disconnected", "the client went away before its body arrived"
            ) from None
        return b"".join(chunks)

    def _too_large(self) -> ServiceError:
        return ServiceError(
            413, "payload_too_large", f"the request body exceeds {self.max_body} bytes"
        )

    async def json_body(self, request: Request) -> dict[str, Any]:
        """The request body as a JSON object.

        Raises:
            MalformedInputError: not a JSON object.
            ServiceError: 413 when too large.
        """
        data = await self.body(request)
        try:
            value = json.loads(data)
        except ValueError:
            raise MalformedInputError("the request body is not valid JSON") from None
        except RecursionError:  # "[[[[..." nested deeper than the parser's stack
            raise MalformedInputError("the request body is nested too deeply") from None
        if not isinstance(value, dict):
            raise MalformedInputError("the request body must be a JSON object")
        return value

    @staticmethod
    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking library call in a worker thread."""
        return await run_in_threadpool(fn, *args)

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a read inline or in a worker thread (``inline_reads``)."""
        if self.inline_reads:
            return fn(*args)
        return await run_in_threadpool(fn, *args)

    # -- health -----------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        """``GET /v1/health``: the process is up."""
        return JSONResponse({"status": "ok", "version": __version__})

    async def ready(self, request: Request) -> Response:
        """``GET /v1/ready``: the store answers; which parts are wired."""
        self._anonymous(request)  # a store round trip: not free for anyone to repeat
        await self.call(self.parts.sync)
        return JSONResponse({"status": "ready", "parts": self.parts.available()})

    async def whoami(self, request: Request) -> Response:
        """``GET /v1/whoami``: the principal the server sees."""
        identity = await self.authenticate(request)
        return JSONResponse(
            {
                "principal": identity.principal,
                "serial": format(identity.certificate.serial_number, "x"),
            }
        )

    # -- transit ----------------------------------------------------------------

    async def _transit(self, request: Request, operation: Operation) -> tuple[str, dict[str, Any]]:
        identity = await self.authenticate(request)
        key = _key_name(request)
        self.policy.authorize(identity.principal, operation, key=key)
        return key, await self.json_body(request)

    async def _same_key(self, key: str, ciphertext: bytes) -> None:
        named = await self.read(self.parts.ciphertext_key, ciphertext)
        if named != key:
            # Authorization was for the key in the URL: refuse a ciphertext
            # of any other key rather than decrypt it under the caller's name.
            raise InvalidArgumentError(
                f"the ciphertext is for key {named!r}, not {key!r}", key_name=key
            )

    async def encrypt(self, request: Request) -> Response:
        """``POST /v1/transit/keys/{name}/encrypt``."""
        key, body = await self._transit(request, Operation.ENCRYPT)
        plaintext = _unb64(body.get("plaintext"), "plaintext")
        ciphertext = await self.read(self.parts.encrypt, key, plaintext, _context(body))
        return JSONResponse({"key": key, "ciphertext": _b64(ciphertext)})

    async def decrypt(self, request: Request) -> Response:
        """``POST /v1/transit/keys/{name}/decrypt``."""
        key, body = await self._transit(request, Operation.DECRYPT)
        ciphertext = _unb64(body.get("ciphertext"), "ciphertext")
        await self._same_key(key, ciphertext)
        plaintext = await self.read(self.parts.decrypt, key, ciphertext, _context(body))
        return JSONResponse({"key": key, "plaintext": _b64(plaintext)})

    async def datakey(self, request: Request) -> Response:
        """``POST /v1/transit/keys/{name}/datakey``."""
        key, body = await self._transit(request, Operation.DATAKEY)
        result = await self.read(self.parts.datakey, key, _context(body))
        return JSONResponse(
            {
                "key": key,
                "plaintext": _b64(result.plaintext),
                "ciphertext": _b64(result.ciphertext),
            }
        )

    async def rewrap(self, request: Request) -> Response:
        """``POST /v1/transit/keys/{name}/rewrap``."""
        key, body = await self._transit(request, Operation.REWRAP)
        ciphertext = _unb64(body.get("ciphertext"), "ciphertext")
        await self._same_key(key, ciphertext)
        result = await self.read(self.parts.rewrap, key, ciphertext, _context(body))
        return JSONResponse({"key": key, "ciphertext": _b64(result)})

    async def create_key(self, request: Request) -> Response:
        """``POST /v1/transit/keys``: create a named symmetric key."""
        identity = await self.authenticate(request)
        body = await self.json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name or len(name) > _KEY_NAME_MAX:
            raise MalformedInputError("'name' must be a non-empty string")
        algorithm = body.get("algorithm")
        if algorithm is not None and not isinstance(algorithm, str):
            raise MalformedInputError("'algorithm' must be a string")
        self.policy.authorize(identity.principal, Operation.CREATE_KEY, key=name)
        # Group commit: requests arriving while a write is in flight share the next one.
        info = await self._creates.submit((name, algorithm, identity.principal))
        return JSONResponse(info, status_code=201)

    async def read_key(self, request: Request) -> Response:
        """``GET /v1/transit/keys/{name}``: the key's description, never its material."""
        identity = await self.authenticate(request)
        key = _key_name(request)
        self.policy.authorize(identity.principal, Operation.READ_KEY, key=key)
        return JSONResponse(await self.read(self.parts.key_info, key))

    # -- pki --------------------------------------------------------------------

    async def list_cas(self, request: Request) -> Response:
        """``GET /v1/pki/cas``: every CA and its certificate (public)."""
        self._anonymous(request)
        cas = await self.read(self.parts.cas)
        return JSONResponse(
            {
                "cas": [
                    {
                        "name": ca.name,
                        "certificate": ca.certificate.public_bytes(
                            serialization.Encoding.PEM
                        ).decode("ascii"),
                    }
                    for ca in cas
                ]
            }
        )

    async def _ca(self, request: Request) -> x509.Certificate:
        name = str(request.path_params["ca"])
        cas: list[CaInfo] = await self.read(self.parts.cas)
        for ca in cas:
            if ca.name == name:
                return ca.certificate
        raise ServiceError(404, "not_found", f"no CA named {name!r}")

    async def ca_certificate(self, request: Request) -> Response:
        """``GET /v1/pki/cas/{ca}/certificate`` (PEM, or DER with ``?format=der``)."""
        self._anonymous(request)
        certificate = await self._ca(request)
        if request.query_params.get("format") == "der":
            return Response(
                certificate.public_bytes(serialization.Encoding.DER),
                media_type="application/pkix-cert",
            )
        return Response(certificate.public_bytes(serialization.Encoding.PEM), media_type=_PEM_CHAIN)

    async def crl(self, request: Request) -> Response:
        """``GET /v1/pki/cas/{ca}/crl``: DER (or ``?format=pem``), cached until next-update."""
        self._anonymous(request)
        await self._ca(request)
        crl = await self.call(self.parts.crl, str(request.path_params["ca"]))
        headers = self._crl_headers(crl)
        if headers.get("ETag") and request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        if request.query_params.get("format") == "pem":
            return Response(
                crl.public_bytes(serialization.Encoding.PEM),
                media_type="application/x-pem-file",
                headers=headers,
            )
        return Response(
            crl.public_bytes(serialization.Encoding.DER),
            media_type="application/pkix-crl",
            headers=headers,
        )

    def _crl_headers(self, crl: x509.CertificateRevocationList) -> dict[str, str]:
        headers = {"Last-Modified": _http_date(crl.last_update_utc)}
        next_update = crl.next_update_utc
        if next_update is not None:
            remaining = int((next_update - self._utcnow()).total_seconds())
            headers["Expires"] = _http_date(next_update)
            headers["Cache-Control"] = f"public, max-age={max(0, remaining)}, no-transform"
        else:
            headers["Cache-Control"] = "no-cache"
        try:
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound:
            return headers
        headers["ETag"] = f'"{number:x}"'
        return headers

    async def sign(self, request: Request) -> Response:
        """``POST /v1/pki/cas/{ca}/sign``: issue a certificate from a CSR under a profile."""
        identity = await self.authenticate(request)
        body = await self.json_body(request)
        profile = body.get("profile")
        if not isinstance(profile, str) or not profile:
            raise MalformedInputError("'profile' must be a non-empty string")
        pem = body.get("csr")
        if not isinstance(pem, str):
            raise MalformedInputError("'csr' must be a PEM string")
        try:
            csr = x509.load_pem_x509_csr(pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise MalformedInputError("'csr' is not a PEM certificate signing request") from None
        names = self.parts.csr_names(csr)
        ca = str(request.path_params["ca"])
        self.policy.authorize(
            identity.principal,
            Operation.SIGN,
            profile=profile,
            names=names,
            ca=ca,
            attributes=_subject_attributes(csr),
        )
        issued = await self.call(self.parts.sign_csr, ca, csr, profile)

        def pem_of(certificate: x509.Certificate) -> str:
            return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

        return JSONResponse(
            {
                "certificate": pem_of(issued.certificate),
                "chain": [pem_of(c) for c in issued.chain],
                "serial": format(issued.certificate.serial_number, "x"),
                "not_after": issued.certificate.not_valid_after_utc.isoformat(),
            },
            status_code=201,
        )

    async def ocsp_post(self, request: Request) -> Response:
        """``POST /v1/pki/ocsp`` (RFC 6960 A.1.1, ``application/ocsp-request``)."""
        self._anonymous(request)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/ocsp-request":
            raise ServiceError(
                415, "unsupported_media_type", "send Content-Type: application/ocsp-request"
            )
        return await self._ocsp(await self.body(request))

    async def ocsp_get(self, request: Request) -> Response:
        """``GET /v1/pki/ocsp/{base64 DER}`` (RFC 6960 A.1.1, URL-encoded base64)."""
        self._anonymous(request)
        text = str(request.path_params["request"])
        if not text:
            raise ServiceError(404, "not_found", f"no route {request.url.path}")
        if len(text) > 4 * self.max_body // 3 + 4:
            raise self._too_large()
        der = _unb64(text, "OCSP request")
        return await self._ocsp(der)

    async def _ocsp(self, der: bytes) -> Response:
        answer = await self.call(self.parts.ocsp, der)
        return Response(answer, media_type="application/ocsp-response")

    # -- kdc --------------------------------------------------------------------

    async def kdc(self, request: Request) -> Response:
        """``POST /v1/kdc``: one KDC wire message in, the reply message out."""
        identity = await self.authenticate(request)
        self.policy.authorize(identity.principal, Operation.KDC)
        message = await self.body(request)
        if not message:
            raise MalformedInputError("the KDC message is empty")
        reply = await self.call(self.parts.kdc, message, identity.principal)
        return Response(reply, media_type="application/octet-stream")

    # -- revocation -------------------------------------------------------------

    async def revoke(self, request: Request) -> Response:
        """``POST /v1/revocations``: revoke a key version, certificate or principal."""
        identity = await self.authenticate(request)
        body = await self.json_body(request)
        try:
            kind = SubjectKind(str(body.get("kind")))
        except ValueError:
            raise MalformedInputError(
                "'kind' must be one of: " + ", ".join(k.value for k in SubjectKind)
            ) from None
        subject = body.get("subject")
        if not isinstance(subject, str) or not subject:
            raise MalformedInputError("'subject' must be a non-empty string")
        subject = _canonical_subject(kind, subject)
        reason = RevocationReason.parse(str(body.get("reason", "unspecified")))
        self.policy.authorize(
            identity.principal, Operation.REVOKE, subject=f"{kind.value}:{subject}"
        )
        await self._revocable(kind, subject)
        revocation = await self.call(self.parts.revoke, kind, subject, reason)
        return JSONResponse(
            {
                "kind": revocation.kind.value,
                "subject": revocation.subject,
                "reason": revocation.reason.value,
                "revoked_at": revocation.revoked_at.isoformat(),
            },
            status_code=201,
        )

    async def _revocable(self, kind: SubjectKind, subject: str) -> None:
        """Refuse a certificate or key subject (canonical) that names nothing in the store.

        The registry matches subjects exactly, so a revocation of a CA or key
        version that does not exist would be recorded and never take effect.

        Raises:
            ServiceError: 404, no such CA.
            KeyNotFoundError: no such key or version.
        """
        if kind is SubjectKind.CERTIFICATE:
            ca = subject.rpartition(":")[0]
            cas: list[CaInfo] = await self.read(self.parts.cas)
            if all(c.name != ca for c in cas):
                raise ServiceError(404, "not_found", f"no CA named {ca!r}")
        elif kind is SubjectKind.KEY:
            name, _, text = subject.rpartition("#")
            info = await self.read(self.parts.key_info, name)
            version = int(text)
            if all(v["version"] != version for v in info["versions"]):
                raise KeyNotFoundError(
                    f"key {name!r} has no version {version}", key_name=name, version=version
                )


_SERIAL: Final = re.compile(r"[0-9A-Fa-f]{1,64}")
_VERSION: Final = re.compile(r"[0-9]{1,9}")


def _canonical_subject(kind: SubjectKind, subject: str) -> str:
    """The registry's spelling of a revocation subject (the registry matches exactly).

    A certificate is ``"<ca>:<serial>"`` with the serial in lowercase hex
    without leading zeros (``openssl x509 -serial`` prints upper case, with
    them); a key version is ``"<name>#<version>"``. Principals are names
    (printable, at most 255 bytes).

    Raises:
        MalformedInputError: a certificate or key subject in neither form,
            or a principal name that is not printable or too long.
    """
    if kind is SubjectKind.CERTIFICATE:
        ca, sep, serial = subject.rpartition(":")
        if not sep or not ca or not _SERIAL.fullmatch(serial):
            raise MalformedInputError("a certificate subject is '<ca>:<serial number in hex>'")
        return f"{ca}:{int(serial, 16):x}"
    if kind is SubjectKind.KEY:
        name, sep, version = subject.rpartition("#")
        if not sep or not name or not _VERSION.fullmatch(version) or int(version) < 1:
            raise MalformedInputError("a key subject is '<key name>#<version>' (version 1 or more)")
        return f"{name}#{int(version)}"
    if len(subject.encode("utf-8", "surrogatepass")) > _PRINCIPAL_MAX or not subject.isprintable():
        raise MalformedInputError(
            f"a principal subject is a printable name of at most {_PRINCIPAL_MAX} bytes"
        )
    return subject


#: The longest principal name (the KDC's, and a certificate common name's, bound).
_PRINCIPAL_MAX: Final = 255
_BROWSER_SITES: Final = (b"cross-site", b"same-site", b"same-origin")


def _from_a_web_page(scope: Scope) -> bool:
    """Whether a browser sent this request for a web page (``Origin``, ``Sec-Fetch-Site``).

    A browser that holds a client certificate presents it to any page's
    cross-site form post (text/plain bodies that parse as JSON included):
    without this check an attacker's page could revoke, create or sign with
    an administrator's certificate. Programs send neither header.
    """
    for name, value in scope.get("headers") or ():
        if name == b"origin" or (name == b"sec-fetch-site" and value in _BROWSER_SITES):
            return True
    return False


class _Guard:
    """Outermost ASGI layer: turn library errors into JSON, log one line per request.

    Starlette's exception handlers cover the routes; this layer also covers
    errors raised before routing and records status and duration. Requests
    that ``fast`` recognises (the transit routes) are handed to their
    handler directly, with the same error answers.
    """

    def __init__(
        self, app: ASGIApp, fast: Callable[[str, str], _FastRoute | None] | None = None
    ) -> None:
        self._app = app
        self._fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_and_record(message: Mapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)  # type: ignore[arg-type]

        try:
            if scope["method"] not in ("GET", "HEAD") and _from_a_web_page(scope):
                refused = error_response(
                    ServiceError(
                        403,
                        "cross_origin",
                        "requests made by web pages are refused (the key service is "
                        "for programs; a browser would lend them its client certificate)",
                    )
                )
                await refused(scope, receive, send_and_record)
                return
            route = None if self._fast is None else self._fast(scope["method"], scope["path"])
            if route is None:
                await self._app(scope, receive, send_and_record)
            else:
                handler, params = route
                scope["path_params"] = params
                try:
                    response = await handler(Request(scope, receive, send_and_record))
                except KeyMgmtError as exc:
                    response = error_response(exc)
                if response.background is None:
                    # What Response.__call__ sends, without its layers.
                    status = response.status_code
                    await send(
                        {
                            "type": "http.response.start",
                            "status": status,
                            "headers": response.raw_headers,
                        }
                    )
                    await send({"type": "http.response.body", "body": response.body})
                else:
                    await response(scope, receive, send_and_record)
        except Exception as exc:
            # Logged by type only: a foreign exception's text may quote its input.
            _LOG.error(
                "internal error on %s: %s", _printable(scope.get("path")), type(exc).__name__
            )
            if status == 0:
                response = error_response(exc)
                await response(scope, receive, send_and_record)
        finally:
            principal = (scope.get("state") or {}).get("principal", "-")
            _LOG.info(
                "%s %s %s %d %.1fms",
                _printable(principal),
                scope.get("method"),
                _printable(scope.get("path")),
                status,
                (time.perf_counter() - started) * 1000,
            )
