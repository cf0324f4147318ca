"""A client for the key service (``keymgmt serve``), with the façade's method shapes.

Needs ``httpx`` (the ``server`` or ``client`` extra)::

    from keymgmt.client import KeyServiceClient
    with KeyServiceClient.from_files(
        "https://127.0.0.1:8443", ca="ca.pem", certificate="me.pem", private_key="me.key"
    ) as client:
        ciphertext = client.encrypt("payments", b"card number", context={"order": "42"})
"""

from __future__ import annotations

from keymgmt.client._client import KeyServiceClient, client_ssl_context
from keymgmt.client._wire import ERROR_TABLE, error_body, exception_for, status_for

__all__ = [
    "ERROR_TABLE",
    "KeyServiceClient",
    "client_ssl_context",
    "error_body",
    "exception_for",
    "status_for",
]
