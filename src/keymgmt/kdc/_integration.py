"""How the façade wires the KDC to the other parts (``km.keys``, ``km.pki``).

Kept apart from the KDC so the KDC itself depends on two small protocols
(:class:`~keymgmt.kdc.KeySource`, :data:`~keymgmt.kdc.CertificateVerifier`)
and on :class:`Playbook` for compromise response, not on the other
packages' internals.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cryptography import x509

from keymgmt._store import Txn
from keymgmt.algorithms import Algorithm
from keymgmt.errors import (
    AlreadyExistsError,
    CertificateVerificationError,
    KeyMgmtError,
    KeyNotFoundError,
    KeyStateError,
    KeyUsageError,
    NotFoundError,
    RevokedError,
)
from keymgmt.kdc._server import (
    CertificateSubjects,
    CertificateVerifier,
    DistributableKey,
    KeySource,
)
from keymgmt.keys._datakeys import DataKeyIssue, issued_in
from keymgmt.keys._plumbing import material_for_distribution
from keymgmt.model import KeyState
from keymgmt.revocation import RevocationReason

if TYPE_CHECKING:
    from keymgmt._manager import KeyManager

__all__ = [
    "ManagerKeySource",
    "ManagerPlaybook",
    "ManagerCertificateSubjects",
    "ManagerSigner",
    "certificate_subjects",
    "certificate_verifier",
    "key_source",
]


class ManagerKeySource:
    """Distributes the primary version of named symmetric keys from ``km.keys``.

    Only symmetric encrypt-decrypt keys whose primary version is *active*
    (not suspended, deactivated, compromised, destroyed, nor revoked in the
    registry) are distributed: the key store's
    :func:`~keymgmt.keys._plumbing.material_for_distribution` checks that on
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
        try:
            handed = material_for_distribution(self._manager.keys, name, recipient=self.RECIPIENT)
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
            info = keys.get(self.KEY_NAME)
        except KeyNotFoundError:
            # Another process may have made it meanwhile.
            with contextlib.suppress(AlreadyExistsError):
                keys.create(self.KEY_NAME, algorithm="ed25519")
            info = keys.get(self.KEY_NAME)
        if info.algorithm is not Algorithm.ED25519:
            # Someone made a key of that name first (any key creator can):
            # the KDC will not sign with it, and says so instead of failing
            # somewhere deeper.
            raise KeyUsageError(
                f"key {self.KEY_NAME!r} exists but is {info.algorithm.value}, not the "
                "KDC's Ed25519 signing key; rename or destroy it (the KDC needs the name)",
                key_name=self.KEY_NAME,
            )
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
    """The steps of a compromise response that belong to ``km.keys`` and ``km.pki``.

    The ``stage_*`` steps write only through the response's transaction
    (:mod:`keymgmt.kdc._compromise`).
    """

    def __init__(self, manager: KeyManager) -> None:
        self._manager = manager

    def prepare(self) -> None:
        """Write this process's pending use counts and data-key log first."""
        self._manager.keys.flush_usage()

    def primary_version(self, name: str) -> int:
        """The primary version of ``name`` (whatever its state)."""
        return self._manager.keys.get(name).primary_version

    def stage_compromise_key_version(
        self, txn: Txn, name: str, version: int, reason: RevocationReason
    ) -> Sequence[str]:
        """Mark the version compromised in the key store (and the registry).

        A key pair's public key is also compromised at every CA of the
        store (:meth:`keymgmt.pki.PKI.stage_public_key_compromise`): its
        certificates are revoked and no CA certifies it again.

        Returns:
            the certificates revoked, as ``"<ca>:<serial hex>"``.
        """
        keys = self._manager.keys
        keys.stage_revoke(txn, name, version, reason=reason)
        if not reason.is_compromise:
            return ()
        try:
            # A read outside the transaction: a version's public key never changes.
            # The forensic read: the version may be compromised already.
            public = keys.forensic_public_key(name, version)
        except (KeyUsageError, KeyStateError):
            return ()  # symmetric (no public key), or destroyed (nothing left to read)
        return self._manager.pki.stage_public_key_compromise(
            txn, public.key, reason, key_id=f"{name}#{version}"
        )

    def stage_rotate_if_primary(self, txn: Txn, name: str, version: int) -> int | None:
        """Rotate ``name`` when ``version`` is its primary; the new version or None."""
        new = self._manager.keys.stage_rotate(txn, name, if_primary=version, trigger="compromise")
        return None if new is None else new.version

    def data_keys(self, txn: Txn, name: str, version: int) -> Sequence[DataKeyIssue]:
        """The data keys generated under the version (the key store's data-key log)."""
        return issued_in(txn, name, version)

    def stage_revoke_certificate(
        self, txn: Txn, cert: x509.Certificate, reason: RevocationReason
    ) -> str | None:
        """Revoke ``cert`` at the CA that issued it (the CRL is due from the commit on).

        Returns:
            ``"<ca>:<serial hex>"``, or None when no CA of this store issued it.
        """
        pki = self._manager.pki
        subject = pki.revocation_subject(cert)
        if subject is None:
            return None
        ca_name, _, serial = subject.partition(":")
        pki.ca(ca_name).stage_revoke(txn, serial, reason)
        return subject

    def publish_crl(self, subject: str) -> int | None:
        """Sign the new CRL of the CA named in ``subject``; its number, or None.

        None when the CA cannot sign now (its key or certificate revoked): the
        CRL stays due and the next ``ca.crl()`` that can sign builds it.
        """
        ca = self._manager.pki.ca(subject.partition(":")[0])
        try:
            crl = ca.crl(force=True)
        except KeyMgmtError:
            return None
        number: int = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        return number


def key_source(manager: KeyManager) -> KeySource | None:
    """The adapter from ``km.keys`` to :class:`KeySource`."""
    return ManagerKeySource(manager)


class ManagerCertificateSubjects:
    """Where principal certificates and the CAs above them sit in ``km.revocation``.

    The KDC refuses a certificate principal, and names it on its revocation
    list, once its certificate or the current certificate of an
    intermediate CA above it is revoked (the same registry entries the CRLs
    and OCSP answer from), or the signing key of a CA of its chain is
    revoked for a compromise (``ca-compromise``, as ``km.pki.verify`` says).
    """

    def __init__(self, manager: KeyManager) -> None:
        self._manager = manager

    def subject(self, certificate: x509.Certificate) -> str | None:
        """``km.pki.revocation_subject``: ``"<ca>:<serial hex>"``, or None."""
        return self._manager.pki.revocation_subject(certificate)

    def issuers(self, ca: str) -> tuple[str, ...]:
        """The subjects of ``ca``'s current certificate at its parent, and so on up.

        A CA no longer in the store ends the walk (its certificates then
        fail ``km.pki.verify`` anyway).
        """
        pki = self._manager.pki
        out: list[str] = []
        seen = {ca}
        try:
            current = pki.ca(ca)
            while current.parent is not None and len(out) < _MAX_CHAIN:
                out.append(f"{current.parent}:{current.certificate.serial_number:x}")
                if current.parent in seen:
                    break
                seen.add(current.parent)
                current = pki.ca(current.parent)
        except NotFoundError:
            pass
        return tuple(out)

    def key_compromise(self, ca: str) -> _dt.datetime | None:
        """``km.pki.key_compromise(ca)``'s date: the CA's key revoked for a compromise."""
        found = self._manager.pki.key_compromise(ca)
        return None if found is None else found.revoked_at

    def key_subjects(self, ca: str) -> tuple[str, ...]:
        """The CA's key version and key name (what ``km.pki.key_compromise`` probes)."""
        try:
            found = self._manager.pki.ca(ca)
        except NotFoundError:
            return ()
        return tuple(subject for subject, _indexed in found._key_subjects)


#: The longest chain of the store's CAs walked for a principal's certificate.
_MAX_CHAIN = 16


def certificate_subjects(manager: KeyManager) -> CertificateSubjects:
    """The adapter from ``km.pki`` to :class:`~keymgmt.kdc.CertificateSubjects`."""
    return ManagerCertificateSubjects(manager)


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
