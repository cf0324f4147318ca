"""Pluggable storage: one :class:`Backend` protocol, several backends.

:class:`MemoryBackend` for tests and notebooks, :class:`SQLiteBackend` (the
embedded default). ``PostgresBackend`` lives in
:mod:`keymgmt.storage.postgres` and is imported only when asked for, so the
core install needs no database driver.
"""

from keymgmt.storage._memory import MemoryBackend
from keymgmt.storage._protocol import (
    ANY,
    Backend,
    Check,
    CheckList,
    Delete,
    Operation,
    Put,
    Record,
)
from keymgmt.storage._sqlite import SQLiteBackend

__all__ = [
    "ANY",
    "Backend",
    "Check",
    "CheckList",
    "Delete",
    "MemoryBackend",
    "Operation",
    "Put",
    "Record",
    "SQLiteBackend",
]
