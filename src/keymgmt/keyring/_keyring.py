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
"""

from __future__ import annotations

import itertools
import os
import struct
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keymgmt import _codec
from keymgmt._random import Randomness, SystemRandomness
from keymgmt._secret import SecretBytes
from keymgmt._xaes import XAES256GCM
from keymgmt.errors import (
    ConflictError,
    IntegrityError,
    InvalidArgumentError,
    StoreUnavailableError,
)
from keymgmt.keyring._sources import MasterKey, MasterKeySource
from keymgmt.storage import Backend, Put, Record

__all__ = ["KEYRING_RECORD", "PREFIX_SEALS", "Keyring", "record_aad"]

#: Where the keyring lives in the store: (kind, name).
KEYRING_RECORD: Final = ("meta", "keyring")
_FORMAT: Final = 1
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
    ) -> None:
        self._backend = backend
        self._randomness = randomness
        self._keys = {key_id: SecretBytes(key) for key_id, key in store_keys.items()}
        self._aeads = {key_id: AESGCM(key) for key_id, key in store_keys.items()}
        self._xaes = {key_id: XAES256GCM(key) for key_id, key in store_keys.items()}
        self._active = active
        self._header = _HEADER.pack(_XAES_VERSION, active)
        # Nonces straight from the OS for the system source (its token_bytes
        # only adds an argument check); any other source is asked as given.
        self._nonce: Callable[[int], bytes] = (
            os.urandom if type(randomness) is SystemRandomness else randomness.token_bytes
        )
        self._revision = record.revision
        self._lock = threading.Lock()
        self._prefix_seals = PREFIX_SEALS
        # (key id, prefix) -> derived AES-256-GCM key, for unsealing.
        self._subkeys: dict[tuple[int, bytes], AESGCM] = {}
        # The sealing state, swapped as one tuple: header + prefix, its
        # derived key, and the counter of seals made under it.
        self._sealing = self._new_prefix()

    def __repr__(self) -> str:
        return f"Keyring(store_key_id={self._active})"

    def __reduce__(self) -> Any:
        raise TypeError("keyrings cannot be pickled")

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
        return cls(backend, randomness, {1: store_key}, 1, record)

    @classmethod
    def open(cls, backend: Backend, source: MasterKeySource, randomness: Randomness) -> Keyring:
        """Unwrap the store key with the master key.

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
        parameters, wrapped, active = cls._decode(record)
        master = source.open(parameters)
        keys = {
            key_id: master.unwrap(blob, _wrap_aad(parameters, key_id))
            for key_id, blob in wrapped.items()
        }
        if any(len(key) != 32 for key in keys.values()):
            raise IntegrityError("the store's keyring record is damaged")
        return cls(backend, randomness, keys, active, record)

    @staticmethod
    def _encode(
        parameters: Mapping[str, Any], master: MasterKey, keys: dict[int, bytes], active: int
    ) -> bytes:
        wrapped = {
            str(key_id): _codec.b64e(master.wrap(key, _wrap_aad(parameters, key_id)))
            for key_id, key in keys.items()
        }
        return _codec.dumps(
            {"format": _FORMAT, "parameters": dict(parameters), "keys": wrapped, "active": active}
        )

    @staticmethod
    def _decode(record: Record) -> tuple[dict[str, Any], dict[int, bytes], int]:
        value = _codec.loads(record.data)
        try:
            if value["format"] != _FORMAT:
                raise IntegrityError(f"unknown keyring format {value['format']!r}")
            parameters = dict(value["parameters"])
            wrapped = {int(k): _codec.b64d(v) for k, v in value["keys"].items()}
            active = int(value["active"])
            _codec.dumps(parameters)  # what _wrap_aad binds: no NaN, no lone surrogate
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            OverflowError,
            InvalidArgumentError,
        ):
            raise IntegrityError("the store's keyring record is damaged") from None
        if active not in wrapped:
            raise IntegrityError("the store's keyring record is damaged")
        return parameters, wrapped, active

    # -- master key change -----------------------------------------------------

    def change_master_key(self, new_source: MasterKeySource) -> None:
        """Re-wrap the store key under a new master key (new passphrase, file, HSM).

        No record is re-encrypted. Atomic: on any failure the old master key
        still opens the store. Not audited by itself:
        :meth:`keymgmt.KeyManager.change_master_key` does this and appends
        the audit entry in the same write.

        Raises:
            ConflictError: another process changed the keyring meanwhile.
            InvalidArgumentError: ``new_source`` is not a master key source.
        """
        _check_source(new_source)
        parameters, master = new_source.create(self._randomness)
        put = self.prepare_master_key_change(parameters, master)
        self._backend.commit([put])
        self.master_key_changed(put)

    def prepare_master_key_change(self, parameters: Mapping[str, Any], master: MasterKey) -> Put:
        """The write that re-wraps the store key under ``master`` (not applied yet).

        For :class:`~keymgmt._store.Store`, which commits it together with an
        audit entry; call :meth:`master_key_changed` once it has committed.

        Raises:
            ConflictError: the keyring record changed since this keyring was
                opened (another process changed the master key; reopen).
        """
        with self._lock:
            revision = self._revision
        current = self._backend.get(*KEYRING_RECORD)
        if current is None or current.revision != revision:
            raise ConflictError(
                "the master key was changed elsewhere since this store was opened; reopen it",
                kind=KEYRING_RECORD[0],
                name=KEYRING_RECORD[1],
            )
        keys = {key_id: key.reveal() for key_id, key in self._keys.items()}
        data = self._encode(parameters, master, keys, self._active)
        return Put(*KEYRING_RECORD, data, expected=current.revision)

    def master_key_changed(self, put: Put) -> None:
        """Note that ``put`` (from :meth:`prepare_master_key_change`) has committed."""
        with self._lock:
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

        Raises:
            IntegrityError: the value was edited, truncated or belongs to
                another record.
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
