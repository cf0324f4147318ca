"""Key pairs: sign and encrypt with named keys; verify and encrypt with only the public key.

The private halves stay sealed in the store. A party without the store uses
``keymgmt.public.PublicKey`` and the exported PEM or JWK.

Run: python examples/03_signing_public_key_encryption.py
"""

from __future__ import annotations

import keymgmt
from keymgmt.errors import InvalidSignatureError
from keymgmt.public import PublicKey


def main() -> None:
    with keymgmt.KeyManager.in_memory() as km:
        km.keys.create("release-signing", "ed25519")
        km.keys.create("inbox", "x25519", usage="encrypt-decrypt")  # HPKE (RFC 9180)

        # --- signing -------------------------------------------------------
        artifact = b"keymgmt-1.0.tar.gz contents"
        signature = km.sign("release-signing", artifact)
        pem = km.public_key("release-signing").pem()  # carries name, version, key id
        print(pem.decode().splitlines()[0], "...")

        verifier = PublicKey.from_pem(pem)  # no store, no master key
        verifier.verify(artifact, signature)
        print("signature verified with the exported public key alone")
        try:
            verifier.verify(artifact + b"tampered", signature)
        except InvalidSignatureError:
            print("tampered artifact: refused")
        else:
            raise AssertionError("a tampered artifact verified")

        # --- public-key encryption ----------------------------------------
        jwk = km.public_key("inbox").jwk()
        sender = PublicKey.from_jwk(jwk)
        context = {"to": "inbox", "purpose": "example"}
        ciphertext = sender.encrypt(b"meet at noon", context=context)
        assert km.decrypt(ciphertext, context) == b"meet at noon"  # only the store opens it
        print(f"encrypted to {jwk['kid']} with the JWK; km.decrypt opened it")

        # Usage is fixed at creation: the encryption key does not sign.
        try:
            km.sign("inbox", b"x")
        except keymgmt.KeyUsageError as exc:
            print("refused:", exc.message)
        else:
            raise AssertionError("an encryption key signed")


if __name__ == "__main__":
    main()
