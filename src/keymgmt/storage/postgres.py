"""PostgreSQL backend (extra ``keymgmt[postgres]``). Not implemented yet."""

from __future__ import annotations

from keymgmt.errors import StoreUnavailableError

__all__ = ["PostgresBackend"]


class PostgresBackend:
    """Placeholder: raises until the PostgreSQL backend lands."""

    def __init__(self, dsn: str) -> None:
        raise StoreUnavailableError("the PostgreSQL backend is not available in this version")
