"""Where CA private keys live: the one module to switch to managed key pairs.

Until ``km.keys`` can create and load asymmetric key pairs, a CA key is kept
here as a PKCS#8 DER blob in a sealed store record (kind ``pki-cakey``, name
``"<key name>#<version>"``), written inside the caller's transaction. The CA
record references the key by that name and version, and a compromise revokes
the key version in the revocation registry (``SubjectKind.KEY``), exactly as
a managed key would be. Switching to ``km.keys`` changes this file only.

Loaded keys are cached per process: loading an RSA key validates it (about
30 ms for RSA-2048), far more than a signature costs.
"""

from __future__ import annotations

import threading
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keymgmt._store import Store, Txn
from keymgmt.errors import IntegrityError, KeyNotFoundError, RevokedError
from keymgmt.pki._keys import SigningKey
from keymgmt.revocation import RevocationReason, RevocationRegistry, SubjectKind

__all__ = ["CAKEY_KIND", "CAKeys"]

CAKEY_KIND: Final = "pki-cakey"


def key_name_for(ca_name: str) -> str:
    """The key name a CA's private key is stored under."""
    return f"pki-ca-{ca_name}"


class CAKeys:
    """Sealed CA private keys, with a per-process cache of loaded keys."""

    def __init__(self, store: Store, revocation: RevocationRegistry) -> None:
        self._store = store
        self._revocation = revocation
        self._cache: dict[str, SigningKey] = {}
        self._lock = threading.Lock()

    def stage_create(self, txn: Txn, ca_name: str, key: SigningKey) -> str:
        """Stage the sealed private key of a new CA; return its reference ``name#version``."""
        ref = f"{key_name_for(ca_name)}#1"
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        txn.put(CAKEY_KIND, ref, der)
        txn.after_commit(lambda: self._remember(ref, key))
        return ref

    def _remember(self, ref: str, key: SigningKey) -> None:
        with self._lock:
            self._cache[ref] = key

    def load(self, ref: str) -> SigningKey:
        """The private key for ``ref``, from the cache or unsealed from the store.

        Raises:
            KeyNotFoundError: no such key.
            RevokedError: the key version is revoked (compromised CA).
            IntegrityError: the stored key does not parse.
        """
        if self._revocation.is_revoked(SubjectKind.KEY, ref):
            raise RevokedError(f"the CA key {ref} is revoked", key_name=ref)
        with self._lock:
            cached = self._cache.get(ref)
        if cached is not None:
            return cached
        der = self._store.get(CAKEY_KIND, ref)
        if der is None:
            raise KeyNotFoundError(f"no CA key {ref}", key_name=ref)
        try:
            key = serialization.load_der_private_key(der, password=None)
        except (ValueError, TypeError):
            raise IntegrityError("a stored CA key does not parse") from None
        if not isinstance(
            key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        ):
            raise IntegrityError("a stored CA key has an unexpected type")
        self._remember(ref, key)
        return key

    def stage_compromise(self, txn: Txn, ref: str, reason: RevocationReason) -> None:
        """Revoke the key version ``ref`` inside ``txn`` (its CA was compromised)."""
        self._revocation.stage(txn, SubjectKind.KEY, ref, reason)
