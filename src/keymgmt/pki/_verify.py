"""Certificate path validation with revocation: the one verifier keymgmt uses.

Two engines, chosen per chain:

* **fast path** — ``cryptography.x509.verification`` (Rust, RFC 5280 +
  CA/B Forum profile) for every chain it accepts: ECDSA and RSA chains, which
  includes everything keymgmt issues with P-256/P-384/RSA CA keys. Its EKU
  and SAN requirements are relaxed to "may be present" so one verifier serves
  every purpose; keymgmt then checks the purpose (EKU, key usage) and the
  expected name itself.
* **strict RFC 5280 validator** — :mod:`keymgmt.pki._pathval`, for chains
  with an Ed25519 (or Ed448) key or signature, which cryptography's profile
  forbids (``engine == "keymgmt-eddsa"``), and for every chain the fast path
  refuses for a reason other than the expected name
  (``engine == "keymgmt-rfc5280"``): RFC 5280-valid paths outside the CA/B
  Forum profile (non-critical basic constraints, CA leaves, self-issued
  intermediates, name normalisation, directoryName/URI constraints,
  critical policy extensions). It applies the same algorithm policy, so it
  never accepts what the fast path refused on algorithm grounds; when it
  refuses too, its reason is given (the fast path's when it can only say
  "no path").

On the path either engine built, certificate policies are processed
(:mod:`keymgmt.pki._policy`, RFC 5280 6.1 with the caller's initial policy
inputs, RFC 5280's defaults unless given).
Then, for **every** certificate below the trust anchor, revocation: from the
store's registry when the issuer is one of our CAs (authoritative, O(1)),
else from the CRLs given (complete + delta, indexed once; only CRLs whose
scope covers the certificate, signed by a key allowed to sign them, RFC 5280
6.3.3), else from the OCSP responses given. Unknown status fails closed
unless the policy says soft-fail. Measured against NIST PKITS in
``tests/conformance``.

The result is a :class:`VerifiedPath` or a typed error:
:class:`~keymgmt.errors.CertificateRevokedError` (``serial``, ``reason``,
``revoked_at``) or :class:`~keymgmt.errors.CertificateVerificationError`
whose ``reason`` is a :class:`VerificationFailure`.
"""

from __future__ import annotations

import datetime as _dt
import enum
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import attrs
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509 import DNSName, IPAddress, ocsp
from cryptography.x509.oid import (
    ExtendedKeyUsageOID,
    ExtensionOID,
    PublicKeyAlgorithmOID,
    SignatureAlgorithmOID,
)
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from keymgmt.clock import ensure_aware
from keymgmt.errors import (
    CertificateRevokedError,
    CertificateVerificationError,
    InvalidArgumentError,
    KeyMgmtError,
    MalformedInputError,
)
from keymgmt.pki._crl import CRLEntry, CRLIndex, CRLIndexCache, reason_from_flag
from keymgmt.pki._failure import VerificationFailure, refusal
from keymgmt.pki._keys import spki_der
from keymgmt.pki._ocsp import DEFAULT_OCSP_MAX_AGE, CertStatus, check_ocsp_response
from keymgmt.pki._parse import load_ocsp_response
from keymgmt.pki._pathval import (
    acceptable_signature,
    extension_value,
    normalised_name,
    validate_path,
)
from keymgmt.pki._policy import PolicyInputs, check_policies
from keymgmt.revocation import Revocation, RevocationReason, SubjectKind

__all__ = [
    "NOT_OURS",
    "CertificateVerifier",
    "Purpose",
    "RevocationLookup",
    "RevocationPolicy",
    "RevocationSource",
    "VerificationFailure",
    "VerifiedPath",
]


_T = TypeVar("_T")


class Purpose(enum.StrEnum):
    """What the leaf certificate is being accepted for (checked against EKU and key usage)."""

    TLS_SERVER = "tls-server"
    TLS_CLIENT = "tls-client"
    CODE_SIGNING = "code-signing"
    OCSP_SIGNING = "ocsp-signing"
    ANY = "any"

    @classmethod
    def _missing_(cls, value: object) -> Purpose:
        raise _unknown(cls, "purpose", value)


_EKU = {
    Purpose.TLS_SERVER: ExtendedKeyUsageOID.SERVER_AUTH,
    Purpose.TLS_CLIENT: ExtendedKeyUsageOID.CLIENT_AUTH,
    Purpose.CODE_SIGNING: ExtendedKeyUsageOID.CODE_SIGNING,
    Purpose.OCSP_SIGNING: ExtendedKeyUsageOID.OCSP_SIGNING,
}


class RevocationPolicy(enum.StrEnum):
    """What happens when no source knows a certificate's status."""

    REQUIRE = "require"  #: fail closed (the default)
    SOFT_FAIL = "soft-fail"  #: accept unknown status (revoked still fails)

    @classmethod
    def _missing_(cls, value: object) -> RevocationPolicy:
        raise _unknown(cls, "revocation policy", value)


def _unknown(cls: type[enum.StrEnum], what: str, value: object) -> InvalidArgumentError:
    """The error for a value that is none of ``cls``'s (an InvalidArgumentError is a ValueError)."""
    choices = ", ".join(member.value for member in cls)
    return InvalidArgumentError(f"unknown {what} {value!r}; expected one of: {choices}")


def _typed(values: object, kind: type[_T], what: str) -> tuple[_T, ...]:
    """``values`` as a tuple, if each is a ``kind``.

    Raises:
        InvalidArgumentError: ``values`` is not a sequence of ``kind`` objects
            (say DER bytes where parsed objects are expected).
    """
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidArgumentError(f"{what} must be a sequence, got {type(values).__name__}")
    out: list[_T] = []
    for value in values:
        if not isinstance(value, kind):
            raise InvalidArgumentError(
                f"{what} must hold x509.{kind.__name__} objects, got {type(value).__name__}"
            )
        out.append(value)
    return tuple(out)


class RevocationSource(enum.StrEnum):
    """Where a certificate's revocation status came from."""

    REGISTRY = "registry"
    CRL = "crl"
    OCSP = "ocsp"
    UNKNOWN = "unknown"  #: soft-fail only


@attrs.frozen(kw_only=True)
class VerifiedPath:
    """A certificate accepted by :meth:`CertificateVerifier.verify`.

    Attributes:
        leaf: the verified certificate.
        chain: the path, leaf first, trust anchor last.
        at: the validation time.
        purpose: what it was accepted for.
        name: the name it was matched against (None if none was asked).
        revocation: per certificate below the anchor, where its status came from.
        engine: ``"cryptography"`` (fast path), ``"keymgmt-eddsa"`` (an
            Ed25519/Ed448 chain) or ``"keymgmt-rfc5280"`` (a chain the fast
            path's profile refused, accepted by the strict RFC 5280 validator).
        policies: the user-constrained policy set (RFC 5280 6.1.6): the
            certificate policies the path is valid for that the caller's
            initial policy set accepts; ``{anyPolicy}`` when any is; empty
            when the path asserts none (valid unless an explicit policy was
            required).
    """

    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    at: _dt.datetime
    purpose: Purpose
    name: str | None
    revocation: tuple[RevocationSource, ...]
    engine: str
    policies: frozenset[x509.ObjectIdentifier] = frozenset()

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)


#: What a :data:`RevocationLookup` answers when it has no say about a
#: certificate (its issuer is not one of the lookup's CAs): the verifier then
#: asks the CRLs and OCSP responses it was given.
NOT_OURS: Final = object()

#: ``lookup(issuer, cert)``: an authoritative revocation answer for ``cert``
#: (issued by ``issuer``), asked before any CRL or OCSP response. It returns
#: ``None`` (not revoked), a :class:`~keymgmt.revocation.Revocation` (revoked,
#: with its dates), a :class:`~keymgmt.revocation.RevocationReason` (revoked,
#: effective whatever the validation time) or :data:`NOT_OURS` (no say).
#: ``km.pki.verifier()`` builds one over the store's revocation registry.
RevocationLookup = Callable[
    [x509.Certificate, x509.Certificate], "Revocation | RevocationReason | object | None"
]


_DEFAULT_INPUTS: Final = PolicyInputs.of()

_EDDSA_SIGS = frozenset({SignatureAlgorithmOID.ED25519, SignatureAlgorithmOID.ED448})


_EDDSA_KEYS = frozenset({PublicKeyAlgorithmOID.ED25519, PublicKeyAlgorithmOID.ED448})


def _is_eddsa(cert: x509.Certificate) -> bool:
    return (
        cert.signature_algorithm_oid in _EDDSA_SIGS or cert.public_key_algorithm_oid in _EDDSA_KEYS
    )


def _relaxed_policies() -> tuple[ExtensionPolicy, ExtensionPolicy]:
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    )
    return ExtensionPolicy.webpki_defaults_ca(), ee


class CertificateVerifier:
    """RFC 5280 path validation plus revocation, reusable across calls and threads.

    Args:
        trust_anchors: the roots of trust.
        intermediates: untrusted CA certificates always offered for chain building.
        registry: an authoritative revocation answer asked first for every
            certificate below the anchor (a :data:`RevocationLookup`; the
            store's registry for our own CAs, or any callable for a
            store-less verifier); CRLs and OCSP responses are asked when it
            answers :data:`NOT_OURS`.
        policy: what to do when a certificate's status is unknown.
        max_depth: the longest chain accepted (intermediates below the anchor).
        crl_skew: tolerance on CRL thisUpdate/nextUpdate.
        ocsp_max_age: how old (thisUpdate before the validation time) an
            OCSP response without nextUpdate may be and still count.

    Raises:
        InvalidArgumentError: no trust anchors, or a negative ``ocsp_max_age``.
    """

    def __init__(
        self,
        *,
        trust_anchors: Sequence[x509.Certificate],
        intermediates: Sequence[x509.Certificate] = (),
        registry: RevocationLookup | None = None,
        policy: RevocationPolicy = RevocationPolicy.REQUIRE,
        max_depth: int = 8,
        crl_skew: _dt.timedelta = _dt.timedelta(minutes=5),
        ocsp_max_age: _dt.timedelta = DEFAULT_OCSP_MAX_AGE,
    ) -> None:
        trust_anchors = _typed(trust_anchors, x509.Certificate, "trust_anchors")
        intermediates = _typed(intermediates, x509.Certificate, "intermediates")
        if not trust_anchors:
            raise InvalidArgumentError("at least one trust anchor is needed")
        for what, value in (("crl_skew", crl_skew), ("ocsp_max_age", ocsp_max_age)):
            if not isinstance(value, _dt.timedelta):
                raise InvalidArgumentError(
                    f"{what} must be a datetime.timedelta, got {type(value).__name__}"
                )
        if ocsp_max_age < _dt.timedelta(0):
            raise InvalidArgumentError("the OCSP max_age must not be negative")
        self._anchors = tuple(trust_anchors)
        self._anchor_set = frozenset(self._anchors)
        self._intermediates = tuple(intermediates)
        self._registry = registry
        self._policy = RevocationPolicy(policy)
        self._max_depth = max_depth
        self._skew = crl_skew
        self._ocsp_max_age = ocsp_max_age
        fast_anchors = [a for a in self._anchors if not _is_eddsa(a)]
        self._store = Store(fast_anchors) if fast_anchors else None
        self._ca_policy, self._ee_policy = _relaxed_policies()
        self._crl_cache = CRLIndexCache()

    @property
    def trust_anchors(self) -> tuple[x509.Certificate, ...]:
        """The roots of trust."""
        return self._anchors

    def verify(
        self,
        cert: x509.Certificate,
        *,
        intermediates: Sequence[x509.Certificate] = (),
        crls: Sequence[x509.CertificateRevocationList] = (),
        ocsp_responses: Sequence[bytes | ocsp.OCSPResponse] = (),
        at: _dt.datetime,
        purpose: Purpose | str = Purpose.ANY,
        name: str | None = None,
        initial_policy_set: Iterable[x509.ObjectIdentifier | str] | None = None,
        initial_explicit_policy: bool = False,
        initial_policy_mapping_inhibit: bool = False,
        initial_any_policy_inhibit: bool = False,
    ) -> VerifiedPath:
        """Validate ``cert`` for ``purpose`` (and ``name``) at ``at``, with revocation.

        Args:
            cert: the end-entity certificate.
            intermediates: untrusted CA certificates the peer sent.
            crls: CRLs the caller has (complete and delta).
            ocsp_responses: OCSP responses the caller has (DER or parsed).
            at: the validation time (aware).
            purpose: checked against EKU and key usage.
            name: the expected identity: a DNS name or IP for TLS servers
                (wildcards honoured); otherwise matched exactly against the
                SAN DNS names, emails, URIs, IPs or the subject common name.
            initial_policy_set: RFC 5280's user-initial-policy-set: the
                certificate policies acceptable (OIDs or dotted strings);
                default ``{anyPolicy}``, any. The accepted ones are
                :attr:`VerifiedPath.policies`.
            initial_explicit_policy: require the path to be valid for at
                least one policy of ``initial_policy_set`` (default False).
            initial_policy_mapping_inhibit: refuse policy mapping anywhere in
                the path (default False).
            initial_any_policy_inhibit: do not let anyPolicy in a certificate
                stand for other policies (default False).

        Returns:
            the verified path.

        Raises:
            CertificateRevokedError: a certificate in the path is revoked.
            CertificateVerificationError: anything else; ``reason`` says what
                (no acceptable policy is ``invalid-path``).
            InvalidArgumentError: naive ``at``, an unknown purpose, or a
                malformed policy input.
        """
        at = ensure_aware(at, "at")
        purpose = Purpose(purpose)
        if not isinstance(cert, x509.Certificate):
            raise InvalidArgumentError(
                f"cert must be an x509.Certificate, got {type(cert).__name__}"
            )
        intermediates = _typed(intermediates, x509.Certificate, "intermediates")
        crls = _typed(crls, x509.CertificateRevocationList, "crls")
        if name is not None and not isinstance(name, str):
            raise InvalidArgumentError(f"name must be a str, got {type(name).__name__}")
        inputs = PolicyInputs.of(
            initial_policy_set=initial_policy_set,
            initial_explicit_policy=initial_explicit_policy,
            initial_policy_mapping_inhibit=initial_policy_mapping_inhibit,
            initial_any_policy_inhibit=initial_any_policy_inhibit,
        )
        try:
            return self._verify(
                cert, intermediates, crls, ocsp_responses, at, purpose, name, inputs=inputs
            )
        except KeyMgmtError:
            raise
        except (
            ValueError,
            TypeError,
            x509.DuplicateExtension,
            x509.UnsupportedGeneralNameType,
            UnsupportedAlgorithm,
        ) as exc:
            # A caller-built object with a malformed lazily-parsed field
            # (pyca parses extensions on first access, and raises its own
            # exceptions for duplicates and name forms it cannot represent).
            raise MalformedInputError(f"malformed certificate material: {exc}") from None

    def _verify(
        self,
        cert: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        crls: Sequence[x509.CertificateRevocationList],
        ocsp_responses: Sequence[bytes | ocsp.OCSPResponse],
        at: _dt.datetime,
        purpose: Purpose,
        name: str | None,
        nesting: int = 0,
        *,
        inputs: PolicyInputs = _DEFAULT_INPUTS,
    ) -> VerifiedPath:
        pool = (*intermediates, *self._intermediates)
        eddsa = _is_eddsa(cert) or any(_is_eddsa(c) for c in intermediates)
        if eddsa or self._store is None:
            chain = validate_path(cert, pool, self._anchors, at, max_depth=self._max_depth)
            engine = "keymgmt-eddsa"
            name_checked = False
        else:
            try:
                chain, name_checked = self._fast(cert, pool, at, purpose, name)
                engine = "cryptography"
            except CertificateVerificationError as refused:
                # cryptography's profile is stricter than RFC 5280: what it
                # refuses, the strict RFC 5280 validator decides (same
                # algorithm policy), unless the refusal is about the name.
                if getattr(refused, "reason", None) is VerificationFailure.NAME_MISMATCH:
                    raise
                chain = self._rfc5280(cert, pool, at, refused)
                engine = "keymgmt-rfc5280"
                name_checked = False
        policies = check_policies(chain, inputs)
        self._check_purpose(cert, purpose)
        self._check_issuer_purposes(chain, purpose)
        if name is not None and not name_checked:
            self._check_name(cert, name, purpose)
        sources = self._check_revocation(chain, crls, ocsp_responses, at, pool, nesting)
        return VerifiedPath(
            leaf=cert,
            chain=tuple(chain),
            at=at,
            purpose=purpose,
            name=name,
            revocation=sources,
            engine=engine,
            policies=policies,
        )

    # -- path ------------------------------------------------------------------

    def _rfc5280(
        self,
        cert: x509.Certificate,
        pool: Sequence[x509.Certificate],
        at: _dt.datetime,
        refused: CertificateVerificationError,
    ) -> list[x509.Certificate]:
        """The strict validator's path for a chain the fast path refused.

        Raises:
            CertificateVerificationError: it refuses too: its reason, unless
                it can only say "no path" where the fast path said why.
        """
        try:
            return validate_path(cert, pool, self._anchors, at, max_depth=self._max_depth)
        except CertificateVerificationError as exc:
            vague = (VerificationFailure.UNKNOWN_ISSUER, VerificationFailure.INVALID_PATH)
            if getattr(exc, "reason", None) in vague and getattr(refused, "reason", None) not in (
                vague
            ):
                raise refused from None
            raise

    def _fast(
        self,
        cert: x509.Certificate,
        pool: Sequence[x509.Certificate],
        at: _dt.datetime,
        purpose: Purpose,
        name: str | None,
    ) -> tuple[list[x509.Certificate], bool]:
        assert self._store is not None
        builder = PolicyBuilder().store(self._store).time(at).max_chain_depth(self._max_depth)
        try:
            if purpose is Purpose.TLS_SERVER and name is not None:
                subject: DNSName | IPAddress
                try:
                    subject = IPAddress(ipaddress.ip_address(name))
                except ValueError:
                    subject = DNSName(name)
                server = builder.extension_policies(
                    ca_policy=self._ca_policy, ee_policy=ExtensionPolicy.webpki_defaults_ee()
                ).build_server_verifier(subject)
                return list(server.verify(cert, list(pool))), True
            client = builder.extension_policies(
                ca_policy=self._ca_policy, ee_policy=self._ee_policy
            ).build_client_verifier()
            return list(client.verify(cert, list(pool)).chain), False
        except VerificationError as exc:
            raise self._diagnose(cert, pool, at, str(exc), name) from None
        except ValueError as exc:  # e.g. an invalid DNS name
            raise refusal(
                VerificationFailure.NAME_MISMATCH, f"invalid expected name: {exc}", cert
            ) from None

    def _diagnose(
        self,
        cert: x509.Certificate,
        pool: Sequence[x509.Certificate],
        at: _dt.datetime,
        message: str,
        name: str | None,
    ) -> CertificateVerificationError:
        # cryptography appends "(encountered processing <Certificate(subject=...)>)":
        # match the error itself, not the subject name it quotes.
        text = message.lower().split(" (encountered processing", 1)[0]
        for candidate in (cert, *pool, *self._anchors):
            related = (
                candidate is cert
                or candidate.subject == cert.issuer
                or any(candidate.subject == c.issuer for c in pool)
            )
            if not related:
                continue
            if at > candidate.not_valid_after_utc:
                return refusal(
                    VerificationFailure.EXPIRED, "a certificate in the chain has expired", candidate
                )
            if at < candidate.not_valid_before_utc:
                return refusal(
                    VerificationFailure.NOT_YET_VALID,
                    "a certificate in the chain is not yet valid",
                    candidate,
                )
        table = (
            ("subject", VerificationFailure.NAME_MISMATCH),
            ("name constraint", VerificationFailure.NAME_CONSTRAINTS),
            ("excluded", VerificationFailure.NAME_CONSTRAINTS),
            ("extended key usage", VerificationFailure.WRONG_USAGE),
            ("eku", VerificationFailure.WRONG_USAGE),
            ("keyusage", VerificationFailure.WRONG_USAGE),
            ("key usage", VerificationFailure.WRONG_USAGE),
            ("path length", VerificationFailure.PATH_LENGTH),
            ("pathlen", VerificationFailure.PATH_LENGTH),
            ("basicconstraints", VerificationFailure.NOT_A_CA),
            ("ca certificate", VerificationFailure.NOT_A_CA),
            ("critical", VerificationFailure.UNSUPPORTED_CRITICAL_EXTENSION),
            ("signature", VerificationFailure.BAD_SIGNATURE),
        )
        for needle, failure in table:
            if needle in text:
                if failure is VerificationFailure.NAME_MISMATCH and name is not None:
                    return refusal(failure, f"the certificate is not for {name!r}", cert)
                return refusal(failure, f"certificate refused: {message}", cert)
        if not any(c.subject == cert.issuer for c in (*pool, *self._anchors)):
            return refusal(
                VerificationFailure.UNKNOWN_ISSUER, "no trusted issuer for the certificate", cert
            )
        if "candidates exhausted" in text or "no issuer" in text:
            return refusal(
                VerificationFailure.UNKNOWN_ISSUER,
                f"the chain does not lead to a trust anchor: {message}",
                cert,
            )
        return refusal(VerificationFailure.INVALID_PATH, f"certificate refused: {message}", cert)

    # -- purpose and name ------------------------------------------------------

    @staticmethod
    def _check_purpose(cert: x509.Certificate, purpose: Purpose) -> None:
        if purpose is Purpose.ANY:
            return
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = None
        wanted = _EKU[purpose]
        if (
            eku is not None
            and wanted not in eku
            and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
        ):
            raise refusal(
                VerificationFailure.WRONG_USAGE,
                f"the certificate is not for {purpose.value} (extended key usage)",
                cert,
            )
        if eku is None:
            raise refusal(
                VerificationFailure.WRONG_USAGE,
                f"the certificate has no extended key usage for {purpose.value}",
                cert,
            )
        try:
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            return
        if not (ku.digital_signature or ku.key_encipherment or ku.key_agreement):
            raise refusal(
                VerificationFailure.WRONG_USAGE,
                "the certificate's key usage allows no signing or key exchange",
                cert,
            )

    @staticmethod
    def _check_issuer_purposes(chain: Sequence[x509.Certificate], purpose: Purpose) -> None:
        # A CA whose extended key usage leaves the purpose out may not vouch
        # for it (the fast path's CA profile checks this too; the strict
        # validator's paths must not skip it).
        if purpose is Purpose.ANY:
            return
        wanted = _EKU[purpose]
        for issuer in chain[1:]:
            eku = extension_value(issuer, x509.ExtendedKeyUsage)
            if (
                isinstance(eku, x509.ExtendedKeyUsage)
                and wanted not in eku
                and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
            ):
                raise refusal(
                    VerificationFailure.WRONG_USAGE,
                    f"an issuer's extended key usage does not allow {purpose.value}",
                    issuer,
                )

    @staticmethod
    def _check_name(cert: x509.Certificate, name: str, purpose: Purpose) -> None:
        given = name.strip()
        wanted = given.lower().rstrip(".")
        # An expected mailbox or URI: matched by a SAN of its form (or a
        # common name spelling it), never by a DNS name spelling it, which
        # is outside the CA's mailbox and URI constraints and compares
        # without regard to case.
        form = _expected_form(given)
        labels = wanted.split(".", 1)
        parent = labels[1] if len(labels) == 2 else None
        try:
            san = list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        except x509.ExtensionNotFound:
            san = []
        if purpose is Purpose.TLS_SERVER:
            try:
                address = ipaddress.ip_address(wanted)
            except ValueError:
                pass
            else:
                # An address is named by an IP SAN only: a DNS SAN spelling
                # it (or a wildcard over it) escapes a CA's IP constraints.
                san = [g for g in san if isinstance(g, x509.IPAddress) and g.value == address]
        for general in san:
            if isinstance(general, x509.IPAddress):
                try:
                    if ipaddress.ip_address(wanted) == general.value:
                        return
                except ValueError:
                    continue
            elif isinstance(general, x509.DNSName) and form is None:
                value = general.value.lower().rstrip(".")
                if value == wanted or (
                    # RFC 6125: a wildcard stands for one whole left-most label
                    purpose is Purpose.TLS_SERVER
                    and value.startswith("*.")
                    and parent is not None
                    and value[2:] == parent
                ):
                    return
            elif (
                # A server is named by a DNS name (RFC 6125): a URI or email
                # SAN spelling a host escapes a CA's DNS name constraints.
                purpose is not Purpose.TLS_SERVER
                and isinstance(general, x509.RFC822Name | x509.UniformResourceIdentifier)
                and _identity_key(san_form := _FORMS[type(general)], general.value)
                == _identity_key(san_form, given)
            ):
                return
        if purpose is not Purpose.TLS_SERVER:
            # A common name compares without regard to case (X.520
            # caseIgnoreMatch), but one spelling a mailbox or a URI compares
            # as that form does: else a CN would undo the SAN rules above.
            for attr in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME):
                common_name = str(attr.value).strip()
                if form is not None:
                    if _identity_key(form, common_name) == _identity_key(form, given):
                        return
                elif common_name.lower() == wanted:
                    return
        raise refusal(
            VerificationFailure.NAME_MISMATCH, f"the certificate is not for {name!r}", cert
        )

    # -- revocation --------------------------------------------------------------

    def _check_revocation(
        self,
        chain: Sequence[x509.Certificate],
        crls: Sequence[x509.CertificateRevocationList],
        ocsp_responses: Sequence[bytes | ocsp.OCSPResponse],
        at: _dt.datetime,
        pool: Sequence[x509.Certificate] = (),
        nesting: int = 0,
    ) -> tuple[RevocationSource, ...]:
        sources: list[RevocationSource] = []
        parsed_ocsp: list[ocsp.OCSPResponse] | None = None
        registry = self._registry
        if len(chain) == 1 and registry is not None and getattr(registry, _ANSWERS_ANCHORS, False):
            # A trust anchor verified as itself has no issuer to ask, but
            # one of our roots whose key is compromised signed it too (only
            # the store's lookup is asked: a caller's callback is promised
            # the certificates below the anchor).
            anchor = chain[0]
            answer = registry(anchor, anchor)
            if isinstance(answer, Revocation) and answer.reason.is_compromise:
                raise _revoked(
                    anchor,
                    CRLEntry(
                        anchor.serial_number,
                        answer.revoked_at,
                        answer.reason,
                        answer.invalidity_date,
                    ),
                )
        for depth in range(len(chain) - 1):
            cert, issuer = chain[depth], chain[depth + 1]
            if cert in self._anchor_set:
                break
            entry: CRLEntry | None = None
            source = RevocationSource.UNKNOWN
            known = False
            if self._registry is not None:
                answer = self._registry(issuer, cert)
                if answer is not NOT_OURS:
                    known, source = True, RevocationSource.REGISTRY
                    if isinstance(answer, Revocation):
                        entry = CRLEntry(
                            cert.serial_number,
                            answer.revoked_at,
                            answer.reason,
                            answer.invalidity_date,
                        )
                    elif isinstance(answer, RevocationReason):
                        # Revoked with no date given: in effect at any time.
                        entry = CRLEntry(cert.serial_number, at, answer, None)
            if not known and crls:
                known, entry = self._from_crls(
                    cert, issuer, crls, at, pool, nesting, anchor=chain[-1]
                )
                source = RevocationSource.CRL if known else source
            # The OCSP responses count when the CRLs do not know, and also when
            # they say "not revoked": a response newer than a still-fresh CRL
            # may know of a revocation since (one the caller holds was
            # ignored). A revocation from either source stands.
            if entry is None and source is not RevocationSource.REGISTRY and ocsp_responses:
                if parsed_ocsp is None:
                    parsed_ocsp = [
                        r if isinstance(r, ocsp.OCSPResponse) else load_ocsp_response(r)
                        for r in ocsp_responses
                    ]
                from_ocsp, ocsp_entry = self._from_ocsp(cert, issuer, parsed_ocsp, at)
                if from_ocsp and (not known or ocsp_entry is not None):
                    known, entry, source = True, ocsp_entry, RevocationSource.OCSP
            if entry is not None and _effective(entry, at):
                raise _revoked(cert, entry)
            if not known and self._policy is RevocationPolicy.REQUIRE:
                raise refusal(
                    VerificationFailure.REVOCATION_UNKNOWN,
                    f"no revocation status for certificate {cert.serial_number:x} "
                    f"({cert.subject.rfc4514_string()}): give a CRL or OCSP response",
                    cert,
                )
            sources.append(source)
        return tuple(sources)

    def _from_crls(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        crls: Sequence[x509.CertificateRevocationList],
        at: _dt.datetime,
        pool: Sequence[x509.Certificate] = (),
        nesting: int = 0,
        *,
        anchor: x509.Certificate,
    ) -> tuple[bool, CRLEntry | None]:
        # RFC 5280 6.3.3: a CRL counts only when it is signed by a key allowed
        # to sign CRLs for its issuer (the certificate's issuer, or another
        # certificate of that CRL issuer with cRLSign that itself verifies,
        # revocation included), has no unknown critical extension and its
        # scope (issuing distribution point) covers this certificate; the
        # status is known only when the complete CRLs in scope cover every
        # reason. Indirect CRLs are read from the cRLIssuer the certificate's
        # distribution point names.
        names = {issuer.subject, *_crl_issuers(cert)}
        full: dict[object, tuple[CRLIndex, frozenset[x509.ReasonFlags]]] = {}
        deltas: list[tuple[object, CRLIndex]] = []
        for crl in crls:
            if crl.issuer not in names:
                continue
            next_update = crl.next_update_utc
            # RFC 5280 5.1.2.5: conforming CRL issuers MUST include nextUpdate.
            # One without it would count forever once captured: not a source.
            # (Differences, not sums: 9999-12-31T23:59:59Z plus the skew
            # is past what a datetime holds.)
            if (
                next_update is None
                or crl.last_update_utc - at > self._skew
                or at - next_update > self._skew
            ):
                continue
            try:
                scope = _crl_scope(crl, cert, issuer.subject)
            except ValueError:  # extensions that do not parse: not a source
                continue
            if scope is None:
                continue
            signer = self._crl_signer(crl, issuer, pool, crls, at, nesting, anchor=anchor)
            if signer is None:
                continue
            index = self._crl_cache.get(crl, signer)
            scope_key, reasons = scope
            # CRLs of different issuers never stand for each other (a higher
            # CRL number from one issuer must not shadow another's).
            key: object = (crl.issuer, scope_key)
            if index.is_delta:
                deltas.append((key, index))
            elif key not in full or (index.number or 0) > (full[key][0].number or 0):
                full[key] = (index, reasons)
        covered = frozenset().union(*(reasons for _, reasons in full.values()))
        if not full or covered != _ALL_REASONS:
            return False, None
        found = None
        for full_key, (index, _) in full.items():
            entry = _entry(index, cert)
            # RFC 5280 5.2.4 (c)-(d): a delta counts with a complete CRL whose
            # number is at least the delta's base and below the delta's own
            # number; only the newest such delta (they are cumulative since
            # their base): an older one, say a removeFromCRL for a hold put
            # back since, would undo what the complete CRL or a newer delta says.
            number = index.number or 0
            newest: CRLIndex | None = None
            for delta_key, delta in deltas:
                if (
                    delta_key == full_key
                    and delta.base_number is not None
                    and delta.base_number <= number
                    and delta.number is not None
                    and delta.number > number
                    and (newest is None or delta.number > (newest.number or 0))
                ):
                    newest = delta
            if newest is not None and cert.serial_number in newest.entries:
                # In an indirect delta the serial may be another issuer's:
                # only an entry for this certificate replaces the base's.
                delta_entry = _entry(newest, cert)
                if delta_entry is not None:
                    entry = None if _removed(newest, cert) else delta_entry
            if entry is not None:
                found = entry
        return True, found

    def _crl_signer(
        self,
        crl: x509.CertificateRevocationList,
        issuer: x509.Certificate,
        pool: Sequence[x509.Certificate],
        crls: Sequence[x509.CertificateRevocationList],
        at: _dt.datetime,
        nesting: int,
        *,
        anchor: x509.Certificate,
    ) -> x509.Certificate | None:
        """The certificate whose key may sign ``crl`` and did (6.3.3 f-g), or None.

        A signer other than ``issuer`` must chain to ``anchor``, the trust
        anchor of the certificate's own path (6.3.3 f): a CA named like the
        issuer under another trusted root cannot speak for it.
        """
        if crl.issuer == issuer.subject and _may_sign_crls(issuer) and _signed_by(crl, issuer):
            return issuer
        if nesting >= 2:  # a CRL signer's CRL signer's CRL signer: give up (unknown)
            return None
        for signer in (*pool, *self._anchors):
            if (
                signer is issuer
                or signer.subject != crl.issuer
                or not _may_sign_crls(signer)
                or not _signed_by(crl, signer)
            ):
                continue
            if signer in self._anchor_set:
                if signer == anchor:
                    return signer
                continue
            try:
                path = self._verify(signer, pool, crls, (), at, Purpose.ANY, None, nesting + 1)
            except KeyMgmtError:
                continue
            if path.chain[-1] == anchor:
                return signer
        return None

    def _from_ocsp(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        responses: Sequence[ocsp.OCSPResponse],
        at: _dt.datetime,
    ) -> tuple[bool, CRLEntry | None]:
        # Every usable response counts, not the first one listed: a revocation
        # other than a hold wins whatever the order (a 'good' captured before
        # it must not hide it); between 'good' and a hold the newer
        # thisUpdate wins (a hold released since, or put since), a tie the hold.
        chosen = None
        for response in responses:
            try:
                status = check_ocsp_response(
                    response, cert=cert, issuer=issuer, at=at, max_age=self._ocsp_max_age
                )
            except CertificateVerificationError:
                continue
            if status.status is CertStatus.UNKNOWN:
                continue
            revoked = status.status is CertStatus.REVOKED
            if revoked and status.reason is not RevocationReason.CERTIFICATE_HOLD:
                chosen = status
                break
            if (
                chosen is None
                or status.this_update > chosen.this_update
                or (revoked and status.this_update == chosen.this_update)
            ):
                chosen = status
        if chosen is None:
            return False, None
        if chosen.status is CertStatus.GOOD:
            return True, None
        assert chosen.revoked_at is not None
        return True, CRLEntry(
            cert.serial_number,
            chosen.revoked_at,
            chosen.reason or RevocationReason.UNSPECIFIED,
            None,
        )


_FORMS: Final = {x509.RFC822Name: "mailbox", x509.UniformResourceIdentifier: "uri"}


def _expected_form(given: str) -> str | None:
    """``"uri"`` or ``"mailbox"`` when an expected name is one, else None (a host or address).

    A URI has a scheme and a colon (``https://...``, also ``urn:...`` without
    an authority); a mailbox an ``@``; a DNS name neither, and an IPv6
    address has colons but parses as an address.
    """
    if "://" in given:
        return "uri"
    if "@" in given:
        return "mailbox"
    if ":" in given:
        try:
            ipaddress.ip_address(given)
        except ValueError:
            return "uri"
    return None


def _identity_key(form: str, value: str) -> tuple[str, ...]:
    """What a mailbox or URI ``value`` must share with another to name the same identity.

    RFC 5280 7.5: a mailbox's local part exactly, its domain without regard
    to case; 7.4: a URI's scheme and host without regard to case, the rest
    (user information, port, path, query, fragment) exactly. ``form`` says
    which of the two ``value`` is (``"mailbox"`` or ``"uri"``).
    """
    if form == "mailbox":
        local, at, domain = value.rpartition("@")
        return (local, at, domain.lower())
    scheme, colon, rest = value.partition(":")
    if not rest.startswith("//"):
        return (scheme.lower(), colon, rest)
    end = min((i for i in (rest.find(c, 2) for c in "/?#") if i != -1), default=len(rest))
    userinfo, at, hostport = rest[2:end].rpartition("@")
    return (scheme.lower(), colon, userinfo, at, hostport.lower(), rest[end:])


_ALL_REASONS: Final = frozenset(
    {
        x509.ReasonFlags.key_compromise,
        x509.ReasonFlags.ca_compromise,
        x509.ReasonFlags.affiliation_changed,
        x509.ReasonFlags.superseded,
        x509.ReasonFlags.cessation_of_operation,
        x509.ReasonFlags.certificate_hold,
        x509.ReasonFlags.privilege_withdrawn,
        x509.ReasonFlags.aa_compromise,
    }
)

# CRL extensions whose meaning the check above honours (or that carry no
# condition on use); any other critical CRL extension makes the CRL unusable.
_KNOWN_CRL_EXTENSIONS: Final = frozenset(
    {
        ExtensionOID.CRL_NUMBER,
        ExtensionOID.DELTA_CRL_INDICATOR,
        ExtensionOID.ISSUING_DISTRIBUTION_POINT,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        ExtensionOID.FRESHEST_CRL,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    }
)


def _dp_names(
    point: x509.DistributionPoint | x509.IssuingDistributionPoint, issuer: x509.Name
) -> set[x509.GeneralName]:
    if point.full_name:
        return set(point.full_name)
    if point.relative_name is not None:  # relative to the CRL issuer's name
        return {x509.DirectoryName(x509.Name([*issuer.rdns, point.relative_name]))}
    return set()


def _crl_scope(
    crl: x509.CertificateRevocationList, cert: x509.Certificate, issuer_name: x509.Name
) -> tuple[object, frozenset[x509.ReasonFlags]] | None:
    """Whether ``crl`` covers ``cert`` (RFC 5280 6.3.3 b-d).

    ``issuer_name`` is the subject of the certificate's issuer on the path
    (equal to ``cert.issuer`` up to name normalisation).

    Returns None when it does not apply, else (scope key, reasons covered).
    """
    for ext in crl.extensions:
        if ext.critical and ext.oid not in _KNOWN_CRL_EXTENSIONS:
            return None
    try:
        idp: x509.IssuingDistributionPoint | None = crl.extensions.get_extension_for_class(
            x509.IssuingDistributionPoint
        ).value
    except x509.ExtensionNotFound:
        idp = None
    bc = extension_value(cert, x509.BasicConstraints)
    is_ca = isinstance(bc, x509.BasicConstraints) and bc.ca
    if idp is not None and (
        idp.only_contains_attribute_certs
        or (idp.only_contains_user_certs and is_ca)
        or (idp.only_contains_ca_certs and not is_ca)
    ):
        return None
    idp_names = set() if idp is None else _dp_names(idp, crl.issuer)
    cdp = extension_value(cert, x509.CRLDistributionPoints)
    points: list[x509.DistributionPoint | None] = (
        list(cdp) if isinstance(cdp, x509.CRLDistributionPoints) else [None]
    )
    indirect = idp is not None and idp.indirect_crl
    for point in points:
        reasons = _ALL_REASONS
        if point is None or not point.crl_issuer:
            # No cRLIssuer: the CRL must be the certificate issuer's own
            # (6.3.3 b.1); another CA's CRL lists that CA's certificates.
            if crl.issuer != cert.issuer and crl.issuer != issuer_name:
                continue
        elif not (indirect and x509.DirectoryName(crl.issuer) in point.crl_issuer):
            continue  # this point names another CRL issuer
        if point is not None and point.reasons is not None:
            reasons = frozenset(point.reasons)
        if idp_names:
            if point is None:
                continue
            # A name relative to the CRL issuer (RFC 5280 4.2.1.13): the
            # cRLIssuer's name when the point gives one, else the issuer's.
            base = crl.issuer if point.crl_issuer else cert.issuer
            named = _dp_names(point, base) or set(point.crl_issuer or ())
            if not idp_names & named:
                continue
        if idp is not None and idp.only_some_reasons is not None:
            reasons = reasons & frozenset(idp.only_some_reasons)
        return idp, reasons
    return None


def _may_sign_crls(cert: x509.Certificate) -> bool:
    usage = extension_value(cert, x509.KeyUsage)
    return not isinstance(usage, x509.KeyUsage) or usage.crl_sign


def _signed_by(crl: x509.CertificateRevocationList, signer: x509.Certificate) -> bool:
    # The algorithm policy applies to CRLs as to certificates: a SHA-1 (or DSA)
    # CRL is no source of status, whoever signed it.
    if not acceptable_signature(crl):
        return False
    try:
        return crl.is_signature_valid(signer.public_key())  # type: ignore[arg-type]
    except Exception:  # an unusable key or CRL is just not a source
        return False


def _crl_issuers(cert: x509.Certificate) -> list[x509.Name]:
    """The cRLIssuer names of ``cert``'s distribution points (indirect CRLs)."""
    points = extension_value(cert, x509.CRLDistributionPoints)
    if not isinstance(points, x509.CRLDistributionPoints):
        return []
    return [
        name.value
        for point in points
        for name in point.crl_issuer or ()
        if isinstance(name, x509.DirectoryName)
    ]


def _is_indirect(crl: x509.CertificateRevocationList) -> bool:
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return False
    return idp.indirect_crl


def _own_revoked(
    crl: x509.CertificateRevocationList, cert: x509.Certificate
) -> x509.RevokedCertificate | None:
    """``cert``'s entry in an indirect CRL: its serial under ``cert``'s issuer.

    Entries belong to the CRL issuer until a certificateIssuer entry
    extension names another (RFC 5280 5.3.3); that name holds for the
    entries after it. Another issuer's entry of the same serial is not
    ``cert``'s (its dates, reason or removeFromCRL do not apply).
    """
    current: object = x509.DirectoryName(crl.issuer)
    wanted = x509.DirectoryName(cert.issuer)
    for revoked in crl:
        try:
            names = revoked.extensions.get_extension_for_class(x509.CertificateIssuer).value
        except x509.ExtensionNotFound:
            pass
        else:
            current = names
        if revoked.serial_number != cert.serial_number:
            continue
        if current == wanted or (isinstance(current, x509.CertificateIssuer) and wanted in current):
            return revoked
    return None


def _entry(index: CRLIndex, cert: x509.Certificate) -> CRLEntry | None:
    """``cert``'s entry in a CRL; in an indirect CRL, only one for ``cert``'s issuer."""
    entry = index.entries.get(cert.serial_number)
    if entry is None or not _is_indirect(index.crl):
        return entry
    revoked = _own_revoked(index.crl, cert)
    if revoked is None:
        return None
    reason = RevocationReason.UNSPECIFIED
    invalidity = None
    for ext in revoked.extensions:
        if isinstance(ext.value, x509.CRLReason):
            reason = reason_from_flag(ext.value.reason)
        elif isinstance(ext.value, x509.InvalidityDate):
            invalidity = ext.value.invalidity_date_utc
    return CRLEntry(revoked.serial_number, revoked.revocation_date_utc, reason, invalidity)


def _removed(delta: CRLIndex, cert: x509.Certificate) -> bool:
    """Whether ``delta`` lists ``cert`` as removeFromCRL (no longer revoked)."""
    if _is_indirect(delta.crl):
        revoked = _own_revoked(delta.crl, cert)
    else:
        revoked = delta.crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if revoked is None:
        return False
    try:
        reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return False
    return reason is x509.ReasonFlags.remove_from_crl


#: Marks a lookup (``ca_lookup``'s) that may be asked about a trust anchor as itself.
_ANSWERS_ANCHORS: Final = "_keymgmt_answers_anchors"


def _revoked(cert: x509.Certificate, entry: CRLEntry) -> CertificateRevokedError:
    """The refusal of ``cert``, revoked as ``entry`` says."""
    return CertificateRevokedError(
        f"certificate {cert.serial_number:x} ({cert.subject.rfc4514_string()}) "
        f"was revoked ({entry.reason.value}) at {entry.revoked_at.isoformat()}",
        reason=entry.reason,
        failure=VerificationFailure.REVOKED,
        serial=cert.serial_number,
        revoked_at=entry.revoked_at,
        invalidity_date=entry.invalidity_date,
        subject=cert.subject.rfc4514_string(),
    )


def _effective(entry: CRLEntry, at: _dt.datetime) -> bool:
    # A compromise taints everything the key did: it counts whatever the time.
    if entry.reason.is_compromise:
        return True
    return entry.revoked_at <= at or (
        entry.invalidity_date is not None and entry.invalidity_date <= at
    )


def ca_compromise(subject: str, key: Revocation) -> Revocation:
    """What a certificate's revocation is once its CA's signing key is compromised.

    ``subject`` is the certificate's registry subject, ``key`` the
    revocation of the CA key (version or whole key) for a compromise: the
    certificate is revoked with ``ca-compromise`` from then (and from the
    key's invalidity date, if it has one).
    """
    return Revocation(
        kind=SubjectKind.CERTIFICATE,
        subject=subject,
        reason=RevocationReason.CA_COMPROMISE,
        revoked_at=key.revoked_at,
        invalidity_date=key.invalidity_date,
    )


def _ca_key(cert: x509.Certificate) -> tuple[object, bytes]:
    """A CA's identity as an issuer: its normalised subject and its public key."""
    return normalised_name(cert.subject), spki_der(cert)


def ca_lookup(
    ca_ids: Mapping[x509.Certificate, str],
    is_revoked: Callable[[str], bool],
    get: Callable[[str], Revocation | None],
    key_compromise: Callable[[str], Revocation | None] | None = None,
) -> RevocationLookup:
    """A :data:`RevocationLookup` over ``{CA certificate: CA id}`` and the registry.

    An issuer on the path is one of the CAs when it is that CA's certificate
    (one dict probe) or any other certificate with the same normalised
    subject and public key: the CA's certificate before a renewal, or a
    cross-certificate. Path validation has checked the certificate's
    signature under the issuer's key, so that CA signed it, whichever of its
    certificates the peer sent. ``is_revoked`` is probed first (one dict
    probe); ``get`` builds the full revocation only for revoked certificates.

    ``key_compromise(CA id)``: the revocation of that CA's signing key for a
    compromise, or None. A certificate whose issuer's key is compromised is
    revoked (``ca-compromise``, whatever the validation time): whoever holds
    the key can sign anything, dated as they like, that the registry never
    recorded, a root's certificates included (a trust anchor has no issuer
    to revoke it).
    """
    by_key: dict[tuple[object, bytes], tuple[str, ...]] | None = None

    def other_certificate(issuer: x509.Certificate) -> tuple[str, ...]:
        nonlocal by_key
        if by_key is None:  # built on the first miss: renewals are rare
            built: dict[tuple[object, bytes], tuple[str, ...]] = {}
            for ca_cert, ca_id in ca_ids.items():
                try:
                    key = _ca_key(ca_cert)
                except (ValueError, TypeError):  # a key we cannot read names no issuer
                    continue
                if ca_id not in built.get(key, ()):
                    built[key] = (*built.get(key, ()), ca_id)
            by_key = built
        try:
            return by_key.get(_ca_key(issuer), ())
        except (ValueError, TypeError):
            return ()

    def compromised(ca_id: str, subject: str) -> Revocation | None:
        if key_compromise is None:
            return None
        revoked = key_compromise(ca_id)
        return None if revoked is None else ca_compromise(subject, revoked)

    def lookup(issuer: x509.Certificate, cert: x509.Certificate) -> Revocation | object | None:
        ca_id = ca_ids.get(issuer)
        if ca_id is not None:  # the CA's current certificate: the hot path
            found: tuple[str, ...] = (ca_id,)
        else:
            found = other_certificate(issuer)
            if not found:
                return NOT_OURS
        serial = f"{cert.serial_number:x}"
        own = None
        for candidate in found:  # two store CAs sharing a name and key: either's revocation
            subject = f"{candidate}:{serial}"
            if is_revoked(subject):
                own = get(subject)
                break
        if own is not None and own.reason.is_compromise:
            return own
        # The issuer's key compromised outweighs a revocation that counts
        # only from its date (a compromise counts whatever the time).
        for candidate in found:
            revoked = compromised(candidate, f"{candidate}:{serial}")
            if revoked is not None:
                return revoked
        return own

    setattr(lookup, _ANSWERS_ANCHORS, True)  # asked for a trust anchor verified as itself

    return lookup
