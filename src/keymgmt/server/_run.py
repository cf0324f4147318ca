"""Running the service under uvicorn, with the client's certificate chain reachable.

Why a protocol subclass: uvicorn (0.54) verifies client certificates when
given an SSL context that asks for them, but it does not fill the ASGI
``tls`` extension, so the application cannot see who connected. The TLS
handshake is complete when the HTTP protocol's ``connection_made`` runs, so
:class:`MutualTlsH11Protocol` reads the verified chain from the transport's
``ssl_object`` there, once per connection, and hands it to every request on
the connection through the per-connection copy of the ASGI ``state``
(``scope["state"]["keymgmt.tls"]``, shaped like the ASGI TLS extension).
The application reads the standard ``scope["extensions"]["tls"]`` first, so
it also runs unchanged under a server that fills the extension.

The verified chain comes from ``SSLObject.get_verified_chain()`` (public
from Python 3.13, private ``_sslobj`` method on 3.10-3.12); if neither is
there the leaf alone is used (``getpeercert(binary_form=True)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, Final, cast

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from keymgmt.errors import InvalidArgumentError, KeyMgmtError
from keymgmt.server._app import TLS_STATE_KEY, Service
from keymgmt.server._errors import error_body
from keymgmt.server._tls import StoreTlsIdentity, TlsMaterial, server_ssl_context

__all__ = ["MutualTlsH11Protocol", "serve", "tls_facts"]

_LOG = logging.getLogger("keymgmt.server")
_TLS_VERSIONS: Final = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

#: Seconds a stopping server waits for a client to finish closing TLS.
SHUTDOWN_GRACE: Final = 2.0
#: The most bytes of one request head on the httptools protocol (431 beyond).
MAX_HEAD_BYTES: Final = 64 * 1024
#: Seconds a client has to complete the TLS handshake (asyncio's default is 60).
HANDSHAKE_TIMEOUT: Final = 10.0


def _verified_chain_der(ssl_object: ssl.SSLObject) -> list[bytes]:
    getter = getattr(ssl_object, "get_verified_chain", None)
    if getter is None:
        getter = getattr(getattr(ssl_object, "_sslobj", None), "get_verified_chain", None)
    if getter is not None:
        chain = getter() or []
        out = []
        for cert in chain:
            if isinstance(cert, bytes):
                out.append(cert)
            else:
                out.append(ssl.PEM_cert_to_DER_cert(cert.public_bytes()))
        if out:
            return out
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def tls_facts(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The connection's TLS facts in the shape of the ASGI TLS extension.

    ``client_cert_chain`` holds PEM strings, leaf first, as the extension
    specifies; it is empty when the client sent no certificate.
    """
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(d) for d in _verified_chain_der(ssl_object)],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None if cipher is None else cipher[0],
    }


class _CoalescingTransport:
    """Writes made in one event-loop step leave as one TLS record and one send.

    uvicorn writes a response's head and its body separately; on a TLS
    transport each write is a TLS record and, with ``TCP_NODELAY``, a
    ``send`` system call of its own (on loopback the sender's system call
    also delivers to the receiver, so each costs tens of microseconds). This
    wrapper collects the writes of one loop step and hands them to the
    transport together at the end of the step (``call_soon``): one record,
    one system call per response, no added latency. ``close`` sends what is
    collected first; ``abort`` drops it; everything else is the transport's.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Collect ``data``; it is sent at the end of this loop step."""
        if not data:
            return
        if not self._buffer:
            self._loop.call_soon(self._flush)
        self._buffer.append(bytes(data))

    def _flush(self) -> None:
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        """Send what is collected, then close."""
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        """Drop what is collected and abort the connection."""
        self._buffer.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _PeerChainMixin:
    """Records the client's verified chain per connection, bounds request heads and shutdown.

    Mixed into uvicorn's HTTP protocols. Request heads: uvicorn arms no
    timer until a first response is sent, and its keep-alive timer is
    disarmed by any byte received, so a client could hold a connection (a
    file descriptor, a TLS session) for ever by sending nothing, or a
    header byte now and then. From the moment a connection is made, and
    from the first byte of every later request, a client has
    :attr:`head_timeout` seconds to complete the request head; then the
    connection is closed. Shutdown: asyncio waits up to 30 s for the
    peer's TLS close_notify after closing an SSL transport, and an idle
    keep-alive client never sends one, so a stopping server would hang on
    it; after :data:`SHUTDOWN_GRACE` seconds the connection is aborted.
    Responses: a client that stops reading holds its connection (and the
    request's task, waiting for the transport to drain) for ever once its
    response outgrows the buffers; when writing stays paused for
    :attr:`head_timeout` seconds, the connection is aborted.
    """

    app_state: dict[str, Any]
    server_state: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any
    _lost = False
    #: Seconds a client has to send a complete request head (set by :func:`serve`).
    head_timeout: float = 30.0
    _head_timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None
    #: Gives the connection's slot back to the :class:`_ConnectionGate` (set by it).
    release: Callable[[], None] | None = None

    def _between_requests(self) -> bool:
        cycle = getattr(self, "cycle", None)
        return cycle is None or bool(cycle.response_complete)

    def _await_head(self) -> None:
        if self._head_timer is None and self._between_requests():
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._lost or not self._between_requests():
            return
        _LOG.info(
            "closed a connection that sent no complete request head in %s s", self.head_timeout
        )
        self.transport.close()
        self.loop.call_later(SHUTDOWN_GRACE, self._abort_if_open)

    def data_received(self, data: bytes) -> None:
        """Time a new request head from its first byte; stop once the head is in."""
        self._await_head()
        super().data_received(data)  # type: ignore[misc]
        if self._head_timer is not None and not self._between_requests():
            self._head_timer.cancel()
            self._head_timer = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Behave as uvicorn does, then record the TLS facts."""
        super().connection_made(transport)  # type: ignore[misc]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # asyncio sets TCP_NODELAY only on sockets whose proto is
            # IPPROTO_TCP; without it the separate header and body writes
            # meet delayed ACKs (about 40 ms per response).
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ssl_object = transport.get_extra_info("ssl_object")
        if isinstance(ssl_object, ssl.SSLObject):
            # A per-connection copy: requests on this connection see their own peer.
            self.app_state = {**self.app_state, TLS_STATE_KEY: tls_facts(ssl_object)}
            # Responses are built and written from here on through this transport.
            self.transport = cast(
                asyncio.Transport,
                _CoalescingTransport(cast(asyncio.Transport, transport), self.loop),
            )
        self._await_head()

    def send_400_response(self, msg: str) -> None:
        """Answer a request HTTP cannot parse with the service's JSON error body, then close.

        uvicorn answers it in plain text; every refusal of the service is
        ``{"error": {"type", "message"}}``. While a response is being sent
        on the connection uvicorn's own answer is kept (it knows that state).
        """
        if not self._between_requests():
            super().send_400_response(msg)  # type: ignore[misc]
            return
        self._refuse(b"400 Bad Request", "malformed_input", msg)

    def _refuse(self, status: bytes, kind: str, message: str) -> None:
        """Write a JSON error answer outside any request cycle, then close."""
        body = json.dumps(error_body(kind, message)).encode()
        head = [b"HTTP/1.1 " + status + b"\r\n"]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: " + str(len(body)).encode("ascii") + b"\r\n")
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + body)
        self.transport.close()
        # TLS waits for the client's close_notify, reading (and dropping)
        # whatever it still sends; a client that keeps sending is cut off.
        self.loop.call_later(SHUTDOWN_GRACE, self._abort_if_open)

    def pause_writing(self) -> None:
        """The transport's buffer is full: the client must read within the timeout."""
        super().pause_writing()  # type: ignore[misc]
        if self._write_timer is None and not self._lost:
            self._write_timer = self.loop.call_later(self.head_timeout, self._write_timed_out)

    def resume_writing(self) -> None:
        """The client read enough: the timer stops."""
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().resume_writing()  # type: ignore[misc]

    def _write_timed_out(self) -> None:
        self._write_timer = None
        if self._lost:
            return
        _LOG.info(
            "aborted a connection that read nothing of its response in %s s", self.head_timeout
        )
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        """Remember the connection is gone, give back its slot, then behave as uvicorn does."""
        self._lost = True
        if self.release is not None:
            self.release()
        for timer in (self._head_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._write_timer = None
        super().connection_lost(exc)  # type: ignore[misc]

    def shutdown(self) -> None:
        """Close as uvicorn does; abort if the peer has not let go after the grace period."""
        super().shutdown()  # type: ignore[misc]
        self.loop.call_later(SHUTDOWN_GRACE, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self._lost:
            self.transport.abort()


class MutualTlsH11Protocol(_PeerChainMixin, H11Protocol):
    """uvicorn's pure-Python h11 protocol with the client chain recorded per connection."""


def _httptools_protocol() -> type[asyncio.Protocol] | None:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    class MutualTlsHttpToolsProtocol(_PeerChainMixin, HttpToolsProtocol):
        """uvicorn's httptools protocol with the client chain recorded per connection.

        It also bounds request heads: uvicorn's httptools protocol gathers
        header lines without limit (its h11 protocol stops at
        ``h11_max_incomplete_event_size``), so a client could grow the
        server's memory by gigabytes with one endless head. Bytes received
        since the last head was complete, less body bytes, may not exceed
        :data:`MAX_HEAD_BYTES`: the answer is a JSON 431, then the
        connection closes.
        """

        _head_bytes = 0

        def data_received(self, data: bytes) -> None:
            """Count the bytes toward the head in progress; refuse an oversize head."""
            self._head_bytes += len(data)
            super().data_received(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self._head_bytes = 0
                if self._between_requests():
                    self._refuse(
                        b"431 Request Header Fields Too Large",
                        "headers_too_large",
                        f"the request head exceeds {MAX_HEAD_BYTES} bytes",
                    )
                else:  # a pipelined head while a response is on its way
                    self.transport.abort()

        def on_headers_complete(self) -> None:
            """A head is complete: the next one starts from zero."""
            self._head_bytes = 0
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            """Body bytes are not head bytes."""
            self._head_bytes = max(0, self._head_bytes - len(body))
            super().on_body(body)

        def on_message_complete(self) -> None:
            """A message is complete: the next head starts from zero."""
            self._head_bytes = 0
            super().on_message_complete()

    return MutualTlsHttpToolsProtocol


class _ConnectionGate:
    """Accepts connections itself and holds at most ``limit`` of them, handshakes included.

    With ``create_server(ssl=...)`` the HTTP protocol (and uvicorn's
    connection count) first hears of a connection once its TLS handshake is
    complete, and never of one whose handshake fails or times out. So a
    flood of connections that stall in the handshake was not counted: each
    held a socket (a file descriptor) for up to the handshake timeout, with
    no bound on how many. The gate accepts on the listening socket itself
    (``add_reader``), counts each connection from ``accept`` until its
    socket is closed, and closes at once any socket accepted while
    ``limit`` are open. The rest go through the public
    ``loop.connect_accepted_socket`` with the handshake bound; a slot is
    given back when the handshake fails (the loop closes the socket) or,
    after a completed handshake, when the HTTP protocol loses the connection.

    uvicorn's shutdown calls :meth:`close` and :meth:`wait_closed`, as it
    would a listener's.
    """

    #: The most connections accepted per wake-up, so one busy listener cannot starve the loop.
    BATCH: Final = 128
    #: Seconds between two warnings about refused connections.
    WARN_EVERY: Final = 10.0
    #: Seconds accepting pauses when the process is out of descriptors or memory.
    PAUSE: Final = 1.0

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        context: ssl.SSLContext | None,
        *,
        limit: int,
        handshake_timeout: float,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._factory = protocol_factory
        self._context = context
        self._handshake_timeout = handshake_timeout
        self.limit = limit
        #: Connections held now, from accept until their socket is closed.
        self.open = 0
        self._refused = 0
        self._warned = -float("inf")
        self._handshakes: set[asyncio.Task[None]] = set()
        self._closed = False
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(self.BATCH):
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # nothing (left) to accept, or another worker took it
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    _LOG.error("cannot accept connections (%s); pausing for %s s", exc, self.PAUSE)
                    self._loop.remove_reader(self._sock.fileno())
                    self._loop.call_later(self.PAUSE, self._resume)
                    return
                _LOG.warning("accept failed: %s", exc)
                return
            if self.open >= self.limit:
                conn.close()
                self._refuse()
                continue
            self.open += 1
            task = self._loop.create_task(self._connect(conn))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    def _refuse(self) -> None:
        self._refused += 1
        now = self._loop.time()
        if now - self._warned >= self.WARN_EVERY:
            _LOG.warning(
                "closed %d new connection(s): %d open, the limit (--max-connections)",
                self._refused,
                self.open,
            )
            self._warned, self._refused = now, 0

    def _resume(self) -> None:
        if not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    async def _connect(self, conn: socket.socket) -> None:
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open -= 1

        def create_protocol() -> asyncio.Protocol:
            protocol = self._factory()
            # The HTTP protocol gives the slot back when it loses the connection.
            cast(_PeerChainMixin, protocol).release = release
            return protocol

        try:
            await self._loop.connect_accepted_socket(
                create_protocol,
                conn,
                ssl=self._context,
                ssl_handshake_timeout=self._handshake_timeout if self._context else None,
            )
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            # The handshake failed or timed out; the loop closes the socket (it owns
            # it now: closing it here too could close a reused descriptor number).
            _LOG.debug("TLS handshake failed: %r", exc)
            release()
        except BaseException:
            release()
            raise

    def close(self) -> None:
        """Stop accepting; end the handshakes in progress (uvicorn's shutdown calls this)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._sock.fileno())
        for task in list(self._handshakes):
            task.cancel()

    async def wait_closed(self) -> None:
        """Wait until the handshakes cut by :meth:`close` have ended (uvicorn awaits this)."""
        if self._handshakes:
            await asyncio.gather(*self._handshakes, return_exceptions=True)


class _HandshakeBoundServer(uvicorn.Server):
    """uvicorn's server, accepting through a :class:`_ConnectionGate`.

    uvicorn creates its listeners without ``ssl_handshake_timeout``, so
    asyncio's default of 60 s applies, and its connection limit counts a
    connection only once its handshake is complete: a client that opens TCP
    connections and never completes the handshake (a TLS slowloris) held a
    socket and a file descriptor for a minute each, as many as it liked,
    before the HTTP protocol (its head timer, the connection limit) ever saw
    them. This server lets uvicorn start up with no listener of its own
    (lifespan, state), then accepts on the given socket through a gate that
    holds at most :attr:`max_connections` connections from ``accept`` on and
    bounds each handshake by :attr:`handshake_timeout`, with the same
    protocol factory; uvicorn's shutdown closes the gate like its own
    listener.
    """

    def __init__(
        self, config: uvicorn.Config, *, handshake_timeout: float, max_connections: int
    ) -> None:
        super().__init__(config)
        self.handshake_timeout = handshake_timeout
        self.max_connections = max_connections

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does (with no listener), then accept on ``sockets``."""
        await super().startup(sockets=[])
        self.started = False
        config = self.config
        loop = asyncio.get_running_loop()

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=loop,
            )

        for sock in sockets or []:
            sock.listen(config.backlog)
            gate = _ConnectionGate(
                loop,
                sock,
                create_protocol,
                config.ssl,
                limit=self.max_connections,
                handshake_timeout=self.handshake_timeout,
            )
            # uvicorn's shutdown only calls close() and wait_closed() on what it holds here.
            self.servers.append(cast(asyncio.Server, gate))
        self.started = True


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one).

    Raises:
        InvalidArgumentError: the address cannot be bound.
    """
    try:
        return socket.create_server((host, port), backlog=2048, family=_family(host))
    except OSError as exc:
        raise InvalidArgumentError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def serve(
    service: Service,
    tls: TlsMaterial | ssl.SSLContext | StoreTlsIdentity,
    *,
    host: str = "127.0.0.1",
    port: int = 8443,
    require_client_cert: bool = False,
    on_ready: Callable[[str, int], None] | None = None,
    keep_alive: int = 30,
    http: str = "auto",
    renew_check: float = 3600.0,
    sock: socket.socket | None = None,
    max_connections: int = 1024,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> None:
    """Serve ``service`` over HTTPS with client certificates until SIGINT/SIGTERM.

    Args:
        service: the application.
        tls: the server's certificate, key and client CA bundle; a ready
            server context; or a :class:`~keymgmt.server.StoreTlsIdentity`,
            whose certificate is then renewed while the server runs (checked
            every ``renew_check`` seconds).
        host: the address to bind (loopback by default).
        port: the TCP port (0 picks a free one; ``on_ready`` is told which).
        require_client_cert: refuse TLS handshakes without a client
            certificate instead of answering them with HTTP 401 (for
            ``TlsMaterial``; a given context keeps its own setting).
        on_ready: called with ``(host, port)`` once the server accepts connections.
        keep_alive: seconds an idle keep-alive connection is kept. A
            connection that has started a request head (or has just
            opened) must complete it within ``service.body_timeout``
            seconds, else it is closed; so is one whose client reads
            nothing of a waiting response for as long.
        sock: an already listening socket (from :func:`bind`; ``host`` and
            ``port`` are then only reported) — how several worker processes
            share one port.
        http: ``"httptools"`` (C parser), ``"h11"`` (pure Python) or
            ``"auto"``: httptools when installed. The event loop is uvloop
            when installed (uvicorn's ``loop="auto"``).
        max_connections: the most connections held at once, each counted
            from when it is accepted (its TLS handshake included) until its
            socket is closed; a connection accepted past it is closed at
            once, before its handshake, so a flood of idle, slow or stalled
            connections cannot take all of the process's file descriptors
            and memory. (uvicorn's ``limit_concurrency`` stays behind it:
            503 once requests in progress reach it.)
        handshake_timeout: seconds a client has to complete the TLS
            handshake from when its connection is accepted; then the
            connection is aborted (asyncio's default is 60 s, long enough
            for a slow client to hold many sockets).

    Raises:
        InvalidArgumentError: bad TLS material or address.
    """
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise InvalidArgumentError("max_connections must be an int")
    if max_connections < 1:
        raise InvalidArgumentError("max_connections must be at least 1")
    if (
        isinstance(handshake_timeout, bool)
        or not isinstance(handshake_timeout, (int, float))
        or not 0 < handshake_timeout < float("inf")
    ):
        raise InvalidArgumentError("handshake_timeout must be a positive number of seconds")
    if isinstance(tls, StoreTlsIdentity):
        context = tls.context
    elif isinstance(tls, ssl.SSLContext):
        context = tls
    else:
        context = server_ssl_context(tls, require_client_cert=require_client_cert)
    if sock is None:
        sock = bind(host, port)
    bound_port = int(sock.getsockname()[1])
    protocol: type[asyncio.Protocol] = MutualTlsH11Protocol
    if http in ("auto", "httptools"):
        fast = _httptools_protocol()
        if fast is not None:
            protocol = fast
        elif http == "httptools":
            raise InvalidArgumentError("http='httptools' needs the httptools package")
    elif http != "h11":
        raise InvalidArgumentError("http must be 'auto', 'httptools' or 'h11'")
    # A request head gets as long as a request body (service.body_timeout).
    protocol = cast(
        type[asyncio.Protocol],
        type(protocol.__name__, (protocol,), {"head_timeout": service.body_timeout}),
    )
    config = uvicorn.Config(
        service.app(),
        http=protocol,
        loop="auto",
        proxy_headers=False,
        ws="none",
        lifespan="on",
        ssl_context_factory=lambda _config, _default: context,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=keep_alive,
        h11_max_incomplete_event_size=16 * 1024,
        # uvicorn answers 503 once it holds `limit` connections, the asking one
        # included: max_connections others may be open beside it.
        limit_concurrency=max_connections + 1,
    )
    server = _HandshakeBoundServer(
        config, handshake_timeout=float(handshake_timeout), max_connections=max_connections
    )

    async def renew_forever(identity: StoreTlsIdentity) -> None:
        while True:
            await asyncio.sleep(renew_check)
            try:
                if await asyncio.to_thread(identity.renew_if_due):
                    _LOG.info("server certificate renewed: %r", identity)
            except KeyMgmtError as exc:
                _LOG.error("server certificate renewal failed: %s", exc.message)

    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started and on_ready is not None:
            on_ready(host, bound_port)
        renewal = (
            asyncio.create_task(renew_forever(tls)) if isinstance(tls, StoreTlsIdentity) else None
        )
        try:
            await task
        finally:
            if renewal is not None:
                renewal.cancel()

    try:
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(run())
    finally:
        sock.close()
