"""The ``keymgmt demo`` step for key pairs: signing and public-key encryption.

A signing key pair and an encryption key pair live sealed in the store like
every other key. Their public halves are exported, and a party that holds
no store — only :mod:`keymgmt.public` and the exported PEM — verifies
signatures and encrypts to the key. Every claim is checked before it is
printed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keymgmt.errors import DecryptionError, InvalidSignatureError, KeyUsageError, RevokedError
from keymgmt.public import PublicKey, Signature

if TYPE_CHECKING:
    from keymgmt.cli._demo import Demo

__all__ = ["step_asymmetric"]


def step_asymmetric(d: Demo) -> None:
    """Sign and verify, encrypt to a public key, refuse misuse and revoked keys."""
    km = d.km
    km.keys.create("demo-signer", "ed25519")
    km.keys.create("demo-inbox", "ml-kem-768-x25519")
    d.say("Two key pairs were made in the store: Ed25519 (signing) and ML-KEM-768+X25519 (HPKE).")

    message = b"release 1.4.2, sha256 9f2c..."
    signature = km.sign("demo-signer", message)
    signer_pem = km.public_key("demo-signer").pem()
    verifier = PublicKey.from_pem(signer_pem)  # no store, no master key
    verifier.verify(message, signature)
    d.proves(
        f"a holder of the exported PEM alone ({len(signer_pem)} bytes) verified the "
        f"{len(signature)}-byte signature, which names demo-signer version 1"
    )
    verifier.verify_detached(message, Signature.decode(signature).raw)
    d.proves("the detached part is a plain Ed25519 signature (openssl pkeyutl checks it)")
    d.expect_failure(
        "the signature over a changed message",
        lambda: verifier.verify(message + b"!", signature),
        InvalidSignatureError,
    )

    inbox = PublicKey.from_pem(km.public_key("demo-inbox").pem())
    context = {"to": "demo-inbox", "purpose": "demo"}
    ciphertext = inbox.encrypt(b"the launch code", context=context)
    assert km.decrypt(ciphertext, context) == b"the launch code"
    d.proves(
        "a sender with only the public PEM encrypted (HPKE, post-quantum hybrid); "
        "km.decrypt opened it inside the store"
    )
    d.expect_failure(
        "decrypting under another context",
        lambda: km.decrypt(ciphertext, {"to": "someone-else"}),
        DecryptionError,
    )
    d.expect_failure(
        "signing with the encryption key",
        lambda: km.sign("demo-inbox", message),
        KeyUsageError,
    )
    km.keys.revoke("demo-signer", 1, reason="key-compromise")
    d.expect_failure(
        "the store verifying with the revoked signing key",
        lambda: km.verify("demo-signer", message, signature),
        RevokedError,
    )
