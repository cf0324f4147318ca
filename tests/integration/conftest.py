"""Fixtures for the integration tests: HSM key sources, PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

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
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"keymgmt_it_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(postgres_dsn)
    params["dbname"] = name
    yield make_conninfo("", **params)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
