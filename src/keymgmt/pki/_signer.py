"""How a CA signs: with a software private key, or with a key held in a token.

Every signature the PKI makes — certificates, intermediates, CRLs (complete
and delta), OCSP responses — goes through :func:`sign_certificate`,
:func:`sign_crl` or :func:`sign_ocsp`. They take a :data:`CASigner`: either a
private key object (a sealed software key, loaded by :mod:`._cakeys`) or an
:class:`ExternalSigner`, a key that signs bytes somewhere else and only
hands back signatures — :class:`TokenSigner`, a private key generated in a
PKCS#11 token (:class:`~keymgmt.keyring.pkcs11.Pkcs11Token`).

Signing outside the process
---------------------------

cryptography's builders sign only with an in-process private key, so for an
external key each signature is made in four steps:

1. The builder signs with a **throwaway** in-process key of the same type
   (P-256, P-384 or RSA) and hash, so the to-be-signed part carries the
   right signature ``AlgorithmIdentifier``. Nothing else in it depends on
   the signing key: the issuer's key identifiers come from the CA
   certificate and public key handed to the builder.
2. The to-be-signed bytes (``tbs_certificate_bytes``, ``tbs_certlist_bytes``,
   ``tbs_response_bytes``) are signed by the external key.
3. The signed object is re-assembled around the new signature::

       Certificate / CertificateList / BasicOCSPResponse ::= SEQUENCE {
           tbs                 (unchanged bytes)
           signatureAlgorithm  (unchanged bytes)
           signature           BIT STRING (0 unused bits || the new signature)
           [0] certs           (BasicOCSPResponse only, unchanged) }

   An OCSP response wraps the BasicOCSPResponse in
   ``OCSPResponse { status, [0] EXPLICIT ResponseBytes { oid, OCTET STRING } }``,
   rebuilt the same way from the inside out.
4. The result is parsed back with cryptography and its signature verified
   under the CA's public key. Anything else fails closed with
   :class:`~keymgmt.errors.IntegrityError`: nothing half-signed is returned,
   and callers sign before they write, so nothing is stored either.

The throwaway keys are generated once per process per type; they are no
secret (their signatures are discarded) and never leave this module.

Record kind (sealed): ``pki-tokenkey``, name ``"<ca>#<CKA_ID hex>"``. A reference to the
CA's key in a token (:class:`TokenKeyReference`: token label, key label,
CKA_ID, algorithm, public key DER) — never key material.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias, TypeVar

import attrs
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp

from keymgmt import _codec
from keymgmt._der import der_read, der_tlv  # re-exported: the PKI reads DER with it
from keymgmt.algorithms import Algorithm
from keymgmt.errors import IntegrityError, InvalidSignatureError
from keymgmt.pki._keys import (
    CertificatePublicKey,
    SigningKey,
    algorithm_of,
    public_key_bits,
    signature_hash,
    spki_der,
    verify_signature,
)

if TYPE_CHECKING:
    from keymgmt.keyring.pkcs11 import Pkcs11Token

_Signed = TypeVar("_Signed", x509.Certificate, x509.CertificateRevocationList)

__all__ = [
    "TOKEN_KEY_KIND",
    "CASigner",
    "ExternalSigner",
    "TokenKeyReference",
    "TokenSigner",
    "der_read",
    "der_tlv",
    "replace_ocsp_signature",
    "replace_signature",
    "sign_certificate",
    "sign_crl",
    "sha1_key_hash",
    "sign_ocsp",
    "signer_algorithm",
    "signer_public_key",
]

TOKEN_KEY_KIND: Final = "pki-tokenkey"  # noqa: S105 - a record kind, not a secret


class ExternalSigner(Protocol):
    """A CA key that signs bytes outside this process (a token) and returns signatures."""

    @property
    def algorithm(self) -> Algorithm:
        """The key's algorithm (ecdsa-p256/p384, rsa-2048/3072/4096)."""
        ...

    def public_key(self) -> CertificatePublicKey:
        """The key's public half."""
        ...

    def sign(self, data: bytes) -> bytes:
        """An X.509 signature over ``data`` (DER ECDSA-Sig-Value, or PKCS#1 v1.5 SHA-256)."""
        ...


#: What the PKI signs with: an in-process private key or an external signer.
CASigner: TypeAlias = SigningKey | ExternalSigner

_SOFTWARE: Final = (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)
_EXTERNAL_ALGORITHMS: Final = (
    Algorithm.ECDSA_P256,
    Algorithm.ECDSA_P384,
    Algorithm.RSA_2048,
    Algorithm.RSA_3072,
    Algorithm.RSA_4096,
)


# -- a little DER: just enough to swap a signature ---------------------------------


def _children(content: bytes) -> list[bytes]:
    """The complete TLVs inside a constructed element's content."""
    out = []
    at = 0
    while at < len(content):
        _, _, end = der_read(content, at)
        out.append(content[at:end])
        at = end
    return out


def _whole(data: bytes, tag: int) -> bytes:
    found, content, end = der_read(data)
    if found != tag or end != len(data):
        raise ValueError(f"expected one DER element with tag {tag:#04x}")
    return content


def replace_signature(
    signed: bytes, signature: bytes, *, tbs: bytes | None = None
) -> tuple[bytes, bytes]:
    """Put ``signature`` into a ``SEQUENCE { tbs, algorithm, BIT STRING, ... }``.

    Args:
        signed: the DER signed object.
        signature: the new signature value.
        tbs: a new to-be-signed element (default: keep the one in ``signed``).

    Returns:
        (the new DER, the to-be-signed element it holds).

    Raises:
        ValueError: ``signed`` is not such a structure.
    """
    parts = _children(_whole(signed, 0x30))
    if len(parts) < 3 or parts[0][0] != 0x30 or parts[1][0] != 0x30 or parts[2][0] != 0x03:
        raise ValueError("not a signed SEQUENCE { tbs, algorithm, signature }")
    if tbs is not None:
        _whole(tbs, 0x30)
        parts[0] = tbs
    bits = der_tlv(0x03, b"\x00" + signature)
    return der_tlv(0x30, parts[0] + parts[1] + bits + b"".join(parts[3:])), parts[0]


def replace_ocsp_signature(
    response: bytes, signature: bytes, *, tbs: bytes | None = None
) -> tuple[bytes, bytes]:
    """Put ``signature`` (and ``tbs``) into the BasicOCSPResponse inside a DER OCSPResponse.

    Returns:
        (the new DER, the tbsResponseData element it keeps).

    Raises:
        ValueError: not a successful OCSPResponse with basic response bytes.
    """
    outer = _children(_whole(response, 0x30))
    if len(outer) != 2 or outer[0][0] != 0x0A:
        raise ValueError("not an OCSPResponse with responseBytes")
    response_bytes = _children(_whole(_whole(outer[1], 0xA0), 0x30))
    if len(response_bytes) != 2 or response_bytes[0][0] != 0x06:
        raise ValueError("malformed ResponseBytes")
    basic, kept = replace_signature(_whole(response_bytes[1], 0x04), signature, tbs=tbs)
    rebuilt = der_tlv(
        0x30,
        outer[0] + der_tlv(0xA0, der_tlv(0x30, response_bytes[0] + der_tlv(0x04, basic))),
    )
    return rebuilt, kept


# -- signers --------------------------------------------------------------------------


def signer_public_key(signer: CASigner) -> CertificatePublicKey:
    """The public key of a software key or an external signer."""
    return signer.public_key()


def signer_algorithm(signer: CASigner) -> Algorithm:
    """The keymgmt algorithm of a software key or an external signer.

    Raises:
        UnsupportedAlgorithmError: a key type or size keymgmt does not sign with.
    """
    if isinstance(signer, _SOFTWARE):
        return algorithm_of(signer)
    return signer.algorithm


def _hash_for(algorithm: Algorithm) -> hashes.SHA256 | hashes.SHA384:
    return hashes.SHA384() if algorithm is Algorithm.ECDSA_P384 else hashes.SHA256()


# Throwaway keys: generated once per process and type, signatures discarded.
_THROWAWAY: dict[str, SigningKey] = {}
_THROWAWAY_LOCK = threading.Lock()


def _throwaway(algorithm: Algorithm) -> SigningKey:
    if algorithm not in _EXTERNAL_ALGORITHMS:
        raise IntegrityError(f"an external CA key cannot be {algorithm.value}")
    family = algorithm.value if algorithm in (Algorithm.ECDSA_P256, Algorithm.ECDSA_P384) else "rsa"
    with _THROWAWAY_LOCK:
        key = _THROWAWAY.get(family)
        if key is None:
            if algorithm is Algorithm.ECDSA_P256:
                key = ec.generate_private_key(ec.SECP256R1())
            elif algorithm is Algorithm.ECDSA_P384:
                key = ec.generate_private_key(ec.SECP384R1())
            else:  # sha256WithRSAEncryption names no key size: one RSA key serves all
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _THROWAWAY[family] = key
    return key


_THROWAWAY_CERTS: dict[str, x509.Certificate] = {}


def _throwaway_certificate(algorithm: Algorithm) -> x509.Certificate:
    """A self-signed certificate of the throwaway key (to name it as OCSP responder)."""
    import datetime as _dt

    key = _throwaway(algorithm)
    family = "rsa" if isinstance(key, rsa.RSAPrivateKey) else algorithm.value
    with _THROWAWAY_LOCK:
        cert = _THROWAWAY_CERTS.get(family)
    if cert is None:
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "keymgmt throwaway")])
        start = _dt.datetime(2000, 1, 1, tzinfo=_dt.UTC)
        cert = x509.CertificateBuilder(
            issuer_name=name,
            subject_name=name,
            public_key=key.public_key(),
            serial_number=1,
            not_valid_before=start,
            not_valid_after=start,
        ).sign(key, _hash_for(algorithm))
        with _THROWAWAY_LOCK:
            _THROWAWAY_CERTS[family] = cert
    return cert


def _check(
    signer: ExternalSigner,
    signature: bytes,
    tbs: bytes,
    hash_algorithm: hashes.HashAlgorithm | None,
) -> None:
    try:
        verify_signature(signer.public_key(), signature, tbs, hash_algorithm)
    except InvalidSignatureError:
        raise IntegrityError(
            "the external CA key's signature does not verify under the CA public key "
            "(is the token key the one the store references?); nothing was signed"
        ) from None


def _malformed() -> IntegrityError:
    return IntegrityError("could not re-assemble the signed object around the token signature")


def _sign_external(
    signer: CASigner,
    builder: Any,
    tbs_of: Callable[[Any], bytes],
    load: Callable[[bytes], _Signed],
) -> _Signed:
    """Sign ``builder``'s object with a software key, or in the token around a draft.

    The draft is signed by a throwaway key of the CA key's type (so its
    AlgorithmIdentifier is right); the token signs the draft's TBS bytes,
    the DER is re-assembled around that signature, parsed back, and checked
    to keep the same TBS and to verify under the CA key.
    """
    if isinstance(signer, _SOFTWARE):
        return builder.sign(signer, signature_hash(signer))  # type: ignore[no-any-return]
    draft = builder.sign(_throwaway(signer.algorithm), _hash_for(signer.algorithm))
    tbs = tbs_of(draft)
    signature = signer.sign(tbs)
    try:
        der, kept = replace_signature(draft.public_bytes(serialization.Encoding.DER), signature)
        signed = load(der)
    except ValueError:
        raise _malformed() from None
    if kept != tbs or tbs_of(signed) != tbs:
        raise _malformed()
    _check(signer, signed.signature, tbs, signed.signature_hash_algorithm)
    return signed


def sign_certificate(signer: CASigner, builder: x509.CertificateBuilder) -> x509.Certificate:
    """Sign a certificate with a software key or an external signer.

    Raises:
        IntegrityError: the external signature does not verify (fail closed).
        TokenUnavailableError: the token cannot sign.
    """
    return _sign_external(
        signer, builder, lambda c: c.tbs_certificate_bytes, x509.load_der_x509_certificate
    )


def sign_crl(
    signer: CASigner, builder: x509.CertificateRevocationListBuilder
) -> x509.CertificateRevocationList:
    """Sign a CRL (complete or delta) with a software key or an external signer.

    Raises:
        IntegrityError: the external signature does not verify (fail closed).
        TokenUnavailableError: the token cannot sign.
    """
    return _sign_external(signer, builder, lambda c: c.tbs_certlist_bytes, x509.load_der_x509_crl)


def sign_ocsp(
    signer: CASigner, builder: ocsp.OCSPResponseBuilder, *, responder: x509.Certificate
) -> ocsp.OCSPResponse:
    """Sign an OCSP response (responder id by key hash) with a software key or an external signer.

    ``builder`` must not have a responder id yet: this sets it from
    ``responder`` (the certificate of ``signer``'s public key). cryptography
    refuses to sign when the responder certificate's key is not the signing
    key, so for an external signer the draft names the throwaway key's
    certificate and its ``byKey`` ResponderID (a 20-byte SHA-1 key hash) is
    replaced with ``responder``'s before the token signs the TBS.

    Raises:
        ValueError: the builder cannot build the response (as ``builder.sign``).
        IntegrityError: the external signature does not verify, or ``responder``
            is not the certificate of the external signer's key (fail closed).
        TokenUnavailableError: the token cannot sign.
    """
    if isinstance(signer, _SOFTWARE):
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
        return builder.sign(signer, signature_hash(signer))
    if spki_der(responder) != spki_der(signer.public_key()):
        # The software path's builder refuses this too: the response would
        # name (by key hash) a responder whose key did not sign it.
        raise IntegrityError(
            "the OCSP responder certificate is not the external signer's key; nothing was signed"
        )
    throwaway = _throwaway(signer.algorithm)
    draft = builder.responder_id(
        ocsp.OCSPResponderEncoding.HASH, _throwaway_certificate(signer.algorithm)
    ).sign(throwaway, _hash_for(signer.algorithm))
    try:
        key_hash = sha1_key_hash(responder)
        tbs = _replace_responder_key_hash(draft.tbs_response_bytes, key_hash)
        signature = signer.sign(tbs)
        der, kept = replace_ocsp_signature(
            draft.public_bytes(serialization.Encoding.DER), signature, tbs=tbs
        )
        response = ocsp.load_der_ocsp_response(der)
        tbs_after = response.tbs_response_bytes
        named = response.responder_key_hash
    except ValueError:
        raise _malformed() from None
    if kept != tbs or tbs_after != tbs or named != key_hash:
        raise _malformed()
    _check(signer, response.signature, tbs, response.signature_hash_algorithm)
    return response


def sha1_key_hash(cert: x509.Certificate) -> bytes:
    """RFC 6960 KeyHash for a ResponderID ``byKey``: SHA-1 of the subjectPublicKey bits."""
    digest = hashes.Hash(hashes.SHA1())  # noqa: S303 - RFC 6960 ResponderID byKey is SHA-1
    digest.update(public_key_bits(cert))
    return digest.finalize()


def _replace_responder_key_hash(tbs: bytes, key_hash: bytes) -> bytes:
    """tbsResponseData with its ``byKey`` ResponderID set to ``key_hash``.

    ``ResponseData ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, responderID
    ResponderID, producedAt, responses, responseExtensions [1] OPTIONAL }``;
    ``ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }``.
    """
    parts = _children(_whole(tbs, 0x30))
    at = 1 if parts and parts[0][0] == 0xA0 else 0
    if len(parts) <= at or parts[at][0] != 0xA2:
        raise ValueError("the draft OCSP response has no byKey responder id")
    parts[at] = der_tlv(0xA2, der_tlv(0x04, key_hash))
    return der_tlv(0x30, b"".join(parts))


# -- keys in a PKCS#11 token ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class TokenKeyReference:
    """Where a CA's private key lives in a token (what the store keeps; no key material).

    Attributes:
        token: the token's label.
        label: CKA_LABEL of the key pair.
        key_id: CKA_ID of the key pair.
        algorithm: the key's algorithm.
        public_key_der: its SubjectPublicKeyInfo (DER).
    """

    token: str
    label: str
    key_id: bytes
    algorithm: Algorithm
    public_key_der: bytes = attrs.field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The sealed record's content."""
        return {
            "type": "pkcs11",
            "token": self.token,
            "label": self.label,
            "key_id": self.key_id.hex(),
            "algorithm": self.algorithm.value,
            "public_key": _codec.b64e(self.public_key_der),
            "attributes": {"sensitive": True, "extractable": False, "sign": True},
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> TokenKeyReference:
        """Read a stored reference.

        Raises:
            IntegrityError: the record is malformed.
        """
        try:
            if record["type"] != "pkcs11":
                raise ValueError("not a PKCS#11 reference")
            return cls(
                token=str(record["token"]),
                label=str(record["label"]),
                key_id=bytes.fromhex(str(record["key_id"])),
                algorithm=Algorithm(record["algorithm"]),
                public_key_der=_codec.b64d(record["public_key"]),
            )
        except (KeyError, ValueError, TypeError):
            raise IntegrityError("a CA token key reference is malformed") from None


class TokenSigner:
    """An :class:`ExternalSigner` whose private key is in a PKCS#11 token.

    Args:
        token: the token (its PIN opens the sessions).
        reference: which key, and its public half.

    Raises:
        IntegrityError: the reference's public key does not parse or does
            not match its algorithm.
    """

    def __init__(self, token: Pkcs11Token, reference: TokenKeyReference) -> None:
        self._token = token
        self.reference = reference
        try:
            public = serialization.load_der_public_key(reference.public_key_der)
            if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
                raise ValueError("not an ECDSA or RSA key")
            if algorithm_of(public) is not reference.algorithm:
                raise ValueError("the public key does not match the algorithm")
        except (ValueError, TypeError, UnsupportedAlgorithm):
            # algorithm_of's UnsupportedAlgorithmError is a ValueError too
            raise IntegrityError("a CA token key reference holds a bad public key") from None
        self._public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey = public

    def __repr__(self) -> str:
        return (
            f"TokenSigner(token={self.reference.token!r}, key={self.reference.label!r}, "
            f"algorithm={self.reference.algorithm.value!r})"
        )

    def __reduce__(self) -> Any:
        raise TypeError("token signers cannot be pickled")

    @property
    def algorithm(self) -> Algorithm:
        """The key's algorithm."""
        return self.reference.algorithm

    def public_key(self) -> CertificatePublicKey:
        """The key's public half (from the reference)."""
        return self._public

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` in the token (X.509 signature encoding).

        Raises:
            TokenUnavailableError: the token is closed, missing, lacks the key or failed.
            WrongPassphraseError: the PIN is wrong.
        """
        return self._token.sign(
            data,
            algorithm=self.reference.algorithm,
            label=self.reference.label,
            key_id=self.reference.key_id,
        )
