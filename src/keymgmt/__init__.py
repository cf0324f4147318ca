"""keymgmt: a typed key management library.

Generate, store (sealed), rotate and destroy keys; run a PKI; exchange keys
with an authenticated handshake; distribute keys from a central server; and
revoke anything compromised — with every part honouring it.

Start with :class:`KeyManager`::

    import keymgmt
    with keymgmt.KeyManager.in_memory() as km:
        ...
"""

from importlib.metadata import PackageNotFoundError, version

from keymgmt._manager import KeyManager
from keymgmt._random import Randomness, SystemRandomness
from keymgmt._secret import SecretBytes
from keymgmt.algorithms import Algorithm, KeyKind, KeyUsage
from keymgmt.audit import AuditEntry, AuditLog, AuditReport
from keymgmt.clock import Clock, SystemClock
from keymgmt.errors import (
    AccessDeniedError,
    DecryptionError,
    DestroyedKeyError,
    IntegrityError,
    InvalidArgumentError,
    KeyMgmtError,
    KeyNotFoundError,
    KeyStateError,
    KeyUsageError,
    RevokedError,
    WrongPassphraseError,
)
from keymgmt.keyring import KdfProfile, KeyFile, Passphrase, RawMasterKey
from keymgmt.model import (
    DataKey,
    KeyInfo,
    KeyState,
    KeyVersionInfo,
    RotationPolicy,
    WrappedKey,
)
from keymgmt.revocation import Revocation, RevocationReason, SubjectKind

try:
    __version__ = version("keymgmt")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    from keymgmt._version import __version__

__all__ = [
    "AccessDeniedError",
    "Algorithm",
    "AuditEntry",
    "AuditLog",
    "AuditReport",
    "Clock",
    "DataKey",
    "DecryptionError",
    "DestroyedKeyError",
    "IntegrityError",
    "InvalidArgumentError",
    "KdfProfile",
    "KeyFile",
    "KeyInfo",
    "KeyKind",
    "KeyManager",
    "KeyMgmtError",
    "KeyNotFoundError",
    "KeyState",
    "KeyStateError",
    "KeyUsage",
    "KeyUsageError",
    "KeyVersionInfo",
    "Passphrase",
    "RawMasterKey",
    "Randomness",
    "Revocation",
    "RevocationReason",
    "RevokedError",
    "RotationPolicy",
    "SecretBytes",
    "SubjectKind",
    "SystemClock",
    "SystemRandomness",
    "WrappedKey",
    "WrongPassphraseError",
    "__version__",
]
