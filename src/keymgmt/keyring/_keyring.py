"""Sealing: every stored secret is AEAD-encrypted under the store key.

Two keys, so changing the master key is cheap::

    master key (passphrase/Argon2id, key file, HSM)
        └── wraps ──> store key (random, 256-bit, in the "keyring" record)
                          └── seals ──> every record

Changing the passphrase re-wraps the store key only; no record is
re-encrypted. The keyring record itself is not sealed (it cannot be: it holds
what unseals), but the wrapped store key is authenticated together with the
record's parameters, so editing them makes opening fail.

Sealed value format (all integers big-endian)::

    0x02 | store key id (4) | nonce (24) | XAES-256-GCM ciphertext+tag

XAES-256-GCM (:mod:`keymgmt._xaes`, C2SP) takes 192-bit nonces, so the
store key has no practical seal limit: with AES-256-GCM's random 96-bit
nonces NIST SP 800-38D allows 2^32 seals per key, which a busy store (one
seal per KDC grant, certificate and audit head) could reach. XAES derives an
AES-256-GCM key from the store key and the nonce's first 12 bytes; a keyring
keeps one random prefix for up to :data:`PREFIX_SEALS` seals (counted in
memory, exactly, per keyring object) and then draws a new one, so sealing
costs one AES-256-GCM call, as before, and every value is still a standard
XAES-256-GCM ciphertext under the store key with a random second half.
Unsealing derives the prefix's key once and remembers it (a bounded cache).

Values sealed before (format ``0x01 | store key id (4) | nonce (12) |
AES-256-GCM ciphertext+tag``, straight under the store key) are still
read; they are re-sealed in the new format whenever their record is
written again.

The associated data names the record: ``b"keymgmt/seal/v1" 0 kind 0 name``
(both formats). A sealed value moved to another record, or any flipped
byte, fails to unseal with :class:`~keymgmt.errors.IntegrityError`.

Store key rotation
------------------

A store may hold several store keys; the **current** one (always the one
with the highest id) seals, every other one only unseals, by the id in the
sealed value's header. :meth:`Keyring.prepare_rotation` adds a key (id + 1)
wrapped under the master key and makes it current;
:meth:`Keyring.prepare_retirement` removes an old key's wrapped copy once no
record uses it (:mod:`keymgmt.keyring._rotation` checks that and re-seals).
The keyring record (``meta/keyring``)::

    {"format": 1, "parameters": {...}, "keys": {"1": wrapped}, "active": 1}
    {"format": 2, "parameters": {...}, "keys": {"<id>": wrapped, ...},
     "active": <highest id>, "rotated": <micros>, "mac": HMAC-SHA-256(K, manifest)}

Format 1 is what a never-rotated store holds (exactly key 1), so older
keymgmt versions still open it. Each wrapped key is bound to the
parameters and its id by the master key's wrap; format 2 adds a MAC over
``{"active", "format", "keys": [ids], "parameters", "rotated"}`` (canonical
JSON; ``rotated`` is when the current key became current) under
``K = HKDF-SHA-256(current store key, info="keymgmt/keyring-manifest/v1")``,
so someone who can write the database but knows only an *old* store key
(the reason to rotate) can neither point new seals back at it nor put a
retired key's wrapped copy back (both change the manifest, and the current
key is the highest id, which he cannot forge a wrap of). Putting back the
whole record from before the rotation remains possible (see the limits in
``docs/storage.md``); records sealed under the newer key then fail loudly.

A keyring keeps its master key object (for a passphrase the Argon2id
output, for an HSM a handle to the token key) so that it can unwrap store
keys another process rotated in (:meth:`Keyring.refresh`, called when the
store sees ``meta/keyring`` change, when a value names a newer key id, and
when a commit finds the record changed).

Every store commit that seals checks the keyring record's revision as it
was before its first seal (:class:`~keymgmt._store.Txn`): a transaction
that sealed under keys rotated or retired meanwhile conflicts, the keyring
refreshes, and the transaction runs again under the keys as they are. So
nothing is ever committed under a key retired before the commit, and a
process that has not seen a rotation yet seals its next write under the
new key all the same.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import itertools
import os
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keymgmt import _codec
from keymgmt._random import Randomness, SystemRandomness
from keymgmt._secret import SecretBytes
from keymgmt._xaes import XAES256GCM
from keymgmt.errors import (
    ConflictError,
    IntegrityError,
    InvalidArgumentError,
    KeyStateError,
    NotFoundError,
    StoreUnavailableError,
    WrongPassphraseError,
)
from keymgmt.keyring._sources import MasterKey, MasterKeySource
from keymgmt.storage import Backend, Put, Record

__all__ = ["KEYRING_RECORD", "PREFIX_SEALS", "Keyring", "KeyringChange", "record_aad"]

#: Where the keyring lives in the store: (kind, name).
KEYRING_RECORD: Final = ("meta", "keyring")
_FORMAT: Final = 1  # exactly store key 1, never rotated: what older versions read
_ROTATED_FORMAT: Final = 2  # any other key set, with the manifest MAC
_MANIFEST_INFO: Final = b"keymgmt/keyring-manifest/v1"
_MAX_KEY_ID: Final = 2**32 - 1  # the sealed header holds 4 bytes
_GCM_VERSION: Final = 1  # read only: AES-256-GCM under the store key
_XAES_VERSION: Final = 2  # written: XAES-256-GCM under the store key
_HEADER: Final = struct.Struct(">BI")
_NONCE: Final = 12
_GCM_OVERHEAD: Final = _HEADER.size + _NONCE + 16
_XAES_NONCE: Final = XAES256GCM.NONCE_SIZE
_XAES_OVERHEAD: Final = _HEADER.size + _XAES_NONCE + 16
#: Seals under one XAES nonce prefix (one derived AES-256-GCM key with random
#: 96-bit nonces) before a keyring draws a new prefix: 2^31, half NIST SP
#: 800-38D's 2^32 limit for random nonces.
PREFIX_SEALS: Final = 2**31
#: The sealing state: header + nonce prefix, its derived key, its seal
#: counter, and the process that drew it.
_Sealing = tuple[bytes, AESGCM, Iterator[int], int]
# Derived keys remembered for unsealing (prefixes of this and other processes).
_SUBKEY_CACHE: Final = 256


_AAD_PREFIX: Final = b"keymgmt/seal/v1\x00"
# ``_AAD_PREFIX + kind + NUL`` per checked kind: kinds are few (a part uses a
# handful), names are many and mostly new (one per certificate, grant, ...).
_KIND_PREFIXES: dict[str, bytes] = {}
_MAX_KINDS: Final = 1024


def _invalid(kind: object, name: object) -> InvalidArgumentError:
    """The error :func:`record_aad` raises for a kind or name it refuses."""
    if not isinstance(kind, str) or not isinstance(name, str) or not kind or not name:
        return InvalidArgumentError("record kinds and names are non-empty strings")
    if "\x00" in kind or "\x00" in name:
        return InvalidArgumentError("record kinds and names may not contain NUL")
    return InvalidArgumentError("record kinds and names must be valid Unicode (no lone surrogates)")


def _kind_prefix(kind: str) -> bytes | None:
    """``_AAD_PREFIX + kind + NUL`` (remembered), or None for a bad kind."""
    if not kind or "\x00" in kind:
        return None
    try:
        prefix = _AAD_PREFIX + kind.encode() + b"\x00"
    except UnicodeEncodeError:
        return None
    if type(kind) is str:  # a str subclass could hash and compare its own way
        if len(_KIND_PREFIXES) >= _MAX_KINDS:  # bounded, whatever callers pass
            _KIND_PREFIXES.clear()
        _KIND_PREFIXES[kind] = prefix
    return prefix


def record_aad(kind: str, name: str) -> bytes:
    """The associated data that binds a sealed value to its record.

    ``b"keymgmt/seal/v1" 0 kind 0 name`` (UTF-8).

    Raises:
        InvalidArgumentError: ``kind`` or ``name`` is empty, not a string,
            holds NUL or is not valid Unicode.
    """
    prefix = _KIND_PREFIXES.get(kind) if type(kind) is str else None
    if prefix is None:
        if not isinstance(kind, str) or not isinstance(name, str):
            raise _invalid(kind, name)
        prefix = _kind_prefix(kind)
        if prefix is None:
            raise _invalid(kind, name)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise _invalid(kind, name)
    try:
        return prefix + name.encode()
    except UnicodeEncodeError:
        raise _invalid(kind, name) from None


def _check_source(source: object) -> None:
    """Refuse what is not a :class:`MasterKeySource` (a bare passphrase string, say)."""
    if not isinstance(source, MasterKeySource):
        raise InvalidArgumentError(
            "the master key must be a Passphrase, KeyFile, RawMasterKey or Pkcs11Key"
        )


def _wrap_aad(parameters: Mapping[str, Any], key_id: int) -> bytes:
    return b"keymgmt/store-key/v1\x00" + _codec.dumps(
        {"parameters": dict(parameters), "key_id": key_id}
    )


def _manifest_mac(
    store_key: bytes,
    parameters: Mapping[str, Any],
    key_ids: Iterable[int],
    active: int,
    rotated: int | None,
) -> bytes:
    """The format-2 keyring record's MAC (see the module docstring)."""
    mac_key = HKDF(hashes.SHA256(), 32, salt=None, info=_MANIFEST_INFO).derive(store_key)
    manifest = _codec.dumps(
        {
            "active": active,
            "format": _ROTATED_FORMAT,
            "keys": sorted(key_ids),
            "parameters": dict(parameters),
            "rotated": rotated,
        }
    )
    return hmac.new(mac_key, manifest, hashlib.sha256).digest()


def _damaged() -> IntegrityError:
    return IntegrityError("the store's keyring record is damaged")


def key_id_of(sealed: bytes) -> int | None:
    """The store key id a sealed value names in its header, or None if it is not one.

    Reads the clear header only (``0x01``/``0x02`` | key id): nothing is
    unsealed, so counting which key a record uses costs no decryption.
    """
    if len(sealed) < _GCM_OVERHEAD or sealed[0] not in (_GCM_VERSION, _XAES_VERSION):
        return None
    key_id: int = _HEADER.unpack_from(sealed)[1]
    return key_id


@attrs.frozen
class _Decoded:
    """A parsed keyring record (nothing unwrapped yet)."""

    format: int
    parameters: dict[str, Any]
    wrapped: dict[int, bytes] = attrs.field(repr=False)
    active: int
    mac: bytes | None = attrs.field(repr=False)
    revision: int
    rotated: int | None = None


@attrs.frozen
class KeyringChange:
    """A keyring write prepared but not applied: the record and the state it leads to.

    Made by :meth:`Keyring.prepare_rotation` and
    :meth:`Keyring.prepare_retirement`; the store commits :attr:`put` with an
    audit entry, then hands it to :meth:`Keyring.apply`. Holds store keys:
    its repr shows ids only, and it cannot be pickled.
    """

    put: Put
    keys: Mapping[int, SecretBytes] = attrs.field(repr=lambda keys: repr(sorted(keys)))
    active: int
    parameters: Mapping[str, Any] = attrs.field(repr=False)
    master: MasterKey | None = attrs.field(repr=False)
    rotated: int | None = None

    def __reduce__(self) -> Any:
        raise TypeError("keyring changes cannot be pickled")


class Keyring:
    """Seals and unseals records under the store key.

    Build one with :meth:`initialize` (new store) or :meth:`open`.
    """

    def __init__(
        self,
        backend: Backend,
        randomness: Randomness,
        store_keys: dict[int, bytes],
        active: int,
        record: Record,
        *,
        parameters: Mapping[str, Any] | None = None,
        master: MasterKey | None = None,
        rotated: int | None = None,
    ) -> None:
        self._backend = backend
        self._randomness = randomness
        # Nonces straight from the OS for the system source (its token_bytes
        # only adds an argument check); any other source is asked as given.
        self._nonce: Callable[[int], bytes] = (
            os.urandom if type(randomness) is SystemRandomness else randomness.token_bytes
        )
        self._lock = threading.Lock()
        # Serializes refresh/apply (they read the backend, unwrap, then swap state).
        self._state_lock = threading.RLock()
        self._prefix_seals = PREFIX_SEALS
        # (key id, prefix) -> derived AES-256-GCM key, for unsealing.
        self._subkeys: dict[tuple[int, bytes], AESGCM] = {}
        # The master key this keyring opened the store with (None: it no
        # longer opens the record: another process changed the master key).
        self._master = master
        self._parameters: dict[str, Any] = dict(parameters or {})
        self._rotated: int | None = rotated
        self._revision = record.revision
        self._install({k: SecretBytes(v) for k, v in store_keys.items()}, active)

    def _install(self, keys: Mapping[int, SecretBytes], active: int) -> None:
        """Swap in a new key set (each dict replaced whole: readers never see one half-built)."""
        old: dict[int, SecretBytes] = getattr(self, "_keys", {})
        aeads: dict[int, AESGCM] = dict(getattr(self, "_aeads", {}))
        xaes: dict[int, XAES256GCM] = dict(getattr(self, "_xaes", {}))
        for key_id, key in keys.items():
            if key_id not in old:
                aeads[key_id] = AESGCM(key.reveal())
                xaes[key_id] = XAES256GCM(key.reveal())
        self._aeads = {k: v for k, v in aeads.items() if k in keys}
        self._xaes = {k: v for k, v in xaes.items() if k in keys}
        self._keys = dict(keys)
        if any(key_id not in keys for key_id in old):
            self._subkeys = {}  # a retired key unseals nothing any more
        if getattr(self, "_active", None) != active:
            self._active = active
            self._header = _HEADER.pack(_XAES_VERSION, active)
            # The sealing state, swapped as one tuple: header + prefix, its
            # derived key, and the counter of seals made under it.
            self._sealing = self._new_prefix()

    def __repr__(self) -> str:
        return f"Keyring(store_key_id={self._active})"

    def __reduce__(self) -> Any:
        raise TypeError("keyrings cannot be pickled")

    @property
    def current_key_id(self) -> int:
        """The id of the store key new seals use (the highest id)."""
        return self._active

    @property
    def key_ids(self) -> tuple[int, ...]:
        """The ids of the store keys this keyring holds, ascending."""
        return tuple(sorted(self._keys))

    @property
    def rotated_at(self) -> _dt.datetime | None:
        """When the current store key became current (None: never rotated)."""
        return None if self._rotated is None else _codec.from_micros(self._rotated)

    @property
    def revision(self) -> int:
        """The revision of ``meta/keyring`` this keyring reflects."""
        return self._revision

    # -- construction --------------------------------------------------------

    @classmethod
    def exists(cls, backend: Backend) -> bool:
        """Whether the store has been initialized."""
        return backend.get(*KEYRING_RECORD) is not None

    @classmethod
    def initialize(
        cls, backend: Backend, source: MasterKeySource, randomness: Randomness
    ) -> Keyring:
        """Create the store key, wrap it under the master key, and record it.

        Raises:
            ConflictError: the store was initialized already (by anyone).
            InvalidArgumentError: ``source`` is not a master key source.
        """
        _check_source(source)
        parameters, master = source.create(randomness)
        store_key = randomness.token_bytes(32)
        data = cls._encode(parameters, master, {1: store_key}, active=1)
        (record,) = backend.commit([Put(*KEYRING_RECORD, data, expected=0)])
        return cls(
            backend,
            randomness,
            {1: store_key},
            1,
            record,
            parameters=parameters,
            master=master,
        )

    @classmethod
    def open(cls, backend: Backend, source: MasterKeySource, randomness: Randomness) -> Keyring:
        """Unwrap the store keys with the master key.

        Raises:
            StoreUnavailableError: the store has no keyring (not initialized).
            WrongPassphraseError: the master key does not open this store.
            IntegrityError: the keyring record is damaged.
            InvalidArgumentError: ``source`` is not a master key source.
        """
        _check_source(source)
        record = backend.get(*KEYRING_RECORD)
        if record is None:
            raise StoreUnavailableError("the store is not initialized")
        decoded = cls._decode_record(record)
        master = source.open(decoded.parameters)
        keys = {
            key_id: master.unwrap(blob, _wrap_aad(decoded.parameters, key_id))
            for key_id, blob in decoded.wrapped.items()
        }
        if any(len(key) != 32 for key in keys.values()):
            raise _damaged()
        cls._check_mac(decoded, keys[decoded.active])
        return cls(
            backend,
            randomness,
            keys,
            decoded.active,
            record,
            parameters=decoded.parameters,
            master=master,
            rotated=decoded.rotated,
        )

    @staticmethod
    def _encode(
        parameters: Mapping[str, Any],
        master: MasterKey,
        keys: Mapping[int, bytes],
        active: int,
        rotated: int | None = None,
    ) -> bytes:
        wrapped = {
            key_id: master.wrap(key, _wrap_aad(parameters, key_id)) for key_id, key in keys.items()
        }
        return Keyring._encode_wrapped(parameters, wrapped, active, keys[active], rotated)

    @staticmethod
    def _encode_wrapped(
        parameters: Mapping[str, Any],
        wrapped: Mapping[int, bytes],
        active: int,
        current: bytes,
        rotated: int | None,
    ) -> bytes:
        """The record for these wrapped keys: format 1 for key 1 alone, else 2 with its MAC."""
        value: dict[str, Any] = {
            "parameters": dict(parameters),
            "keys": {str(key_id): _codec.b64e(blob) for key_id, blob in wrapped.items()},
            "active": active,
        }
        if set(wrapped) == {1}:
            value["format"] = _FORMAT
        else:
            value["format"] = _ROTATED_FORMAT
            value["rotated"] = rotated
            value["mac"] = _codec.b64e(_manifest_mac(current, parameters, wrapped, active, rotated))
        return _codec.dumps(value)

    @staticmethod
    def _decode(record: Record) -> tuple[dict[str, Any], dict[int, bytes], int]:
        decoded = Keyring._decode_record(record)
        return decoded.parameters, decoded.wrapped, decoded.active

    @staticmethod
    def _decode_record(record: Record) -> _Decoded:
        value = _codec.loads(record.data)
        try:
            version = value["format"]
            if version not in (_FORMAT, _ROTATED_FORMAT) or type(version) is not int:
                raise IntegrityError(f"unknown keyring format {version!r}")
            parameters = dict(value["parameters"])
            wrapped = {int(k): _codec.b64d(v) for k, v in value["keys"].items()}
            active = int(value["active"])
            mac = _codec.b64d(value["mac"]) if version == _ROTATED_FORMAT else None
            rotated = value.get("rotated") if version == _ROTATED_FORMAT else None
            if rotated is not None and type(rotated) is not int:
                raise TypeError("rotated")
            _codec.dumps(parameters)  # what _wrap_aad binds: no NaN, no lone surrogate
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            OverflowError,
            InvalidArgumentError,
        ):
            raise _damaged() from None
        if active not in wrapped or any(not 1 <= k <= _MAX_KEY_ID for k in wrapped):
            raise _damaged()
        if version == _FORMAT and set(wrapped) != {1}:
            raise _damaged()  # format 1 never held more (a MAC-less downgrade)
        if version == _ROTATED_FORMAT and (active != max(wrapped) or mac is None or len(mac) != 32):
            raise _damaged()
        return _Decoded(version, parameters, wrapped, active, mac, record.revision, rotated)

    @staticmethod
    def _check_mac(decoded: _Decoded, current: bytes) -> None:
        if decoded.mac is None:
            return
        expected = _manifest_mac(
            current, decoded.parameters, decoded.wrapped, decoded.active, decoded.rotated
        )
        if not hmac.compare_digest(expected, decoded.mac):
            raise IntegrityError(
                "the store's keyring record failed authentication (its key list was edited)"
            )

    # -- other processes' changes ----------------------------------------------

    def refresh(self, record: Record | None = None) -> bool:
        """Take in the keyring record as the store holds it now (or ``record``, just read).

        Store keys rotated in by another process are unwrapped with the
        master key this keyring opened the store with; keys retired there are
        forgotten here (they unseal nothing any more). Nothing happens when
        the record is at the revision this keyring reflects.

        Returns:
            Whether anything changed.

        Raises:
            StoreUnavailableError: the store's keyring is gone, or holds a
                store key wrapped under a master key this process does not
                have (the master key was changed elsewhere: reopen the store).
            IntegrityError: the keyring record is damaged or was edited.
        """
        with self._state_lock:
            if record is None:
                record = self._backend.get(*KEYRING_RECORD)
                if record is None:
                    raise StoreUnavailableError("the store's keyring record is gone")
            if record.revision == self._revision:
                return False
            decoded = self._decode_record(record)
            self._check_forward(decoded)
            master = self._master
            if master is not None:
                # Is our master key still the store's? (A raw key changed
                # elsewhere keeps the same parameters: only unwrapping tells.)
                try:
                    current = master.unwrap(
                        decoded.wrapped[decoded.active],
                        _wrap_aad(decoded.parameters, decoded.active),
                    )
                except WrongPassphraseError:
                    master = None
                else:
                    known = self._keys.get(decoded.active)
                    if known is not None and not hmac.compare_digest(known.reveal(), current):
                        raise _damaged()
            keys: dict[int, SecretBytes] = {}
            for key_id, blob in decoded.wrapped.items():
                held = self._keys.get(key_id)
                if held is not None:
                    keys[key_id] = held
                    continue
                if master is None:
                    raise StoreUnavailableError(
                        f"store key {key_id} was rotated in under a master key this process "
                        "does not hold (the master key was changed by another process); "
                        "reopen the store with the new master key",
                        key_id=key_id,
                    )
                key = master.unwrap(blob, _wrap_aad(decoded.parameters, key_id))
                if len(key) != 32:
                    raise _damaged()
                keys[key_id] = SecretBytes(key)
            self._check_mac(decoded, keys[decoded.active].reveal())
            with self._lock:
                self._master = master
                self._parameters = decoded.parameters
                self._rotated = decoded.rotated
                # Keys first, then the revision: a transaction that reads the
                # new revision (its commit's fence) seals under the new keys.
                self._install(keys, decoded.active)
                self._revision = record.revision
            return True

    def _check_forward(self, decoded: _Decoded) -> None:
        """Refuse a keyring record that went back to an earlier state (a rollback).

        Store key ids only grow: a rotation adds the next id and makes it
        current, a retirement removes an older one for good. So a record
        whose current key is older than the one this keyring seals under,
        or that holds an id below the highest held here that this keyring
        does not hold (it was retired), is an older record put back, with
        its genuine MAC. Taking it in would seal new records under a key
        rotated away (perhaps leaked: the reason to rotate) or bring a
        retired key back; a running process refuses it instead. (A process
        opening the store has no earlier state to compare: see the limits
        in ``docs/storage.md``.)

        Raises:
            IntegrityError: the record went back.
        """
        keys = self._keys
        highest = max(keys, default=0)
        if decoded.active < self._active or any(
            key_id < highest and key_id not in keys for key_id in decoded.wrapped
        ):
            raise IntegrityError(
                "the store's keyring record went back to an earlier state (a store key "
                "rotated out or retired came back); refusing it: someone wrote the "
                "database, put the current record back"
            )

    def _refresh_for(self, key_id: int) -> bool:
        """Refresh when a value names a store key newer than any held (rotated elsewhere)."""
        if not self._keys or key_id <= max(self._keys):
            return False  # an older id was retired: it never comes back
        return self.refresh()

    # -- rotation and retirement -------------------------------------------------

    def _fresh(self) -> _Decoded:
        """Refresh from the store; return its record, which this keyring now reflects."""
        record = self._backend.get(*KEYRING_RECORD)
        if record is None:
            raise StoreUnavailableError("the store's keyring record is gone")
        self.refresh(record)
        decoded = self._decode_record(record)
        # refresh() authenticates a record at a new revision only. One edited
        # in place (its revision kept) would otherwise be carried into the
        # next record, under a fresh MAC: a retired key's wrapped copy put
        # back would come back authenticated. So: the key list must be the
        # one this keyring holds, under a valid MAC.
        if set(decoded.wrapped) != set(self._keys) or decoded.active != self._active:
            raise IntegrityError(
                "the store's keyring record failed authentication (its key list was edited)"
            )
        self._check_mac(decoded, self._keys[decoded.active].reveal())
        return decoded

    def prepare_rotation(
        self,
        new_key: bytes,
        new_source: tuple[Mapping[str, Any], MasterKey] | None = None,
        *,
        at: int = 0,
    ) -> KeyringChange:
        """The write that adds ``new_key`` as the next, current store key (not applied yet).

        Old keys stay (they unseal what they sealed). Without ``new_source``
        the new key is wrapped under the master key the store was opened
        with and the other wrapped keys are kept as they are; with
        ``(parameters, master)`` (from a source's ``create``) every key is
        re-wrapped under that new master key in the same write. ``at`` is
        the time of the rotation (microseconds since the epoch, from the
        store's clock), recorded and authenticated with the key list.

        Raises:
            ConflictError: the master key was changed by another process
                since this store was opened (reopen it with the new one).
            InvalidArgumentError: ``new_key`` is not 32 bytes.
            KeyStateError: the store key ids are exhausted (2^32 - 1).
        """
        if not isinstance(new_key, bytes) or len(new_key) != 32:
            raise InvalidArgumentError("a store key is 32 bytes")
        with self._state_lock:
            decoded = self._fresh()
            new_id = max(decoded.wrapped) + 1
            if new_id > _MAX_KEY_ID:
                raise KeyStateError("store key ids are exhausted", key_id=new_id)
            keys = {**self._keys, new_id: SecretBytes(new_key)}
            if new_source is None:
                master = self._master
                if master is None:
                    raise ConflictError(
                        "the master key was changed elsewhere since this store was opened; "
                        "reopen it",
                        kind=KEYRING_RECORD[0],
                        name=KEYRING_RECORD[1],
                    )
                parameters: Mapping[str, Any] = decoded.parameters
                wrapped = dict(decoded.wrapped)
                wrapped[new_id] = master.wrap(new_key, _wrap_aad(parameters, new_id))
            else:
                parameters, master = new_source
                wrapped = {
                    key_id: master.wrap(key.reveal(), _wrap_aad(parameters, key_id))
                    for key_id, key in keys.items()
                }
            data = self._encode_wrapped(parameters, wrapped, new_id, new_key, at)
            put = Put(*KEYRING_RECORD, data, expected=decoded.revision)
            return KeyringChange(put, keys, new_id, dict(parameters), master, at)

    def prepare_retirement(self, key_id: int) -> KeyringChange:
        """The write that destroys the wrapped copy of old store key ``key_id`` (not applied yet).

        Does not check that no record uses the key: the caller does
        (:class:`keymgmt.keyring.StoreKeys`), in the same transaction.

        Raises:
            NotFoundError: the store has no store key ``key_id``.
            KeyStateError: ``key_id`` is the current store key.
        """
        with self._state_lock:
            decoded = self._fresh()
            if type(key_id) is not int or key_id not in decoded.wrapped:
                raise NotFoundError(
                    f"the store has no store key {key_id!r} (keys: "
                    f"{', '.join(map(str, sorted(decoded.wrapped)))})",
                    key_id=key_id,
                )
            if key_id == decoded.active:
                raise KeyStateError(
                    f"store key {key_id} is the current store key; rotate first "
                    "(keymgmt store rotate), then re-seal, then retire the old one",
                    key_id=key_id,
                )
            wrapped = {k: v for k, v in decoded.wrapped.items() if k != key_id}
            keys = {k: v for k, v in self._keys.items() if k != key_id}
            data = self._encode_wrapped(
                decoded.parameters,
                wrapped,
                decoded.active,
                keys[decoded.active].reveal(),
                decoded.rotated,
            )
            put = Put(*KEYRING_RECORD, data, expected=decoded.revision)
            return KeyringChange(
                put, keys, decoded.active, decoded.parameters, self._master, decoded.rotated
            )

    def apply(self, change: KeyringChange) -> None:
        """Take in ``change`` once its write has committed (this process seals under its key)."""
        with self._state_lock:
            if change.put.expected + 1 <= self._revision:
                return  # already taken in (a refresh read it back first)
            with self._lock:
                self._master = change.master
                self._parameters = dict(change.parameters)
                self._rotated = change.rotated
                self._install(change.keys, change.active)
                self._revision = change.put.expected + 1

    # -- master key change -----------------------------------------------------

    def change_master_key(self, new_source: MasterKeySource) -> None:
        """Re-wrap the store keys under a new master key (new passphrase, file, HSM).

        No record is re-encrypted. Atomic: on any failure the old master key
        still opens the store. Not audited by itself:
        :meth:`keymgmt.KeyManager.change_master_key` does this and appends
        the audit entry in the same write.

        Raises:
            ConflictError: another process changed the master key meanwhile.
            InvalidArgumentError: ``new_source`` is not a master key source.
        """
        _check_source(new_source)
        parameters, master = new_source.create(self._randomness)
        put = self.prepare_master_key_change(parameters, master)
        self._backend.commit([put])
        self.master_key_changed(put)

    def prepare_master_key_change(self, parameters: Mapping[str, Any], master: MasterKey) -> Put:
        """The write that re-wraps the store keys under ``master`` (not applied yet).

        For :class:`~keymgmt._store.Store`, which commits it together with an
        audit entry; call :meth:`master_key_changed` once it has committed.
        A store key rotation made elsewhere since this store was opened is
        taken in first (see :meth:`refresh`).

        Raises:
            ConflictError: the master key was changed elsewhere since this
                keyring was opened (reopen).
        """
        with self._state_lock:
            try:
                self._fresh()
            except StoreUnavailableError:
                self._master = None
            current = self._backend.get(*KEYRING_RECORD)
            if self._master is None or current is None or current.revision != self._revision:
                raise ConflictError(
                    "the master key was changed elsewhere since this store was opened; reopen it",
                    kind=KEYRING_RECORD[0],
                    name=KEYRING_RECORD[1],
                )
            keys = {key_id: key.reveal() for key_id, key in self._keys.items()}
            data = self._encode(parameters, master, keys, self._active, self._rotated)
            put = Put(*KEYRING_RECORD, data, expected=current.revision)
            # What master_key_changed takes in once the write has landed.
            self._pending = (put, dict(parameters), master)
            return put

    _pending: tuple[Put, dict[str, Any], MasterKey] | None = None

    def master_key_changed(self, put: Put) -> None:
        """Note that ``put`` (from :meth:`prepare_master_key_change`) has committed."""
        with self._state_lock, self._lock:
            pending = self._pending
            if pending is not None and pending[0] is put:
                self._master, self._parameters = pending[2], pending[1]
                self._pending = None
            self._revision = max(self._revision, put.expected + 1)

    # -- sealing ---------------------------------------------------------------

    def _new_prefix(self) -> _Sealing:
        """A fresh random nonce prefix: (header + prefix, its derived key, a seal counter, pid)."""
        prefix = self._nonce(_NONCE)
        return (
            self._header + prefix,
            self._xaes[self._active].subkey(prefix),
            itertools.count(),
            os.getpid(),
        )

    def _next_prefix(self, spent: _Sealing) -> tuple[bytes, AESGCM]:
        """Replace the sealing prefix ``spent`` (once, however many threads ask).

        In a forked child (the pid differs) no lock is taken: one held by a
        parent thread at the fork would never be released there, and none
        is needed for safety (each prefix counts its own seals; a redundant
        new prefix is merely never used again).
        """
        if spent[3] != os.getpid():
            fresh = self._new_prefix()
            self._sealing = fresh
            current = fresh
        else:
            with self._lock:
                if self._sealing is spent:
                    self._sealing = self._new_prefix()
                current = self._sealing
        # The new prefix's first seal is counted like any other.
        if current[3] != os.getpid() or next(current[2]) >= self._prefix_seals:
            return self._next_prefix(current)
        return current[0], current[1]

    def seal(self, kind: str, name: str, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` for the record ``(kind, name)``."""
        aad = record_aad(kind, name)
        sealing = self._sealing
        head, aead, seals, pid = sealing
        # next() on itertools.count is atomic: every seal under a prefix
        # takes its own number, so none goes past the limit. A process
        # forked after this keyring was made has a copy of the counter, so
        # it takes a prefix of its own (the counts are per process).
        if pid != os.getpid() or next(seals) >= self._prefix_seals:
            head, aead = self._next_prefix(sealing)
        nonce = self._nonce(_NONCE)
        return head + nonce + aead.encrypt(nonce, plaintext, aad)

    def unseal(self, kind: str, name: str, sealed: bytes) -> bytes:
        """Decrypt a sealed value of the record ``(kind, name)``.

        A value sealed under a store key newer than any this keyring holds
        (rotated in by another process) makes it :meth:`refresh` first.

        Raises:
            IntegrityError: the value was edited, truncated or belongs to
                another record, or names a store key the store does not
                hold (retired, or never made).
            StoreUnavailableError: it names a store key rotated in under a
                master key this process does not hold (reopen the store).
        """
        if len(sealed) < _GCM_OVERHEAD:
            raise IntegrityError(f"sealed record {kind}/{name} is truncated", kind=kind, name=name)
        version, key_id = _HEADER.unpack_from(sealed)
        aead: AESGCM | None
        if version == _XAES_VERSION:
            if len(sealed) < _XAES_OVERHEAD:
                raise IntegrityError(
                    f"sealed record {kind}/{name} is truncated", kind=kind, name=name
                )
            aead = self._subkey(key_id, bytes(sealed[_HEADER.size : _HEADER.size + _NONCE]))
            start = _HEADER.size + _NONCE
        else:
            aead = self._aeads.get(key_id) if version == _GCM_VERSION else None
            start = _HEADER.size
        if aead is None:
            if version in (_GCM_VERSION, _XAES_VERSION) and key_id not in self._keys:
                if self._refresh_for(key_id):
                    return self.unseal(kind, name, sealed)
                raise IntegrityError(
                    f"sealed record {kind}/{name} is damaged: it names store key {key_id}, "
                    "which this store does not hold (retired, or never made)",
                    kind=kind,
                    name=name,
                    key_id=key_id,
                )
            raise IntegrityError(f"sealed record {kind}/{name} is damaged", kind=kind, name=name)
        nonce = sealed[start : start + _NONCE]
        try:
            return aead.decrypt(nonce, sealed[start + _NONCE :], record_aad(kind, name))
        except InvalidTag:
            raise IntegrityError(
                f"sealed record {kind}/{name} failed authentication (edited or swapped)",
                kind=kind,
                name=name,
            ) from None

    def _subkey(self, key_id: int, prefix: bytes) -> AESGCM | None:
        """The derived key of an XAES nonce ``prefix`` under store key ``key_id`` (cached)."""
        found = self._subkeys.get((key_id, prefix))
        if found is not None:
            return found
        xaes = self._xaes.get(key_id)
        if xaes is None:
            return None
        found = xaes.subkey(prefix)
        if len(self._subkeys) >= _SUBKEY_CACHE:  # bounded, whoever sealed the values
            self._subkeys.clear()
        self._subkeys[(key_id, prefix)] = found
        return found
