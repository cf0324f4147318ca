"""Verify and encrypt with an exported public key: no store, no master key.

A service that holds keymgmt key pairs exports their public halves
(``km.public_key(name).pem()`` or ``.jwk()``). Anyone holding such an export
can, with only this module:

* verify a keymgmt signature (the enveloped form ``km.sign`` returns, or the
  detached plain signature), and
* encrypt to the key in keymgmt's ciphertext format, which ``km.decrypt``
  opens (HPKE, or RSA-OAEP for RSA keys, with the encryption context bound
  exactly as for symmetric keys).

The export carries the key's identity — name, version, key id — because
keymgmt ciphertexts and signatures name the key version they need. In PEM
it is RFC 7468 *explanatory text* before the ``-----BEGIN PUBLIC KEY-----``
line (OpenSSL and ``cryptography`` skip it)::

    keymgmt-key: payments-signing
    keymgmt-version: 3
    keymgmt-key-id: 9f2c4e1a7b3d5c60
    keymgmt-algorithm: ed25519
    keymgmt-usage: sign-verify
    -----BEGIN PUBLIC KEY-----
    ...

In a JWK it is ``kid`` (``"name#version"``) plus a ``keymgmt-key-id`` member;
the usage is ``key_ops`` (``verify``, ``encrypt`` or ``deriveKey``).
A bare PEM or JWK without identity still verifies detached signatures and
checks enveloped ones; encrypting needs the identity (pass it explicitly).

Example::

    from keymgmt.public import PublicKey

    key = PublicKey.from_pem(pem_text)
    key.verify(message, signature)                    # raises InvalidSignatureError
    ciphertext = key.encrypt(b"secret", context={"purpose": "backup"})
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.errors import (
    InvalidArgumentError,
    InvalidSignatureError,
    KeyUsageError,
    MalformedInputError,
)
from keymgmt.keys import _asymmetric as _asym
from keymgmt.keys._asymmetric import PublicKeyFormat, Signature
from keymgmt.keys._format import (
    PayloadType,
    check_name,
    encode_context,
    prefix,
    require_bytes,
)
from keymgmt.model import KeyState

__all__ = ["ForensicPublicKey", "PublicKey", "PublicKeyFormat", "Signature"]

_HEADER_LINE: Final = re.compile(r"^keymgmt-([a-z-]+):[ \t]*(\S.*?)\s*$")
_KEY_ID: Final = re.compile(r"[0-9a-f]{16}")


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        raise MalformedInputError("the public key text is not valid Unicode") from None


def _check_identity(key_name: str | None, version: int | None, key_id: str | None) -> None:
    if key_name is not None:
        check_name(key_name)
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 0xFFFFFFFF
    ):
        raise InvalidArgumentError("the key version must be an integer >= 1", version=version)
    if key_id is not None and (not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id)):
        raise InvalidArgumentError("the key id is 16 lowercase hex digits")


def _usage(value: Any, error: type[InvalidArgumentError]) -> str | None:
    if value is None:
        return None
    try:
        return KeyUsage(value).value
    except ValueError:
        names = ", ".join(u.value for u in KeyUsage)
        raise error(f"unknown key usage {value!r}; expected one of: {names}") from None


def _algorithm(value: Algorithm | str) -> Algorithm:
    return Algorithm.parse(value)


def _optional_usage(value: KeyUsage | str | None) -> KeyUsage | None:
    text = _usage(value, InvalidArgumentError)
    return None if text is None else KeyUsage(text)


def _merge(found: str | int | None, given: str | int | None, what: str) -> Any:
    if given is None:
        return found
    if found is not None and found != given:
        raise InvalidArgumentError(f"the exported key says {what} {found!r}, not {given!r}")
    return given


def _fingerprint(algorithm: Algorithm, key: _asym.PublicKey) -> str:
    if isinstance(key, _asym.XWingPublicKey):
        data = key.public_bytes_raw()
    else:
        data = _asym.public_bytes(algorithm, key, PublicKeyFormat.DER)
    return hashlib.sha256(data).hexdigest()


@attrs.frozen(kw_only=True, repr=False, eq=False)
class PublicKey:
    """A keymgmt public key: the key, its algorithm, and (when known) its identity.

    Build one with :meth:`from_pem`, :meth:`from_der`, :meth:`from_jwk` or
    :meth:`load`; ``km.public_key(name)`` returns one with the identity
    filled in.

    Attributes:
        algorithm: the key's algorithm.
        key: the public key object (``cryptography``'s, or
            :class:`~keymgmt.keys._asymmetric.XWingPublicKey` for ML-KEM-768+X25519).
        key_name: the key's name in its store, when known.
        version: the key version, when known.
        key_id: the key's id (16 hex digits), when known.
        usage: the key's usage, when known.
    """

    algorithm: Algorithm = attrs.field(converter=_algorithm)
    key: _asym.PublicKey
    key_name: str | None = None
    version: int | None = None
    key_id: str | None = None
    usage: KeyUsage | None = attrs.field(default=None, converter=_optional_usage)
    # The signature header this key's signatures carry, when the identity is
    # known: verify compares bytes instead of parsing (see verify()).
    _signature_prefix: bytes | None = attrs.field(init=False, default=None)
    # Whether this key may verify: decided once, so verify() skips the usage check.
    _verifies: bool = attrs.field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        _asym.check_public_key(self.algorithm, self.key)
        _check_identity(self.key_name, self.version, self.key_id)
        if self.usage is not None:
            _asym.check_usage(self.algorithm, self.usage, key_name=self.key_name)
        name, version, key_id = self.key_name, self.version, self.key_id
        signs = KeyUsage.SIGN_VERIFY in _asym.USAGES[self.algorithm]
        verifies = signs and self.usage in (None, KeyUsage.SIGN_VERIFY)
        object.__setattr__(self, "_verifies", verifies)
        if signs and name is not None and version is not None and key_id is not None:
            head = prefix(
                PayloadType.SIGNATURE, self.algorithm, bytes.fromhex(key_id), name, version
            )
            object.__setattr__(self, "_signature_prefix", head)

    # -- constructors ------------------------------------------------------------

    @classmethod
    def from_pem(
        cls,
        data: bytes | str,
        *,
        algorithm: Algorithm | str | None = None,
        key_name: str | None = None,
        version: int | None = None,
        key_id: str | None = None,
        usage: KeyUsage | str | None = None,
    ) -> PublicKey:
        """Read a PEM public key, with keymgmt's identity lines if present.

        Arguments given here fill in (or must agree with) the identity lines.
        ``algorithm`` tells a P-256 agreement key (``ecdh-p256``) from a
        signing key; it must match the key's type.

        Raises:
            MalformedInputError: not a PEM public key, or bad identity lines.
            UnsupportedAlgorithmError: a key keymgmt does not manage.
            InvalidArgumentError: arguments disagree with the export.
        """
        if isinstance(data, bytes | bytearray | memoryview):
            text = bytes(data).decode("utf-8", "replace")
        elif isinstance(data, str):
            text = data
        else:
            raise MalformedInputError(
                f"a PEM public key is text or bytes, not {type(data).__name__}"
            )
        if "-----BEGIN" not in text:
            raise MalformedInputError("not a PEM public key (no BEGIN line)")
        lines: dict[str, str] = {}
        for line in text.split("-----BEGIN", 1)[0].splitlines():
            match = _HEADER_LINE.match(line)
            if match is not None:
                lines[match.group(1)] = match.group(2)
        found_alg, key = _asym.load_public(_utf8(text[text.index("-----BEGIN") :]))
        found_version: int | None = None
        if "version" in lines:
            if not lines["version"].isascii() or not lines["version"].isdigit():
                raise MalformedInputError("bad keymgmt-version line")
            found_version = int(lines["version"])
        return cls._build(
            key,
            found_alg,
            found=(
                lines.get("algorithm"),
                lines.get("key"),
                found_version,
                lines.get("key-id"),
                lines.get("usage"),
            ),
            given=(algorithm, key_name, version, key_id, usage),
        )

    @classmethod
    def from_der(
        cls,
        data: bytes,
        *,
        algorithm: Algorithm | str | None = None,
        key_name: str | None = None,
        version: int | None = None,
        key_id: str | None = None,
        usage: KeyUsage | str | None = None,
    ) -> PublicKey:
        """Read a DER SubjectPublicKeyInfo; identity only from the arguments.

        Raises:
            MalformedInputError: not a DER public key.
            UnsupportedAlgorithmError: a key keymgmt does not manage.
            InvalidArgumentError: ``algorithm`` does not match the key.
        """
        raw = require_bytes(data, "the DER public key")
        if raw.lstrip()[:1] in (b"-", b"{"):
            raise MalformedInputError("not DER (use from_pem or from_jwk)")
        found_alg, key = _asym.load_public(raw)
        return cls._build(
            key,
            found_alg,
            found=(None, None, None, None, None),
            given=(algorithm, key_name, version, key_id, usage),
        )

    @classmethod
    def from_jwk(
        cls,
        jwk: Mapping[str, Any] | str | bytes,
        *,
        algorithm: Algorithm | str | None = None,
        key_name: str | None = None,
        version: int | None = None,
        key_id: str | None = None,
        usage: KeyUsage | str | None = None,
    ) -> PublicKey:
        """Read a public JWK (dict or JSON text); ``kid`` ``"name#version"`` gives identity.

        Raises:
            MalformedInputError: not a public JWK.
            UnsupportedAlgorithmError: a key keymgmt does not manage.
            InvalidArgumentError: arguments disagree with the JWK.
        """
        if isinstance(jwk, str | bytes):
            try:
                parsed = json.loads(jwk)
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise MalformedInputError("the JWK is not valid JSON") from None
        elif isinstance(jwk, Mapping):
            parsed = dict(jwk)
        else:
            raise MalformedInputError(f"a JWK is a mapping or JSON text, not {type(jwk).__name__}")
        if not isinstance(parsed, dict):
            raise MalformedInputError("a JWK is a JSON object")
        found_alg, key = _asym.load_public_jwk(parsed)
        name: str | None = None
        found_version: int | None = None
        kid = parsed.get("kid")
        if isinstance(kid, str) and "#" in kid:
            name, _, number = kid.rpartition("#")
            if not number.isascii() or not number.isdigit():
                raise MalformedInputError("the JWK kid is not 'name#version'")
            found_version = int(number)
        stated = _asym.jwk_usage(parsed)
        found_usage = None if stated is None else stated.value
        key_id_member = parsed.get("keymgmt-key-id")
        return cls._build(
            key,
            found_alg,
            found=(
                None,
                name,
                found_version,
                key_id_member if isinstance(key_id_member, str) else None,
                found_usage,
            ),
            given=(algorithm, key_name, version, key_id, usage),
        )

    @classmethod
    def load(cls, data: bytes | str, **identity: Any) -> PublicKey:
        """Read PEM, JWK or DER, whichever ``data`` is (see the other constructors).

        Raises:
            MalformedInputError: none of them.
            UnsupportedAlgorithmError: a key keymgmt does not manage.
        """
        if isinstance(data, str):
            raw = _utf8(data)
        elif isinstance(data, bytes | bytearray | memoryview):
            raw = bytes(data)
        else:
            raise MalformedInputError(f"a public key is text or bytes, not {type(data).__name__}")
        head = raw.lstrip()[:1]
        if head == b"{":
            return cls.from_jwk(raw, **identity)
        if b"-----BEGIN" in raw:
            return cls.from_pem(raw, **identity)
        return cls.from_der(raw, **identity)

    @classmethod
    def _build(
        cls,
        key: _asym.PublicKey,
        key_algorithm: Algorithm,
        *,
        found: tuple[Any, Any, Any, Any, Any],
        given: tuple[Any, Any, Any, Any, Any],
    ) -> PublicKey:
        alg_found, name_found, version_found, id_found, usage_found = found
        alg_given, name_given, version_given, id_given, usage_given = given
        algorithm_text = _merge(
            alg_found, None if alg_given is None else Algorithm.parse(alg_given).value, "algorithm"
        )
        algorithm = key_algorithm if algorithm_text is None else Algorithm.parse(algorithm_text)
        if not _asym.same_family(algorithm, key_algorithm):
            raise InvalidArgumentError(
                f"the key is a {key_algorithm.value} key, not {algorithm.value}",
                algorithm=algorithm.value,
            )
        usage_text = _merge(
            _usage(usage_found, MalformedInputError),
            None if usage_given is None else _usage(usage_given, InvalidArgumentError),
            "usage",
        )
        return cls(
            algorithm=algorithm,
            key=key,
            key_name=_merge(name_found, name_given, "key name"),
            version=_merge(version_found, version_given, "version"),
            key_id=_merge(id_found, id_given, "key id"),
            usage=None if usage_text is None else KeyUsage(usage_text),  # checked above
        )

    # -- export --------------------------------------------------------------------

    @property
    def cryptography_key(self) -> Any:
        """The key as ``cryptography`` uses it (for ML-KEM-768+X25519: the HPKE key)."""
        if isinstance(self.key, _asym.XWingPublicKey):
            return self.key.hpke_key
        return self.key

    @property
    def kid(self) -> str | None:
        """``"name#version"`` (the revocation subject), when the identity is known."""
        if self.key_name is None or self.version is None:
            return None
        return f"{self.key_name}#{self.version}"

    def pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM, preceded by the identity lines that are known."""
        lines = [
            f"keymgmt-{field}: {value}\n"
            for field, value in (
                ("key", self.key_name),
                ("version", self.version),
                ("key-id", self.key_id),
                ("algorithm", self.algorithm.value),
                ("usage", None if self.usage is None else self.usage.value),
            )
            if value is not None
        ]
        body = _asym.public_bytes(self.algorithm, self.key, PublicKeyFormat.PEM)
        return "".join(lines).encode() + body

    def der(self) -> bytes:
        """SubjectPublicKeyInfo DER (no identity).

        Raises:
            UnsupportedAlgorithmError: ML-KEM-768+X25519 (no DER form).
        """
        return _asym.public_bytes(self.algorithm, self.key, PublicKeyFormat.DER)

    def raw(self) -> bytes:
        """The raw public key bytes.

        Raises:
            UnsupportedAlgorithmError: RSA and ECDSA/ECDH keys (no raw form).
        """
        return _asym.public_bytes(self.algorithm, self.key, PublicKeyFormat.RAW)

    def jwk(self) -> dict[str, Any]:
        """The JWK dict, with ``kid``, ``key_ops`` and ``keymgmt-key-id`` when known."""
        jwk = _asym.public_jwk(self.algorithm, self.key, kid=self.kid, usage=self.usage)
        if self.usage is None and self.algorithm is Algorithm.ECDH_P256:
            jwk["key_ops"] = ["deriveKey"]  # otherwise it reads back as an ECDSA key
        if self.key_id is not None:
            jwk["keymgmt-key-id"] = self.key_id
        return jwk

    def jwk_json(self) -> str:
        """:meth:`jwk` as canonical JSON text."""
        return json.dumps(self.jwk(), sort_keys=True, separators=(",", ":"))

    def export(self, fmt: PublicKeyFormat | str) -> bytes:
        """The key in ``fmt`` (``pem``, ``der``, ``jwk`` or ``raw``) as bytes.

        Raises:
            InvalidArgumentError: an unknown format.
            UnsupportedAlgorithmError: no such form for this algorithm.
        """
        try:
            chosen = PublicKeyFormat(fmt)
        except ValueError:
            raise InvalidArgumentError(f"unknown public key format {fmt!r}") from None
        if chosen is PublicKeyFormat.PEM:
            return self.pem()
        if chosen is PublicKeyFormat.JWK:
            return self.jwk_json().encode()
        return _asym.public_bytes(self.algorithm, self.key, chosen)

    def fingerprint(self) -> str:
        """SHA-256 of the raw (ML-KEM-768+X25519) or DER public key, hex."""
        return _fingerprint(self.algorithm, self.key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return (
            self.algorithm == other.algorithm
            and self.fingerprint() == other.fingerprint()
            and (self.key_name, self.version, self.key_id, self.usage)
            == (other.key_name, other.version, other.key_id, other.usage)
        )

    def __hash__(self) -> int:
        return hash((self.algorithm, self.fingerprint(), self.key_name, self.version))

    def __repr__(self) -> str:
        who = f" {self.kid}" if self.kid is not None else ""
        return f"<PublicKey {self.algorithm.value}{who} sha256:{self.fingerprint()[:16]}>"

    # -- operations ----------------------------------------------------------------

    def _require_usage(self, usage: KeyUsage) -> None:
        _asym.check_usage(self.algorithm, usage, key_name=self.key_name)
        if self.usage is not None and self.usage is not usage:
            raise KeyUsageError(
                f"key {self.kid or self.algorithm.value} has usage {self.usage.value}, "
                f"not {usage.value}",
                key_name=self.key_name,
                usage=usage.value,
            )

    def verify(self, data: bytes, signature: bytes) -> None:
        """Check a keymgmt (enveloped) signature over ``data``.

        The signature's header must name this key's algorithm and — where
        this key's identity is known — its name, version and key id.

        Raises:
            InvalidSignatureError: the signature does not verify, or names
                another key (opaque).
            MalformedInputError: ``signature`` is not a keymgmt signature.
            InvalidArgumentError: ``data`` or ``signature`` is not bytes.
            KeyUsageError: this key does not verify signatures.
        """
        if not self._verifies:
            self._require_usage(KeyUsage.SIGN_VERIFY)  # raises
        message = require_bytes(data, "data")
        signature = require_bytes(signature, "the signature")
        head = self._signature_prefix
        if head is not None and signature[: len(head)] == head:
            # Fast path: the header is exactly this key's; only the length
            # bound of Signature.decode is left to check.
            raw = bytes(signature[len(head) :])
            if not 1 <= len(raw) <= 8192:
                raise MalformedInputError("the signature is empty or oversize")
            _asym.verify(self.algorithm, self.key, raw, message)
            return
        envelope = Signature.decode(signature)
        if envelope.algorithm is not self.algorithm:
            raise InvalidSignatureError()
        if (
            (self.key_name is not None and envelope.key_name != self.key_name)
            or (self.version is not None and envelope.version != self.version)
            or (self.key_id is not None and envelope.key_id.hex() != self.key_id)
        ):
            raise InvalidSignatureError()
        _asym.verify(self.algorithm, self.key, envelope.raw, message)

    def verify_detached(self, data: bytes, signature: bytes) -> None:
        """Check a plain (detached) signature over ``data``.

        Raises:
            InvalidSignatureError: it does not verify (opaque).
            InvalidArgumentError: ``data`` or ``signature`` is not bytes.
            KeyUsageError: this key does not verify signatures.
        """
        if not self._verifies:
            self._require_usage(KeyUsage.SIGN_VERIFY)  # raises
        _asym.verify(
            self.algorithm,
            self.key,
            require_bytes(signature, "the signature"),
            require_bytes(data, "data"),
        )

    def encrypt(self, plaintext: bytes, *, context: Mapping[str, str] | None = None) -> bytes:
        """Encrypt to this key in keymgmt's ciphertext format (``km.decrypt`` opens it).

        Needs the key's identity (name, version, key id). The context is
        bound as associated data, exactly as for ``km.encrypt``; decrypting
        needs the same context. Contexts are not secret.

        Raises:
            InvalidArgumentError: the identity is unknown, a bad context,
                ``plaintext`` is not bytes, or the key is invalid (a low-order
                X25519 point).
            KeyUsageError: this key does not encrypt.
        """
        self._require_usage(KeyUsage.ENCRYPT_DECRYPT)
        message = require_bytes(plaintext, "plaintext")
        if self.key_name is None or self.version is None or self.key_id is None:
            raise InvalidArgumentError(
                "encrypting needs the key's name, version and key id; "
                "export the key with km.public_key() or pass them explicitly"
            )
        head = prefix(
            PayloadType.MESSAGE,
            self.algorithm,
            bytes.fromhex(self.key_id),
            self.key_name,
            self.version,
        )
        aad = head + encode_context(context)
        return head + _asym.encrypt(self.algorithm, self.key, message, aad)


@attrs.frozen(kw_only=True, repr=False, eq=False)
class ForensicPublicKey:
    """A key version's public half for an investigation, whatever the version's state.

    What ``km.keys.forensic_public_key(name, version)`` returns, and the one
    way to get the public half of a **compromised** version (``km.public_key``
    refuses it with :class:`~keymgmt.errors.RevokedError`). It is not a
    :class:`PublicKey` on purpose: it has no ``encrypt``, ``verify``, ``pem``
    or ``jwk``, and nothing in keymgmt that takes a :class:`PublicKey`
    (``km.agree``, for one) takes it, so it cannot be encrypted to or
    published by mistake. Its :attr:`state` and :attr:`revocation_reason` say
    what the version was when it was read.

    For an investigation: compare :attr:`key` or :meth:`fingerprint` with the
    keys in certificates and exports (which of them bear the compromised
    key?); check what the version signed with ``km.verify(...,
    allow_compromised=True)`` (a signature by a compromised key proves
    nothing about who made it); write the key into a report with
    ``cryptography``'s own ``key.public_bytes(...)``.

    Attributes:
        algorithm: the key's algorithm.
        key: the public key object (``cryptography``'s, or
            :class:`~keymgmt.keys._asymmetric.XWingPublicKey`).
        key_name: the key's name.
        version: the version.
        key_id: the key's id (16 hex digits).
        usage: the key's usage.
        state: the version's effective state when it was read.
        revocation_reason: why it was revoked (an RFC 5280 reason), or None.
    """

    algorithm: Algorithm
    key: _asym.PublicKey
    key_name: str
    version: int
    key_id: str
    usage: KeyUsage
    state: KeyState
    revocation_reason: str | None

    @property
    def kid(self) -> str:
        """``"name#version"`` (the revocation subject)."""
        return f"{self.key_name}#{self.version}"

    def fingerprint(self) -> str:
        """SHA-256 of the raw (ML-KEM-768+X25519) or DER public key, hex (as :class:`PublicKey`)."""
        return _fingerprint(self.algorithm, self.key)

    def __repr__(self) -> str:
        return (
            f"<ForensicPublicKey {self.algorithm.value} {self.kid} {self.state.value} "
            f"sha256:{self.fingerprint()[:16]}>"
        )
