"""``keymgmt serve``: run the key service over HTTPS with mutual TLS."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from keymgmt.cli._common import Settings, manager, pass_settings

__all__ = ["serve"]

_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", default=8443, show_default=True, type=click.IntRange(0, 65535), help="0: any."
)
@click.option("--tls-cert", type=_FILE, required=True, help="Server certificate (+ chain), PEM.")
@click.option("--tls-key", type=_FILE, required=True, help="Server private key, PEM.")
@click.option(
    "--client-ca", type=_FILE, required=True, help="CA bundle client certificates chain to."
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
    tls_cert: Path,
    tls_key: Path,
    client_ca: Path,
    policy: Path | None,
    max_body: int,
    sync_interval: float,
    require_client_cert: bool,
    log_level: str,
) -> None:
    """Serve the store over HTTPS with mutual TLS (needs the 'server' extra).

    Prints ``listening on https://HOST:PORT`` once it accepts connections;
    stops on SIGINT or SIGTERM.
    """
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
    material = service_module.TlsMaterial.from_paths(tls_cert, tls_key, client_ca)

    def ready(bound_host: str, bound_port: int) -> None:
        click.echo(f"listening on https://{bound_host}:{bound_port}")
        sys.stdout.flush()

    with manager(settings) as km:
        service = service_module.Service(
            service_module.ManagerParts(km),
            rules,
            max_body=max_body,
            sync_interval=sync_interval,
        )
        service_module.serve(
            service,
            material,
            host=host,
            port=port,
            require_client_cert=require_client_cert,
            on_ready=ready,
        )
