"""PEM files for key pairs: the seed's RSA key files, done safely, and key import.

The seed wrote ``private_key.pem`` unencrypted. Here a private key written
to a file is **always encrypted with a passphrase**, as PKCS#8
``EncryptedPrivateKeyInfo`` (RFC 5958) with PBES2 (RFC 8018):
PBKDF2-HMAC-SHA-256 with 600,000 iterations (OWASP's 2023 figure) and a
random 16-byte salt, then AES-256-CBC with a random IV. That is stronger
than ``serialization.BestAvailableEncryption``, which gives PKCS#8 only 2,048
PBKDF2 iterations, and every PKCS#8 reader (OpenSSL, cryptography, Java, Go)
opens it: ``openssl pkey -in private_key.pem`` asks for the passphrase.

Files are written through a temporary file in the same directory, created
0600 and moved into place, so a crash never leaves half a key and the key is
never readable by others, not even briefly. An unencrypted private key file
is available only from :mod:`keymgmt.hazmat` with an explicit opt-in.

:func:`load_private_key` reads PEM or DER private keys, encrypted
(PKCS#8, or traditional OpenSSL PEM encryption) or not, and names the keymgmt
algorithm, so the key can be imported into sealed storage.
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from keymgmt._der import der_read, der_tlv
from keymgmt._secret import SecretBytes
from keymgmt.algorithms import Algorithm, KeyKind
from keymgmt.errors import (
    AlreadyExistsError,
    DecryptionError,
    InvalidArgumentError,
    KeyUsageError,
    MalformedInputError,
    StoreError,
    UnsupportedAlgorithmError,
)
from keymgmt.keys._asymmetric import (
    PrivateKey,
    PublicKey,
    PublicKeyFormat,
    XWingPrivateKey,
    algorithm_of_private,
    load_private,
    private_pkcs8,
    public_bytes,
)
from keymgmt.keys._format import require_bytes

if TYPE_CHECKING:
    from keymgmt._manager import KeyManager
    from keymgmt.keys import KeyStore

__all__ = [
    "MAX_KEY_FILE_SIZE",
    "MIN_PBKDF2_ITERATIONS",
    "encrypt_private_key_pem",
    "export_private_key_pem",
    "generate_rsa_key_files",
    "load_private_key",
    "load_private_key_file",
    "write_key_file",
    "write_private_key_pem",
    "write_public_key_pem",
]

MIN_PBKDF2_ITERATIONS: Final = 600_000
"""PBKDF2-HMAC-SHA-256 iterations for encrypted private key files (the floor)."""

Passphrase = str | bytes | SecretBytes


def _passphrase_bytes(passphrase: Passphrase) -> bytes:
    if isinstance(passphrase, SecretBytes):
        value = passphrase.reveal()
    elif isinstance(passphrase, str):
        try:
            value = passphrase.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate
            raise InvalidArgumentError("the passphrase is not valid Unicode text") from None
    elif isinstance(passphrase, bytes):
        value = passphrase
    else:
        raise InvalidArgumentError("the passphrase must be str, bytes or SecretBytes")
    if not value:
        raise InvalidArgumentError("the passphrase must not be empty")
    return value


# -- a little DER, just enough for EncryptedPrivateKeyInfo ---------------------


def _seq(*parts: bytes) -> bytes:
    return der_tlv(0x30, b"".join(parts))


def _int(value: int) -> bytes:
    return der_tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _octets(value: bytes) -> bytes:
    return der_tlv(0x04, value)


_OID_PBES2: Final = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
_OID_PBKDF2: Final = bytes.fromhex("06092a864886f70d01050c")  # 1.2.840.113549.1.5.12
_OID_HMAC_SHA256: Final = bytes.fromhex("06082a864886f70d0209")  # 1.2.840.113549.2.9
_OID_AES256_CBC: Final = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42
_NULL: Final = b"\x05\x00"


def _check_iterations(iterations: object) -> None:
    # At most what load_private_key accepts: keymgmt writes no file it refuses to read.
    if (
        not isinstance(iterations, int)
        or isinstance(iterations, bool)
        or not MIN_PBKDF2_ITERATIONS <= iterations <= MAX_KDF_ITERATIONS
    ):
        raise InvalidArgumentError(
            f"iterations must be an integer, at least {MIN_PBKDF2_ITERATIONS} and at most "
            f"{MAX_KDF_ITERATIONS} (PBKDF2)",
            iterations=iterations,
        )


def _encrypted_pkcs8(pkcs8: bytes, password: bytes, iterations: int) -> bytes:
    salt = os.urandom(16)
    iv = os.urandom(16)
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations).derive(password)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(pkcs8) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    kdf = _seq(_OID_PBKDF2, _seq(_octets(salt), _int(iterations), _seq(_OID_HMAC_SHA256, _NULL)))
    scheme = _seq(_OID_AES256_CBC, _octets(iv))
    return _seq(_seq(_OID_PBES2, _seq(kdf, scheme)), _octets(encrypted))


def encrypt_private_key_pem(
    private_key: PrivateKey,
    passphrase: Passphrase,
    *,
    iterations: int = MIN_PBKDF2_ITERATIONS,
) -> bytes:
    """Encrypt a private key as PEM ``ENCRYPTED PRIVATE KEY`` (see the module docstring).

    Args:
        private_key: the key object.
        passphrase: protects the key; must not be empty.
        iterations: PBKDF2-HMAC-SHA-256 iterations, 600,000 to 10,000,000
            (:data:`MAX_KDF_ITERATIONS`, the most :func:`load_private_key` reads).

    Raises:
        InvalidArgumentError: empty passphrase or too few (or too many) iterations.
        UnsupportedAlgorithmError: not a private key keymgmt manages, or an
            ML-KEM-768+X25519 key (no PKCS#8 form).
    """
    _check_iterations(iterations)
    algorithm_of_private(private_key)  # a private key keymgmt manages (typed error otherwise)
    der = _encrypted_pkcs8(private_pkcs8(private_key), _passphrase_bytes(passphrase), iterations)
    return _armor("ENCRYPTED PRIVATE KEY", der)


def _armor(label: str, der: bytes) -> bytes:
    import base64

    text = base64.b64encode(der).decode("ascii")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return (
        "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"
    ).encode()


# -- files -----------------------------------------------------------------------


def write_key_file(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False, mode: int = 0o600
) -> Path:
    """Write ``data`` to ``path`` with ``mode`` (0600 unless told), atomically.

    The bytes go to a temporary file (created 0600) in the same directory,
    which is then linked into place (refusing an existing file) or, with
    ``overwrite``, renamed over it.

    Raises:
        InvalidArgumentError: ``data`` is not bytes, or ``path`` not a path.
        AlreadyExistsError: ``path`` exists and ``overwrite`` is false.
        StoreError: the file system refused (missing directory, permissions).
    """
    data = require_bytes(data, "the file's content")
    try:
        target = Path(path)
    except TypeError:
        raise InvalidArgumentError(
            f"the path must be a str or path, not {type(path).__name__}"
        ) from None
    if "\x00" in str(target):
        raise InvalidArgumentError("cannot write a path with a null byte in it")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".keymgmt-", dir=target.parent)
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror}", path=str(target)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise AlreadyExistsError(
                    f"{target} exists; pass overwrite=True to replace it", path=str(target)
                ) from None
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror}", path=str(target)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def write_private_key_pem(
    path: str | os.PathLike[str],
    private_key: PrivateKey,
    *,
    passphrase: Passphrase,
    overwrite: bool = False,
    iterations: int = MIN_PBKDF2_ITERATIONS,
) -> Path:
    """Write ``private_key`` encrypted under ``passphrase`` to a 0600 PEM file.

    Raises:
        InvalidArgumentError: empty passphrase or too few iterations.
        AlreadyExistsError: the file exists and ``overwrite`` is false.
        StoreError: the file system refused.
        UnsupportedAlgorithmError: an ML-KEM-768+X25519 key (no PKCS#8 form).
    """
    pem = encrypt_private_key_pem(private_key, passphrase, iterations=iterations)
    return write_key_file(path, pem, overwrite=overwrite)


def write_public_key_pem(
    path: str | os.PathLike[str], public_key: PublicKey, *, overwrite: bool = False
) -> Path:
    """Write a public key as SubjectPublicKeyInfo PEM (mode 0644: it is public).

    Raises:
        AlreadyExistsError: the file exists and ``overwrite`` is false.
        StoreError: the file system refused.
    """
    from keymgmt.keys._asymmetric import algorithm_of_public

    pem = public_bytes(algorithm_of_public(public_key), public_key, PublicKeyFormat.PEM)
    return write_key_file(path, pem, overwrite=overwrite, mode=0o644)


def _check_key_file_paths(paths: tuple[str | os.PathLike[str], ...], *, overwrite: bool) -> None:
    """Refuse paths that are not paths, name one file twice, or (without ``overwrite``) exist.

    Checked before a key is generated, so nothing is made for nothing. One
    file for both halves would have the public key written over the private
    one (with ``overwrite``): the key pair lost, the function still returning.

    Raises:
        InvalidArgumentError: a path is not a str or path, or two name one file.
        AlreadyExistsError: a file exists and ``overwrite`` is false.
    """
    seen: set[str] = set()
    for path in paths:
        try:
            text = os.fspath(path)
        except TypeError:
            raise InvalidArgumentError(
                f"the key file path must be a str or path, not {type(path).__name__}"
            ) from None
        if "\x00" in text:
            raise InvalidArgumentError("cannot write a path with a null byte in it")
        resolved = os.path.realpath(text)  # symlinks and ".." too
        if resolved in seen:
            raise InvalidArgumentError(
                f"the private and public key files must be two files, not both {path}",
                path=str(path),
            )
        seen.add(resolved)
        if not overwrite and Path(path).exists():
            raise AlreadyExistsError(
                f"{path} exists; pass overwrite=True to replace it", path=str(path)
            )


def generate_rsa_key_files(
    private_path: str | os.PathLike[str] = "private_key.pem",
    public_path: str | os.PathLike[str] = "public_key.pem",
    *,
    passphrase: Passphrase,
    key_size: int = 2048,
    overwrite: bool = False,
) -> rsa.RSAPrivateKey:
    """The seed's ``generate_asymmetric_keys``, with the private key encrypted.

    Generates an RSA key pair (public exponent 65537) and writes
    ``private_path`` (encrypted PKCS#8, 0600) and ``public_path``
    (SubjectPublicKeyInfo PEM).

    Returns:
        The private key object (to import it, or to use it at once).

    Raises:
        InvalidArgumentError: empty passphrase, ``key_size`` not 2048/3072/4096,
            or a path that is not a str or path (nothing generated).
        AlreadyExistsError: a file exists and ``overwrite`` is false (nothing written).
        StoreError: the file system refused.
    """
    if key_size not in (2048, 3072, 4096):
        raise InvalidArgumentError("RSA key_size must be 2048, 3072 or 4096", key_size=key_size)
    _passphrase_bytes(passphrase)
    _check_key_file_paths((private_path, public_path), overwrite=overwrite)
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    write_private_key_pem(private_path, key, passphrase=passphrase, overwrite=overwrite)
    write_public_key_pem(public_path, key.public_key(), overwrite=overwrite)
    return key


# -- import ----------------------------------------------------------------------


def load_private_key(
    data: bytes, *, passphrase: Passphrase | None = None
) -> tuple[Algorithm, PrivateKey]:
    """Read a PEM or DER private key, encrypted or not, and name its algorithm.

    Returns:
        ``(algorithm, key)``; EC P-256 keys come back as ``ecdsa-p256``.

    Raises:
        InvalidArgumentError: ``data`` is not bytes, the key is encrypted and
            no passphrase was given, or a passphrase was given for an
            unencrypted key.
        DecryptionError: the passphrase is wrong (opaque).
        MalformedInputError: not a private key.
        UnsupportedAlgorithmError: a key type or size keymgmt does not manage.
    """
    raw = require_bytes(data, "the private key")
    password = None if passphrase is None else _passphrase_bytes(passphrase)
    # PEM wherever its BEGIN line is, as cryptography's loader reads it: text
    # before it ("Bag Attributes" from openssl pkcs12) made this DER, and a
    # correct passphrase "wrong" (and the cost check looked at the wrong bytes).
    is_pem = b"-----BEGIN" in raw
    if password is not None:
        _check_kdf_cost(raw, is_pem=is_pem)
    loader = serialization.load_pem_private_key if is_pem else serialization.load_der_private_key
    try:
        key: object = loader(raw, password=password)
    except TypeError:
        if password is None:
            raise InvalidArgumentError(
                "the private key is encrypted: give its passphrase (passphrase=; on the "
                "command line --passphrase-file or KEYMGMT_KEY_PASSPHRASE)"
            ) from None
        raise InvalidArgumentError("the private key is not encrypted; give no passphrase") from None
    except ValueError:
        if password is not None and (not is_pem or b"ENCRYPTED" in raw):
            raise DecryptionError() from None
        raise MalformedInputError("not a PEM or DER private key") from None
    except Exception:  # cryptography.exceptions.UnsupportedAlgorithm
        raise UnsupportedAlgorithmError("the private key's algorithm is not supported") from None
    algorithm = algorithm_of_private(key)
    assert not isinstance(key, XWingPrivateKey)
    return algorithm, key  # type: ignore[return-value]  # checked by algorithm_of_private


#: The largest private key file :func:`load_private_key_file` reads (an ML-DSA-87
#: PKCS#8 PEM, the largest keymgmt manages, is about 7 KiB).
MAX_KEY_FILE_SIZE: Final = 1 << 20

#: The most PBKDF2 (or PKCS#12 PBE) iterations an encrypted key file may ask for:
#: keymgmt writes 600,000; 10 million take seconds. More is a file made to hang us.
MAX_KDF_ITERATIONS: Final = 10_000_000
#: The most memory (128 * N * r bytes) and parallelism an scrypt-encrypted key may ask for.
MAX_SCRYPT_MEMORY: Final = 1 << 30
MAX_SCRYPT_PARALLELISM: Final = 16

_PBES2: Final = bytes.fromhex("2a864886f70d01050d")  # 1.2.840.113549.1.5.13
_PBKDF2: Final = bytes.fromhex("2a864886f70d01050c")  # 1.2.840.113549.1.5.12
_SCRYPT: Final = bytes.fromhex("2b06010401da47040b")  # 1.3.6.1.4.1.11591.4.11
_PKCS12_PBE: Final = bytes.fromhex("2a864886f70d010c01")  # 1.2.840.113549.1.12.1.*
#: PBES1 (PKCS #5 v1.5): 1.2.840.113549.1.5.{1,3,4,6,10,11}, PBEParameter (salt, count).
_PBES1: Final = frozenset(
    bytes.fromhex("2a864886f70d0105") + bytes((n,)) for n in (1, 3, 4, 6, 10, 11)
)
_ENCRYPTED_PEM: Final = re.compile(
    rb"-----BEGIN ENCRYPTED PRIVATE KEY-----(.*?)-----END ENCRYPTED PRIVATE KEY-----", re.S
)


def _check_kdf_cost(raw: bytes, *, is_pem: bool) -> None:
    """Refuse an encrypted PKCS#8 key whose key derivation would run for hours.

    The cost of PBKDF2, scrypt, PBES1 and PKCS#12 PBE is chosen by whoever
    wrote the file, and the loader pays it before it can tell a wrong
    passphrase: a file asking for four billion iterations hangs the import.
    This reads the parameters first (EncryptedPrivateKeyInfo, RFC 5958;
    PBES1 and PBES2, RFC 8018; scrypt, RFC 7914). Anything it cannot read
    is left to the loader.

    Raises:
        InvalidArgumentError: more than :data:`MAX_KDF_ITERATIONS` iterations,
            or scrypt beyond :data:`MAX_SCRYPT_MEMORY` / :data:`MAX_SCRYPT_PARALLELISM`.
    """
    der = raw
    if is_pem:
        found = _ENCRYPTED_PEM.search(raw)
        if found is None:
            return
        # The loader skips RFC 1421 header lines ("Name: value", and their
        # indented continuations) inside the block; base64 has no ':'.
        body, header = [], False
        for line in found.group(1).splitlines():
            header = b":" in line or (header and line[:1] in (b" ", b"\t"))
            if not header:
                body.append(line)
        try:
            der = base64.b64decode(b"".join(b"".join(body).split()), validate=True)
        except ValueError:
            return
    try:
        iterations, scrypt = _kdf_cost(der)
    except ValueError:  # not what this reads: left to the loader
        return
    if iterations is not None and iterations > MAX_KDF_ITERATIONS:
        raise InvalidArgumentError(
            f"the key file asks for {iterations:,} key derivation iterations "
            f"(at most {MAX_KDF_ITERATIONS:,}); refused before deriving"
        )
    if scrypt is not None:
        cost, block, parallel = scrypt
        if 128 * cost * block > MAX_SCRYPT_MEMORY or parallel > MAX_SCRYPT_PARALLELISM:
            raise InvalidArgumentError(
                f"the key file asks for scrypt N={cost}, r={block}, p={parallel} "
                f"(at most {MAX_SCRYPT_MEMORY >> 20} MiB and p={MAX_SCRYPT_PARALLELISM}); "
                "refused before deriving"
            )


def _kdf_cost(der: bytes) -> tuple[int | None, tuple[int, int, int] | None]:
    """The iteration count, or the scrypt (N, r, p), of an EncryptedPrivateKeyInfo.

    Raises:
        ValueError: it is not DER of that shape.
    """
    _, info, _ = der_read(der)  # EncryptedPrivateKeyInfo
    _, algorithm, _ = der_read(info)  # its encryptionAlgorithm
    tag, oid, at = der_read(algorithm)
    if tag != 0x06:
        return None, None
    _, params, _ = der_read(algorithm, at)
    if (oid.startswith(_PKCS12_PBE) and len(oid) == len(_PKCS12_PBE) + 1) or oid in _PBES1:
        _, _, at = der_read(params)  # salt
        return _der_int(params, at), None
    if oid != _PBES2:
        return None, None
    _, kdf, _ = der_read(params)  # keyDerivationFunc
    _, kdf_oid, at = der_read(kdf)
    _, kdf_params, _ = der_read(kdf, at)
    _, _, at = der_read(kdf_params)  # salt
    if kdf_oid == _PBKDF2:
        return _der_int(kdf_params, at), None
    if kdf_oid != _SCRYPT:
        return None, None
    cost = _der_int(kdf_params, at)
    at = der_read(kdf_params, at)[2]
    block = _der_int(kdf_params, at)
    at = der_read(kdf_params, at)[2]
    return None, (cost, block, _der_int(kdf_params, at))


def _der_int(data: bytes, at: int) -> int:
    tag, content, _ = der_read(data, at)
    if tag != 0x02 or not content:
        raise ValueError("not an INTEGER")
    return int.from_bytes(content, "big", signed=True)


def load_private_key_file(
    path: str | os.PathLike[str], *, passphrase: Passphrase | None = None
) -> tuple[Algorithm, PrivateKey]:
    """:func:`load_private_key` on a file's contents.

    At most :data:`MAX_KEY_FILE_SIZE` bytes are read: a bigger file (or a
    device, or a pipe that never ends) is no key file.

    Raises:
        StoreError: the file cannot be read.
        InvalidArgumentError: ``path`` is not a path.
        MalformedInputError: the file is larger than :data:`MAX_KEY_FILE_SIZE`;
            and everything :func:`load_private_key` raises.
    """
    try:
        where = os.fspath(path)  # never open(int): that would read (and close) a descriptor
    except TypeError:
        raise InvalidArgumentError(
            f"the key file path must be a str or path, not {type(path).__name__}"
        ) from None
    try:
        with open(where, "rb") as handle:
            data = handle.read(MAX_KEY_FILE_SIZE + 1)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}", path=str(path)) from None
    except ValueError:
        raise InvalidArgumentError("cannot read a path with a null byte in it") from None
    if len(data) > MAX_KEY_FILE_SIZE:
        raise MalformedInputError(
            f"{path} is larger than {MAX_KEY_FILE_SIZE >> 20} MiB: not a private key file",
            path=str(path),
        )
    return load_private_key(data, passphrase=passphrase)


# -- export from the store -----------------------------------------------------------


def _managed_private_key(
    keys: KeyManager | KeyStore, name: str, version: int | None, operation: str
) -> PrivateKey:
    """The private key object of a managed key-pair version, for an export.

    Private: it hands out the key object itself (no opt-in, and an audit
    label the caller picks); only :func:`export_private_key_pem` (encrypted)
    and :mod:`keymgmt.hazmat` (``allow_plaintext=True``) call it.

    Checks the key is a key pair with a PKCS#8 form before reading the
    material, then reads it through the key store's export path (state
    checked: pre-active, compromised and destroyed versions are refused;
    audited as ``operation``).

    Raises:
        KeyNotFoundError: no such key or version.
        KeyUsageError: a symmetric key.
        UnsupportedAlgorithmError: an ML-KEM-768+X25519 key (no PKCS#8 form).
        KeyStateError: the version cannot be exported in its state.
    """
    from keymgmt.keys._keystore import key_store_of

    store = key_store_of(keys)
    info = store.get(name)
    if info.kind is KeyKind.SYMMETRIC:
        raise KeyUsageError(f"key {name!r} is symmetric: it has no private key", key_name=name)
    if info.algorithm is Algorithm.ML_KEM_768_X25519:
        raise UnsupportedAlgorithmError(
            "ML-KEM-768+X25519 keys have no PKCS#8 form", algorithm=info.algorithm.value
        )
    key, record = store._material(name, version, operation)
    assert record.material is not None  # _material refuses destroyed versions
    return load_private(key.algorithm, record.material)


def export_private_key_pem(
    keys: KeyManager | KeyStore,
    name: str,
    version: int | None = None,
    *,
    passphrase: Passphrase,
    iterations: int = MIN_PBKDF2_ITERATIONS,
) -> bytes:
    """The private half of a managed key pair, as encrypted PKCS#8 PEM.

    The one way a private key leaves the store readable by other tools:
    encrypted under ``passphrase`` exactly as :func:`encrypt_private_key_pem`
    does. Audited as ``key.export-encrypted-pem``. Write it with
    :func:`write_key_file` (0600).

    Args:
        keys: a :class:`~keymgmt.KeyManager` or its ``km.keys``.
        name: the key pair.
        version: the version (default: the primary).
        passphrase: protects the exported key; must not be empty.
        iterations: PBKDF2-HMAC-SHA-256 iterations, at least 600,000.

    Raises:
        InvalidArgumentError: empty passphrase, too few iterations, or
            ``keys`` is not a KeyManager or its ``km.keys``.
        KeyNotFoundError: no such key or version.
        KeyUsageError: a symmetric key.
        UnsupportedAlgorithmError: an ML-KEM-768+X25519 key.
        KeyStateError: the version is pre-active, compromised or destroyed.
    """
    _passphrase_bytes(passphrase)
    _check_iterations(iterations)
    private = _managed_private_key(keys, name, version, "key.export-encrypted-pem")
    return encrypt_private_key_pem(private, passphrase, iterations=iterations)
