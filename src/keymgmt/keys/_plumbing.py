"""keymgmt's own access to loaded key versions: for the PKI and the KDC, not for applications.

Two of keymgmt's parts need a key version itself, not an operation on it:

* the PKI signs certificates with a CA's key pair (:func:`use_version`
  returns the checked version; its ``loaded.private`` is the private key
  object, whose ``private_bytes`` writes it in the clear);
* the KDC seals a symmetric key's raw bytes to a principal
  (:func:`material_for_distribution`).

Both hand out key material outside :mod:`keymgmt.hazmat`'s
``allow_plaintext=True`` opt-in, so they are not on
:class:`~keymgmt.keys.KeyStore`'s public surface: this module is private,
and its callers are keymgmt's own. Applications export keys with
``km.keys.export_wrapped`` / ``export_sealed``, :mod:`keymgmt.pem` or
:mod:`keymgmt.hazmat`.

The checks are the key store's: usage, the version's effective state for
the operation (dates and the revocation registry included; a compromised
version is refused) and, for the primary, a rotation that is due.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keymgmt.algorithms import KeyUsage
from keymgmt.keys._keystore import DistributedMaterial, LoadedVersion
from keymgmt.keys._states import Operation

if TYPE_CHECKING:
    from keymgmt.keys._keystore import KeyStore

__all__ = ["DistributedMaterial", "LoadedVersion", "material_for_distribution", "use_version"]


def use_version(
    keys: KeyStore,
    name: str,
    version: int | None = None,
    *,
    usage: KeyUsage,
    operation: Operation = Operation.PROTECT,
) -> LoadedVersion:
    """A version checked for ``operation`` with ``usage``, ready to use in this process.

    Nothing is audited here: the caller audits what it does with the
    version. A cached version costs no store read. ``loaded`` must not be
    kept beyond the operation it was asked for (ask again: asking is what
    sees a rotation, revocation or destruction).

    Args:
        keys: the key store (``km.keys``).
        name: the key.
        version: the version (default: the primary).
        usage: the usage the caller needs.
        operation: ``Operation.PROTECT`` (encrypt, sign: the version must be
            active; without ``version`` the primary) or ``Operation.PROCESS``
            (decrypt, verify).

    Returns:
        the :class:`~keymgmt.keys._keystore.LoadedVersion`.

    Raises:
        KeyNotFoundError: no such key or version.
        KeyUsageError: the key is not for ``usage``.
        RevokedError: the version is revoked or compromised.
        DestroyedKeyError: the version's material was destroyed.
        KeyStateError: any other state ``operation`` does not accept.
        InvalidArgumentError: an invalid name or version, or an operation
            other than protect or process.
    """
    return keys._use(name, version, usage=usage, operation=operation)


def material_for_distribution(keys: KeyStore, name: str, *, recipient: str) -> DistributedMaterial:
    """The raw material of ``name``'s primary version, to be re-encrypted to ``recipient``.

    A symmetric encrypt-decrypt key's primary, checked as for an encryption;
    each hand-out is counted in the aggregated ``key.usage`` audit entries as
    ``use="distribute"`` with the recipient as context.

    Args:
        keys: the key store (``km.keys``).
        name: the key.
        recipient: who the material is for (recorded in the audit log).

    Returns:
        the version and its material (a :class:`~keymgmt.SecretBytes`).

    Raises:
        KeyNotFoundError: no such key.
        KeyUsageError: not a symmetric encrypt-decrypt key.
        RevokedError: the primary is revoked or compromised.
        KeyStateError: the primary cannot encrypt (pre-active, suspended,
            deactivated, destroyed).
        InvalidArgumentError: an invalid name or an empty recipient.
    """
    return keys._material_for_distribution(name, recipient=recipient)
