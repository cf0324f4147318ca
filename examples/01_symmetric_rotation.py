"""Symmetric keys: encrypt with a context, rotate, old versions still decrypt, re-wrap.

Run: python examples/01_symmetric_rotation.py
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import keymgmt
from keymgmt.keyring import KdfProfile


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keys.db"
        # A SQLite store sealed under a passphrase. The cheap KDF profile keeps
        # the example fast; omit kdf_profile for real data (Argon2id, moderate).
        with keymgmt.KeyManager.open(
            path,
            passphrase="example passphrase",  # noqa: S106 - a throwaway example store
            kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        ) as km:
            km.keys.create(
                "invoices",  # AES-256-GCM by default
                policy=keymgmt.RotationPolicy(rotation_period=dt.timedelta(days=90)),
            )
            context = {"tenant": "acme", "purpose": "invoice"}
            old = km.encrypt("invoices", b"invoice #1: 120 EUR", context)
            print(f"encrypted under version {km.keys.get('invoices').primary_version}")

            km.keys.rotate("invoices")
            new = km.encrypt("invoices", b"invoice #2: 80 EUR", context)
            print(f"rotated: version {km.keys.get('invoices').primary_version} is primary")

            # Ciphertexts name their key version, so old ones still decrypt.
            assert km.decrypt(old, context) == b"invoice #1: 120 EUR"
            assert km.decrypt(new, context) == b"invoice #2: 80 EUR"

            # A different context is refused with one opaque error.
            try:
                km.decrypt(old, {"tenant": "someone-else", "purpose": "invoice"})
            except keymgmt.DecryptionError:
                print("wrong context: refused")
            else:
                raise AssertionError("the wrong context decrypted")

            # Move the old ciphertext to the new version without seeing the plaintext.
            moved = km.rewrap(old, context)
            assert km.decrypt(moved, context) == b"invoice #1: 120 EUR"
            print("re-wrapped the old ciphertext to the primary version")

        # Reopen: everything persisted, sealed under the passphrase.
        with keymgmt.KeyManager.open(path, passphrase="example passphrase") as km:  # noqa: S106
            info = km.keys.get("invoices")
            print(
                f"{info.name}: versions {[v.version for v in info.versions]}, "
                f"primary {info.primary_version}"
            )
            assert km.audit.verify().entries > 1


if __name__ == "__main__":
    main()
