"""The symmetric-keys step of ``keymgmt demo``: every claim it prints is checked."""

from __future__ import annotations

import base64
import datetime as _dt
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet

from keymgmt.errors import DecryptionError, DestroyedKeyError, RevokedError
from keymgmt.keys._format import parse_header

if TYPE_CHECKING:
    from keymgmt.cli._demo import Demo

__all__ = ["step_keys"]


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(f"demo: {what}")


def step_keys(d: Demo) -> None:
    """Named keys, AEAD with contexts, rotation, envelope, compromise, destruction, Fernet."""
    from keymgmt.hazmat import export_raw_key
    from keymgmt.pem import write_key_file

    km = d.km
    km.keys.create("payments")
    context = {"tenant": "acme", "purpose": "invoice"}
    first = bytes(km.encrypt("payments", b"invoice #1: 100 EUR", context))
    header = parse_header(first)
    d.say(
        f"Key 'payments' (aes-256-gcm) encrypted a message: {len(first)} bytes whose header "
        f"names key {header.name!r}, version {header.version}, {header.algorithm.value}."
    )
    _check(km.decrypt(first, context) == b"invoice #1: 100 EUR", "round trip")
    d.proves("it decrypts with the same context, and the ciphertext alone says which key")
    d.expect_failure(
        "decrypting with another context",
        lambda: km.decrypt(first, {"tenant": "evil"}),
        DecryptionError,
    )
    flipped = bytearray(first)
    flipped[-5] ^= 1
    d.expect_failure(
        "decrypting a ciphertext with one flipped bit",
        lambda: km.decrypt(bytes(flipped), context),
        DecryptionError,
    )

    km.keys.rotate("payments")
    second = bytes(km.encrypt("payments", b"invoice #2", context))
    _check(parse_header(second).version == 2, "rotation moves encryption to version 2")
    _check(km.decrypt(first, context) == b"invoice #1: 100 EUR", "old version decrypts")
    moved = km.rewrap(first, context)
    _check(parse_header(moved).version == 2, "rewrap moves to version 2")
    _check(km.decrypt(moved, context) == b"invoice #1: 100 EUR", "rewrapped decrypts")
    d.proves(
        "after rotation new data uses version 2, version 1 still decrypts, and "
        "rewrap moved the old ciphertext to version 2 without showing its plaintext"
    )

    data_key = km.generate_data_key("payments", {"file": "ledger.db"})
    _check(
        km.decrypt_data_key(data_key.wrapped, {"file": "ledger.db"}) == data_key.plaintext,
        "data key round trip",
    )
    d.proves(
        f"envelope encryption: a 256-bit data key and its {len(data_key.wrapped)}-byte "
        "wrapped form; only the store can unwrap it"
    )

    km.keys.revoke("payments", 1, reason="key-compromise")
    d.expect_failure(
        "decrypting with compromised version 1", lambda: km.decrypt(first, context), RevokedError
    )
    _check(
        km.decrypt(first, context, allow_compromised=True) == b"invoice #1: 100 EUR", "migration"
    )
    d.proves("with allow_compromised=True it still decrypts, to migrate data away")
    km.keys.destroy("payments", 1, grace=_dt.timedelta(0))
    d.expect_failure(
        "decrypting with destroyed version 1", lambda: km.decrypt(first, context), DestroyedKeyError
    )

    seed_key = Fernet.generate_key()
    seed_file = d.workdir / "symmetric.key"
    write_key_file(seed_file, seed_key, overwrite=True)  # 0600, as every key file
    km.keys.import_fernet_key_file("seed", seed_file)
    sealed = bytes(km.encrypt("seed", b"the seed's format"))
    token = sealed[parse_header(sealed).prefix_length :]
    _check(Fernet(seed_key).decrypt(token) == b"the seed's format", "Fernet interop")
    d.proves("the seed's Fernet key file imported; the token inside opens with plain Fernet")

    raw_keys = [
        export_raw_key(km, "payments", 2, allow_plaintext=True).reveal(),
        base64.urlsafe_b64decode(seed_key),
        data_key.plaintext.reveal(),
    ]
    km.keys.flush_usage()
    _check(not d.leaked_in_store(raw_keys), "key material found in the store file")
    d.proves(
        "the key bytes (exported via keymgmt.hazmat to check) and the data key appear "
        "nowhere in the SQLite files, in raw, hex or base64 form"
    )
    usage = [e for e in km.audit.tail(40) if e.operation == "key.usage"]
    _check(bool(usage), "usage audited")
    d.proves(
        f"{len(usage)} aggregated key.usage audit entries (one per version, operation "
        "and context — not one per encryption); the chain verifies "
        f"({km.audit.verify().entries} entries)"
    )
