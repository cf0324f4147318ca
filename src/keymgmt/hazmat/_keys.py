"""Raw export of a managed key version's material (explicit opt-in only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keymgmt._secret import SecretBytes
from keymgmt.errors import InvalidArgumentError

if TYPE_CHECKING:
    from keymgmt._manager import KeyManager
    from keymgmt.keys import KeyStore

__all__ = ["export_raw_key"]


def export_raw_key(
    keys: KeyManager | KeyStore,
    name: str,
    version: int | None = None,
    *,
    allow_plaintext: bool = False,
) -> SecretBytes:
    """Return a key version's material in the clear.

    The material is what the version stores: the raw key for symmetric
    algorithms (32 bytes; for Fernet, base64url-encode it to get a Fernet
    key file), PKCS#8 DER for key pairs. The export is audited as
    ``key.export-raw``. Prefer :meth:`keymgmt.keys.KeyStore.export_wrapped`
    or :meth:`~keymgmt.keys.KeyStore.export_sealed`, which never show the
    key in the clear.

    Args:
        keys: a :class:`~keymgmt.KeyManager` or its ``km.keys``.
        name: the key.
        version: the version (default: the primary).
        allow_plaintext: must be ``True``; the greppable opt-in.

    Raises:
        InvalidArgumentError: ``allow_plaintext`` is not ``True``, or ``keys``
            is not a KeyManager or its ``km.keys``.
        KeyNotFoundError: no such key or version.
        KeyStateError: the version is pre-active, compromised or destroyed.
    """
    if allow_plaintext is not True:
        raise InvalidArgumentError(
            "this returns key material in the clear; pass allow_plaintext=True if you mean it "
            "(or use km.keys.export_wrapped / export_sealed)"
        )
    from keymgmt.keys._keystore import key_store_of

    store = key_store_of(keys)
    _, record = store._material(name, version, "key.export-raw")
    assert record.material is not None
    return SecretBytes(record.material)
