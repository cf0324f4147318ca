"""Named keys with versions: lifecycle, rotation, AEAD encryption, data keys, export.

Users reach this part as ``km.keys`` (a :class:`KeyStore`) and through the
façade shortcuts ``km.encrypt``, ``km.decrypt``, ``km.generate_data_key``,
``km.decrypt_data_key`` and ``km.rewrap``. See :mod:`keymgmt.keys._keystore`
for how versions, states, caching and usage auditing work, and
:mod:`keymgmt.keys._format` for the ciphertext format.
"""

from keymgmt.keys._datakeys import DataKeyIssue, DataKeyLogMode, DataKeyLogPolicy, data_key_id
from keymgmt.keys._export import open_sealed_export, unwrap_rfc5649_export
from keymgmt.keys._format import Header, PayloadType, parse_header
from keymgmt.keys._handlers import MaterialHandler, SymmetricHandler, default_handlers
from keymgmt.keys._keystore import (
    DEFAULT_DESTRUCTION_GRACE,
    KeyRequest,
    KeyStore,
)
from keymgmt.keys._states import ACCEPTS, TRANSITIONS, Operation
from keymgmt.model import (
    DataKey,
    KeyInfo,
    KeyState,
    KeyVersionInfo,
    RotationPolicy,
    WrappedKey,
)

__all__ = [
    "ACCEPTS",
    "DEFAULT_DESTRUCTION_GRACE",
    "TRANSITIONS",
    "DataKey",
    "DataKeyIssue",
    "DataKeyLogMode",
    "DataKeyLogPolicy",
    "Header",
    "KeyInfo",
    "KeyRequest",
    "KeyState",
    "KeyStore",
    "KeyVersionInfo",
    "MaterialHandler",
    "Operation",
    "PayloadType",
    "RotationPolicy",
    "SymmetricHandler",
    "WrappedKey",
    "data_key_id",
    "default_handlers",
    "open_sealed_export",
    "parse_header",
    "unwrap_rfc5649_export",
]
