"""The master key and sealing.

The master key comes from a :class:`Passphrase` (Argon2id), a
:class:`KeyFile` or :class:`RawMasterKey`, or an HSM
(:mod:`keymgmt.keyring.pkcs11`, extra ``keymgmt[hsm]``). It wraps a random
store key, and the :class:`Keyring` seals every stored secret under that.
:class:`StoreKeys` rotates the store key, re-seals records under the new
one and retires old ones.
"""

from keymgmt.keyring._keyring import KEYRING_RECORD, Keyring, record_aad
from keymgmt.keyring._rotation import ResealReport, StoreKeyInfo, StoreKeys, StoreKeyStatus
from keymgmt.keyring._sources import (
    KdfProfile,
    KeyFile,
    MasterKey,
    MasterKeySource,
    Passphrase,
    RawMasterKey,
)

__all__ = [
    "KEYRING_RECORD",
    "KdfProfile",
    "KeyFile",
    "Keyring",
    "MasterKey",
    "MasterKeySource",
    "Passphrase",
    "RawMasterKey",
    "ResealReport",
    "StoreKeyInfo",
    "StoreKeyStatus",
    "StoreKeys",
    "record_aad",
]
