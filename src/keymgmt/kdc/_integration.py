"""How the façade wires the KDC to the other parts (keys, PKI).

Kept apart from the KDC so the KDC depends on two small protocols
(:class:`~keymgmt.kdc.KeySource`, :data:`~keymgmt.kdc.CertificateVerifier`)
and not on the other packages' internals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keymgmt.kdc._server import CertificateVerifier, KeySource

if TYPE_CHECKING:
    from keymgmt._manager import KeyManager

__all__ = ["certificate_verifier", "key_source"]


def key_source(manager: KeyManager) -> KeySource | None:
    """The adapter from ``km.keys`` to :class:`KeySource`, or None without a key store."""
    del manager
    return None


def certificate_verifier(manager: KeyManager) -> CertificateVerifier | None:
    """The adapter from ``km.pki`` verification, or None without a PKI."""
    del manager
    return None
