"""Unencrypted private keys. You almost certainly want :mod:`keymgmt.pem` instead.

Everything here writes a private key in the clear, which anyone who can read
the bytes (a backup, a log, a core dump, a misconfigured bucket) can then
use. keymgmt's safe paths keep private keys sealed in the store or encrypted
under a passphrase (:func:`keymgmt.pem.write_private_key_pem`). These
functions exist for the seed's behaviour and for tools that cannot read an
encrypted key; each refuses to run unless called with
``allow_plaintext=True``, so every use is explicit and greppable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from keymgmt.errors import InvalidArgumentError
from keymgmt.keys._asymmetric import (
    PrivateKey,
    XWingPrivateKey,
    algorithm_of_private,
    pem_armor,
)
from keymgmt.pem import (
    _check_key_file_paths,
    _managed_private_key,
    write_key_file,
    write_public_key_pem,
)

if TYPE_CHECKING:
    from keymgmt._manager import KeyManager
    from keymgmt.keys import KeyStore

__all__ = [
    "export_private_key_pem_unencrypted",
    "generate_rsa_key_files_unencrypted",
    "private_key_pem_unencrypted",
    "write_private_key_pem_unencrypted",
]


def _require_opt_in(allow_plaintext: bool) -> None:
    if allow_plaintext is not True:
        raise InvalidArgumentError(
            "this writes a private key in the clear; pass allow_plaintext=True if you mean it "
            "(or use keymgmt.pem to write it encrypted)"
        )


def private_key_pem_unencrypted(private_key: PrivateKey, *, allow_plaintext: bool = False) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``).

    For an ML-KEM-768+X25519 key, which has no PKCS#8 form, the PEM block
    ``KEYMGMT ML-KEM-768-X25519 PRIVATE KEY`` holds its 32-byte seed.

    Raises:
        InvalidArgumentError: ``allow_plaintext`` is not ``True``.
        UnsupportedAlgorithmError: not a private key keymgmt manages.
    """
    _require_opt_in(allow_plaintext)
    algorithm_of_private(private_key)  # a private key keymgmt manages (typed error otherwise)
    if isinstance(private_key, XWingPrivateKey):
        return pem_armor("KEYMGMT ML-KEM-768-X25519 PRIVATE KEY", private_key.seed.reveal())
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private_key_pem_unencrypted(
    path: str | os.PathLike[str],
    private_key: PrivateKey,
    *,
    allow_plaintext: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write :func:`private_key_pem_unencrypted` to a 0600 file, atomically.

    Raises:
        InvalidArgumentError: ``allow_plaintext`` is not ``True``.
        AlreadyExistsError: the file exists and ``overwrite`` is false.
        StoreError: the file system refused.
    """
    pem = private_key_pem_unencrypted(private_key, allow_plaintext=allow_plaintext)
    return write_key_file(path, pem, overwrite=overwrite)


def generate_rsa_key_files_unencrypted(
    private_path: str | os.PathLike[str] = "private_key.pem",
    public_path: str | os.PathLike[str] = "public_key.pem",
    *,
    allow_plaintext: bool = False,
    key_size: int = 2048,
    overwrite: bool = False,
) -> rsa.RSAPrivateKey:
    """Exactly the seed's ``generate_asymmetric_keys``: the private key in the clear.

    The private key file is still written 0600 and atomically.

    Raises:
        InvalidArgumentError: ``allow_plaintext`` is not ``True``, a bad
            ``key_size``, or a path that is not a str or path.
        AlreadyExistsError: a file exists and ``overwrite`` is false (nothing written).
        StoreError: the file system refused.
    """
    _require_opt_in(allow_plaintext)
    if key_size not in (2048, 3072, 4096):
        raise InvalidArgumentError("RSA key_size must be 2048, 3072 or 4096", key_size=key_size)
    _check_key_file_paths((private_path, public_path), overwrite=overwrite)
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    write_private_key_pem_unencrypted(
        private_path, key, allow_plaintext=allow_plaintext, overwrite=overwrite
    )
    write_public_key_pem(public_path, key.public_key(), overwrite=overwrite)
    return key


def export_private_key_pem_unencrypted(
    keys: KeyManager | KeyStore,
    name: str,
    version: int | None = None,
    *,
    allow_plaintext: bool = False,
) -> bytes:
    """A managed key pair's private half as unencrypted PKCS#8 PEM.

    Prefer :func:`keymgmt.pem.export_private_key_pem` (encrypted). Audited
    as ``key.export-plaintext-pem``.

    Raises:
        InvalidArgumentError: ``allow_plaintext`` is not ``True`` (nothing is
            read), or ``keys`` is not a KeyManager or its ``km.keys``.
        KeyNotFoundError: no such key or version.
        KeyUsageError: a symmetric key.
        UnsupportedAlgorithmError: an ML-KEM-768+X25519 key.
        KeyStateError: the version is pre-active, compromised or destroyed.
    """
    _require_opt_in(allow_plaintext)
    private = _managed_private_key(keys, name, version, "key.export-plaintext-pem")
    return private_key_pem_unencrypted(private, allow_plaintext=True)
