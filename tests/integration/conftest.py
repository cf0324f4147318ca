"""Fixtures for the integration tests: HSM key sources, PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest


@pytest.fixture
def hsm_key(pkcs11_module: str) -> Callable[..., object]:
    """Make a :class:`Pkcs11Key` on the test token; each test gets its own key label."""
    from keymgmt.keyring.pkcs11 import Pkcs11Key

    token = os.environ.get("KEYMGMT_TEST_PKCS11_TOKEN", "keymgmt-test")
    pin = os.environ.get("KEYMGMT_TEST_PKCS11_PIN", "")
    label = f"test-{uuid.uuid4().hex[:12]}"

    def make(**overrides: object) -> Pkcs11Key:
        options: dict[str, object] = {"token_label": token, "pin": pin, "key_label": label}
        options.update(overrides)
        return Pkcs11Key(pkcs11_module, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def postgres_database(postgres_dsn: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; its DSN. Dropped afterwards."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    name = f"keymgmt_it_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    # KeyManager.open routes only postgresql:// URIs to PostgreSQL.
    params = {k: str(v) for k, v in conninfo_to_dict(postgres_dsn).items()}
    user = quote(params.get("user", ""), safe="")
    password = params.get("password")
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    yield f"postgresql://{auth}{host}:{port}/{name}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new store that several processes open: a SQLite path or a PostgreSQL DSN."""
    from _integration_worker import prepare

    if request.param == "sqlite":
        location = str(tmp_path / "shared.db")
    else:
        location = request.getfixturevalue("postgres_database")
    prepare(location)
    return location
