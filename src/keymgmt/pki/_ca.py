"""Certificate authorities kept in the store (``km.pki``).

Record kinds (all sealed, see :mod:`keymgmt._store`):

``pki-ca``      name = CA name. The CA certificate (DER), its parent CA,
                its key reference (``name#version``), CRL/OCSP URLs.
``pki-cakey``   the CA private key (PKCS#8 DER), see :mod:`._cakeys`.
``pki-tokenkey`` name = ``"<ca>#<key id>"``, for a CA whose key is in a PKCS#11 token:
                a reference to it (token, label, id, public key), never the
                key; see :mod:`._signer`.
``pki-cert``    name = ``"<ca>:<serial hex>"``. Every certificate a CA
                issued: DER, profile, subject, validity, and for CA
                certificates the child CA's name and key reference.
``pki-crl``     name = CA name. CRL state: last CRL number, the base of
                delta CRLs, and the last complete CRL (DER) with what it
                covered, so an unchanged CRL is not re-signed until due.
``pki-key``     name = ``"<ca>:<SHA-256 of the SPKI DER>"``: a public key's
                head: whether the CA revoked the key for a compromise (read,
                and checked at commit, by every issuance for the key); see
                :mod:`._keyindex`.
``pki-key-cert`` name = ``"<ca>:<fingerprint>:<serial hex>"``: one per
                certificate, what the CA certified the key under.

Revocations live in the revocation registry (``km.revocation``), subject
``"<ca name>:<serial hex>"`` (``SubjectKind.CERTIFICATE``): a revoke is one
registry write, O(1) whatever the number of revoked certificates.
"""

from __future__ import annotations

import binascii
import datetime as _dt
import functools
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar, cast

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keymgmt import _codec
from keymgmt._context import Context
from keymgmt._store import Txn
from keymgmt.algorithms import Algorithm
from keymgmt.clock import ensure_aware
from keymgmt.errors import (
    AlreadyExistsError,
    CertificateError,
    InvalidArgumentError,
    InvalidSignatureError,
    KeyMgmtError,
    NotFoundError,
    RevokedError,
)
from keymgmt.keys._keystore import VERSION_KIND
from keymgmt.pki import _keyindex
from keymgmt.pki._cakeys import TOKEN_REF_PREFIX, CAKeys, key_name_for
from keymgmt.pki._crl import CRLEntry, CRLIndex, build_crl, removed_serials
from keymgmt.pki._keys import (
    RSA_ALGORITHMS,
    CertificatePublicKey,
    SigningKey,
    algorithm_of,
    ca_algorithm,
    public_key_info,
)
from keymgmt.pki._names import (
    EMPTY_NAME,
    check_general_name,
    check_name_forms,
    check_subject,
    check_uri,
    csr_subject,
    mark_names_critical,
    subject_constraint_names,
)
from keymgmt.pki._ocsp import CertStatus, OCSPResponder
from keymgmt.pki._parse import checked_csr, load_certificate, load_csr
from keymgmt.pki._pathval import name_allowed
from keymgmt.pki._profiles import (
    INTERMEDIATE_CA,
    PROFILES,
    ROOT_CA,
    TLS_SERVER,
    Extension,
    ExtensionTemplate,
    Profile,
    build_extensions,
    check_path_length,
    extension_template,
    name_constraints,
    parse_names,
)
from keymgmt.pki._signer import CASigner, sign_certificate, signer_algorithm, signer_public_key
from keymgmt.pki._verify import (
    CertificateVerifier,
    Purpose,
    RevocationPolicy,
    VerifiedPath,
    ca_compromise,
    ca_lookup,
)
from keymgmt.revocation import (
    REVOCATION_KIND,
    Revocation,
    RevocationReason,
    SubjectKind,
)

if TYPE_CHECKING:
    from keymgmt.keyring.pkcs11 import Pkcs11Token
    from keymgmt.keys import KeyStore
    from keymgmt.storage import Record

__all__ = [
    "CA_KIND",
    "CERT_KIND",
    "CRL_KIND",
    "PKI",
    "CertificateAuthority",
    "IssueRequest",
    "IssuedCertificate",
]

CA_KIND: Final = "pki-ca"
CERT_KIND: Final = "pki-cert"
CRL_KIND: Final = "pki-crl"

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_F = TypeVar("_F", bound=Callable[..., Any])
_SERIAL_BYTES: Final = 16  # 127 bits of entropy after clearing the sign bit
_MAX_NAMES: Final = 100  # subject alternative names per certificate


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgumentError(
            f"invalid CA name {name!r}: use 1-63 of a-z 0-9 . _ - (starting alphanumeric)"
        )
    return name


def _subject(value: str | x509.Name | None, default_cn: str) -> x509.Name:
    if isinstance(value, x509.Name):
        return value
    if value is None:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, default_cn)])
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError("the subject is empty")
    try:
        if "=" in value:
            return x509.Name.from_rfc4514_string(value)
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value)])
    except ValueError as exc:  # incl. a common name over 64 characters, lone surrogates
        why = str(exc) or "not an RFC 4514 name"
        raise InvalidArgumentError(f"invalid subject {value!r}: {why}") from None


def _ca_subject(value: str | x509.Name | None, default_cn: str) -> x509.Name:
    """A CA's subject: non-empty, its attributes checked as a leaf's are.

    Raises:
        InvalidArgumentError: empty (RFC 5280 4.1.2.6: a CA's subject MUST
            be a non-empty name), malformed, or an empty, overlong or
            control-character attribute.
    """
    name = _subject(value, default_cn)
    if name == EMPTY_NAME:
        raise InvalidArgumentError("a CA's subject must not be empty (RFC 5280 4.1.2.6)")
    check_subject(name, (), EMPTY_NAME)  # its attributes (no issuer equals a non-empty name)
    return name


# A common name that RFC 4514 writes as it is: none of the characters it
# escapes, no leading "#" or space, no trailing space (RFC 4514 2.4).
_PLAIN_CN: Final = re.compile(r'[^\\"+,;<>\x00# ](?:[^\\"+,;<>\x00]*[^\\"+,;<>\x00 ])?')


def _leaf_subject(value: str | x509.Name) -> tuple[x509.Name, str]:
    """The subject of a leaf and its RFC 4514 text (for its record and audit entry).

    A plain common name (the usual ``subject="svc"``) is written without
    walking the Name (``rfc4514_string`` costs microseconds per
    certificate); anything else is left to cryptography.

    Raises:
        InvalidArgumentError: an empty or malformed subject.
    """
    name = _subject(value, "")
    if isinstance(value, str) and "=" not in value and _PLAIN_CN.fullmatch(value):
        return name, "CN=" + value
    return name, name.rfc4514_string()


def _timedelta(value: object, what: str) -> _dt.timedelta:
    """``value`` if it is a ``timedelta``.

    Raises:
        InvalidArgumentError: it is anything else (an int of seconds or days, a string).
    """
    if not isinstance(value, _dt.timedelta):
        raise InvalidArgumentError(
            f"{what} must be a datetime.timedelta, got {type(value).__name__}"
        )
    return value


def _seconds(value: _dt.datetime) -> _dt.datetime:
    return value.replace(microsecond=0)


#: The last time a certificate or CRL can carry (RFC 5280 4.1.2.5: GeneralizedTime).
_LAST: Final = _dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=_dt.UTC)


def _until(start: _dt.datetime, lifetime: _dt.timedelta, what: str) -> _dt.datetime:
    """``start + lifetime``, refused past 9999-12-31 (where datetime overflows).

    Raises:
        InvalidArgumentError: it would end after 9999-12-31T23:59:59Z.
    """
    if lifetime > _LAST - start:
        raise InvalidArgumentError(f"the {what} would end after {_LAST.isoformat()}")
    return start + lifetime


def _hex(serial: int) -> str:
    return format(serial, "x")


class _Leaf(NamedTuple):
    """One checked end-entity request: what its certificate certifies."""

    profile: Profile
    subject: x509.Name
    subject_text: str  # RFC 4514, for the record and the audit entry
    public_key: CertificatePublicKey
    names: list[x509.GeneralName]
    algorithm: Algorithm


_MAX_BATCH: Final = 10_000  # certificates per issue_many() call
_MAX_TEMPLATES: Final = 32  # extension templates remembered per CA handle
_ZERO: Final = _dt.timedelta(0)


@attrs.frozen(kw_only=True)
class IssueRequest:
    """One certificate for :meth:`CertificateAuthority.issue_many`.

    The fields mean what :meth:`CertificateAuthority.issue`'s arguments
    mean: exactly one of ``csr`` and ``public_key``; ``subject`` is required
    with ``public_key``.
    """

    csr: x509.CertificateSigningRequest | bytes | str | None = None
    public_key: CertificatePublicKey | None = None
    subject: str | x509.Name | None = None
    names: Sequence[str | x509.GeneralName] | None = None
    profile: Profile | str = TLS_SERVER
    validity: _dt.timedelta | None = None
    not_before: _dt.datetime | None = None


def _cert_record(
    serial: int,
    der: bytes,
    profile: Profile,
    subject_text: str,
    start: _dt.datetime,
    end: _dt.datetime,
    replaces: int | None = None,
) -> dict[str, Any]:
    """The sealed record of one issued certificate (what :meth:`issued` lists)."""
    return {
        "serial": _hex(serial),
        "der": _codec.b64e(der),
        "profile": profile.name,
        "subject": subject_text,
        "not_before": _codec.to_micros(start),
        "not_after": _codec.to_micros(end),
        "child_ca": None,
        "child_key": None,
        "replaces": None if replaces is None else _hex(replaces),
    }


_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
# Read once: on Python 3.11 each access to an enum member through its class
# runs a descriptor in Python (about a microsecond per issuance here).
_DER: Final = serialization.Encoding.DER
_json_text: Final[Callable[[str], str]] = json.encoder.encode_basestring  # what _codec writes


def _leaf_record_bytes(
    serial_hex: str,
    der: bytes,
    profile: Profile,
    subject_text: str,
    not_before: int,
    not_after: int,
) -> bytes:
    """``_codec.dumps(_cert_record(...))`` of an end-entity certificate, formatted directly.

    The same bytes (sorted keys, no whitespace, text JSON-escaped as the
    canonical encoder escapes it; a property test compares them), without
    walking a dict and re-scanning the base64 of the DER for characters to
    escape: several microseconds per certificate.

    Raises:
        InvalidArgumentError: the subject text cannot be encoded (a lone surrogate).
    """
    b64 = binascii.b2a_base64(der, newline=False).rstrip(b"=").translate(_TO_URLSAFE)
    try:
        return (
            b'{"child_ca":null,"child_key":null,"der":"%s","not_after":%d,"not_before":%d,'
            b'"profile":%s,"replaces":null,"serial":"%s","subject":%s}'
            % (
                b64,
                not_after,
                not_before,
                _json_text(profile.name).encode(),
                serial_hex.encode(),
                _json_text(subject_text).encode(),
            )
        )
    except UnicodeEncodeError:
        raise InvalidArgumentError("text must be valid Unicode (no lone surrogates)") from None


@attrs.frozen(kw_only=True)
class IssuedCertificate:
    """A certificate a CA issued, with its revocation state."""

    ca: str
    serial: int
    subject: str
    profile: str
    not_before: _dt.datetime
    not_after: _dt.datetime
    certificate: x509.Certificate = attrs.field(repr=False)
    revocation: Revocation | None = None
    child_ca: str | None = None

    @property
    def serial_hex(self) -> str:
        """The serial number in lowercase hex (as in revocation subjects)."""
        return _hex(self.serial)

    def expired(self, at: _dt.datetime) -> bool:
        """Whether the certificate has expired at ``at``."""
        return at > self.not_after

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)


def _ca_creation(method: _F) -> _F:
    """Run a CA creation under the PKI's creation lock.

    Notes a key the creation made and then failed to use, so a retry in
    this process may give it a fresh version (:meth:`PKI._new_ca_key`).
    """

    @functools.wraps(method)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        pki: PKI = self if isinstance(self, PKI) else self._pki
        with pki._creation_lock:
            made = pki._keys_made
            made.clear()
            try:
                return method(self, *args, **kwargs)
            except BaseException:
                pki._leftovers.update(made)
                raise
            finally:
                made.clear()

    return cast(_F, create)


class PKI:
    """The store's certificate authorities (``km.pki``).

    Args:
        context: the manager's wiring (store, revocation registry, clock, randomness).
        keys: the key store that holds the CA private keys (``km.keys``).
    """

    def __init__(self, context: Context, keys: KeyStore) -> None:
        self._ctx = context
        self._keys = CAKeys(keys, context)
        self._lock = threading.RLock()
        self._cas: dict[str, CertificateAuthority] = {}
        self._verifier: CertificateVerifier | None = None
        self._ca_ids: dict[x509.Certificate, str] | None = None
        # CA creation (rare) runs one at a time in this process; a creation
        # that fails after making its key leaves the name here, so a retry
        # in this process may give that key a fresh version (see _new_ca_key).
        self._creation_lock = threading.Lock()
        self._keys_made: list[str] = []  # by the creation running now
        self._leftovers: set[str] = set()
        context.store.watch(CA_KIND)
        context.store.subscribe(self._on_change)

    def __repr__(self) -> str:
        return "PKI()"

    # -- cache -----------------------------------------------------------------

    def _on_change(self, records: Sequence[Record]) -> None:
        if any(r.kind == CA_KIND for r in records):
            self._invalidate()

    def _invalidate(self) -> None:
        with self._lock:
            self._cas.clear()
            self._verifier = None
            self._ca_ids = None

    # -- CAs ---------------------------------------------------------------------

    def use_token(self, token: Pkcs11Token) -> None:
        """Attach a PKCS#11 token so the CAs whose keys it holds can sign.

        A CA created with ``token=`` attaches it already; a store opened
        again needs it attached before such a CA issues, signs a CRL or
        answers OCSP (else :class:`~keymgmt.errors.TokenUnavailableError`).
        Tokens are matched by label; attaching another token with the same
        label replaces the first.

        Args:
            token: a :class:`~keymgmt.keyring.pkcs11.Pkcs11Token`.
        """
        self._keys.add_token(token)

    @_ca_creation
    def create_root_ca(
        self,
        name: str,
        *,
        subject: str | x509.Name | None = None,
        key_type: Algorithm | str = Algorithm.ECDSA_P256,
        validity: _dt.timedelta | None = None,
        path_length: int | None = None,
        permitted_names: Sequence[str | x509.GeneralName] = (),
        excluded_names: Sequence[str | x509.GeneralName] = (),
        crl_url: str | None = None,
        ocsp_url: str | None = None,
        token: Pkcs11Token | None = None,
    ) -> CertificateAuthority:
        """Create a self-signed root CA whose private key is sealed in the store (or in a token).

        Args:
            name: the CA's name in the store (``[a-z0-9._-]``).
            subject: an RFC 4514 string, a common name, or an ``x509.Name``
                (default ``CN=<name>``).
            key_type: ecdsa-p256 (default), ecdsa-p384, ed25519, rsa-2048/3072/4096.
            validity: lifetime (default 10 years).
            path_length: pathLenConstraint (None = unlimited).
            permitted_names: name constraints (DNS, email, ``10.0.0.0/8``).
            excluded_names: excluded name constraints.
            crl_url: CRL distribution point put in the certificates it issues.
            ocsp_url: OCSP responder URL (AIA) put in the certificates it issues.
            token: a :class:`~keymgmt.keyring.pkcs11.Pkcs11Token`: generate the
                private key inside it (non-extractable; ecdsa-p256/p384,
                rsa-2048/3072/4096) and keep only a reference in the store.
                Every signature of this CA is then made by the token.

        Returns:
            the CA handle.

        Raises:
            AlreadyExistsError: a CA with this name exists.
            InvalidArgumentError: bad name, subject, validity or constraints.
            UnsupportedAlgorithmError: not a CA key type (or not one a token holds).
            TokenUnavailableError: the token cannot generate or sign.
        """
        name = _check_name(name)
        algorithm = ca_algorithm(key_type)
        if self._ctx.store.get_json(CA_KIND, name) is not None:
            raise AlreadyExistsError(f"a CA named {name!r} exists already", ca=name)
        now = _seconds(self._ctx.clock.now())
        profile = ROOT_CA.evolve(path_length=path_length) if path_length is not None else ROOT_CA
        lifetime = profile.validity if validity is None else _timedelta(validity, "validity")
        if lifetime <= _dt.timedelta(0):
            raise InvalidArgumentError("validity must be positive")
        not_after = _until(now, lifetime, "validity")  # refused before a key is made
        subject_name = _ca_subject(subject, name)
        constraints = name_constraints(permitted_names, excluded_names)
        _check_ca_urls(crl_url, ocsp_url)  # before a key is made, like every check
        ref, key = self._new_ca_key(name, algorithm, token)
        public_key = signer_public_key(key)
        extensions = build_extensions(
            profile,
            public_key=public_key,
            issuer_public_key=None,
            issuer_ski=None,
            names=(),
            constraints=constraints,
        )
        cert = _sign(
            key,
            issuer=subject_name,
            subject=subject_name,
            public_key=public_key,
            serial=self._serial(),
            not_before=now,
            not_after=not_after,
            extensions=_wrap(extensions),
        )

        def run(txn: Txn) -> None:
            if txn.get_json(CA_KIND, name) is not None:
                raise AlreadyExistsError(f"a CA named {name!r} exists already", ca=name)
            txn.put_json(CA_KIND, name, _ca_record(name, cert, ref, None, crl_url, ocsp_url))
            txn.audit(
                "pki.create-root-ca",
                f"ca:{name}",
                key_type=signer_algorithm(key).value,
                serial=_hex(cert.serial_number),
                key=ref,
                key_storage="store" if token is None else "pkcs11",
            )
            txn.after_commit(self._invalidate)

        self._ctx.store.transact(run)
        return self.ca(name)

    def ca(self, name: str) -> CertificateAuthority:
        """The CA called ``name``.

        Raises:
            NotFoundError: no such CA.
        """
        if not isinstance(name, str):
            raise NotFoundError(f"no CA named {name!r}", ca=repr(name))
        with self._lock:
            found = self._cas.get(name)
        if found is not None:
            return found
        record = self._ctx.store.get_json(CA_KIND, name)
        if record is None:
            raise NotFoundError(f"no CA named {name!r}", ca=name)
        ca = CertificateAuthority(self, record)
        with self._lock:
            self._cas[name] = ca
        return ca

    def list_cas(self) -> list[CertificateAuthority]:
        """Every CA in the store, roots first, then by name."""
        cas = [self.ca(name) for name, _ in self._ctx.store.list_json(CA_KIND)]
        return sorted(cas, key=lambda c: (c.parent is not None, c.name))

    def trust_anchors(self) -> list[x509.Certificate]:
        """The certificates of the store's root CAs (the default trust anchors)."""
        return [ca.certificate for ca in self.list_cas() if ca.parent is None]

    def key_compromise(self, ca: str) -> Revocation | None:
        """The revocation of CA ``ca``'s signing key for a compromise, or None.

        Whoever holds a compromised CA key can sign any certificate, dated as
        they like, that the store never recorded: :meth:`verify` refuses
        everything the CA signed with ``ca-compromise``, and every other
        part that trusts a chain of the store's CAs asks here (the service
        for its clients, the KDC for its certificate principals). A CA key
        revoked for another reason (``superseded`` by a rotation, say)
        leaves what it signed valid. None for an unknown CA.
        """
        try:
            found = self.ca(ca)
        except NotFoundError:
            return None
        self._ctx.store.sync()
        return found._key_compromise()

    def certificate_revocation(self, subject: str) -> Revocation | None:
        """The revocation of the certificate with registry subject ``subject``, or None.

        Its own registry entry, else ``ca-compromise`` when the signing key
        of the CA the subject names (``"<ca>:<serial hex>"``) is revoked for
        a compromise (see :meth:`key_compromise`): the answer ``km.pki.verify``
        gives for that certificate's revocation.

        Raises:
            InvalidArgumentError: an empty subject.
        """
        found = self._ctx.revocation.get(SubjectKind.CERTIFICATE, subject)
        if found is not None:
            return found
        key = self.key_compromise(subject.partition(":")[0])
        return None if key is None else ca_compromise(subject, key)

    def revocation_subject(self, cert: x509.Certificate) -> str | None:
        """The registry subject of ``cert`` if one of our CAs issued it, else None."""
        ids = self._ids()
        aki = _aki(cert)
        for ca_cert, ca_id in ids.items():
            if ca_cert.subject == cert.issuer and (aki is None or aki == _ski(ca_cert)):
                return f"{ca_id}:{_hex(cert.serial_number)}"
        return None

    def stage_public_key_compromise(
        self,
        txn: Txn,
        public_key: object,
        reason: RevocationReason | str = RevocationReason.KEY_COMPROMISE,
        *,
        key_id: str,
    ) -> list[str]:
        """A managed key pair was compromised: no CA certifies its public key; its certificates go.

        For the compromise playbook (``km.compromise(key="name#version")``
        on a key pair), inside its transaction: at every CA of the store
        the public key is marked, so no CA certifies it again, and each
        certificate issued for it (expired ones too; a sub-CA's certificate
        too, with that CA's key) is revoked with ``reason``, each audited as
        ``pki.revoke-same-key`` naming ``key_id``. The CRLs are due from
        the commit on.

        Args:
            txn: the playbook's transaction.
            public_key: the key pair's public key (a ``cryptography`` key).
            reason: a compromise reason.
            key_id: ``"name#version"`` of the key pair, for the marks and audit.

        Returns:
            the registry subjects (``"<ca>:<serial hex>"``) revoked now.

        Raises:
            InvalidArgumentError: ``reason`` is not a compromise.
        """
        why = RevocationReason.parse(reason)
        if not why.is_compromise:
            raise InvalidArgumentError("only a compromise reason applies to a compromised key")
        revoked = _keyindex.stage_public_key_compromise(
            txn,
            self._ctx.revocation,
            cas=_other_cas(txn, None),
            cert_kind=CERT_KIND,
            fp=_keyindex.fingerprint(public_key),
            key_id=key_id,
            reason=why,
        )
        out = []
        for ca, record in revoked:
            child_key = record.get("child_key")
            if child_key:
                self._keys.stage_compromise(txn, child_key, why)
                txn.after_commit(self._invalidate)
            out.append(f"{ca}:{record['serial']}")
        return out

    def _ids(self) -> dict[x509.Certificate, str]:
        with self._lock:
            ids = self._ca_ids
        if ids is None:
            ids = {ca.certificate: ca.name for ca in self.list_cas()}
            with self._lock:
                self._ca_ids = ids
        return ids

    # -- verification --------------------------------------------------------------

    def verifier(
        self,
        *,
        trust_anchors: Sequence[x509.Certificate] | None = None,
        policy: RevocationPolicy | str = RevocationPolicy.REQUIRE,
    ) -> CertificateVerifier:
        """A reusable verifier: our CAs' revocations from the registry, others from CRL/OCSP.

        Args:
            trust_anchors: roots of trust (default: the store's root CAs).
            policy: what unknown revocation status means (default: fail closed).

        Raises:
            InvalidArgumentError: no trust anchors (and the store has no root CA).
        """
        policy = RevocationPolicy(policy)
        default = trust_anchors is None and policy is RevocationPolicy.REQUIRE
        if default:
            with self._lock:
                if self._verifier is not None:
                    return self._verifier
        ids = self._ids()
        registry = self._ctx.revocation
        # Each CA's key compromise: probed right after the certificate's own
        # is_revoked (which synced the store).
        cas = {ca.name: ca for ca in (self.ca(n) for n in ids.values())}

        def key_compromise(ca_id: str) -> Revocation | None:
            ca = cas.get(ca_id)
            return None if ca is None else ca._key_compromise()

        verifier = CertificateVerifier(
            trust_anchors=list(trust_anchors)
            if trust_anchors is not None
            else self.trust_anchors(),
            intermediates=[c for c, n in ids.items() if self.ca(n).parent is not None],
            registry=ca_lookup(
                ids,
                lambda s: registry.is_revoked(SubjectKind.CERTIFICATE, s),
                lambda s: registry.get(SubjectKind.CERTIFICATE, s),
                key_compromise,
            ),
            policy=policy,
        )
        if default:
            with self._lock:
                self._verifier = verifier
        return verifier

    def verify(
        self,
        cert: x509.Certificate | bytes | str,
        *,
        intermediates: Sequence[x509.Certificate] = (),
        trust_anchors: Sequence[x509.Certificate] | None = None,
        crls: Sequence[x509.CertificateRevocationList] = (),
        ocsp_responses: Sequence[bytes | ocsp.OCSPResponse] = (),
        at: _dt.datetime | None = None,
        purpose: Purpose | str = Purpose.ANY,
        name: str | None = None,
        policy: RevocationPolicy | str = RevocationPolicy.REQUIRE,
        initial_policy_set: Iterable[x509.ObjectIdentifier | str] | None = None,
        initial_explicit_policy: bool = False,
        initial_policy_mapping_inhibit: bool = False,
        initial_any_policy_inhibit: bool = False,
    ) -> VerifiedPath:
        """RFC 5280 path validation with revocation of every certificate in the path.

        Args:
            cert: the end-entity certificate (object, PEM or DER).
            intermediates: untrusted intermediates (the store's CAs are added).
            trust_anchors: roots of trust (default: the store's root CAs).
            crls: CRLs for certificates not issued by this store's CAs.
            ocsp_responses: OCSP responses (DER or parsed) likewise.
            at: validation time (default: now by the manager's clock).
            purpose: tls-server, tls-client, code-signing, ocsp-signing or any.
            name: the identity expected (DNS name/IP for servers; otherwise a
                SAN value or the subject common name).
            policy: unknown revocation status fails (``require``, default) or
                passes (``soft-fail``).
            initial_policy_set: acceptable certificate policies, OIDs or
                dotted strings (RFC 5280's user-initial-policy-set; default
                anyPolicy); the accepted ones are ``VerifiedPath.policies``.
            initial_explicit_policy: require an acceptable policy.
            initial_policy_mapping_inhibit: refuse policy mapping in the path.
            initial_any_policy_inhibit: anyPolicy in a certificate matches nothing.

        Returns:
            the verified path.

        Raises:
            CertificateRevokedError: a certificate in the path is revoked
                (``serial``, ``reason``: a RevocationReason, ``revoked_at``).
            CertificateVerificationError: refused; ``reason`` is a VerificationFailure.
            MalformedInputError: ``cert`` does not parse.
        """
        if not isinstance(cert, x509.Certificate):
            cert = load_certificate(cert)
        when = self._ctx.clock.now() if at is None else ensure_aware(at, "at")
        return self.verifier(trust_anchors=trust_anchors, policy=policy).verify(
            cert,
            intermediates=intermediates,
            crls=crls,
            ocsp_responses=ocsp_responses,
            at=when,
            purpose=purpose,
            name=name,
            initial_policy_set=initial_policy_set,
            initial_explicit_policy=initial_explicit_policy,
            initial_policy_mapping_inhibit=initial_policy_mapping_inhibit,
            initial_any_policy_inhibit=initial_any_policy_inhibit,
        )

    # -- helpers for CertificateAuthority -----------------------------------------------

    def _new_ca_key(
        self, name: str, algorithm: Algorithm, token: Pkcs11Token | None
    ) -> tuple[str, CASigner]:
        """The key pair of a CA being created (see :meth:`CAKeys.create`).

        A software key that an earlier creation of this CA *in this process*
        made and then failed to use (no CA record uses it) gets a fresh
        version instead of blocking the name. A key of that name made
        anywhere else is never taken over: it may belong to a creation
        still in progress in another process, whose CA record would then
        point at a deactivated version.

        Raises:
            AlreadyExistsError: the key exists and is not such a leftover.
        """
        try:
            made = self._keys.create(name, algorithm, token=token)
        except AlreadyExistsError:
            if token is not None or self._ctx.store.get_json(CA_KIND, name) is not None:
                raise
            try:
                self._leftovers.remove(name)
            except KeyError:
                key = key_name_for(name)
                raise AlreadyExistsError(
                    f"a key named {key!r} exists but no CA uses it: another creation of CA "
                    f"{name!r} is in progress, or one failed in another process. If none is "
                    f"running, schedule the key's destruction (km.keys.schedule_destruction"
                    f"({key!r})) and use another CA name",
                    ca=name,
                ) from None
            made = self._keys.fresh_version(name, algorithm)
        self._keys_made.append(name)
        return made

    def _serial(self) -> int:
        while True:
            serial = int.from_bytes(self._ctx.randomness.token_bytes(_SERIAL_BYTES), "big") >> 1
            if serial >= 1 << 64:  # leading zeros would shorten it; never 0
                return serial


_URL_SCHEMES: Final = {"crl_url": ("http", "https", "ldap"), "ocsp_url": ("http", "https")}


def _check_ca_urls(crl_url: str | None, ocsp_url: str | None) -> None:
    """Refuse a CRL or OCSP URL that every certificate of the CA could not carry.

    Checked once, at creation: the URLs go into every certificate the CA
    issues and cannot be changed afterwards.

    Raises:
        InvalidArgumentError: not an absolute URI (see :func:`check_uri`),
            or not an http/https (CRL: also ldap) URL.
    """
    for what, url in (("crl_url", crl_url), ("ocsp_url", ocsp_url)):
        if url is None:
            continue
        check_uri(url)
        scheme = url.partition(":")[0].lower()
        if scheme not in _URL_SCHEMES[what]:
            allowed = ", ".join(_URL_SCHEMES[what])
            raise InvalidArgumentError(f"{what} must be a URL with scheme {allowed}, not {scheme}")


def _ca_record(
    name: str,
    cert: x509.Certificate,
    key_ref: str,
    parent: str | None,
    crl_url: str | None,
    ocsp_url: str | None,
) -> dict[str, Any]:
    return {
        "name": name,
        "certificate": _codec.b64e(cert.public_bytes(serialization.Encoding.DER)),
        "key": key_ref,
        "parent": parent,
        "crl_url": crl_url,
        "ocsp_url": ocsp_url,
        "key_index": True,  # its issued certificates are in _keyindex
    }


def _ski(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _aki(cert: x509.Certificate) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    return value.key_identifier


def _wrap(extensions: Iterable[tuple[x509.ExtensionType, bool]]) -> list[Extension]:
    return [x509.Extension(value.oid, critical, value) for value, critical in extensions]


def _sign(
    key: CASigner,
    *,
    issuer: x509.Name,
    subject: x509.Name,
    public_key: CertificatePublicKey,
    serial: int,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
    extensions: list[Extension],
) -> x509.Certificate:
    # One constructor call: the chained builder methods copy the builder each time.
    builder = x509.CertificateBuilder(
        issuer_name=issuer,
        subject_name=subject,
        public_key=public_key,
        serial_number=serial,
        not_valid_before=not_before,
        not_valid_after=not_after,
        extensions=extensions,
    )
    return sign_certificate(key, builder)


class CertificateAuthority:
    """A CA in the store: issue, revoke, CRLs, OCSP. Get one from :class:`PKI`."""

    def __init__(self, pki: PKI, record: dict[str, Any]) -> None:
        self._pki = pki
        self._ctx = pki._ctx
        try:
            self.name: str = record["name"]
            self.certificate: x509.Certificate = x509.load_der_x509_certificate(
                _codec.b64d(record["certificate"])
            )
            self.key_ref: str = record["key"]
            self.parent: str | None = record["parent"]
            self.crl_url: str | None = record.get("crl_url")
            self.ocsp_url: str | None = record.get("ocsp_url")
            self._key_indexed = bool(record.get("key_index"))
        except (KeyError, ValueError, TypeError):
            from keymgmt.errors import IntegrityError

            raise IntegrityError("a CA record is malformed") from None
        # Read once: the Rust getters rebuild these objects on every access.
        self._not_before = self.certificate.not_valid_before_utc
        self._not_after = self.certificate.not_valid_after_utc
        self._subject_name = self.certificate.subject
        self._public_key = self.certificate.public_key()
        self._own_subject = (
            None if self.parent is None else f"{self.parent}:{_hex(self.certificate.serial_number)}"
        )
        self._ski = x509.SubjectKeyIdentifier.from_public_key(self.certificate.public_key())
        # Its signing key as the registry names it (the version, the key) and
        # the index names of both: see _key_compromise.
        self._key_subjects = tuple(
            (subject, f"{SubjectKind.KEY.value}:{subject}")
            for subject in (self.key_ref, self.key_ref.partition("#")[0])
        )
        self._constraints_cache: (
            tuple[list[x509.Certificate], list[tuple[x509.Certificate, x509.NameConstraints]]]
            | None
        ) = None
        # The extension template per leaf profile (see _template), keyed by
        # the profile object's id; each entry holds the profile and the URLs
        # it was built from, so a reused id or a changed URL is a miss.
        self._templates: dict[int, tuple[Profile, str | None, str | None, ExtensionTemplate]] = {}
        # The records the issuing state depends on (see _state_records) and
        # their revisions as last read, with the counters they were read at.
        self._state_names: tuple[tuple[str, str], ...] | None = None
        self._state_cache: tuple[tuple[int, int, int], tuple[tuple[str, str, int], ...]] | None = (
            None
        )

    def __repr__(self) -> str:
        return f"CertificateAuthority({self.name!r}, parent={self.parent!r})"

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)

    @property
    def key_type(self) -> Algorithm:
        """The CA key's algorithm."""
        return algorithm_of(self.certificate.public_key())  # type: ignore[arg-type]

    @property
    def chain(self) -> list[x509.Certificate]:
        """This CA's certificate and its parents', up to the root."""
        out = [self.certificate]
        parent = self.parent
        while parent is not None:
            ca = self._pki.ca(parent)
            out.append(ca.certificate)
            parent = ca.parent
        return out

    def _key(self) -> CASigner:
        self._refuse_revoked()
        return self._pki._keys.load(self.key_ref)

    def _refuse_revoked(self) -> None:
        """Refuse to sign for a CA revoked itself or under a revoked CA.

        Raises:
            RevokedError: this CA's certificate, or a parent CA's, is revoked,
                or a parent CA's key is revoked for a compromise: nothing it
                signs could be verified (the parent's revocation cuts every
                path through it).
        """
        ca: CertificateAuthority | None = self
        while ca is not None:
            own = ca._own_revocation()
            if own is not None:
                where = "is revoked" if ca is self else f"is under the revoked CA {ca.name!r}"
                raise RevokedError(
                    f"the CA {self.name!r} {where} ({own.reason.value})",
                    ca=self.name,
                    reason=own.reason,
                )
            # A parent whose key is compromised vouches for nothing
            # (km.pki.verify: ca-compromise), a root's included. This CA's
            # own key is refused when it is loaded (KeyStateError).
            compromise = None if ca is self else ca._key_compromise()
            if compromise is not None:
                raise RevokedError(
                    f"the CA {self.name!r} is under the CA {ca.name!r} whose key is "
                    f"compromised ({compromise.reason.value})",
                    ca=self.name,
                    reason=compromise.reason,
                )
            ca = None if ca.parent is None else self._pki.ca(ca.parent)

    def _state_records(self) -> tuple[tuple[str, str], ...]:
        """The records :meth:`_key` decides on, as ``(kind, name)``.

        The CA key version's record (its state: suspended, deactivated,
        compromised, destroyed) and the registry entries of the version and
        the key; for this CA and every CA above it, the registry entry of
        its certificate; for every CA above it, those of its signing key.
        A token key has no version record (its state is in the token).
        """
        names = self._state_names
        if names is not None:
            return names
        found: list[tuple[str, str]] = []
        if not self.key_ref.startswith(TOKEN_REF_PREFIX):
            found.append((VERSION_KIND, self.key_ref))
        ca: CertificateAuthority | None = self
        while ca is not None:
            if ca._own_subject is not None:
                found.append(
                    (REVOCATION_KIND, f"{SubjectKind.CERTIFICATE.value}:{ca._own_subject}")
                )
            found.extend((REVOCATION_KIND, indexed) for _subject, indexed in ca._key_subjects)
            ca = None if ca.parent is None else self._pki.ca(ca.parent)
        names = self._state_names = tuple(dict.fromkeys(found))
        return names

    def _state_counters(self) -> tuple[int, int, int] | None:
        """Counters that move whenever this process takes in a change to the issuing state."""
        epoch = self._pki._keys._key_store_epoch()
        if epoch is None:
            return None
        changes = self._ctx.revocation.changes
        return epoch, changes(SubjectKind.KEY), changes(SubjectKind.CERTIFICATE)

    def _checked_key(
        self, *, fresh: bool = False
    ) -> tuple[CASigner, tuple[tuple[str, str, int], ...]]:
        """:meth:`_key`, with the records its checks decided on at revisions no newer than seen.

        The issuing transaction expects them (``Txn.expect``): a change by
        another process between this check and the commit (the CA's
        certificate revoked, its key suspended, retired or compromised, a
        parent revoked) makes the commit conflict, and the re-run checks
        again (``fresh``). The revisions are read from the backend *before*
        the check, and the store is synced after reading them, so the check
        sees at least what they say; while the counters that move with every
        change this process takes in (:meth:`_state_counters`) stay put, the
        revisions last read are reused (no read per issuance). Stale ones
        only cost a conflict and a re-run.

        Raises:
            what :meth:`_key` raises.
        """
        store = self._ctx.store
        # No sync first: the revisions reused were read no later than the
        # view the check (which syncs) decides on; a change taken in since
        # makes the check refuse, or the commit conflict.
        cached = self._state_cache
        counters = self._state_counters()
        if fresh or cached is None or counters is None or cached[0] != counters:
            backend = store.backend
            reads = []
            for kind, name in self._state_records():
                record = backend.get(kind, name)
                reads.append((kind, name, 0 if record is None else record.revision))
            store.sync(force=True)  # the check's caches take in at least what was read
            counters = self._state_counters()
            self._state_cache = cached = None if counters is None else (counters, tuple(reads))
            expected = tuple(reads)
        else:
            expected = cached[1]
        return self._key(), expected

    def _key_compromise(self) -> Revocation | None:
        """The registry's revocation of this CA's signing key for a compromise, or None.

        One index probe per name (:meth:`_own_revocation`, asked first, synced).
        """
        registry = self._ctx.revocation
        index = registry.index
        for subject, indexed in self._key_subjects:
            if indexed in index:
                found = registry.get(SubjectKind.KEY, subject)
                if found is not None and found.reason.is_compromise:
                    return found
        return None

    def _own_revocation(self) -> Revocation | None:
        if self._own_subject is None:
            return None
        registry = self._ctx.revocation
        if not registry.is_revoked(SubjectKind.CERTIFICATE, self._own_subject):
            return None
        return registry.get(SubjectKind.CERTIFICATE, self._own_subject)

    def _now(self) -> _dt.datetime:
        """Now by the manager's clock, to the second (certificate times have no fraction)."""
        return self._ctx.clock.now().replace(microsecond=0)

    def _validity(
        self,
        lifetime: _dt.timedelta,
        not_before: _dt.datetime | None,
        now: _dt.datetime | None = None,
    ) -> tuple[_dt.datetime, _dt.datetime]:
        """The validity window of a certificate issued ``now`` (default: the clock's).

        Raises:
            InvalidArgumentError: a non-positive lifetime, or none left before the CA expires.
            CertificateError: this CA has expired.
        """
        _timedelta(lifetime, "validity")
        if now is None:
            now = self._now()
        start = now if not_before is None else _seconds(ensure_aware(not_before, "not_before"))
        if lifetime <= _ZERO:
            raise InvalidArgumentError("validity must be positive")
        ca_end = self._not_after
        if now > ca_end:
            raise CertificateError(f"the CA {self.name!r} has expired", ca=self.name)
        if start < self._not_before:
            start = self._not_before
        # Compared as a difference: start + lifetime may be past year 9999 (OverflowError).
        end = ca_end if lifetime >= ca_end - start else start + lifetime
        if end <= start:
            raise InvalidArgumentError("the validity ends before it starts (CA expiry)")
        return start, end

    # -- issuance ------------------------------------------------------------------

    def issue(
        self,
        csr: x509.CertificateSigningRequest | bytes | str | None = None,
        *,
        public_key: CertificatePublicKey | None = None,
        subject: str | x509.Name | None = None,
        names: Sequence[str | x509.GeneralName] | None = None,
        profile: Profile | str = TLS_SERVER,
        validity: _dt.timedelta | None = None,
        not_before: _dt.datetime | None = None,
    ) -> x509.Certificate:
        """Issue a certificate from a CSR or for a public key.

        From a CSR, its signature is checked; its subject is used unless
        ``subject`` is given, and of its requested extensions only the
        subject alternative names are kept (when the profile copies names):
        everything else comes from the profile, so a CSR cannot make itself
        a CA. The validity is clipped to this CA's. The serial is random
        (127 bits). Issuance is audited and recorded.

        Args:
            csr: a PKCS#10 request (object, PEM or DER); or None with ``public_key``.
            public_key: the key to certify when there is no CSR.
            subject: overrides the CSR's subject (required with ``public_key``).
            names: subject alternative names (override the CSR's).
            profile: a :class:`Profile` or a built-in profile name.
            validity: lifetime (default: the profile's).
            not_before: start of validity (default: now).

        Returns:
            the certificate.

        Raises:
            InvalidArgumentError: neither or both of csr/public_key, bad names,
                a CA profile (use :meth:`create_intermediate`), missing names.
            MalformedInputError: the CSR does not parse.
            InvalidSignatureError: the CSR's signature does not verify.
            UnsupportedAlgorithmError: the subject key type is not supported.
            RevokedError: this CA (or its key) is revoked.
            CertificateError: this CA has expired.
        """
        leaf = self._prepare_leaf(csr, public_key, subject, names, profile)
        return self._issue(
            profile=leaf.profile,
            subject=leaf.subject,
            subject_text=leaf.subject_text,
            public_key=leaf.public_key,
            algorithm=leaf.algorithm,
            names=leaf.names,
            validity=validity,
            not_before=not_before,
        )

    def _prepare_leaf(
        self,
        csr: x509.CertificateSigningRequest | bytes | str | None,
        public_key: CertificatePublicKey | None,
        subject: str | x509.Name | None,
        names: Sequence[str | x509.GeneralName] | None,
        profile: Profile | str,
    ) -> _Leaf:
        """Check one end-entity request (see :meth:`issue`); what it certifies."""
        profile = _profile(profile)
        if profile.is_ca:
            raise InvalidArgumentError("CA certificates are made by create_intermediate()")
        if (csr is None) == (public_key is None):
            raise InvalidArgumentError("give exactly one of a CSR or public_key=")
        if csr is not None:
            csr = (
                checked_csr(csr)
                if isinstance(csr, x509.CertificateSigningRequest)
                else (load_csr(csr))
            )
            try:
                valid = csr.is_signature_valid
            except Exception:
                valid = False
            if not valid:
                raise InvalidSignatureError()
            key: object = csr.public_key()
            if subject is not None:
                subject_name, subject_text = _leaf_subject(subject)
            else:
                subject_name = csr_subject(csr)
                subject_text = subject_name.rfc4514_string()
            if names is None and profile.copy_names:
                try:
                    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                    general = [check_general_name(name) for name in san.value]
                except x509.ExtensionNotFound:
                    general = []
            else:
                general = parse_names(names or ())
        else:
            key = public_key
            if subject is None:
                raise InvalidArgumentError("subject= is required with public_key=")
            subject_name, subject_text = _leaf_subject(subject)
            general = parse_names(names or ())
        algorithm = algorithm_of(key)  # type: ignore[arg-type]
        if not profile.copy_names and names is None:
            general = []
        if len(general) > _MAX_NAMES:
            raise InvalidArgumentError(
                f"too many subject alternative names ({len(general)} > {_MAX_NAMES})"
            )
        check_name_forms(general, profile.name_forms)
        check_subject(subject_name, general, self._subject_name)
        self._check_constraints(general, subject_name)
        return _Leaf(profile, subject_name, subject_text, key, general, algorithm)  # type: ignore[arg-type]

    def issue_many(self, requests: Sequence[IssueRequest]) -> list[x509.Certificate]:
        """Issue many end-entity certificates in one audited transaction.

        Every request is checked as :meth:`issue` checks it before anything
        is signed; then each certificate is signed, and all of them are
        recorded, each with its own audit entry, in one store transaction
        (one fsync on SQLite): all are issued or none is. Use it for fleets
        and renewals, where one transaction per certificate would cost more
        than the signatures.

        Args:
            requests: at most 10,000 :class:`IssueRequest` objects.

        Returns:
            the certificates, in the order of ``requests``.

        Raises:
            InvalidArgumentError: too many requests, or one is not an
                :class:`IssueRequest`; and what :meth:`issue` raises for a bad
                request, its message prefixed with the request's index.
            MalformedInputError, InvalidSignatureError,
            UnsupportedAlgorithmError: a request's CSR or key (index named).
            RevokedError: this CA (or its key) is revoked.
            CertificateError: this CA has expired.
        """
        given: object = requests
        if not isinstance(given, Sequence) or isinstance(given, str | bytes):
            raise InvalidArgumentError(
                f"requests must be a sequence of IssueRequest, got {type(requests).__name__}"
            )
        if len(requests) > _MAX_BATCH:
            raise InvalidArgumentError(
                f"at most {_MAX_BATCH} certificates per issue_many() call, got {len(requests)}"
            )
        now = self._now()  # one issuance time for the batch (one transaction)
        # Each stage over the whole batch (checks, key encodings, extensions,
        # then in the transaction the signatures, then the records): the
        # same work, with each stage's code kept in cache (measured).
        leaves = []
        for index, request in enumerate(requests):
            if not isinstance(request, IssueRequest):
                raise InvalidArgumentError(
                    f"request {index} is a {type(request).__name__}, not an IssueRequest"
                )
            try:
                leaf = self._prepare_leaf(
                    request.csr,
                    request.public_key,
                    request.subject,
                    request.names,
                    request.profile,
                )
                window = self._validity(
                    leaf.profile.validity if request.validity is None else request.validity,
                    request.not_before,
                    now,
                )
            except KeyMgmtError as exc:
                raise _in_request(exc, index) from None
            leaves.append((leaf, window))
        infos = []
        for index, (leaf, _window) in enumerate(leaves):
            try:
                infos.append(public_key_info(leaf.public_key))
            except KeyMgmtError as exc:
                raise _in_request(exc, index) from None
        prepared = []
        for index, ((leaf, window), (spki, key_id)) in enumerate(zip(leaves, infos, strict=True)):
            try:
                extensions = self._leaf_extensions(leaf.profile, key_id, leaf.algorithm, leaf.names)
            except KeyMgmtError as exc:
                raise _in_request(exc, index) from None
            prepared.append(
                (
                    leaf,
                    window,
                    (_codec.to_micros(window[0]), _codec.to_micros(window[1])),
                    hashlib.sha256(spki).hexdigest(),  # = _keyindex.fingerprint (tested)
                    extensions,
                )
            )
        if not prepared:
            return []
        signing_key, state = self._checked_key()
        attempts = 0

        def run(txn: Txn) -> list[x509.Certificate]:
            nonlocal attempts, signing_key, state
            attempts += 1
            if attempts > 1:  # a conflict: perhaps this CA's state changed meanwhile
                signing_key, state = self._checked_key(fresh=True)
            for read in state:  # the CA's state as checked (see _checked_key)
                txn.expect(*read)
            # Every refusal before any signature: the subject keys' heads are
            # read in this transaction (the store checks them at commit).
            for index, (_leaf, _window, _times, fp, _extensions) in enumerate(prepared):
                try:
                    _keyindex.stage_key_head(txn, self.name, fp)
                except KeyMgmtError as exc:
                    raise _in_request(exc, index) from None
            # Every signature first, then the records: each step's machine
            # code stays in cache (measured: ~0.1-0.2x of the batch ratio).
            signed = [
                self._sign_new(signing_key, leaf.subject, leaf.public_key, window, extensions)
                for leaf, window, _times, _fp, extensions in prepared
            ]
            # Two records of one serial in one transaction: the second put
            # would replace the first, whose certificate would be returned
            # unrecorded. Never with 127 random bits, but checked (one set).
            if len({serial for serial, _cert in signed}) != len(signed):
                signed = self._distinct_serials(signing_key, prepared, signed)
            certs = []
            for (leaf, _window, (start_us, end_us), fp, _ext), (serial, cert) in zip(
                prepared, signed, strict=True
            ):
                serial_hex = _hex(serial)
                record_name = f"{self.name}:{serial_hex}"
                der = cert.public_bytes(_DER)
                txn.put(
                    CERT_KIND,
                    record_name,
                    _leaf_record_bytes(
                        serial_hex, der, leaf.profile, leaf.subject_text, start_us, end_us
                    ),
                )
                _keyindex.stage_key_cert(txn, self.name, fp, serial, end_us)
                txn.audit(
                    "pki.issue",
                    f"cert:{record_name}",
                    profile=leaf.profile.name,
                    subject=leaf.subject_text,
                )
                certs.append(cert)
            return certs

        return self._ctx.store.transact(run)

    def _distinct_serials(
        self,
        signing_key: CASigner,
        prepared: Sequence[tuple[_Leaf, tuple[_dt.datetime, _dt.datetime], Any, str, Any]],
        signed: list[tuple[int, x509.Certificate]],
    ) -> list[tuple[int, x509.Certificate]]:
        """``signed`` with each certificate whose serial repeats an earlier one's signed again."""
        seen: set[int] = set()
        out = []
        for (leaf, window, _times, _fp, extensions), (serial, cert) in zip(
            prepared, signed, strict=True
        ):
            while serial in seen:
                serial, cert = self._sign_new(
                    signing_key, leaf.subject, leaf.public_key, window, extensions
                )
            seen.add(serial)
            out.append((serial, cert))
        return out

    def _sign_new(
        self,
        signing_key: CASigner,
        subject: x509.Name,
        public_key: CertificatePublicKey,
        window: tuple[_dt.datetime, _dt.datetime],
        extensions: list[Extension],
    ) -> tuple[int, x509.Certificate]:
        """A fresh random serial and the certificate this CA signs with it."""
        serial = self._pki._serial()
        if subject == EMPTY_NAME:  # the names are the identity: critical (RFC 5280 4.2.1.6)
            extensions = mark_names_critical(extensions)
        return serial, _sign(
            signing_key,
            issuer=self._subject_name,
            subject=subject,
            public_key=public_key,
            serial=serial,
            not_before=window[0],
            not_after=window[1],
            extensions=extensions,
        )

    def _leaf_extensions(
        self,
        profile: Profile,
        key_id: bytes,
        algorithm: Algorithm,
        names: Sequence[x509.GeneralName],
        constraints: x509.NameConstraints | None = None,
    ) -> list[Extension]:
        """The extensions of one certificate this CA signs for a key of ``algorithm``.

        ``key_id`` is the subject key identifier (:func:`._keys.public_key_info`).
        """
        if constraints is None:
            template = self._template(profile)
        else:  # a sub-CA's own constraints: built for this one certificate
            template = self._new_template(profile, constraints)
        return template.extensions(key_id, names, rsa_subject=algorithm in RSA_ALGORITHMS)

    def _new_template(
        self, profile: Profile, constraints: x509.NameConstraints | None
    ) -> ExtensionTemplate:
        return extension_template(
            profile,
            issuer_ski=self._ski,
            constraints=constraints,
            crl_urls=[self.crl_url] if self.crl_url else (),
            ocsp_urls=[self.ocsp_url] if self.ocsp_url else (),
        )

    def _template(self, profile: Profile) -> ExtensionTemplate:
        """``profile``'s extension template from this CA, built once per profile.

        What it holds depends only on the profile and on this handle's key
        identifier (fixed: a renewed CA keeps its key) and URLs, which are
        compared on every hit. A handle made from a changed CA record is a
        new handle with an empty cache (:meth:`PKI._invalidate`).
        """
        entry = self._templates.get(id(profile))
        if (
            entry is not None
            and entry[0] is profile
            and entry[1] is self.crl_url
            and entry[2] is self.ocsp_url
        ):
            return entry[3]
        template = self._new_template(profile, None)
        if len(self._templates) >= _MAX_TEMPLATES:  # profiles made per call: no growth
            self._templates.clear()
        self._templates[id(profile)] = (profile, self.crl_url, self.ocsp_url, template)
        return template

    def _check_constraints(
        self, names: Sequence[x509.GeneralName], subject: x509.Name | None = None
    ) -> None:
        """Refuse names that this CA's (or a parent's) name constraints exclude.

        With ``subject``, also the subject (a directoryName) and its
        emailAddress attributes (RFC 5280 4.2.1.10). Verifiers would refuse
        such a certificate anyway; refusing it here says why at the right
        moment.
        """
        if not names and subject is None:
            return
        constraints = self._name_constraints()
        if not constraints:
            return
        if subject is not None:
            names = [*names, *subject_constraint_names(subject)]
        for ca_cert, nc in constraints:
            for name in names:
                if not name_allowed(nc, name):
                    value = name.value
                    shown = value.rfc4514_string() if isinstance(value, x509.Name) else value
                    raise InvalidArgumentError(
                        f"{shown} is outside the name constraints of "
                        f"{ca_cert.subject.rfc4514_string()}",
                        name=str(shown),
                    )

    def _name_constraints(self) -> list[tuple[x509.Certificate, x509.NameConstraints]]:
        """The name constraints along this CA's chain (remembered per chain).

        The Rust getters rebuild a certificate's extensions on every access;
        the chain itself is looked up each time (a parent may be renewed) and
        compared by value, so the remembered list is never stale.
        """
        chain = self.chain
        cached = self._constraints_cache
        if cached is not None and cached[0] == chain:
            return cached[1]
        found = []
        for ca_cert in chain:
            try:
                nc = ca_cert.extensions.get_extension_for_class(x509.NameConstraints).value
            except x509.ExtensionNotFound:
                continue
            found.append((ca_cert, nc))
        self._constraints_cache = (chain, found)
        return found

    def _issue(
        self,
        *,
        profile: Profile,
        subject: x509.Name,
        public_key: CertificatePublicKey,
        names: Sequence[x509.GeneralName],
        validity: _dt.timedelta | None,
        not_before: _dt.datetime | None,
        subject_text: str | None = None,
        algorithm: Algorithm | None = None,
        constraints: x509.NameConstraints | None = None,
        child: tuple[str, str, str | None, str | None] | None = None,
        extensions: list[Extension] | None = None,
        replaces: int | None = None,
        renews_ca: str | None = None,
        revoke_replaced: bool = False,
    ) -> x509.Certificate:
        signing_key, state = self._checked_key()
        start, end = self._validity(profile.validity if validity is None else validity, not_before)
        spki, key_id = public_key_info(public_key)
        fp = hashlib.sha256(spki).hexdigest()  # = _keyindex.fingerprint (tested)
        if extensions is None:
            if algorithm is None:
                algorithm = algorithm_of(public_key)
            extensions = self._leaf_extensions(profile, key_id, algorithm, names, constraints)
        if subject_text is None:
            subject_text = subject.rfc4514_string()
        plain = child is None and renews_ca is None and replaces is None
        window = (start, end)
        start_us, end_us = _codec.to_micros(start), _codec.to_micros(end)
        attempts = 0

        def run(txn: Txn) -> x509.Certificate:
            nonlocal attempts, signing_key, state
            attempts += 1
            if attempts > 1:  # a conflict: perhaps this CA's state changed meanwhile
                signing_key, state = self._checked_key(fresh=True)
            for read in state:  # the CA's state as checked (see _checked_key)
                txn.expect(*read)
            # Everything that can refuse comes first, then the signature: the
            # CA signs nothing it does not record. The key's head is read
            # in this transaction only (the store checks it at commit).
            ca_record = None
            if child is not None and txn.get_json(CA_KIND, child[0]) is not None:
                raise AlreadyExistsError(f"a CA named {child[0]!r} exists already", ca=child[0])
            if renews_ca is not None:
                # A renewed sub-CA certificate: same key, the CA now presents the new one.
                ca_record = txn.get_json(CA_KIND, renews_ca)
                if ca_record is None:
                    raise NotFoundError(f"no CA named {renews_ca!r}", ca=renews_ca)
            _keyindex.stage_key_head(txn, self.name, fp)
            serial, cert = self._sign_new(signing_key, subject, public_key, window, extensions)
            der = cert.public_bytes(_DER)
            serial_hex = _hex(serial)
            record_name = f"{self.name}:{serial_hex}"
            # Never read: the put's compare-and-set requires the record to be
            # absent, so a (2^-127) serial collision cannot overwrite a record.
            if plain:
                txn.put(
                    CERT_KIND,
                    record_name,
                    _leaf_record_bytes(serial_hex, der, profile, subject_text, start_us, end_us),
                )
                _keyindex.stage_key_cert(txn, self.name, fp, serial, end_us)
                txn.audit(
                    "pki.issue", f"cert:{record_name}", profile=profile.name, subject=subject_text
                )
                return cert
            record = _cert_record(serial, der, profile, subject_text, start, end, replaces)
            details: dict[str, Any] = {"profile": profile.name, "subject": subject_text}
            if child is not None:
                child_name, ref, crl_url, ocsp_url = child
                txn.put_json(
                    CA_KIND,
                    child_name,
                    _ca_record(child_name, cert, ref, self.name, crl_url, ocsp_url),
                )
                record["child_ca"] = child_name
                record["child_key"] = ref
                details["child_ca"] = child_name
                txn.after_commit(self._pki._invalidate)
            if ca_record is not None and renews_ca is not None:
                ca_record["certificate"] = _codec.b64e(der)
                txn.put_json(CA_KIND, renews_ca, ca_record)
                record["child_ca"] = renews_ca
                record["child_key"] = ca_record["key"]
                details["child_ca"] = renews_ca
                txn.after_commit(self._pki._invalidate)
            _keyindex.stage_key_cert(txn, self.name, fp, serial, end_us)
            txn.put_json(CERT_KIND, record_name, record)
            txn.audit("pki.issue", f"cert:{record_name}", **details)
            if revoke_replaced and replaces is not None:
                # In the same transaction: the new certificate is recorded
                # (and returned) only with the old one's revocation.
                self.stage_revoke(txn, replaces, RevocationReason.SUPERSEDED)
            return cert

        return self._ctx.store.transact(run)

    @_ca_creation
    def create_intermediate(
        self,
        name: str,
        *,
        subject: str | x509.Name | None = None,
        key_type: Algorithm | str = Algorithm.ECDSA_P256,
        validity: _dt.timedelta | None = None,
        path_length: int | None = 0,
        permitted_names: Sequence[str | x509.GeneralName] = (),
        excluded_names: Sequence[str | x509.GeneralName] = (),
        crl_url: str | None = None,
        ocsp_url: str | None = None,
        token: Pkcs11Token | None = None,
    ) -> CertificateAuthority:
        """Create a subordinate CA signed by this one; its key is sealed in the store (or a token).

        Args:
            name: the new CA's name.
            subject: its subject (default ``CN=<name>``).
            key_type: its key algorithm (default ecdsa-p256).
            validity: lifetime (default 5 years, clipped to this CA's).
            path_length: pathLenConstraint (default 0: it issues only leaves).
            permitted_names: name constraints.
            excluded_names: excluded name constraints.
            crl_url: CRL URL for what *it* issues.
            ocsp_url: OCSP URL for what *it* issues.
            token: generate its private key inside this PKCS#11 token (see
                :meth:`PKI.create_root_ca`); this CA's own key may be anywhere.

        Returns:
            the new CA.

        Raises:
            AlreadyExistsError: the name is taken.
            InvalidArgumentError: bad arguments, or this CA's path length forbids it.
            RevokedError: this CA is revoked.
            UnsupportedAlgorithmError: a key type a token does not hold.
            TokenUnavailableError: a token cannot generate or sign.
        """
        name = _check_name(name)
        check_path_length(path_length)
        own_bc = self.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        if own_bc.path_length == 0:
            raise InvalidArgumentError(
                f"the CA {self.name!r} has path length 0 and cannot create sub-CAs"
            )
        if own_bc.path_length is not None and (
            path_length is None or path_length >= own_bc.path_length
        ):
            path_length = own_bc.path_length - 1
        algorithm = ca_algorithm(key_type)
        if self._ctx.store.get_json(CA_KIND, name) is not None:
            raise AlreadyExistsError(f"a CA named {name!r} exists already", ca=name)
        constraints = name_constraints(permitted_names, excluded_names)
        _check_ca_urls(crl_url, ocsp_url)  # before a key is made, like every check
        profile = INTERMEDIATE_CA.evolve(path_length=path_length)
        # Refused before the child's key is made: a validity this CA cannot
        # give (expired, non-positive, past 9999), a parent that cannot sign
        # (revoked, token gone).
        self._validity(profile.validity if validity is None else validity, None)
        # The subject too (a malformed one was refused after the key was
        # made), and under this CA's chain's name constraints, which bind a
        # sub-CA's subject as they bind a leaf's (RFC 5280 6.1.3 b; only a
        # self-issued certificate is exempt): verifiers refuse it otherwise.
        subject_name = _ca_subject(subject, name)
        if subject_name != self._subject_name:
            self._check_constraints((), subject_name)
        self._key()
        ref, key = self._pki._new_ca_key(name, algorithm, token)
        self._issue(
            profile=profile,
            subject=subject_name,
            public_key=signer_public_key(key),
            names=(),
            validity=validity,
            not_before=None,
            constraints=constraints,
            child=(name, ref, crl_url, ocsp_url),
        )
        return self._pki.ca(name)

    def renew(
        self,
        serial: int | str,
        *,
        validity: _dt.timedelta | None = None,
        revoke_old: bool = False,
    ) -> x509.Certificate:
        """Issue a fresh certificate with the same subject, key and extensions.

        Args:
            serial: the certificate to renew (int or hex).
            validity: the new lifetime (default: the profile's, or the old lifetime).
            revoke_old: revoke the old certificate as ``superseded``, in the same
                transaction (the new one is recorded only with that revocation).

        Returns:
            the new certificate.

        A sub-CA's certificate can be renewed too: the sub-CA keeps its key
        and presents the new certificate from then on (certificates it
        issued still chain, by name and key identifier). Handles obtained
        before the renewal keep the old certificate: ask ``km.pki.ca(name)``
        again.

        Raises:
            NotFoundError: this CA issued no such certificate.
            RevokedError: the certificate is revoked (``reason``: a compromise
                means its key is never certified again; ``certificate-hold``
                needs :meth:`release_hold` first), or this CA revoked another
                certificate of the same key for a compromise.
            KeyStateError: a sub-CA whose key the key store no longer lets
                sign (revoked, compromised, suspended, destroyed).
        """
        issued = self.get(serial)
        _refuse_revoked_renewal(self.name, issued)
        if issued.child_ca is not None:
            # The sub-CA's key must still be fit to sign: one revoked or
            # compromised in the key store (by an operator, a playbook) is
            # not certified again, whatever this CA's own records say.
            self._pki.ca(issued.child_ca)._key()
        old = issued.certificate
        lifetime = validity
        known = PROFILES.get(issued.profile)
        if lifetime is None:
            lifetime = (
                known.validity if known else old.not_valid_after_utc - old.not_valid_before_utc
            )
        return self._issue(
            # The record keeps the profile's name: a custom profile's renewal
            # was recorded as tls-server, so renewing it again took that
            # profile's lifetime instead of the certificate's own.
            profile=known if known is not None else TLS_SERVER.evolve(name=issued.profile),
            subject=old.subject,
            public_key=old.public_key(),  # type: ignore[arg-type]
            names=(),
            validity=lifetime,
            not_before=None,
            extensions=list(old.extensions),
            replaces=issued.serial,
            renews_ca=issued.child_ca,
            revoke_replaced=revoke_old,
        )

    def renew_root(self, *, validity: _dt.timedelta | None = None) -> x509.Certificate:
        """Re-sign this root CA's self-signed certificate (same key, subject, extensions).

        Certificates it issued keep chaining to it (same name and key
        identifier); relying parties need the new certificate as trust anchor
        once the old one expires.

        Args:
            validity: the new lifetime (default: the old certificate's).

        Returns:
            the new root certificate.

        Raises:
            InvalidArgumentError: this CA is not a root.
            RevokedError: its key is revoked.
        """
        if self.parent is not None:
            raise InvalidArgumentError(
                f"{self.name!r} is not a root: its parent renews it with renew()"
            )
        old = self.certificate
        lifetime = (
            old.not_valid_after_utc - old.not_valid_before_utc
            if validity is None
            else _timedelta(validity, "validity")
        )
        if lifetime <= _dt.timedelta(0):
            raise InvalidArgumentError("validity must be positive")
        key = self._key()
        now = _seconds(self._ctx.clock.now())
        cert = _sign(
            key,
            issuer=old.subject,
            subject=old.subject,
            public_key=self._public_key,  # type: ignore[arg-type]
            serial=self._pki._serial(),
            not_before=now,
            not_after=_until(now, lifetime, "validity"),
            extensions=list(old.extensions),
        )
        der = cert.public_bytes(serialization.Encoding.DER)

        def run(txn: Txn) -> None:
            record = txn.get_json(CA_KIND, self.name)
            if record is None:
                raise NotFoundError(f"no CA named {self.name!r}", ca=self.name)
            record["certificate"] = _codec.b64e(der)
            txn.put_json(CA_KIND, self.name, record)
            txn.audit("pki.renew-root", f"ca:{self.name}", serial=_hex(cert.serial_number))
            txn.after_commit(self._pki._invalidate)

        self._ctx.store.transact(run)
        self.certificate = cert
        self._not_before = cert.not_valid_before_utc
        self._not_after = cert.not_valid_after_utc
        return cert

    # -- records -------------------------------------------------------------------

    def get(self, serial: int | str) -> IssuedCertificate:
        """The record of a certificate this CA issued.

        Raises:
            NotFoundError: no such certificate.
            InvalidArgumentError: the serial is not an int or hex string.
        """
        number = _serial_of(serial)
        name = f"{self.name}:{_hex(number)}"
        record = self._ctx.store.get_json(CERT_KIND, name)
        if record is None:
            raise NotFoundError(
                f"the CA {self.name!r} issued no certificate {_hex(number)}", serial=_hex(number)
            )
        return self._issued(name, record)

    def _issued(self, name: str, record: dict[str, Any]) -> IssuedCertificate:
        serial = int(record["serial"], 16)
        return IssuedCertificate(
            ca=self.name,
            serial=serial,
            subject=record["subject"],
            profile=record["profile"],
            not_before=_codec.from_micros(record["not_before"]),
            not_after=_codec.from_micros(record["not_after"]),
            certificate=x509.load_der_x509_certificate(_codec.b64d(record["der"])),
            revocation=self._ctx.revocation.get(SubjectKind.CERTIFICATE, name),
            child_ca=record.get("child_ca"),
        )

    def issued(self) -> list[IssuedCertificate]:
        """Everything this CA issued, by issuance start then serial."""
        out = [
            self._issued(name, record)
            for name, record in self._ctx.store.list_json(CERT_KIND, prefix=f"{self.name}:")
        ]
        return sorted(out, key=lambda i: (i.not_before, i.serial))

    # -- revocation ----------------------------------------------------------------

    def revoke(
        self,
        serial: int | str,
        reason: RevocationReason | str = RevocationReason.UNSPECIFIED,
        *,
        invalidity_date: _dt.datetime | None = None,
    ) -> Revocation:
        """Revoke a certificate this CA issued (expired ones too). O(1).

        Revoking a sub-CA's certificate for key or CA compromise also revokes
        that CA's key version. A compromise is about the key, not one
        certificate: every other certificate of the same public key, expired
        ones too, is revoked at this CA **and at every other CA of the
        store**, in the same transaction and with the same reason and
        invalidity date (each audited as ``pki.revoke-same-key``), and no CA
        of the store certifies the key again. On a CA certificate,
        ``cessation-of-operation`` and ``certificate-hold`` also reach the
        other unexpired certificates this CA issued for that CA's key. The
        CRLs are not rebuilt here: each CA's next :meth:`crl` sees its
        entries changed and signs a new one.

        Args:
            serial: the certificate's serial (int or hex).
            reason: an RFC 5280 reason (``keymgmt.revocation.RevocationReason``).
            invalidity_date: when the key is believed to have been compromised.

        Returns:
            the revocation as recorded.

        Raises:
            NotFoundError: this CA issued no such certificate.
            InvalidArgumentError: bad reason or date.
        """
        number = _serial_of(serial)
        reason = RevocationReason.parse(reason)
        return self._ctx.store.transact(
            lambda txn: self.stage_revoke(txn, number, reason, invalidity_date=invalidity_date)
        )

    def stage_revoke(
        self,
        txn: Txn,
        serial: int | str,
        reason: RevocationReason | str = RevocationReason.UNSPECIFIED,
        *,
        invalidity_date: _dt.datetime | None = None,
    ) -> Revocation:
        """Stage :meth:`revoke` inside the caller's transaction (the compromise playbook's).

        Written only if ``txn`` commits. The CRL is not rebuilt here; it is
        due from then on (its entries changed), so the next :meth:`crl`
        signs a new one.

        Raises:
            NotFoundError: this CA issued no such certificate.
            InvalidArgumentError: bad reason or date.
        """
        number = _serial_of(serial)
        reason = RevocationReason.parse(reason)
        name = f"{self.name}:{_hex(number)}"
        record = txn.get_json(CERT_KIND, name)
        if record is None:
            raise NotFoundError(
                f"the CA {self.name!r} issued no certificate {_hex(number)}",
                serial=_hex(number),
            )
        revocation = self._ctx.revocation.stage(
            txn, SubjectKind.CERTIFICATE, name, reason, invalidity_date=invalidity_date
        )
        child_key = record.get("child_key")
        if child_key and reason.is_compromise:
            self._pki._keys.stage_compromise(txn, child_key, reason)
        for other in _keyindex.stage_key_revocation(
            txn,
            self._ctx.revocation,
            ca=self.name,
            cert_kind=CERT_KIND,
            serial=number,
            record=record,
            reason=reason,
            invalidity_date=invalidity_date,
            indexed=self._key_indexed,
            other_cas=_other_cas(txn, self.name) if reason.is_compromise else (),
        ):
            other_key = other.get("child_key")
            if other_key and other_key != child_key and reason.is_compromise:
                self._pki._keys.stage_compromise(txn, other_key, reason)
        if record.get("child_ca"):
            txn.after_commit(self._pki._invalidate)
        return revocation

    def release_hold(self, serial: int | str) -> None:
        """Lift a ``certificate-hold`` on a certificate this CA issued.

        A hold on a CA certificate also held this CA's other unexpired
        certificates of the same key (see :meth:`stage_revoke`); releasing it
        releases theirs.

        Raises:
            InvalidArgumentError: the certificate is not on hold.
        """
        subject = f"{self.name}:{_hex(_serial_of(serial))}"
        registry = self._ctx.revocation

        def run(txn: Txn) -> None:
            # One transaction: the certificate's release and its siblings'
            # land together, or none does.
            registry.stage_release_hold(txn, SubjectKind.CERTIFICATE, subject)
            record = txn.get_json(CERT_KIND, subject)
            if record is None or not record.get("child_ca"):
                return
            for other in _keyindex.same_key_serials(
                txn, self.name, CERT_KIND, record, indexed=self._key_indexed
            ):
                registry.stage_release_hold(
                    txn, SubjectKind.CERTIFICATE, f"{self.name}:{_hex(other)}", required=False
                )

        self._ctx.store.transact(run)

    def revoked(self) -> list[CRLEntry]:
        """Every certificate this CA revoked, as CRL entries, by serial."""
        return _entries(self._revoked_raw())

    def _revoked_raw(self) -> list[_RawEntry]:
        # Read the registry's O(1) mirror directly (as the key store does):
        # list() builds a Revocation object per entry of every kind, which
        # at 100k entries costs more than the CRL's own entries.
        registry = self._ctx.revocation
        mirror = getattr(registry, "_entries", None)
        prefix = f"{SubjectKind.CERTIFICATE.value}:{self.name}:"
        cut = len(prefix)
        if isinstance(mirror, dict):
            self._ctx.store.sync()
            snapshot = list(mirror.items())
            out = [
                (int(name[cut:], 16), at, reason, invalidity)
                for name, (reason, at, invalidity) in snapshot
                if name.startswith(prefix)
            ]
        else:  # pragma: no cover - a registry without the mirror
            out = [
                (
                    int(r.subject.partition(":")[2], 16),
                    _codec.to_micros(r.revoked_at),
                    r.reason.value,
                    None if r.invalidity_date is None else _codec.to_micros(r.invalidity_date),
                )
                for r in registry.list(SubjectKind.CERTIFICATE, prefix=f"{self.name}:")
            ]
        out.sort()
        return out

    # -- CRLs ----------------------------------------------------------------------

    def crl(
        self,
        *,
        delta: bool = False,
        next_update: _dt.timedelta = _dt.timedelta(days=1),
        force: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> x509.CertificateRevocationList:
        """This CA's CRL, built in bulk from the registry.

        A complete CRL is re-signed only when something changed, when the
        last one is past half its lifetime, or with ``force``; otherwise the
        stored one is returned. Every new CRL gets the next CRL number. A
        delta CRL (RFC 5280 5.2.4) lists what was revoked since the last
        complete CRL, which it names as its base, and lists a certificate
        whose hold was released since with ``removeFromCRL``.

        Args:
            delta: make a delta CRL against the last complete one.
            next_update: how long the new CRL is valid.
            force: sign a new complete CRL even if nothing changed.
            progress: ``progress(done, total)`` while the entries are built
                (a progress bar for large lists); not called when the stored
                CRL is returned.

        Returns:
            the signed CRL.

        Raises:
            InvalidArgumentError: a delta CRL without a complete CRL first;
                non-positive ``next_update``.
            RevokedError: this CA (or its key) is revoked.
        """
        if _timedelta(next_update, "next_update") <= _dt.timedelta(0):
            raise InvalidArgumentError("next_update must be positive")
        raw_entries = self._revoked_raw()
        digest = hashlib.sha256(repr(raw_entries).encode()).hexdigest()
        now = _seconds(self._ctx.clock.now())
        _until(now, next_update, "CRL's next update")
        key = self._key()

        def run(txn: Txn) -> bytes:
            state = txn.get_json(CRL_KIND, self.name) or {}
            number = int(state.get("number", 0))
            if delta:
                base = state.get("base")
                if base is None:
                    raise InvalidArgumentError("a delta CRL needs a complete CRL first")
                # What the base CRL does not say already (new, or a changed
                # reason), and removeFromCRL for what left it (a released hold).
                base_entries = CRLIndex(x509.load_der_x509_crl(_codec.b64d(state["der"]))).entries
                current = _entries(raw_entries)
                crl = build_crl(
                    issuer=self.certificate,
                    key=key,
                    entries=[
                        e
                        for e in current
                        if (old := base_entries.get(e.serial)) is None or old.reason != e.reason
                    ],
                    removed=removed_serials(base_entries, current),
                    number=number + 1,
                    this_update=now,
                    next_update=now + next_update,
                    delta_of=int(base),
                    progress=progress,
                )
                state = {**state, "number": number + 1}
                txn.put_json(CRL_KIND, self.name, state)
                txn.audit("pki.crl", f"ca:{self.name}", number=number + 1, delta=True)
                return crl.public_bytes(serialization.Encoding.DER)
            last = state.get("der")
            if last is not None and not force and state.get("digest") == digest:
                issued_at = _codec.from_micros(state["this_update"])
                expires = _codec.from_micros(state["next_update"])
                if now < issued_at + (expires - issued_at) / 2:
                    return _codec.b64d(last)
            crl = build_crl(
                issuer=self.certificate,
                key=key,
                entries=_entries(raw_entries),
                number=number + 1,
                this_update=now,
                next_update=now + next_update,
                progress=progress,
            )
            der = crl.public_bytes(serialization.Encoding.DER)
            txn.put_json(
                CRL_KIND,
                self.name,
                {
                    "number": number + 1,
                    "base": number + 1,
                    "base_time": _codec.to_micros(now),
                    "der": _codec.b64e(der),
                    "digest": digest,
                    "this_update": _codec.to_micros(now),
                    "next_update": _codec.to_micros(now + next_update),
                },
            )
            txn.audit("pki.crl", f"ca:{self.name}", number=number + 1, entries=len(raw_entries))
            return der

        return x509.load_der_x509_crl(self._ctx.store.transact(run))

    # -- OCSP ------------------------------------------------------------------------

    def ocsp_responder(
        self,
        *,
        validity: _dt.timedelta = _dt.timedelta(hours=12),
        responder_cert: x509.Certificate | None = None,
        responder_key: SigningKey | None = None,
    ) -> OCSPResponder:
        """A sans-IO OCSP responder for this CA, answering from the registry.

        Good = issued here and not revoked; revoked = in the registry (with
        reason and time), or issued here while the registry holds this CA's
        key revoked for a compromise (``ca-compromise``, dated as the key's
        revocation, as :meth:`PKI.verify` says; asked per request, so a
        delegated responder made before the compromise says it too), for
        any serial once the key is compromised, even one this CA never
        recorded (what a thief of the key signs); unknown = not issued by
        this CA while its key is not compromised.

        Args:
            validity: freshness of each response.
            responder_cert: a delegated responder certificate (OCSPSigning EKU,
                issued by this CA) and ``responder_key``; default: the CA signs.
            responder_key: the delegated responder's private key.

        Raises:
            InvalidArgumentError: only one of responder_cert/responder_key; a
                responder certificate not issued by this CA, without the
                OCSPSigning EKU (or digitalSignature when it has a key
                usage), not valid now, or whose key is not ``responder_key``.
            RevokedError: this CA (or its key), or the responder certificate, is revoked.
        """
        if (responder_cert is None) != (responder_key is None):
            raise InvalidArgumentError("give both responder_cert= and responder_key=, or neither")
        if responder_cert is not None and responder_key is not None:
            # The CA's own key does not sign here (it may be offline), but a
            # revoked CA has no say either: a delegate answered 'good' for
            # what a CA revoked for key compromise had issued.
            self._refuse_revoked()
            name, _, _version = self.key_ref.partition("#")
            registry = self._ctx.revocation
            if registry.is_revoked(SubjectKind.KEY, self.key_ref) or registry.is_revoked(
                SubjectKind.KEY, name
            ):
                raise RevokedError(f"the CA key {self.key_ref} is revoked", ca=self.name)
            self._check_responder(responder_cert, responder_key)
        store, registry, prefix = self._ctx.store, self._ctx.revocation, self.name
        # As km.pki.verify: once the registry holds this CA's key revoked for
        # a compromise, all it signed is revoked (ca-compromise). A delegated
        # responder made before kept answering "good". Asked right after the
        # serial's registry.get, which synced the store.
        key_compromise = self._key_compromise

        def lookup(serial: int) -> tuple[CertStatus, CRLEntry | None]:
            subject = f"{prefix}:{_hex(serial)}"
            found = registry.get(SubjectKind.CERTIFICATE, subject)
            if found is None or not found.reason.is_compromise:
                # Any serial, recorded here or not: a thief of the key signs
                # serials this CA never recorded, and all of them are revoked.
                compromised = key_compromise()
                if compromised is not None:
                    return CertStatus.REVOKED, CRLEntry(
                        serial,
                        compromised.revoked_at,
                        RevocationReason.CA_COMPROMISE,
                        compromised.invalidity_date,
                    )
            if found is not None:
                return CertStatus.REVOKED, CRLEntry(
                    serial, found.revoked_at, found.reason, found.invalidity_date
                )
            if store.backend.get(CERT_KIND, subject) is None:
                return CertStatus.UNKNOWN, None
            return CertStatus.GOOD, None

        return OCSPResponder(
            issuer=self.certificate,
            key=responder_key or self._key(),
            lookup=lookup,
            responder_cert=responder_cert,
            validity=validity,
        )

    def _check_responder(self, cert: x509.Certificate, key: SigningKey) -> None:
        """Refuse a delegated OCSP responder that relying parties would refuse (RFC 6960 4.2.2.2).

        Checked once here rather than found out per request (a mismatched
        key made every response ``malformedRequest``).
        """
        if not isinstance(cert, x509.Certificate):
            raise InvalidArgumentError(
                f"responder_cert must be an x509.Certificate, got {type(cert).__name__}"
            )
        try:
            signer_public_key(key)
        except (AttributeError, TypeError):
            raise InvalidArgumentError(
                f"responder_key must be a private signing key, got {type(key).__name__}"
            ) from None
        try:
            cert.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature):
            raise InvalidArgumentError(
                f"the responder certificate was not issued by the CA {self.name!r}", ca=self.name
            ) from None
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = x509.ExtendedKeyUsage([])
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            raise InvalidArgumentError("the responder certificate lacks the OCSPSigning EKU")
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is not None and not usage.digital_signature:
            raise InvalidArgumentError(
                "the responder certificate's key usage lacks digitalSignature"
            )
        now = self._ctx.clock.now()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise InvalidArgumentError("the responder certificate is not valid now")
        subject = f"{self.name}:{_hex(cert.serial_number)}"
        revocation = self._ctx.revocation.get(SubjectKind.CERTIFICATE, subject)
        if revocation is not None:
            raise RevokedError(
                f"the responder certificate is revoked ({revocation.reason.value})",
                serial=cert.serial_number,
                reason=revocation.reason,
            )
        if signer_public_key(key) != cert.public_key():
            raise InvalidArgumentError("responder_key does not match the responder certificate")

    def ocsp_respond(self, request: bytes) -> bytes:
        """Answer one DER OCSP request now (see :meth:`ocsp_responder`)."""
        return self.ocsp_responder().respond(request, at=self._ctx.clock.now())


def _in_request(exc: KeyMgmtError, index: int) -> KeyMgmtError:
    """``exc`` with the index of the :meth:`CertificateAuthority.issue_many` request it is about."""
    exc.message = f"request {index}: {exc}"
    exc.args = (exc.message,)
    exc.request_index = index  # type: ignore[attr-defined]
    return exc


def _profile(profile: Profile | str) -> Profile:
    if isinstance(profile, Profile):
        return profile
    found = PROFILES.get(str(profile))
    if found is None:
        raise InvalidArgumentError(
            f"unknown profile {profile!r}; expected one of: {', '.join(sorted(PROFILES))}"
        )
    return found


def _other_cas(txn: Txn, ca: str | None) -> list[tuple[str, bool]]:
    """The store's CAs but ``ca`` (all with None), as ``(name, indexed)`` (:mod:`._keyindex`)."""
    out = []
    for name, data in txn.list(CA_KIND):
        if name != ca:
            out.append((name, bool(_codec.loads(data).get("key_index"))))
    return out


def _refuse_revoked_renewal(ca: str, issued: IssuedCertificate) -> None:
    """Refuse to renew a revoked certificate, saying why.

    Raises:
        RevokedError: ``issued`` is revoked (``reason``, ``serial``, ``ca``).
    """
    revocation = issued.revocation
    if revocation is None:
        return
    reason = revocation.reason
    if reason.is_compromise:
        why = "its key is compromised and is never certified again"
    elif reason is RevocationReason.CERTIFICATE_HOLD:
        why = "it is on hold: release_hold() it first"
    else:
        why = "issue a new certificate instead"
    raise RevokedError(
        f"certificate {issued.serial_hex} of the CA {ca!r} is revoked ({reason.value}): {why}",
        ca=ca,
        serial=issued.serial,
        reason=reason,
    )


def _serial_of(serial: int | str) -> int:
    if isinstance(serial, bool):
        raise InvalidArgumentError("a serial number is an int or a hex string")
    if isinstance(serial, int):
        number = serial
    elif isinstance(serial, str):
        text = serial.strip().lower().removeprefix("0x").replace(":", "")
        shown = serial if len(serial) <= 64 else f"{serial[:64]}..."
        if len(text) > _MAX_SERIAL_HEX:
            raise InvalidArgumentError(f"invalid serial number {shown!r}: over 20 octets")
        try:
            number = int(text, 16)
        except ValueError:
            raise InvalidArgumentError(f"invalid serial number {shown!r}") from None
    else:
        raise InvalidArgumentError("a serial number is an int or a hex string")
    if number <= 0:
        raise InvalidArgumentError("a serial number is positive")
    if number.bit_length() > _MAX_SERIAL_BITS:
        raise InvalidArgumentError("a serial number is at most 20 octets (RFC 5280 4.1.2.2)")
    return number


#: RFC 5280 4.1.2.2: a serial number is a positive INTEGER of at most 20
#: octets (159 bits and the sign bit); ours have 127 bits.
_MAX_SERIAL_BITS: Final = 159
_MAX_SERIAL_HEX: Final = 64  # leading zeros allowed, but not megabytes of them


#: (serial, revoked at µs, reason value, invalidity µs or None): the registry's form.
_RawEntry = tuple[int, int, str, int | None]


def _entries(raw: Sequence[_RawEntry]) -> list[CRLEntry]:
    from_micros = _codec.from_micros
    reasons = {r.value: r for r in RevocationReason}
    return [
        CRLEntry(
            serial,
            from_micros(at),
            reasons[reason],
            None if invalidity is None else from_micros(invalidity),
        )
        for serial, at, reason, invalidity in raw
    ]
