"""Every built-in backend passes the one storage contract (keymgmt.testing.contract)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from keymgmt.storage import Backend, MemoryBackend, SQLiteBackend
from keymgmt.testing.contract import BackendContract


class TestMemoryBackend(BackendContract):
    def make_backend(self) -> MemoryBackend:
        return MemoryBackend()


class TestSQLiteBackend(BackendContract):
    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.folder = tmp_path
        self.counter = itertools.count()

    def make_backend(self) -> SQLiteBackend:
        return SQLiteBackend(self.folder / f"store-{next(self.counter)}.db")

    def open_again(self, backend: Backend) -> Backend:
        assert isinstance(backend, SQLiteBackend)
        return SQLiteBackend(backend.path, create=False)


@pytest.mark.postgres
class TestPostgresBackend(BackendContract):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_dsn: str) -> Iterator[None]:
        import psycopg
        from psycopg import sql

        self.dsn = postgres_dsn
        self.schemas: list[str] = []
        yield
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )

    def make_backend(self) -> Backend:
        from keymgmt.storage.postgres import PostgresBackend

        schema = f"contract_{uuid.uuid4().hex[:12]}"
        self.schemas.append(schema)
        return PostgresBackend(self.dsn, schema=schema, max_connections=6)

    def open_again(self, backend: Backend) -> Backend:
        from keymgmt.storage.postgres import PostgresBackend

        assert isinstance(backend, PostgresBackend)
        return PostgresBackend(self.dsn, schema=backend.schema, create=False)
