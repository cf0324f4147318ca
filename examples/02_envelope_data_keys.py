"""Envelope encryption: a data key per file, wrapped under a managed key.

Encrypt bulk data locally with the plaintext data key, store only the wrapped
copy next to the data, and ask the key manager to unwrap it when reading.

Run: python examples/02_envelope_data_keys.py
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import keymgmt


def main() -> None:
    with keymgmt.KeyManager.in_memory() as km:
        km.keys.create("backups")
        context = {"file": "ledger-2026.db"}

        # Write: a fresh data key; use the plaintext, keep the wrapped copy.
        data_key = km.generate_data_key("backups", context)
        nonce = os.urandom(12)
        blob = AESGCM(data_key.plaintext.reveal()).encrypt(nonce, b"ledger contents", None)
        stored = {"wrapped_key": data_key.wrapped, "nonce": nonce, "blob": blob}
        print(
            f"data key wrapped under backups version {data_key.key_version}: "
            f"{len(data_key.wrapped)} bytes; repr never shows it: {data_key.plaintext!r}"
        )

        # Rotate the key-encryption key, then re-wrap the stored data key (the
        # bulk data is not touched and the plaintext key never leaves the manager).
        km.keys.rotate("backups")
        stored["wrapped_key"] = km.rewrap(stored["wrapped_key"], context)

        # Read: unwrap the data key, decrypt locally.
        key = km.decrypt_data_key(stored["wrapped_key"], context)
        plain = AESGCM(key.reveal()).decrypt(stored["nonce"], stored["blob"], None)
        assert plain == b"ledger contents"
        print("re-wrapped to version 2 and decrypted:", plain.decode())


if __name__ == "__main__":
    main()
