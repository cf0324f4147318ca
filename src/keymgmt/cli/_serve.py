"""``keymgmt serve``: run the key service over HTTPS with mutual TLS."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from keymgmt._manager import KeyManager
from keymgmt.cli._common import Settings, pass_settings, read_passphrase
from keymgmt.cli._remote import key_passphrase
from keymgmt.errors import KeyMgmtError

__all__ = ["serve"]

_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)


#: The actor audit entries written through the service carry (the request log
#: names the principal of each request).
ACTOR = "keymgmt-serve"


def _open(settings: Settings, passphrase: str | None = None) -> KeyManager:
    """The store, opened as :data:`ACTOR` (never created here)."""
    if settings.key_file is not None:
        return KeyManager.open(
            settings.store, key_file=settings.key_file, actor=ACTOR, create=False
        )
    return KeyManager.open(
        settings.store,
        passphrase=passphrase or read_passphrase(settings),
        kdf_profile=settings.kdf_profile,
        actor=ACTOR,
        create=False,
    )


#: Addresses that mean "every interface": no client connects to them by that name.
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - recognised, not bound


def _default_names(host: str) -> tuple[str, ...]:
    """The issued server certificate's names when no --server-name is given.

    The bind address and ``localhost``; for a wildcard address (which no
    client can connect to by that name) the loopback names, with a warning
    to give the names clients use.
    """
    if host in _WILDCARDS:
        logging.getLogger("keymgmt.server").warning(
            "listening on every address (%s): the server certificate names only localhost, "
            "127.0.0.1 and ::1; give --server-name for the names clients connect to",
            host or "''",
        )
        return ("localhost", "127.0.0.1", "::1")
    return (host,) if host == "localhost" else ("localhost", host)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", default=8443, show_default=True, type=click.IntRange(0, 65535), help="0: any."
)
@click.option(
    "--ca",
    "issuing_ca",
    help="Issue the server certificate now from this CA of the store (instead of --tls-*).",
)
@click.option(
    "--server-name",
    "server_names",
    multiple=True,
    help=(
        "DNS name or IP for the issued server certificate (repeat; default: localhost "
        "and the host, or the loopback addresses for a wildcard host such as 0.0.0.0)."
    ),
)
@click.option("--tls-cert", type=_FILE, help="Server certificate (+ chain), PEM.")
@click.option("--tls-key", type=_FILE, help="Server private key, PEM.")
@click.option(
    "--tls-key-passphrase-file",
    type=_FILE,
    help="Passphrase of an encrypted --tls-key (else KEYMGMT_KEY_PASSPHRASE).",
)
@click.option(
    "--client-ca",
    type=_FILE,
    help="CA bundle client certificates chain to (default with --ca: the store's root CAs).",
)
@click.option("--policy", type=_FILE, help="Authorization policy (JSON). Default: deny all.")
@click.option(
    "--max-body",
    default=1 << 20,
    show_default=True,
    type=click.IntRange(1),
    help="Largest request body, in bytes.",
)
@click.option(
    "--body-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help=(
        "Seconds a client may take to send a request body (then 408) or head, or to "
        "read on while a response waits (then the connection is closed)."
    ),
)
@click.option(
    "--handshake-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0, 3600, min_open=True),
    help="Seconds a client may take to complete the TLS handshake (then the connection is cut).",
)
@click.option(
    "--sync-interval",
    default=0.25,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds between syncs with the store (0: before every request).",
)
@click.option(
    "--require-client-cert",
    is_flag=True,
    help="Refuse TLS handshakes without a client certificate (no public endpoints).",
)
@click.option(
    "--http",
    type=click.Choice(["auto", "httptools", "h11"]),
    default="auto",
    show_default=True,
    help="HTTP parser: httptools (C) when installed, else h11.",
)
@click.option(
    "--max-connections",
    default=1024,
    show_default=True,
    type=click.IntRange(1),
    help=(
        "Connections held at once per process, TLS handshakes in progress included; "
        "past it a new connection is closed at once."
    ),
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes sharing the port (each opens the store; limits are per process).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@pass_settings
def serve(
    settings: Settings,
    host: str,
    port: int,
    issuing_ca: str | None,
    server_names: tuple[str, ...],
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_key_passphrase_file: Path | None,
    client_ca: Path | None,
    policy: Path | None,
    max_body: int,
    body_timeout: float,
    handshake_timeout: float,
    sync_interval: float,
    require_client_cert: bool,
    http: str,
    max_connections: int,
    workers: int,
    log_level: str,
) -> None:
    """Serve the store over HTTPS with mutual TLS (needs the 'server' extra).

    The server certificate is either issued at start by the store's CA
    (--ca NAME; clients must then hold certificates chaining to the store's
    root CAs) or read from --tls-cert/--tls-key with --client-ca. Prints
    "listening on https://HOST:PORT" once it accepts connections; stops on
    SIGINT or SIGTERM. See docs/service.md for the policy file.
    """
    if (issuing_ca is None) == (tls_cert is None and tls_key is None):
        raise click.UsageError("give either --ca NAME or --tls-cert and --tls-key")
    if issuing_ca is None and (tls_cert is None or tls_key is None or client_ca is None):
        raise click.UsageError("--tls-cert needs --tls-key and --client-ca")
    if tls_key_passphrase_file is not None and tls_key is None:
        raise click.UsageError(
            "--tls-key-passphrase-file goes with --tls-key (with --ca the server key "
            "lives in the store)"
        )
    try:
        from keymgmt import server as service_module
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None

    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    rules = (
        service_module.ServicePolicy.load(policy)
        if policy is not None
        else service_module.ServicePolicy()
    )
    if not rules.rules:
        logging.getLogger("keymgmt.server").warning("no policy rules: every operation is denied")

    def ready(bound_host: str, bound_port: int) -> None:
        # An IPv6 address goes in brackets in a URL (RFC 3986 3.2.2).
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        click.echo(f"listening on https://{shown}:{bound_port}")
        sys.stdout.flush()

    # Asked once, before any worker is forked (each would prompt otherwise).
    passphrase = None if settings.key_file is not None else read_passphrase(settings)
    key_password = key_passphrase(tls_key_passphrase_file)

    def run(sock: socket.socket | None, on_ready: Callable[[str, int], None]) -> None:
        with _open(settings, passphrase) as km:
            tls: Any
            if issuing_ca is not None:
                names = server_names or _default_names(host)
                tls = service_module.StoreTlsIdentity(
                    km,
                    issuing_ca,
                    names=names,
                    client_ca=client_ca,
                    require_client_cert=require_client_cert,
                )
                logging.getLogger("keymgmt.server").info(
                    "server certificate %x issued by %s for %s (renewed while running)",
                    tls.certificate.serial_number,
                    issuing_ca,
                    ", ".join(names),
                )
            else:
                tls = service_module.TlsMaterial.from_paths(
                    tls_cert,  # type: ignore[arg-type]
                    tls_key,  # type: ignore[arg-type]
                    client_ca,  # type: ignore[arg-type]
                    key_password=key_password,
                )
            service = service_module.Service(
                service_module.ManagerParts(km),
                rules,
                max_body=max_body,
                sync_interval=sync_interval,
                body_timeout=body_timeout,
            )
            service_module.serve(
                service,
                tls,
                host=host,
                port=port,
                require_client_cert=require_client_cert,
                on_ready=on_ready,
                http=http,
                sock=sock,
                max_connections=max_connections,
                handshake_timeout=handshake_timeout,
            )

    if workers == 1:
        run(None, ready)
    else:
        _supervise(workers, service_module.bind(host, port), host, run, ready)


def _supervise(
    workers: int,
    sock: socket.socket,
    host: str,
    run: Callable[[socket.socket, Callable[[str, int], None]], None],
    ready: Callable[[str, int], None],
) -> None:
    """Fork ``workers`` processes serving ``sock``; forward SIGINT/SIGTERM; wait.

    Forking happens before the store is opened or any thread starts, so
    each worker opens its own store connections. ``ready`` runs once every
    worker accepts connections. If a worker dies on its own, the others are
    stopped and the command fails.
    """
    if not hasattr(os, "fork"):
        raise click.UsageError("--workers needs a POSIX system (fork)")
    port = int(sock.getsockname()[1])
    reader, writer = os.pipe()
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(reader)

            def told(_host: str, _port: int) -> None:
                os.write(writer, b"r")

            code = 1
            try:
                run(sock, told)
                code = 0
            except KeyMgmtError as exc:
                click.echo(f"error: {exc.message}", err=True)
            finally:
                os._exit(code)
        children.append(pid)
    os.close(writer)
    sock.close()
    signalled: list[int] = []

    def stop_children() -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    def on_signal(signum: int, _frame: object) -> None:
        signalled.append(signum)
        stop_children()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    started = 0
    failed = False
    alive = set(children)
    while started < workers and not failed and not signalled:
        readable, _, _ = select.select([reader], [], [], 0.2)
        if readable:
            started += len(os.read(reader, workers))
        pid, _status = os.waitpid(-1, os.WNOHANG)
        if pid:
            alive.discard(pid)
            failed = True
    if failed:
        stop_children()
    elif not signalled:
        ready(host, port)
    while alive:
        try:
            pid, _status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        alive.discard(pid)
        if not signalled and not failed:  # a worker died on its own: stop the rest
            failed = True
            stop_children()
    os.close(reader)
    if signalled and not failed:
        signal.signal(signalled[0], signal.SIG_DFL)
        os.kill(os.getpid(), signalled[0])
    if failed:
        raise click.ClickException("a worker process failed; see the log")
