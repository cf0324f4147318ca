"""Hazardous materials: key material in the clear. Read this before importing.

Everything in this package hands out secret key material unprotected —
bytes that anyone who sees them (a log line, a backup, a core dump, a
notebook checkpoint) can use to decrypt or sign as you. keymgmt's safe
paths never do that: keys stay sealed in the store, leave it only wrapped
for a recipient (:meth:`keymgmt.keys.KeyStore.export_wrapped`,
:meth:`~keymgmt.keys.KeyStore.export_sealed`) or encrypted under a
passphrase (:mod:`keymgmt.pem`).

Each function here refuses to run unless called with ``allow_plaintext=True``,
so every use is explicit and easy to grep for. Exports of a store's keys
are audited in that store; the store-less functions (PEM files for a key
you already hold) have no store to audit in.
"""

from keymgmt.hazmat._asymmetric import (
    export_private_key_pem_unencrypted,
    generate_rsa_key_files_unencrypted,
    private_key_pem_unencrypted,
    write_private_key_pem_unencrypted,
)
from keymgmt.hazmat._keys import export_raw_key

__all__ = [
    "export_private_key_pem_unencrypted",
    "export_raw_key",
    "generate_rsa_key_files_unencrypted",
    "private_key_pem_unencrypted",
    "write_private_key_pem_unencrypted",
]
