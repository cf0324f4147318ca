"""The key server as a network service: HTTPS with mutual TLS over the library.

``keymgmt serve`` runs it; :class:`keymgmt.client.KeyServiceClient` speaks to
it. Needs the ``server`` extra (``pip install 'keymgmt[server]'``: Starlette
and uvicorn). See ``docs/service.md`` for the endpoints, the policy format
and the security model; the OpenAPI description ships beside this module
(:data:`OPENAPI_PATH`).

Build one in code::

    from keymgmt.server import ManagerParts, Service, ServicePolicy, TlsMaterial, serve
    service = Service(ManagerParts(km), ServicePolicy.load("policy.json"))
    serve(service, TlsMaterial.from_paths("server.pem", "server.key", "ca.pem"))
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "keymgmt.server needs the 'server' extra: pip install 'keymgmt[server]'"
    ) from exc

from keymgmt.server._app import TLS_STATE_KEY, PeerIdentity, Service, error_response
from keymgmt.server._errors import ServiceError, error_body, status_for
from keymgmt.server._parts import CaInfo, DataKey, IssuedCertificate, ManagerParts, ServiceParts
from keymgmt.server._policy import Operation, RateLimit, Rule, ServicePolicy
from keymgmt.server._ratelimit import TokenBucketLimiter
from keymgmt.server._run import MutualTlsH11Protocol, bind, serve, tls_facts
from keymgmt.server._tls import (
    StoreTlsIdentity,
    TlsMaterial,
    principal_of,
    server_ssl_context,
    store_ssl_context,
)

#: The OpenAPI 3.1 description of the service.
OPENAPI_PATH: Final = Path(__file__).with_name("openapi.json")

__all__ = [
    "OPENAPI_PATH",
    "TLS_STATE_KEY",
    "CaInfo",
    "DataKey",
    "IssuedCertificate",
    "ManagerParts",
    "MutualTlsH11Protocol",
    "Operation",
    "PeerIdentity",
    "RateLimit",
    "Rule",
    "Service",
    "ServiceError",
    "ServiceParts",
    "ServicePolicy",
    "StoreTlsIdentity",
    "TlsMaterial",
    "TokenBucketLimiter",
    "bind",
    "error_body",
    "error_response",
    "principal_of",
    "serve",
    "server_ssl_context",
    "status_for",
    "store_ssl_context",
    "tls_facts",
]
