"""Storage backends and master key sources: PostgreSQL and an HSM when you have them.

- The store is PostgreSQL when ``KEYMGMT_TEST_POSTGRES_DSN`` names a server
  (a throwaway schema, dropped at the end), else a SQLite file. The API
  does not change.
- The master key is a non-extractable AES key in a PKCS#11 token when
  ``KEYMGMT_TEST_PKCS11_MODULE``, ``_TOKEN`` and ``_PIN`` are set (as
  ``eval "$(bash .ci/services/softhsm.sh)"`` exports them for SoftHSM2),
  else a passphrase; without a token the script says what it would do.

Run: python examples/09_backends.py
PostgreSQL needs the ``postgres`` extra, the HSM the ``hsm`` extra.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

import keymgmt
from keymgmt.keyring import KdfProfile, MasterKeySource, Passphrase
from keymgmt.storage import Backend, SQLiteBackend

ENV_DSN = "KEYMGMT_TEST_POSTGRES_DSN"
ENV_HSM = ("KEYMGMT_TEST_PKCS11_MODULE", "KEYMGMT_TEST_PKCS11_TOKEN", "KEYMGMT_TEST_PKCS11_PIN")


def choose_backend(folder: Path) -> tuple[Callable[[], Backend], Callable[[], None]]:
    """A way to open the store (called once per "process") and a clean-up."""
    dsn = os.environ.get(ENV_DSN)
    if not dsn:
        print(f"store: SQLite file ({ENV_DSN} not set)")
        return lambda: SQLiteBackend(folder / "keys.db"), lambda: None

    import psycopg
    from psycopg import sql

    from keymgmt.storage.postgres import PostgresBackend

    # Its own schema, so the example never touches another store in the database.
    schema = f"keymgmt_example_{secrets.token_hex(4)}"
    print(f"store: PostgreSQL, schema {schema}")

    def drop() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))

    return lambda: PostgresBackend(dsn, schema=schema), drop


def choose_master_key() -> tuple[MasterKeySource, Callable[[], None]]:
    """The master key source and a clean-up."""
    module, token, pin = (os.environ.get(name) for name in ENV_HSM)
    if not (module and token and pin):
        print(
            f"master key: a passphrase ({', '.join(ENV_HSM)} not set). With a token, "
            "keymgmt.keyring.pkcs11.Pkcs11Key would generate a non-extractable AES-256 "
            "key in it and wrap the store key with it; the store would not open without it."
        )
        # The cheap KDF keeps the example fast; never use it for real data.
        return Passphrase("example passphrase", KdfProfile.TESTING_ONLY_INSECURE), lambda: None

    from keymgmt.keyring.pkcs11 import Pkcs11Key

    label = f"keymgmt-example-{secrets.token_hex(4)}"  # generated in the token on first use
    hsm = Pkcs11Key(module, token_label=token, pin=pin, key_label=label)
    print(f"master key: AES key {label!r} in PKCS#11 token {token!r}")

    def destroy() -> None:  # remove the example's key from the token
        import pkcs11

        lib = pkcs11.lib(module)
        with lib.get_token(token_label=token).open(user_pin=pin, rw=True) as session:
            for key in session.get_objects({pkcs11.Attribute.LABEL: label}):
                key.destroy()

    return hsm, destroy


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        backend, drop_store = choose_backend(Path(tmp))
        master_key, drop_key = choose_master_key()
        try:
            # The façade takes any Backend and any master key source.
            with keymgmt.KeyManager(backend=backend(), master_key=master_key) as km:
                km.keys.create("orders")
                ciphertext = km.encrypt("orders", b"order 7: 3 books", {"shop": "eu"})
                print(f"created key 'orders' and encrypted ({len(ciphertext)} bytes)")

            # Another process, later: the same backend and master key open it again.
            with keymgmt.KeyManager(backend=backend(), master_key=master_key, create=False) as km:
                assert km.decrypt(ciphertext, {"shop": "eu"}) == b"order 7: 3 books"
                assert km.audit.verify().entries >= 2
                print("reopened: decrypts, audit chain verifies")

            # Only the right master key opens the store.
            wrong = Passphrase("a guess", KdfProfile.TESTING_ONLY_INSECURE)
            try:
                keymgmt.KeyManager(backend=backend(), master_key=wrong, create=False)
            except keymgmt.WrongPassphraseError:
                print("another master key: refused")
            else:
                raise AssertionError("another master key opened the store")
        finally:
            drop_store()
            drop_key()


if __name__ == "__main__":
    main()
