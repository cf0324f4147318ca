"""Where CA private keys live: managed key pairs in ``km.keys``.

A CA key is an ordinary key pair of the key store (name ``pki-ca-<ca>``,
usage sign-verify), so it is sealed, versioned and audited like every other
key, moves through the same lifecycle states, and is refused once its
version is revoked. The CA record references it as ``"<key name>#<version>"``
(the key store's own version subject); compromising a CA revokes that key
version in the revocation registry (``SubjectKind.KEY``).

X.509 signing needs the private key object itself (``CertificateBuilder``
signs with it), so this module asks the key store for the version through
its internal API, :meth:`~keymgmt.keys.KeyStore.use` (usage sign-verify,
operation protect: the version must be active and not revoked). Loading an
RSA key validates it (about 30 ms for RSA-2048); the key store caches loaded
versions and replaces them on any change to the key (state, revocation,
destruction), so asking on every signature costs no store read and always
sees the key's current state. This file is the only place the PKI touches
key storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keymgmt._store import Txn
from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.errors import (
    IntegrityError,
    InvalidArgumentError,
    KeyStateError,
    KeyUsageError,
    RevokedError,
)
from keymgmt.pki._keys import SigningKey
from keymgmt.revocation import RevocationReason, RevocationRegistry, SubjectKind

if TYPE_CHECKING:
    from keymgmt.keys import KeyStore

__all__ = ["CAKeys", "key_name_for"]


def key_name_for(ca_name: str) -> str:
    """The key store name of a CA's private key."""
    return f"pki-ca-{ca_name}"


def _split(ref: str) -> tuple[str, int]:
    name, _, version = ref.rpartition("#")
    if not name or not version.isdigit():
        raise IntegrityError("a CA key reference is malformed")
    return name, int(version)


class CAKeys:
    """CA private keys as managed key pairs (the key store caches the loaded keys)."""

    def __init__(self, keys: KeyStore, revocation: RevocationRegistry) -> None:
        self._keys = keys
        self._revocation = revocation

    def create(self, ca_name: str, algorithm: Algorithm) -> tuple[str, SigningKey]:
        """Create the CA's key pair in the key store (its own audited transaction).

        Returns:
            the reference ``"<key name>#<version>"`` and the private key.

        Raises:
            AlreadyExistsError: a key with the CA's key name exists.
        """
        name = key_name_for(ca_name)
        info = self._keys.create(name, algorithm, usage=KeyUsage.SIGN_VERIFY)
        ref = f"{name}#{info.primary_version}"
        return ref, self.load(ref)

    def load(self, ref: str) -> SigningKey:
        """The private key of ``ref``, refused unless the version may sign.

        Raises:
            KeyNotFoundError: no such key or version.
            RevokedError: the key version is revoked (compromised CA).
            KeyStateError: the version cannot sign (suspended, deactivated, destroyed).
            IntegrityError: the stored key is not a certificate signing key.
        """
        name, version = _split(ref)
        try:
            loaded = self._keys.use(name, version, usage=KeyUsage.SIGN_VERIFY)
        except RevokedError:
            raise RevokedError(
                f"the CA key {ref} is revoked", key_name=name, version=version
            ) from None
        except KeyStateError as exc:
            state = getattr(exc, "state", "unusable")
            raise KeyStateError(
                f"the CA key {ref} is {state} and cannot sign",
                key_name=name,
                version=version,
                state=state,
            ) from None
        except KeyUsageError:
            raise IntegrityError(f"the key {name} cannot sign certificates") from None
        private = getattr(loaded.loaded, "private", None)
        if not isinstance(
            private, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        ):
            raise IntegrityError(f"the key {name} cannot sign certificates")
        return private

    def stage_compromise(self, txn: Txn, ref: str, reason: RevocationReason) -> None:
        """Revoke the key version ``ref`` inside ``txn`` (its CA was compromised).

        Raises:
            InvalidArgumentError: ``reason`` is not a compromise.
        """
        if not reason.is_compromise:
            raise InvalidArgumentError("only a compromise revokes a CA key")
        self._revocation.stage(txn, SubjectKind.KEY, ref, reason)
