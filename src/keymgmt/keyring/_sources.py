"""Where the master key comes from: a passphrase, key bytes, a key file.

A :class:`MasterKeySource` never stores itself in the store. On a new store it
chooses its parameters (for a passphrase: a random salt and the Argon2id
cost) and returns a :class:`MasterKey`; on an existing store it is given the
parameters recorded there. A :class:`MasterKey` wraps and unwraps the store
key; it is the only object that ever holds the master secret.

The PKCS#11 source (master key inside an HSM) lives in
:mod:`keymgmt.keyring.pkcs11` and is imported only when used.
"""

from __future__ import annotations

import contextlib
import enum
import os
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from keymgmt._codec import b64d, b64e
from keymgmt._random import Randomness
from keymgmt._secret import SecretBytes
from keymgmt.errors import (
    IntegrityError,
    InvalidArgumentError,
    StoreUnavailableError,
    WrongPassphraseError,
)

__all__ = [
    "KdfProfile",
    "KeyFile",
    "MasterKey",
    "MasterKeySource",
    "Passphrase",
    "RawMasterKey",
]

_NONCE: Final = 12
MASTER_KEY_BYTES: Final = 32


@runtime_checkable
class MasterKey(Protocol):
    """Wraps and unwraps the store key. Holds the master secret."""

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        """Encrypt ``key`` under the master key, binding ``aad``."""
        ...

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """Decrypt a wrapped key.

        Raises:
            WrongPassphraseError: this master key did not wrap it.
        """
        ...


@runtime_checkable
class MasterKeySource(Protocol):
    """Makes the :class:`MasterKey` for a new or an existing store."""

    def create(self, randomness: Randomness) -> tuple[Mapping[str, Any], MasterKey]:
        """For a new store: choose parameters; return them (to be stored) and the key."""
        ...

    def open(self, parameters: Mapping[str, Any]) -> MasterKey:
        """For an existing store: rebuild the key from the stored parameters.

        Raises:
            WrongPassphraseError: the parameters are for another kind of source.
        """
        ...


class _AeadMasterKey:
    """A master key held in memory, wrapping with AES-256-GCM."""

    def __init__(self, key: bytes, randomness: Randomness | None = None) -> None:
        self._aead = AESGCM(key)
        self._randomness = randomness

    def __repr__(self) -> str:
        return "MasterKey(<redacted>)"

    def __reduce__(self) -> Any:
        raise TypeError("master keys cannot be pickled")

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        nonce = self._randomness.token_bytes(_NONCE) if self._randomness else os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, key, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], aad)
        except (InvalidTag, ValueError):
            raise WrongPassphraseError(
                "the master key does not open this store (wrong passphrase or key file?)"
            ) from None


class KdfProfile(enum.Enum):
    """Argon2id cost presets (RFC 9106). Stored with the store when it is created."""

    #: RFC 9106's second recommended option: t=3, 64 MiB, 4 lanes (~0.15 s here).
    MODERATE = (3, 64 * 1024, 4)
    #: For unattended servers that restart rarely: t=4, 256 MiB, 4 lanes.
    SENSITIVE = (4, 256 * 1024, 4)
    #: INSECURE. Cheap parameters so test suites run fast. Never for real data.
    TESTING_ONLY_INSECURE = (1, 8, 1)

    @property
    def iterations(self) -> int:
        """Argon2id passes."""
        return self.value[0]

    @property
    def memory_kib(self) -> int:
        """Argon2id memory in KiB."""
        return self.value[1]

    @property
    def lanes(self) -> int:
        """Argon2id parallelism."""
        return self.value[2]


# Stored parameters are attacker-controlled input: bound them so an edited
# store cannot make open() allocate terabytes or spin for hours.
_MAX_MEMORY_KIB: Final = 4 * 1024 * 1024
_MAX_ITERATIONS: Final = 64
_MAX_LANES: Final = 64


def _to_secret(value: str | bytes | SecretBytes) -> SecretBytes:
    if isinstance(value, SecretBytes):
        return value
    if isinstance(value, str):
        try:
            return SecretBytes(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidArgumentError("text must be valid Unicode (no lone surrogates)") from None
    if isinstance(value, bytes | bytearray):
        return SecretBytes(bytes(value))
    raise InvalidArgumentError("expected str, bytes or SecretBytes")


def _passphrase(value: str | bytes | SecretBytes) -> SecretBytes:
    # The same passphrase typed on another system may arrive composed (NFC) or
    # decomposed (NFD, as macOS input methods produce): normalize text to NFC
    # (RFC 8265's OpaqueString profile) so both open the store. Bytes are taken
    # as they are.
    if isinstance(value, str):
        value = unicodedata.normalize("NFC", value)
    return _to_secret(value)


@attrs.define(repr=False)
class Passphrase:
    """Derive the master key from a passphrase with Argon2id.

    Args:
        passphrase: the passphrase (str, bytes or :class:`SecretBytes`); text
            is normalized to Unicode NFC, then encoded as UTF-8.
        profile: the cost used when a *new* store is created; an existing
            store always uses the parameters recorded in it.
    """

    _secret: SecretBytes = attrs.field(converter=_passphrase)
    profile: KdfProfile = KdfProfile.MODERATE

    def __attrs_post_init__(self) -> None:
        if not len(self._secret):
            raise InvalidArgumentError("the passphrase is empty")
        if not isinstance(self.profile, KdfProfile):
            raise InvalidArgumentError("profile must be a KdfProfile")

    def __repr__(self) -> str:
        return f"Passphrase(<redacted>, profile={self.profile.name})"

    def __reduce__(self) -> Any:
        raise TypeError("passphrases cannot be pickled")

    def create(self, randomness: Randomness) -> tuple[Mapping[str, Any], MasterKey]:
        """Pick a fresh salt and the profile's cost; derive the key."""
        params: dict[str, Any] = {
            "type": "passphrase",
            "kdf": "argon2id",
            "salt": b64e(randomness.token_bytes(16)),
            "iterations": self.profile.iterations,
            "memory_kib": self.profile.memory_kib,
            "lanes": self.profile.lanes,
        }
        if self.profile is KdfProfile.TESTING_ONLY_INSECURE:
            params["profile"] = "testing-only-insecure"
        return params, self._derive(params, randomness)

    def open(self, parameters: Mapping[str, Any]) -> MasterKey:
        """Derive the key with the stored salt and cost.

        Raises:
            WrongPassphraseError: the store's master key is not a passphrase.
            IntegrityError: the stored parameters are damaged or out of range.
        """
        return self._derive(parameters, None)

    def _derive(self, parameters: Mapping[str, Any], randomness: Randomness | None) -> MasterKey:
        if parameters.get("type") != "passphrase" or parameters.get("kdf") != "argon2id":
            raise WrongPassphraseError(
                f"this store's master key is a {parameters.get('type')!r}, not a passphrase"
            )
        try:
            salt = b64d(str(parameters["salt"]))
            iterations = int(parameters["iterations"])
            memory = int(parameters["memory_kib"])
            lanes = int(parameters["lanes"])
        except (KeyError, TypeError, ValueError, OverflowError, IntegrityError):
            raise IntegrityError("the store's key derivation parameters are damaged") from None
        if not (
            len(salt) >= 16
            and 1 <= iterations <= _MAX_ITERATIONS
            and 1 <= lanes <= _MAX_LANES
            and 8 * lanes <= memory <= _MAX_MEMORY_KIB
        ):
            raise IntegrityError("the store's key derivation parameters are out of range")
        kdf = Argon2id(
            salt=salt,
            length=MASTER_KEY_BYTES,
            iterations=iterations,
            lanes=lanes,
            memory_cost=memory,
        )
        return _AeadMasterKey(kdf.derive(self._secret.reveal()), randomness)


@attrs.define(repr=False)
class RawMasterKey:
    """A 32-byte master key given directly (from a secrets manager, say)."""

    _key: SecretBytes = attrs.field(converter=_to_secret)

    def __attrs_post_init__(self) -> None:
        if len(self._key) != MASTER_KEY_BYTES:
            raise InvalidArgumentError(f"a master key is {MASTER_KEY_BYTES} bytes")

    def __repr__(self) -> str:
        return "RawMasterKey(<redacted>)"

    def __reduce__(self) -> Any:
        raise TypeError("master keys cannot be pickled")

    def create(self, randomness: Randomness) -> tuple[Mapping[str, Any], MasterKey]:
        """No parameters beyond the type."""
        return {"type": "key"}, _AeadMasterKey(self._key.reveal(), randomness)

    def open(self, parameters: Mapping[str, Any]) -> MasterKey:
        """Use the key as it is."""
        if parameters.get("type") != "key":
            raise WrongPassphraseError(
                f"this store's master key is a {parameters.get('type')!r}, not a raw key"
            )
        return _AeadMasterKey(self._key.reveal())


def _check_path(path: object) -> None:
    if not isinstance(path, str | os.PathLike):
        raise InvalidArgumentError(f"a key file path is a str or a path, not {type(path).__name__}")


# A key file holds 32 bytes or their base64 text, perhaps with whitespace.
_MAX_KEY_FILE: Final = 4096


class KeyFile(RawMasterKey):
    """A master key read from a file: 32 raw bytes or their base64 text.

    :meth:`generate` writes a new key file with mode 0600.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        _check_path(path)
        try:
            with Path(path).open("rb") as handle:
                # Bounded: a path to a device such as /dev/urandom never ends.
                data = handle.read(_MAX_KEY_FILE + 1)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot read key file {path}: {exc.strerror}") from None
        if len(data) > _MAX_KEY_FILE:
            data = b""  # refused below
        elif len(data) != MASTER_KEY_BYTES:
            try:
                data = b64d(data.strip().decode("ascii"))
            except (IntegrityError, UnicodeDecodeError):
                data = b""
        if len(data) != MASTER_KEY_BYTES:
            raise InvalidArgumentError(
                f"key file {path} must hold {MASTER_KEY_BYTES} bytes (raw or base64)"
            )
        super().__init__(data)

    def __repr__(self) -> str:
        return "KeyFile(<redacted>)"

    @staticmethod
    def generate(path: str | os.PathLike[str], randomness: Randomness | None = None) -> KeyFile:
        """Write a new random key file (mode 0600, refuses to overwrite).

        The file and its directory entry are synced to disk before this
        returns: a store re-wrapped under the key (``change_master_key``)
        must not outlive its key file in a crash.

        Raises:
            AlreadyExistsError: the file exists.
            StoreUnavailableError: the file cannot be written (nothing is left behind).
        """
        from keymgmt.errors import AlreadyExistsError

        _check_path(path)
        key = randomness.token_bytes(MASTER_KEY_BYTES) if randomness else os.urandom(32)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            raise AlreadyExistsError(f"key file {path} exists already") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write((b64e(key) + "\n").encode())
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            Path(path).unlink(missing_ok=True)  # never a partial key file
            raise StoreUnavailableError(f"cannot write key file {path}: {exc.strerror}") from None
        with contextlib.suppress(OSError):  # the entry too (best effort: not every FS can)
            directory = os.open(Path(path).parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        return KeyFile(path)
