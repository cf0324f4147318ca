"""How the façade wires the KDC to the other parts (``km.keys``, ``km.pki``).

Kept apart from the KDC so the KDC itself depends on two small protocols
(:class:`~keymgmt.kdc.KeySource`, :data:`~keymgmt.kdc.CertificateVerifier`)
and on :class:`Playbook` for compromise response, not on the other
packages' internals.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from typing import TYPE_CHECKING, Any

from cryptography import x509

from keymgmt.errors import (
    AlreadyExistsError,
    CertificateVerificationError,
    KeyNotFoundError,
    KeyStateError,
    KeyUsageError,
    RevokedError,
)
from keymgmt.kdc._server import CertificateVerifier, DistributableKey, KeySource
from keymgmt.revocation import RevocationReason

if TYPE_CHECKING:
    from keymgmt._manager import KeyManager

__all__ = [
    "ManagerKeySource",
    "ManagerPlaybook",
    "ManagerSigner",
    "certificate_verifier",
    "key_source",
]


class ManagerKeySource:
    """Distributes the primary version of named symmetric keys from ``km.keys``.

    Only symmetric encrypt-decrypt keys whose primary version is *active*
    (not suspended, deactivated, compromised, destroyed, nor revoked in the
    registry) are distributed: the key store's
    :meth:`~keymgmt.keys.KeyStore.material_for_distribution` checks that on
    every request (no store read once the version is cached) and counts the
    hand-out in its ``key.usage`` audit (recipient ``"kdc"``; the KDC's own
    ``kdc.grant-key`` entry names the principal).
    """

    #: The recipient the key store records for every hand-out.
    RECIPIENT = "kdc"

    def __init__(self, manager: KeyManager) -> None:
        self._manager = manager

    def current(self, name: str) -> DistributableKey:
        """See :meth:`keymgmt.kdc.KeySource.current`."""
        from keymgmt.model import KeyState

        try:
            handed = self._manager.keys.material_for_distribution(name, recipient=self.RECIPIENT)
        except KeyUsageError:
            raise KeyStateError(
                f"key {name!r} is not a symmetric encryption key; the KDC distributes only those",
                key_name=name,
            ) from None
        except KeyStateError as exc:
            state = getattr(exc, "state", None)
            if isinstance(exc, RevokedError) or state in (
                KeyState.COMPROMISED.value,
                KeyState.DESTROYED_COMPROMISED.value,
            ):
                raise RevokedError(exc.message, key_name=name) from None
            raise
        version = handed.version
        return DistributableKey(
            name=name,
            version=version.version,
            algorithm=version.algorithm.value,
            material=handed.material,
            valid_until=version.valid_until,
        )


class ManagerSigner:
    """The KDC's signing key as a managed Ed25519 key pair in ``km.keys``.

    Created on first use under the name :attr:`KEY_NAME`; rotated, revoked
    and audited like any key pair (``km.compromise(key="kdc-signing#1")``
    rotates it). Clients pin its public key: after a rotation they need the
    new one (it comes with credentials issued from then on).
    """

    KEY_NAME = "kdc-signing"

    def __init__(self, manager: KeyManager) -> None:
        self._manager = manager
        self._ready = False

    def _ensure(self) -> None:
        if self._ready:
            return
        keys = self._manager.keys
        try:
            keys.get(self.KEY_NAME)
        except KeyNotFoundError:
            # Another process may have made it meanwhile.
            with contextlib.suppress(AlreadyExistsError):
                keys.create(self.KEY_NAME, algorithm="ed25519")
        self._ready = True

    def sign(self, data: bytes) -> bytes:
        """A raw Ed25519 signature by the primary version.

        Raises:
            KeyStateError: the primary cannot sign (revoked, compromised).
        """
        from keymgmt.public import Signature

        self._ensure()
        return Signature.decode(self._manager.keys.sign(self.KEY_NAME, data)).raw

    def public_key(self) -> bytes:
        """The raw public key of the primary version."""
        self._ensure()
        return self._manager.keys.public_key(self.KEY_NAME).raw()


class ManagerPlaybook:
    """The steps of a compromise response that belong to other parts."""

    def __init__(self, manager: KeyManager) -> None:
        self._manager = manager

    def compromise_key_version(self, name: str, version: int, reason: RevocationReason) -> None:
        """Mark the version compromised in the key store (and the registry)."""
        self._manager.keys.revoke(name, version, reason=reason)

    def rotate_if_primary(self, name: str, version: int) -> int | None:
        """Rotate ``name`` when ``version`` is its primary; the new version or None."""
        info = self._manager.keys.get(name)
        if info.primary_version != version:
            return None
        return self._manager.keys.rotate(name).version

    def data_keys(self, name: str, version: int) -> int:
        """How many data keys were generated under the version (from usage audit)."""
        self._manager.keys.flush_usage()
        count = 0
        subject = f"{name}#{version}"
        for entry in self._manager.audit.entries():
            if entry.operation == "key.usage" and entry.object == subject:
                details: dict[str, Any] = dict(entry.details)
                if details.get("use") == "generate-data-key":
                    count += int(details.get("count", 0) or 0)
        return count

    def primary_version(self, name: str) -> int:
        """The primary version of ``name`` (whatever its state)."""
        return self._manager.keys.get(name).primary_version

    def revoke_certificate(self, cert: x509.Certificate, reason: RevocationReason) -> str | None:
        """Revoke ``cert`` at the CA that issued it and publish a new CRL.

        Returns:
            ``"<ca>:<serial hex>"`` and the CRL number, or None when no CA of
            this store issued it.
        """
        pki = self._manager.pki
        subject = pki.revocation_subject(cert)
        if subject is None:
            return None
        ca_name, _, serial = subject.partition(":")
        ca = pki.ca(ca_name)
        ca.revoke(serial, reason)
        crl = ca.crl(force=True)
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        return f"{subject} crl={number}"


def key_source(manager: KeyManager) -> KeySource | None:
    """The adapter from ``km.keys`` to :class:`KeySource`."""
    return ManagerKeySource(manager)


def certificate_verifier(manager: KeyManager) -> CertificateVerifier | None:
    """Principal certificates are checked by ``km.pki.verify`` (purpose tls-client)."""

    def verify(cert: x509.Certificate, at: _dt.datetime) -> None:
        pki = manager.pki
        if not pki.trust_anchors():
            raise CertificateVerificationError(
                "the store has no CA to verify principal certificates against",
                reason="unknown-issuer",
            )
        pki.verify(cert, at=at, purpose="tls-client")

    return verify
