"""Frozen value types that cross keymgmt's public boundary.

Everything here is metadata: names, versions, states, dates, counters. None
of these types ever holds key material, except :class:`DataKey`, whose
plaintext half is a :class:`~keymgmt.SecretBytes` (redacted repr, no
pickling).
"""

from __future__ import annotations

import datetime as _dt
import enum
from typing import Any

import attrs

from keymgmt._secret import SecretBytes
from keymgmt.algorithms import Algorithm, KeyKind, KeyUsage

__all__ = [
    "DataKey",
    "KeyInfo",
    "KeyState",
    "KeyVersionInfo",
    "RotationPolicy",
    "WrappedKey",
]


class KeyState(enum.StrEnum):
    """The lifecycle state of one key version (NIST SP 800-57 Part 1, section 7).

    * ``pre-active`` — generated, not yet to be used (activation date ahead).
    * ``active`` — may protect (encrypt, sign) and process (decrypt, verify).
    * ``suspended`` — temporarily out of use for protection; may still process.
    * ``deactivated`` — past its protection period: process only (decrypt-only).
    * ``compromised`` — in someone else's hands: never protects; processes only
      when the caller explicitly allows compromised keys (to migrate data).
    * ``destroyed`` / ``destroyed-compromised`` — the material is gone; only
      the metadata remains so errors can say what happened.

    The allowed transitions live in one table in :mod:`keymgmt.keys`.
    """

    PRE_ACTIVE = "pre-active"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    COMPROMISED = "compromised"
    DESTROYED = "destroyed"
    DESTROYED_COMPROMISED = "destroyed-compromised"

    @property
    def is_destroyed(self) -> bool:
        """Whether the material is gone."""
        return self in (KeyState.DESTROYED, KeyState.DESTROYED_COMPROMISED)


@attrs.frozen(kw_only=True)
class RotationPolicy:
    """When a key rotates by itself.

    Args:
        rotation_period: rotate when the primary version is this old (None: never by age).
        rotate_after_uses: rotate when the primary version has protected this
            many messages. Never above the algorithm's hard usage limit
            (2**31 for random-nonce AEADs); None means that hard limit.
    """

    rotation_period: _dt.timedelta | None = None
    rotate_after_uses: int | None = None


@attrs.frozen(kw_only=True)
class KeyVersionInfo:
    """Metadata of one key version. Never material."""

    key_name: str
    version: int
    algorithm: Algorithm
    state: KeyState
    created_at: _dt.datetime
    activation_date: _dt.datetime
    state_changed_at: _dt.datetime
    is_primary: bool
    uses: int
    imported: bool = False
    revocation_reason: str | None = None
    destroy_at: _dt.datetime | None = None
    destroyed_at: _dt.datetime | None = None

    @property
    def subject(self) -> str:
        """The revocation subject of this version: ``"name#version"``."""
        return f"{self.key_name}#{self.version}"

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)


@attrs.frozen(kw_only=True)
class KeyInfo:
    """Metadata of one named key and its versions. Never material."""

    name: str
    key_id: str
    algorithm: Algorithm
    kind: KeyKind
    usage: KeyUsage
    created_at: _dt.datetime
    primary_version: int
    policy: RotationPolicy
    expiry_date: _dt.datetime | None
    imported: bool
    versions: tuple[KeyVersionInfo, ...]

    @property
    def primary(self) -> KeyVersionInfo:
        """The version new protection uses."""
        return next(v for v in self.versions if v.version == self.primary_version)

    def version(self, number: int) -> KeyVersionInfo | None:
        """The version numbered ``number``, or None."""
        return next((v for v in self.versions if v.version == number), None)

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)


@attrs.frozen(kw_only=True)
class DataKey:
    """A fresh data key for envelope encryption: use ``plaintext``, store ``wrapped``.

    ``wrapped`` is a keymgmt ciphertext of the data key under ``key_name``
    version ``key_version``; :meth:`keymgmt.KeyManager.decrypt_data_key`
    returns the plaintext again given the same context.
    """

    plaintext: SecretBytes = attrs.field(repr=False)
    wrapped: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    key_name: str
    key_version: int

    @property
    def id(self) -> str:
        """The data key's id (32 hex digits), as compromise reports list it.

        A hash of ``wrapped`` (:func:`keymgmt.keys.data_key_id`): computable
        later from the stored wrapped key; it reveals nothing about the key.
        """
        from keymgmt.keys._datakeys import data_key_id

        return data_key_id(self.wrapped)


@attrs.frozen(kw_only=True)
class WrappedKey:
    """A key version exported for a recipient: the material, wrapped.

    ``method`` is ``"rfc5649"`` (AES key wrap with padding under a
    key-encryption key) or ``"hpke-x25519"`` (RFC 9180 base mode: DHKEM
    X25519, HKDF-SHA256, AES-256-GCM, with ``info`` naming the key). The
    wrapped material is the raw key for symmetric algorithms and PKCS#8 DER
    for key pairs.
    """

    key_name: str
    version: int
    algorithm: Algorithm
    method: str
    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
