"""Who is on the other end: credentials we present, and how a peer's chain is judged.

A :class:`Credential` is what a party presents: its certificate chain (leaf
first) and the private key of the leaf. A :class:`PeerVerifier` judges what
the peer presents: it takes the chain as DER, the identity the caller
expects, the role the peer plays (its certificate must carry the matching
extended key usage) and the time, and returns a :class:`VerifiedPeer` or
raises :class:`~keymgmt.errors.PeerVerificationError` whose ``reason`` says
why (``"expired"``, ``"revoked"``, ``"unknown-issuer"``, ``"name-mismatch"``,
``"wrong-usage"``, ...).

Both verifiers here are adapters over the PKI's one path validator,
:class:`keymgmt.pki.CertificateVerifier`: :class:`PKIPeerVerifier` takes
one (usually ``km.pki.verifier()``), :class:`ChainVerifier` builds one over
explicit trust anchors and a revocation callback, for tests and callers
without a PKI. What they add is the handshake's own demands on the leaf
(:func:`check_leaf`: the role's extended key usage, a key that may sign,
not a CA, an Ed25519 or ECDSA P-256/P-384 key) and the mapping of the PKI's
errors to :class:`~keymgmt.errors.PeerVerificationError`.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keymgmt.clock import ensure_aware
from keymgmt.errors import (
    CertificateError,
    CertificateRevokedError,
    CertificateVerificationError,
    InvalidArgumentError,
    KeyMgmtError,
    MalformedInputError,
    PeerVerificationError,
)
from keymgmt.pki import (
    CertificateVerifier,
    Purpose,
    RevocationLookup,
    RevocationPolicy,
)
from keymgmt.revocation import RevocationReason

__all__ = [
    "PKIPeerVerifier",
    "ChainVerifier",
    "Credential",
    "PeerPrivateKey",
    "PeerPublicKey",
    "PeerRole",
    "PeerVerifier",
    "VerifiedPeer",
]

PeerPublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PeerPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey

_MAX_DEPTH = 8

#: What pyca raises on malformed certificate DER: at load time (a bad
#: version; a non-positive serial warns, an error under ``-W error``), when
#: the lazily parsed extensions are first read, and for an unknown key type.
_PARSE_ERRORS = (
    ValueError,
    UnsupportedAlgorithm,
    TypeError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    CryptographyDeprecationWarning,
)


class PeerRole(enum.StrEnum):
    """The role the peer plays; its leaf must carry the matching extended key usage."""

    SERVER = "server"
    CLIENT = "client"

    @property
    def eku(self) -> x509.ObjectIdentifier:
        """The extended key usage OID this role needs."""
        if self is PeerRole.SERVER:
            return ExtendedKeyUsageOID.SERVER_AUTH
        return ExtendedKeyUsageOID.CLIENT_AUTH


@attrs.frozen
class VerifiedPeer:
    """A peer whose chain verified.

    Attributes:
        identity: the verified name (the expected one, or the leaf's first
            subject alternative name when none was expected).
        public_key: the leaf's public key (verifies the transcript signature).
        certificate: the leaf certificate.
        chain: the path, leaf first, ending at the trust anchor.
    """

    identity: str
    public_key: PeerPublicKey = attrs.field(repr=False)
    certificate: x509.Certificate = attrs.field(repr=False)
    chain: tuple[x509.Certificate, ...] = attrs.field(repr=False)


@runtime_checkable
class PeerVerifier(Protocol):
    """Judges a peer's certificate chain. Implementations must be thread-safe."""

    def verify_peer(
        self,
        chain: Sequence[bytes],
        *,
        expected_identity: str | None,
        role: PeerRole,
        at: _dt.datetime,
    ) -> VerifiedPeer:
        """Verify ``chain`` (DER, leaf first) for ``role`` at time ``at``.

        Raises:
            PeerVerificationError: refused; ``reason`` says why.
        """
        ...


def _public_bytes(key: object) -> bytes:
    if isinstance(key, ed25519.Ed25519PublicKey) or (
        isinstance(key, ec.EllipticCurvePublicKey)
        and isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1)
    ):
        return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    raise InvalidArgumentError("only Ed25519 and ECDSA (P-256, P-384) keys can authenticate")


def _check_credential(instance: Credential, attribute: Any, value: Any) -> None:
    if not instance.chain:
        raise InvalidArgumentError("a credential needs at least the leaf certificate")
    leaf_key = _public_bytes(instance.chain[0].public_key())
    if _public_bytes(instance.private_key.public_key()) != leaf_key:
        raise InvalidArgumentError("the private key does not match the leaf certificate")


def _certificates(value: Iterable[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    return tuple(value)


@attrs.frozen
class Credential:
    """What a party presents: its chain (leaf first, no anchor needed) and leaf key.

    Raises:
        InvalidArgumentError: an empty chain, an unsupported key type, or a
            key that does not match the leaf.
    """

    chain: tuple[x509.Certificate, ...] = attrs.field(converter=_certificates)
    private_key: PeerPrivateKey = attrs.field(repr=False, validator=_check_credential)
    chain_der: tuple[bytes, ...] = attrs.field(init=False, repr=False, eq=False)

    @chain_der.default
    def _der(self) -> tuple[bytes, ...]:
        return tuple(c.public_bytes(Encoding.DER) for c in self.chain)

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` with the leaf key (Ed25519, or ECDSA with the curve's hash)."""
        key = self.private_key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        return key.sign(data, ec.ECDSA(_ec_hash(key.curve)))


def _ec_hash(curve: ec.EllipticCurve) -> hashes.HashAlgorithm:
    return hashes.SHA384() if curve.key_size >= 384 else hashes.SHA256()


def verify_signature(key: PeerPublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` over ``data`` verifies under ``key``."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, ec.ECDSA(_ec_hash(key.curve)))
    except InvalidSignature:
        return False
    return True


def _refuse(reason: str, message: str) -> PeerVerificationError:
    return PeerVerificationError(f"peer refused: {message}", reason=reason)


def certificate_names(cert: x509.Certificate) -> list[str]:
    """The leaf's names: DNS, URI and e-mail SANs, else its common name."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    names: list[str] = []
    if san is not None:
        for kind in (x509.DNSName, x509.UniformResourceIdentifier, x509.RFC822Name):
            names.extend(str(v) for v in san.get_values_for_type(kind))
    if not names:
        names.extend(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    return names


def check_leaf(leaf: x509.Certificate, *, role: PeerRole) -> PeerPublicKey:
    """What the handshake needs of the leaf beyond path validation; return its key.

    The leaf must carry the role's extended key usage, may sign (when it has
    a key usage at all), must not be a CA and must hold an Ed25519 or ECDSA
    P-256/P-384 key (it signs the transcript). The path, validity, name and
    revocation are the PKI verifier's.

    Raises:
        PeerVerificationError: wrong usage or an unusable key (``reason``).
    """
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise _refuse("wrong-usage", "the certificate has no extended key usage") from None
    if role.eku not in eku:
        raise _refuse("wrong-usage", f"the certificate is not for {role.value} authentication")
    try:
        key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        key_usage = None
    if key_usage is not None and not key_usage.digital_signature:
        raise _refuse("wrong-usage", "the certificate's key usage does not allow signing")
    try:
        is_ca = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if is_ca:
        raise _refuse("wrong-usage", "the peer presented a CA certificate as its leaf")
    key = leaf.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(
        key.curve, ec.SECP256R1 | ec.SECP384R1
    ):
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise _refuse("unsupported-key", "the certificate key is not Ed25519 or ECDSA P-256/P-384")


#: The peer-facing words for the PKI's failures where they read better.
_PEER_MESSAGES = {
    "unknown-issuer": "the chain does not lead to a trusted CA",
    "not-a-ca": "an issuer in the chain is not a CA",
}


def _identity(leaf: x509.Certificate, expected_identity: str | None) -> str:
    if expected_identity is not None:
        return expected_identity  # the PKI verifier matched it
    names = certificate_names(leaf)
    if not names:
        raise _refuse("name-mismatch", "the certificate names nobody")
    return names[0]


class PKIPeerVerifier:
    """The default :class:`PeerVerifier`: the PKI's verification with revocation.

    Args:
        verifier: a :class:`keymgmt.pki.CertificateVerifier`, usually
            ``km.pki.verifier()`` (the store's roots; revocations of our own
            CAs' certificates from the registry, fail-closed otherwise).
        crls: CRLs for peers issued by CAs outside the store.
        ocsp_responses: OCSP responses likewise (DER).
    """

    def __init__(
        self,
        verifier: CertificateVerifier,
        *,
        crls: Sequence[x509.CertificateRevocationList] = (),
        ocsp_responses: Sequence[bytes] = (),
    ) -> None:
        self._verifier = verifier
        self._crls = tuple(crls)
        self._ocsp = tuple(ocsp_responses)

    def verify_peer(
        self,
        chain: Sequence[bytes],
        *,
        expected_identity: str | None,
        role: PeerRole,
        at: _dt.datetime,
    ) -> VerifiedPeer:
        """Verify ``chain`` (DER, leaf first) through the PKI for ``role`` at ``at``.

        Raises:
            PeerVerificationError: refused; ``reason`` is the PKI's
                :class:`~keymgmt.pki.VerificationFailure` value (``"expired"``,
                ``"revoked"``, ``"unknown-issuer"``, ``"name-mismatch"``,
                ``"wrong-usage"``, ...) or ``"malformed-certificate"``,
                ``"malformed-chain"``, ``"unsupported-key"``; a revoked peer
                also carries ``revocation_reason`` and ``serial``.
        """
        at = ensure_aware(at, "at")
        if not chain or len(chain) > _MAX_DEPTH:
            raise _refuse("malformed-chain", "the chain is empty or too long")
        try:
            certs = [x509.load_der_x509_certificate(der) for der in chain]
        except _PARSE_ERRORS:
            raise _refuse("malformed-certificate", "a certificate does not parse") from None
        purpose = Purpose.TLS_SERVER if role is PeerRole.SERVER else Purpose.TLS_CLIENT
        try:
            key = check_leaf(certs[0], role=role)
            path = self._verifier.verify(
                certs[0],
                intermediates=certs[1:],
                crls=self._crls,
                ocsp_responses=self._ocsp,
                at=at,
                purpose=purpose,
                name=expected_identity,
            )
            identity = _identity(certs[0], expected_identity)
        except CertificateRevokedError as exc:
            reason = getattr(exc, "reason", None)
            raise PeerVerificationError(
                f"peer refused: {exc.message}",
                reason="revoked",
                revocation_reason=None if reason is None else str(reason),
                serial=getattr(exc, "serial", None),
            ) from None
        except CertificateVerificationError as exc:
            failure = str(getattr(exc, "reason", "invalid-path"))
            message = _PEER_MESSAGES.get(failure, exc.message)
            if failure == "name-mismatch" and expected_identity is not None:
                message = f"the certificate is not issued to {expected_identity!r}"
            raise PeerVerificationError(f"peer refused: {message}", reason=failure) from None
        except (MalformedInputError, CertificateError) as exc:  # unparsable peer input
            # Other KeyMgmtErrors (a store that is unavailable, ...) are local
            # failures, not the peer's: they propagate unchanged.
            raise PeerVerificationError(
                f"peer refused: {exc.message}", reason="malformed-certificate"
            ) from None
        except KeyMgmtError:
            raise
        except _PARSE_ERRORS:
            # pyca parses extensions on first access: a duplicate extension,
            # an x400Address/ediPartyName or a malformed value in the peer's
            # leaf or intermediates surfaces here, not at load time.
            raise _refuse(
                "malformed-certificate", "a certificate extension does not parse"
            ) from None
        return VerifiedPeer(identity, key, certs[0], tuple(path.chain))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._verifier!r})"


#: ``revoked(cert, issuer)``: an RFC 5280 reason name when ``cert`` is
#: revoked, ``None`` when it is not.
RevokedCallback = Callable[[x509.Certificate, x509.Certificate], "RevocationReason | str | None"]


class ChainVerifier(PKIPeerVerifier):
    """A store-less :class:`PeerVerifier` over explicit trust anchors.

    For tests and callers without a PKI in a store. It is the PKI's verifier
    (:class:`keymgmt.pki.CertificateVerifier`, the one path validation
    keymgmt has) built over ``trust_anchors``, with ``revoked`` as its
    revocation lookup.

    Args:
        trust_anchors: the root (or pinned intermediate) certificates.
        revoked: called with each certificate in the path below the anchor
            and its issuer; returns an RFC 5280 reason name
            (:class:`~keymgmt.revocation.RevocationReason`) when it is
            revoked, ``None`` when it is not. Without it no revocation is
            checked.

    Raises:
        InvalidArgumentError: no trust anchors; (at verification) the
            callback answered a reason that is not an RFC 5280 reason.
    """

    def __init__(
        self,
        trust_anchors: Sequence[x509.Certificate],
        *,
        revoked: RevokedCallback | None = None,
    ) -> None:
        lookup = None if revoked is None else _lookup(revoked)
        super().__init__(
            CertificateVerifier(
                trust_anchors=trust_anchors,
                registry=lookup,
                policy=RevocationPolicy.REQUIRE if lookup else RevocationPolicy.SOFT_FAIL,
            )
        )


def _lookup(revoked: RevokedCallback) -> RevocationLookup:
    def lookup(issuer: x509.Certificate, cert: x509.Certificate) -> RevocationReason | None:
        reason = revoked(cert, issuer)
        if reason is None:
            return None
        try:
            return RevocationReason(reason)
        except ValueError:
            raise InvalidArgumentError(
                f"the revocation callback answered {reason!r}, not an RFC 5280 reason"
            ) from None

    return lookup
