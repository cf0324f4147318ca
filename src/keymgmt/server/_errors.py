"""How failures become HTTP answers (the table lives in :mod:`keymgmt.client._wire`)."""

from __future__ import annotations

from keymgmt.client._wire import error_body, status_for
from keymgmt.errors import ServiceError

__all__ = ["ServiceError", "error_body", "status_for"]
