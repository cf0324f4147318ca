"""The master key inside an HSM (PKCS#11, extra ``keymgmt[hsm]``).

The master key is an AES-256 key generated **in** the token, marked
sensitive and non-extractable, allowed only to wrap and unwrap. It never
leaves the token; keymgmt asks the token to wrap and unwrap the store key::

    HSM: master key (AES-256, CKA_EXTRACTABLE=false)
        └── AES key wrap (RFC 3394, CKM_AES_KEY_WRAP) ──> store key (in the keyring record)
                                                             └── seals every record (in software)

So every record is still sealed with AES-256-GCM in software under the store
key (fast, one HSM call per *open*, not per record), and a stolen store or
database dump is useless without the token: a store sealed under the HSM
cannot be opened without it.

Binding the associated data
---------------------------

:class:`~keymgmt.keyring.MasterKey` promises to bind ``aad`` (the keyring's
parameters and the store key id) to the wrapped key. AES key wrap has no
associated data, and SoftHSM (like many tokens) refuses AES-GCM for key
wrapping, so the token wraps ``SHA-256(domain || aad) || store key`` as one
64-byte generic secret. AES-KW is deterministic authenticated encryption
(its integrity check fails on any change to the wrapped bytes), so after
unwrapping, the first 32 bytes prove which ``aad`` the key was wrapped for;
:meth:`unwrap` compares them in constant time and refuses a mismatch with
:class:`~keymgmt.errors.WrongPassphraseError`, exactly as the software
sources' AES-GCM does. Editing the stored parameters, swapping wrapped keys
between ids, or a token holding a *different* key all fail the same way.

Wrapped value format: ``0x01 || AES-KW(master, SHA-256(domain || aad) || key)``.

Unwrapping needs the store key's value in memory, so the unwrapped object is
a session object (never stored in the token) created extractable and
non-sensitive, read once and destroyed at once. Tokens whose policy forbids
that cannot serve as a keymgmt master key.

Stored parameters (in the store's keyring record; no PIN, no module path)::

    {"type": "pkcs11", "mechanism": "aes-key-wrap", "token": <label>,
     "key_label": <label>, "key_id": <hex CKA_ID>}

CA private keys in the token
----------------------------

:class:`Pkcs11Token` is the token itself (module, label, PIN) without a
master key: the PKI generates CA key pairs in it
(:meth:`Pkcs11Token.generate_signing_key`: ECDSA P-256/P-384, RSA
2048/3072/4096; the private half sensitive, non-extractable, sign-only) and
has it sign (:meth:`Pkcs11Token.sign`: CKM_ECDSA over a SHA-256/384 digest
made in software, or CKM_SHA256_RSA_PKCS). The store keeps only a reference
to such a key; see :mod:`keymgmt.pki._signer`. A :class:`Pkcs11Key` hands
out its token as :attr:`Pkcs11Key.token`, so one token can hold both the
master key and CA keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from keymgmt._random import Randomness
from keymgmt._secret import SecretBytes
from keymgmt.algorithms import Algorithm
from keymgmt.errors import (
    InvalidArgumentError,
    StoreUnavailableError,
    TokenUnavailableError,
    UnsupportedAlgorithmError,
    WrongPassphraseError,
)
from keymgmt.keyring._sources import MasterKey

__all__ = ["TOKEN_SIGNING_ALGORITHMS", "Pkcs11Key", "Pkcs11Token"]

_FORMAT: Final = 1
_DOMAIN: Final = b"keymgmt/pkcs11-wrap/v1\x00"
_DIGEST: Final = 32
_T = TypeVar("_T")

# Cryptoki is initialized once per process (C_Initialize), so a module is
# loaded once and shared; this cache is the one piece of process state here.
_LIBS: dict[str, Any] = {}
_LIBS_LOCK = threading.Lock()


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise StoreUnavailableError(
            "the HSM keyring needs python-pkcs11: pip install 'keymgmt[hsm]'"
        ) from None
    return pkcs11


def _load(module: str) -> Any:
    pkcs11 = _pkcs11()
    with _LIBS_LOCK:
        lib = _LIBS.get(module)
        if lib is None:
            try:
                lib = pkcs11.lib(module)
            except (OSError, RuntimeError) as exc:
                raise TokenUnavailableError(
                    f"cannot load the PKCS#11 module {module}: {exc}"
                ) from None
            _LIBS[module] = lib
        return lib


def _to_pin(value: str | bytes | SecretBytes) -> SecretBytes:
    if isinstance(value, SecretBytes):
        pin = value
    elif isinstance(value, str):
        try:
            pin = SecretBytes(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidArgumentError("the PIN must be valid Unicode text") from None
    elif isinstance(value, bytes | bytearray):
        pin = SecretBytes(bytes(value))
    else:
        raise InvalidArgumentError("the PIN must be str, bytes or SecretBytes")
    try:  # python-pkcs11 takes the PIN as text: refuse here what it could not take
        pin.reveal().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgumentError("the PIN must be UTF-8 text") from None
    return pin


#: The CA key types a token can generate and sign with (SoftHSM2 has them all).
TOKEN_SIGNING_ALGORITHMS: Final = (
    Algorithm.ECDSA_P256,
    Algorithm.ECDSA_P384,
    Algorithm.RSA_2048,
    Algorithm.RSA_3072,
    Algorithm.RSA_4096,
)
_CURVES: Final = {Algorithm.ECDSA_P256: "secp256r1", Algorithm.ECDSA_P384: "secp384r1"}
_CURVE_OBJECTS: Final = {Algorithm.ECDSA_P256: ec.SECP256R1(), Algorithm.ECDSA_P384: ec.SECP384R1()}
_RSA_BITS: Final = {Algorithm.RSA_2048: 2048, Algorithm.RSA_3072: 3072, Algorithm.RSA_4096: 4096}


def _octet_string_contents(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point (PKCS#11 2.40)."""
    if len(value) >= 2 and value[0] == 0x04:
        length = value[1]
        if length < 0x80 and len(value) == 2 + length:
            return value[2:]
        count = length & 0x7F
        if 0x80 < length <= 0x82 and len(value) > 2 + count:
            size = int.from_bytes(value[2 : 2 + count], "big")
            if len(value) == 2 + count + size:
                return value[2 + count :]
    return value  # some tokens return the raw point


class Pkcs11Token:
    """A PKCS#11 token (an HSM slot): its module, label and user PIN.

    Sessions are logged in with the PIN. Key generation and attribute
    reads open one per call; signatures share one long-lived session (and
    the key handles found in it) until :meth:`close`, because opening a
    session and searching the token cost several times the signature.
    PKCS#11 login state is per process and token: while that session lives,
    this process is logged in to the token. Use it for CA private keys
    (``km.pki.create_root_ca(..., token=token)``); :class:`Pkcs11Key` uses
    one for the master key.

    Args:
        module: path of the PKCS#11 module (``libsofthsm2.so``, a vendor library).
        token_label: the token's label.
        pin: the user PIN (str, bytes or :class:`~keymgmt.SecretBytes`).

    Raises:
        InvalidArgumentError: empty module, token label or PIN.
    """

    def __init__(
        self,
        module: str | os.PathLike[str],
        *,
        token_label: str,
        pin: str | bytes | SecretBytes,
    ) -> None:
        candidates: tuple[object, object] = (module, token_label)  # callers may be untyped
        if not isinstance(candidates[0], str | os.PathLike) or not isinstance(candidates[1], str):
            raise InvalidArgumentError("module is a path and token_label a str")
        self.module = os.fspath(module)
        self.token_label = token_label
        self._pin = _to_pin(pin)
        if not self.module or not token_label or not len(self._pin):
            raise InvalidArgumentError("module, token_label and pin must be non-empty")
        self._lock = threading.Lock()
        self._closed = False
        # Signing reuses one logged-in session and the key handles found in
        # it: opening a session and searching the token's objects cost far
        # more than the signature (SoftHSM2 reads every object file on a
        # search). One lock serializes signatures, as a session is not
        # thread-safe; a stale session or handle is dropped and retried once.
        self._sign_lock = threading.Lock()
        self._sign_session: Any = None
        self._sign_pid = 0
        self._handles: dict[tuple[str, bytes], Any] = {}

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return f"Pkcs11Token({self.token_label!r}{state}, pin=<redacted>)"

    def __reduce__(self) -> Any:
        raise TypeError("PKCS#11 tokens cannot be pickled")

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every use then fails)."""
        return self._closed

    def close(self) -> None:
        """Stop using the token: every later operation raises TokenUnavailableError."""
        self._closed = True
        with self._sign_lock:
            self._drop_signing_session()

    def _drop_signing_session(self) -> None:
        session, self._sign_session = self._sign_session, None
        self._handles.clear()
        if session is not None and self._sign_pid == os.getpid():
            with contextlib.suppress(Exception):
                session.close()

    # -- sessions ----------------------------------------------------------------

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """A logged-in read-write python-pkcs11 session (closed on exit).

        Raises:
            TokenUnavailableError: closed, module or token missing, PIN locked, token failure.
            WrongPassphraseError: the PIN is wrong.
        """
        session = self._open_session()
        try:
            yield session
        finally:
            with contextlib.suppress(_pkcs11().PKCS11Error):
                session.close()

    def _open_session(self) -> Any:
        if self._closed:
            raise TokenUnavailableError(
                f"the PKCS#11 token {self.token_label!r} is closed", token=self.token_label
            )
        pkcs11 = _pkcs11()
        lib = _load(self.module)
        try:
            token = lib.get_token(token_label=self.token_label)
        except (pkcs11.NoSuchToken, pkcs11.MultipleTokensReturned):
            raise TokenUnavailableError(
                f"no single PKCS#11 token labelled {self.token_label!r} in {self.module}",
                token=self.token_label,
            ) from None
        except pkcs11.PKCS11Error as exc:
            raise TokenUnavailableError(
                f"the PKCS#11 module failed: {exc!r}", token=self.token_label
            ) from None
        with self._lock:
            try:
                try:
                    session = token.open(user_pin=self._pin.reveal().decode("utf-8"), rw=True)
                except pkcs11.UserAlreadyLoggedIn:
                    # Login state is per application and token: another
                    # session of this process is logged in, so this one is too.
                    session = token.open(rw=True)
            except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange):
                raise WrongPassphraseError(
                    f"the PIN for PKCS#11 token {self.token_label!r} is wrong"
                ) from None
            except pkcs11.PinLocked:
                raise TokenUnavailableError(
                    f"the PIN of PKCS#11 token {self.token_label!r} is locked",
                    token=self.token_label,
                ) from None
            except pkcs11.PKCS11Error as exc:
                raise TokenUnavailableError(
                    f"cannot open a session on PKCS#11 token {self.token_label!r}: {exc!r}",
                    token=self.token_label,
                ) from None
        return session

    # -- signing keys ---------------------------------------------------------------

    def generate_signing_key(self, algorithm: Algorithm, *, label: str, key_id: bytes) -> bytes:
        """Generate a key pair in the token; return its public key (SubjectPublicKeyInfo DER).

        The private key is a token object, sensitive, never extractable,
        allowed only to sign; the public key is a token object too.

        Args:
            algorithm: one of :data:`TOKEN_SIGNING_ALGORITHMS`.
            label: CKA_LABEL of both objects.
            key_id: CKA_ID of both objects (make it unique).

        Raises:
            UnsupportedAlgorithmError: the algorithm cannot live in a token here.
            InvalidArgumentError: empty label or id.
            TokenUnavailableError: the token failed or refused.
            WrongPassphraseError: the PIN is wrong.
        """
        if algorithm not in TOKEN_SIGNING_ALGORITHMS:
            names = ", ".join(a.value for a in TOKEN_SIGNING_ALGORITHMS)
            raise UnsupportedAlgorithmError(
                f"{algorithm.value} keys cannot be held in a PKCS#11 token; expected one of: "
                f"{names}",
                algorithm=algorithm.value,
            )
        if not label or not key_id:
            raise InvalidArgumentError("a token key needs a label and an id")
        pkcs11 = _pkcs11()
        attribute = pkcs11.Attribute
        private_template = {
            attribute.TOKEN: True,
            attribute.PRIVATE: True,
            attribute.SENSITIVE: True,
            attribute.EXTRACTABLE: False,
            attribute.SIGN: True,
            attribute.DECRYPT: False,
            attribute.UNWRAP: False,
            attribute.DERIVE: False,
        }
        public_template = {
            attribute.TOKEN: True,
            attribute.VERIFY: True,
            attribute.ENCRYPT: False,
            attribute.WRAP: False,
        }
        with self.session() as session:
            try:
                if algorithm in _CURVES:
                    from pkcs11.util.ec import encode_named_curve_parameters

                    parameters = session.create_domain_parameters(
                        pkcs11.KeyType.EC,
                        {attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[algorithm])},
                        local=True,
                    )
                    public, private = parameters.generate_keypair(
                        store=True,
                        label=label,
                        id=key_id,
                        public_template=public_template,
                        private_template=private_template,
                    )
                    point = _octet_string_contents(bytes(public[attribute.EC_POINT]))
                    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey = (
                        ec.EllipticCurvePublicKey.from_encoded_point(
                            _CURVE_OBJECTS[algorithm], point
                        )
                    )
                else:
                    public, private = session.generate_keypair(
                        pkcs11.KeyType.RSA,
                        _RSA_BITS[algorithm],
                        store=True,
                        label=label,
                        id=key_id,
                        public_template=public_template,
                        private_template=private_template,
                    )
                    key = rsa.RSAPublicNumbers(
                        int.from_bytes(bytes(public[attribute.PUBLIC_EXPONENT]), "big"),
                        int.from_bytes(bytes(public[attribute.MODULUS]), "big"),
                    ).public_key()
                if private[attribute.EXTRACTABLE] or not private[attribute.SENSITIVE]:
                    # A token may override the template; such a key never serves.
                    public.destroy()
                    private.destroy()
                    raise TokenUnavailableError(
                        f"PKCS#11 token {self.token_label!r} made an extractable or "
                        "non-sensitive private key; a CA key must be neither",
                        token=self.token_label,
                    )
            except pkcs11.PKCS11Error as exc:
                raise TokenUnavailableError(
                    f"PKCS#11 token {self.token_label!r} refused to generate a "
                    f"{algorithm.value} key: {exc!r}",
                    token=self.token_label,
                ) from None
            except ValueError:
                raise TokenUnavailableError(
                    f"PKCS#11 token {self.token_label!r} returned an unusable public key",
                    token=self.token_label,
                ) from None
        from cryptography.hazmat.primitives import serialization

        return key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _private_key(self, session: Any, label: str, key_id: bytes) -> Any:
        pkcs11 = _pkcs11()
        found = list(
            session.get_objects(
                {
                    pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
                    pkcs11.Attribute.LABEL: label,
                    pkcs11.Attribute.ID: key_id,
                }
            )
        )
        if len(found) != 1:
            raise TokenUnavailableError(
                f"PKCS#11 token {self.token_label!r} has no (single) private key {label!r} "
                f"with id {key_id.hex()} (is this the token the key was made in?)",
                token=self.token_label,
            )
        return found[0]

    def key_attributes(self, *, label: str, key_id: bytes) -> dict[str, bool]:
        """The protection attributes of a private key in the token.

        Returns:
            ``sensitive``, ``extractable``, ``always_sensitive``,
            ``never_extractable``, ``token``, ``sign`` as booleans.

        Raises:
            TokenUnavailableError: no such key, or the token failed.
        """
        pkcs11 = _pkcs11()
        attribute = pkcs11.Attribute
        names = {
            "sensitive": attribute.SENSITIVE,
            "extractable": attribute.EXTRACTABLE,
            "always_sensitive": attribute.ALWAYS_SENSITIVE,
            "never_extractable": attribute.NEVER_EXTRACTABLE,
            "token": attribute.TOKEN,
            "sign": attribute.SIGN,
        }
        with self.session() as session:
            try:
                key = self._private_key(session, label, key_id)
                return {name: bool(key[value]) for name, value in names.items()}
            except pkcs11.PKCS11Error as exc:
                raise TokenUnavailableError(
                    f"cannot read PKCS#11 token {self.token_label!r}: {exc!r}",
                    token=self.token_label,
                ) from None

    def sign(self, data: bytes, *, algorithm: Algorithm, label: str, key_id: bytes) -> bytes:
        """Sign ``data`` with a private key in the token, X.509-style.

        ECDSA: SHA-256 (P-256) or SHA-384 (P-384) digest made here, CKM_ECDSA
        in the token, the raw ``r || s`` returned as a DER ECDSA-Sig-Value.
        RSA: CKM_SHA256_RSA_PKCS (PKCS#1 v1.5 with SHA-256) in the token.

        Raises:
            UnsupportedAlgorithmError: not a token signing algorithm.
            TokenUnavailableError: closed, missing, no such key, or the token failed.
            WrongPassphraseError: the PIN is wrong.
        """
        if algorithm not in TOKEN_SIGNING_ALGORITHMS:
            raise UnsupportedAlgorithmError(
                f"{algorithm.value} cannot sign in a PKCS#11 token", algorithm=algorithm.value
            )
        pkcs11 = _pkcs11()
        if algorithm in _CURVES:
            digest = hashes.Hash(
                hashes.SHA384() if algorithm is Algorithm.ECDSA_P384 else hashes.SHA256()
            )
            digest.update(data)
            message, mechanism = digest.finalize(), pkcs11.Mechanism.ECDSA
        else:
            message, mechanism = data, pkcs11.Mechanism.SHA256_RSA_PKCS
        stale = tuple(
            getattr(pkcs11, name)
            for name in (
                "SessionHandleInvalid",
                "SessionClosed",
                "ObjectHandleInvalid",
                "KeyHandleInvalid",
                "UserNotLoggedIn",
                "DeviceRemoved",
                "TokenNotPresent",
            )
            if hasattr(pkcs11, name)
        )
        with self._sign_lock:
            for attempt in (1, 2):
                if self._closed:
                    raise TokenUnavailableError(
                        f"the PKCS#11 token {self.token_label!r} is closed",
                        token=self.token_label,
                    )
                if self._sign_session is None or self._sign_pid != os.getpid():
                    self._handles.clear()
                    self._sign_session = self._open_session()
                    self._sign_pid = os.getpid()
                try:
                    key = self._handles.get((label, key_id))
                    if key is None:
                        key = self._private_key(self._sign_session, label, key_id)
                        self._handles[(label, key_id)] = key
                    raw = bytes(key.sign(message, mechanism=mechanism))
                    break
                except stale as exc:
                    self._drop_signing_session()
                    if attempt == 2:
                        raise TokenUnavailableError(
                            f"PKCS#11 token {self.token_label!r} failed to sign: {exc!r}",
                            token=self.token_label,
                        ) from None
                except TokenUnavailableError:
                    self._drop_signing_session()
                    raise
                except pkcs11.PKCS11Error as exc:
                    raise TokenUnavailableError(
                        f"PKCS#11 token {self.token_label!r} failed to sign: {exc!r}",
                        token=self.token_label,
                    ) from None
        if algorithm not in _CURVES:
            return raw
        half = len(raw) // 2
        if not raw or len(raw) % 2:
            raise TokenUnavailableError(
                f"PKCS#11 token {self.token_label!r} returned a malformed ECDSA signature",
                token=self.token_label,
            )
        return encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )


class Pkcs11Key:
    """A master key source whose key lives in a PKCS#11 token (an HSM).

    On a new store, :meth:`create` uses the token's AES key labelled
    ``key_label`` or, when there is none, generates one in the token
    (sensitive, non-extractable, wrap/unwrap only). On an existing store,
    :meth:`open` finds the key the store was created with.

    Args:
        module: path of the PKCS#11 module (``libsofthsm2.so``, a vendor library).
        token_label: the token's label.
        pin: the user PIN (str, bytes or :class:`~keymgmt.SecretBytes`).
        key_label: the label of the master key object in the token.

    Raises:
        InvalidArgumentError: empty module, token label, key label or PIN.
    """

    def __init__(
        self,
        module: str | os.PathLike[str],
        *,
        token_label: str,
        pin: str | bytes | SecretBytes,
        key_label: str = "keymgmt-master",
    ) -> None:
        if not key_label:
            raise InvalidArgumentError("module, token_label, key_label and pin must be non-empty")
        try:
            self.token = Pkcs11Token(module, token_label=token_label, pin=pin)
        except InvalidArgumentError:
            raise InvalidArgumentError(
                "module, token_label, key_label and pin must be non-empty"
            ) from None
        self.module = self.token.module
        self.token_label = token_label
        self.key_label = key_label

    def __repr__(self) -> str:
        return f"Pkcs11Key(token={self.token_label!r}, key={self.key_label!r}, pin=<redacted>)"

    def __reduce__(self) -> Any:
        raise TypeError("HSM key sources cannot be pickled")

    # -- sessions ----------------------------------------------------------------

    def _session(self) -> contextlib.AbstractContextManager[Any]:
        return self.token.session()

    def _find(self, session: Any, key_label: str, key_id: bytes | None) -> Any | None:
        pkcs11 = _pkcs11()
        template: dict[Any, Any] = {
            pkcs11.Attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY,
            pkcs11.Attribute.KEY_TYPE: pkcs11.KeyType.AES,
            pkcs11.Attribute.LABEL: key_label,
        }
        if key_id:
            template[pkcs11.Attribute.ID] = key_id
        found = list(session.get_objects(template))
        if len(found) > 1:
            raise InvalidArgumentError(
                f"PKCS#11 token {self.token_label!r} holds {len(found)} AES keys labelled "
                f"{key_label!r}; label the master key uniquely"
            )
        return found[0] if found else None

    # -- MasterKeySource ----------------------------------------------------------

    def create(self, randomness: Randomness) -> tuple[Mapping[str, Any], MasterKey]:
        """Use (or generate in the token) the AES master key; return the parameters to store.

        Raises:
            StoreUnavailableError: the module or token cannot be used.
            WrongPassphraseError: the PIN is wrong.
            InvalidArgumentError: the existing key is extractable or not a wrapping key.
        """
        pkcs11 = _pkcs11()
        attribute = pkcs11.Attribute
        with self._session() as session:
            try:
                key = self._find(session, self.key_label, None)
                if key is None:
                    key = session.generate_key(
                        pkcs11.KeyType.AES,
                        256,
                        id=randomness.token_bytes(16),
                        label=self.key_label,
                        store=True,
                        template={
                            attribute.SENSITIVE: True,
                            attribute.EXTRACTABLE: False,
                            attribute.WRAP: True,
                            attribute.UNWRAP: True,
                            attribute.ENCRYPT: False,
                            attribute.DECRYPT: False,
                            attribute.SIGN: False,
                            attribute.VERIFY: False,
                            attribute.DERIVE: False,
                        },
                    )
                if key[attribute.EXTRACTABLE] or not key[attribute.SENSITIVE]:
                    raise InvalidArgumentError(
                        f"the PKCS#11 key {self.key_label!r} is extractable; a master key "
                        "must be sensitive and non-extractable"
                    )
                if not (key[attribute.WRAP] and key[attribute.UNWRAP]):
                    raise InvalidArgumentError(
                        f"the PKCS#11 key {self.key_label!r} may not wrap and unwrap keys"
                    )
                key_id = bytes(key[attribute.ID])
            except pkcs11.PKCS11Error as exc:
                raise StoreUnavailableError(
                    f"PKCS#11 token {self.token_label!r} refused to create the master key: {exc!r}"
                ) from None
        parameters = {
            "type": "pkcs11",
            "mechanism": "aes-key-wrap",
            "token": self.token_label,
            "key_label": self.key_label,
            "key_id": key_id.hex(),
        }
        return parameters, _Pkcs11Wrapper(self, self.key_label, key_id)

    def open(self, parameters: Mapping[str, Any]) -> MasterKey:
        """The master key named by a store's stored parameters.

        The token is reached only when the key is used (by unwrap).

        Raises:
            WrongPassphraseError: the store's master key is not a PKCS#11 key.
        """
        if parameters.get("type") != "pkcs11" or parameters.get("mechanism") != "aes-key-wrap":
            raise WrongPassphraseError(
                f"this store's master key is a {parameters.get('type')!r}, not a PKCS#11 key"
            )
        try:
            key_label = str(parameters["key_label"])
            key_id = bytes.fromhex(str(parameters["key_id"]))
        except (KeyError, ValueError):
            raise WrongPassphraseError("this store's PKCS#11 key parameters are damaged") from None
        return _Pkcs11Wrapper(self, key_label, key_id)

    # -- used by the wrapper ---------------------------------------------------------

    def _with_key(self, key_label: str, key_id: bytes, fn: Callable[[Any, Any], _T]) -> _T:
        pkcs11 = _pkcs11()
        with self._session() as session:
            try:
                key = self._find(session, key_label, key_id)
            except pkcs11.PKCS11Error as exc:
                raise StoreUnavailableError(
                    f"cannot search PKCS#11 token {self.token_label!r}: {exc!r}"
                ) from None
            if key is None:
                raise WrongPassphraseError(
                    f"PKCS#11 token {self.token_label!r} has no master key {key_label!r} "
                    "(is this the token the store was created with?)"
                )
            return fn(session, key)


def _bound(aad: bytes) -> bytes:
    return hashlib.sha256(_DOMAIN + aad).digest()


class _Pkcs11Wrapper:
    """A :class:`~keymgmt.keyring.MasterKey` whose wrapping happens in the token."""

    def __init__(self, source: Pkcs11Key, key_label: str, key_id: bytes) -> None:
        self._source = source
        self._key_label = key_label
        self._key_id = key_id

    def __repr__(self) -> str:
        return f"MasterKey(pkcs11, token={self._source.token_label!r}, key={self._key_label!r})"

    def __reduce__(self) -> Any:
        raise TypeError("master keys cannot be pickled")

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        """Wrap ``SHA-256(aad) || key`` with AES key wrap inside the token.

        Raises:
            InvalidArgumentError: the key length is not a multiple of 8 bytes.
            StoreUnavailableError: the token failed.
        """
        if len(key) < 8 or len(key) % 8:
            raise InvalidArgumentError("AES key wrap needs a key of a multiple of 8 bytes")
        pkcs11 = _pkcs11()
        attribute = pkcs11.Attribute

        def run(session: Any, master: Any) -> bytes:
            secret = session.create_object(
                {
                    attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY,
                    attribute.KEY_TYPE: pkcs11.KeyType.GENERIC_SECRET,
                    attribute.VALUE: _bound(aad) + bytes(key),
                    attribute.TOKEN: False,
                    attribute.SENSITIVE: False,
                    attribute.EXTRACTABLE: True,
                }
            )
            try:
                wrapped = master.wrap_key(secret, mechanism=pkcs11.Mechanism.AES_KEY_WRAP)
            finally:
                secret.destroy()
            return bytes([_FORMAT]) + bytes(wrapped)

        try:
            return self._source._with_key(self._key_label, self._key_id, run)
        except pkcs11.PKCS11Error as exc:
            raise StoreUnavailableError(
                f"PKCS#11 token {self._source.token_label!r} failed to wrap: {exc!r}"
            ) from None

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """Unwrap inside the token and check the bound ``aad``.

        Raises:
            WrongPassphraseError: this token's key did not wrap it for ``aad``.
            StoreUnavailableError: the token failed.
        """
        if len(wrapped) < 1 + _DIGEST + 16 or wrapped[0] != _FORMAT:
            raise WrongPassphraseError("the wrapped store key is not a PKCS#11 key wrap")
        pkcs11 = _pkcs11()
        attribute = pkcs11.Attribute

        def run(session: Any, master: Any) -> bytes | None:
            try:
                secret = master.unwrap_key(
                    pkcs11.ObjectClass.SECRET_KEY,
                    pkcs11.KeyType.GENERIC_SECRET,
                    wrapped[1:],
                    mechanism=pkcs11.Mechanism.AES_KEY_WRAP,
                    store=False,
                    template={attribute.SENSITIVE: False, attribute.EXTRACTABLE: True},
                )
            except (pkcs11.GeneralError, pkcs11.WrappedKeyInvalid, pkcs11.WrappedKeyLenRange):
                return None  # AES-KW integrity check failed
            try:
                return bytes(secret[attribute.VALUE])
            finally:
                secret.destroy()

        try:
            value = self._source._with_key(self._key_label, self._key_id, run)
        except pkcs11.PKCS11Error as exc:
            raise StoreUnavailableError(
                f"PKCS#11 token {self._source.token_label!r} failed to unwrap: {exc!r}"
            ) from None
        if value is None or not hmac.compare_digest(value[:_DIGEST], _bound(aad)):
            raise WrongPassphraseError(
                "the HSM's master key does not open this store (another token or key?)"
            )
        return value[_DIGEST:]
