"""Regression tests for the verify-side findings of the PKI security review (issue #5)."""

from __future__ import annotations

import datetime as _dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from _unparsable import UNPARSABLE, unparsable_leaf
from keymgmt import KeyManager
from keymgmt.errors import (
    CertificateRevokedError,
    CertificateVerificationError,
    InvalidArgumentError,
    MalformedInputError,
)
from keymgmt.pki import (
    NOT_OURS,
    TLS_CLIENT,
    CertificateAuthority,
    CertificateVerifier,
    CertStatus,
    Purpose,
    RevocationLookup,
    RevocationPolicy,
    RevocationSource,
    VerificationFailure,
    build_ocsp_request,
    check_ocsp_response,
)
from keymgmt.pki._crl import CRLIndexCache
from keymgmt.pki._ocsp import DEFAULT_OCSP_MAX_AGE
from keymgmt.pki._pathval import _uri_host, name_allowed
from keymgmt.pki._signer import der_read, der_tlv
from keymgmt.pki._verify import ca_lookup
from keymgmt.revocation import Revocation, RevocationReason, SubjectKind
from keymgmt.testing import FakeClock

_NOW = _dt.datetime(2030, 1, 1, tzinfo=_dt.UTC)


def _reason(exc: BaseException) -> object:
    """A refusal's ``reason`` (set by the error's keyword arguments)."""
    return getattr(exc, "reason", None)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signer: ec.EllipticCurvePrivateKey,
    *,
    issuer: x509.Name | None = None,
    key_usage: bool = True,
    serial: int = 1 << 70,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(_NOW - _dt.timedelta(days=1))
        .not_valid_after(_NOW + _dt.timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if key_usage:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        ).add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


def _leaf(
    cn: str, issuer: x509.Certificate, signer: ec.EllipticCurvePrivateKey, serial: int
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_NOW - _dt.timedelta(days=1))
        .not_valid_after(_NOW + _dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
        .sign(signer, hashes.SHA256())
    )


def _crl(
    issuer: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    revoked: tuple[int, ...] = (),
    *,
    this_update: _dt.datetime = _NOW - _dt.timedelta(minutes=1),
    next_update: _dt.datetime | None = _NOW + _dt.timedelta(days=1),
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update or this_update + _dt.timedelta(days=1))
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(this_update - _dt.timedelta(minutes=1))
            .build()
        )
    crl = builder.sign(key, hashes.SHA256())
    if next_update is None:
        crl = _without_next_update(crl, key)
    return crl


def _children(content: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(content):
        _, _, end = der_read(content, at)
        out.append(content[at:end])
        at = end
    return out


def _reassemble(tbs: bytes, crl: x509.CertificateRevocationList, signature: bytes) -> bytes:
    """A CRL's DER with ``tbs`` and ``signature`` around ``crl``'s algorithm."""
    _, outer, _ = der_read(crl.public_bytes(serialization.Encoding.DER))
    algorithm = _children(outer)[1]
    return der_tlv(0x30, tbs + algorithm + der_tlv(0x03, b"\x00" + signature))


def _without_next_update(
    crl: x509.CertificateRevocationList, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateRevocationList:
    """``crl`` re-signed without its nextUpdate (the builder always writes one)."""
    _, content, _ = der_read(crl.tbs_certlist_bytes)
    parts = _children(content)
    assert parts[4][0] in (0x17, 0x18)  # version, algorithm, issuer, thisUpdate, nextUpdate
    tbs = der_tlv(0x30, b"".join(parts[:4] + parts[5:]))
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    out = x509.load_der_x509_crl(_reassemble(tbs, crl, signature))
    assert out.next_update_utc is None
    return out


# -- finding 3: the CRL index cache is keyed by the whole CRL ----------------------

# P-256 affine arithmetic over public values only (the duplicate-signature key).
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)
_Point = tuple[int, int] | None


def _add(p1: _Point, p2: _Point) -> _Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % _P == 0:
        return None
    if p1 == p2:
        slope = (3 * x1 * x1 - 3) * pow(2 * y1, -1, _P)
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, _P)
    x3 = (slope * slope - x1 - x2) % _P
    return x3, (slope * (x1 - x3) - y1) % _P


def _mul(k: int, point: _Point) -> _Point:
    out: _Point = None
    while k:
        if k & 1:
            out = _add(out, point)
        point, k = _add(point, point), k >> 1
    return out


def _lifts(x: int) -> bool:
    rhs = (x**3 - 3 * x + _B) % _P
    return pow(rhs, (_P + 1) // 4, _P) ** 2 % _P == rhs


def _same_signature_forgery(
    victim: x509.CertificateRevocationList, template: x509.CertificateRevocationList
) -> tuple[x509.CertificateRevocationList, ec.EllipticCurvePublicKey]:
    """``template``'s contents under ``victim``'s signature bytes, and a key it verifies under."""
    tbs = template.tbs_certlist_bytes
    r, s = decode_dss_signature(victim.signature)
    digest = int.from_bytes(hashlib.sha256(tbs).digest(), "big")
    point = (r, pow((r**3 - 3 * r + _B) % _P, (_P + 1) // 4, _P))
    s_inv = pow(s, -1, _N)
    u1, u2 = digest * s_inv % _N, r * s_inv % _N
    q = _mul(pow(u2, -1, _N), _add(point, _mul(_N - u1, _G)))
    assert q is not None
    key = ec.EllipticCurvePublicNumbers(q[0], q[1], ec.SECP256R1()).public_key()
    forged = x509.load_der_x509_crl(_reassemble(tbs, template, victim.signature))
    assert forged.signature == victim.signature
    assert forged.is_signature_valid(key)
    return forged, key


def test_crl_index_cache_does_not_share_an_index_between_signers_of_equal_signatures() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    ca = _ca(_name("ca"), key.public_key(), key)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _ca(_name("other"), other_key.public_key(), other_key)
    listed = _crl(ca, key, revoked=(1234,))
    empty = _crl(ca, key)
    # Same signature bytes, other contents: the one a forged key would verify.
    lookalike = x509.load_der_x509_crl(
        _reassemble(empty.tbs_certlist_bytes, empty, listed.signature)
    )
    cache = CRLIndexCache()
    assert 1234 in cache.get(listed, ca).entries
    assert cache.get(lookalike, other).entries == {}
    assert 1234 in cache.get(listed, ca).entries


def test_a_crl_forged_with_a_published_ecdsa_signature_does_not_hide_a_revocation() -> None:
    victim_key = ec.generate_private_key(ec.SECP256R1())
    victim_root = _ca(_name("victim root"), victim_key.public_key(), victim_key)
    victim_leaf = _leaf("victim leaf", victim_root, victim_key, 1 << 80)
    victim_crl = _crl(victim_root, victim_key, revoked=(victim_leaf.serial_number,))
    while not _lifts(decode_dss_signature(victim_crl.signature)[0]):  # half of all r lift
        victim_crl = _crl(victim_root, victim_key, revoked=(victim_leaf.serial_number,))
    attacker_key = ec.generate_private_key(ec.SECP256R1())
    attacker_root = _ca(_name("attacker root"), attacker_key.public_key(), attacker_key)
    attacker_leaf = _leaf("attacker leaf", attacker_root, attacker_key, 1 << 81)
    forged, forged_key = _same_signature_forgery(victim_crl, _crl(attacker_root, attacker_key))
    # The attacker's root certifies the forged key as a CRL signer of its own name.
    crl_signer = _ca(
        attacker_root.subject,
        forged_key,
        attacker_key,
        issuer=attacker_root.subject,
        key_usage=False,
        serial=1 << 82,
    )
    verifier = CertificateVerifier(trust_anchors=[victim_root, attacker_root])
    verifier.verify(  # the attacker's own verification reads the forged CRL first
        attacker_leaf,
        intermediates=[crl_signer],
        crls=[_crl(attacker_root, attacker_key), forged],
        at=_NOW,
        purpose=Purpose.ANY,
    )
    with pytest.raises(CertificateRevokedError):
        verifier.verify(victim_leaf, crls=[victim_crl], at=_NOW, purpose=Purpose.ANY)


# -- finding 4: no nextUpdate is no licence to be used forever ---------------------


class _Foreign:
    """A foreign root and a client leaf under it (not the store's: no registry answer)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.root = _ca(_name("foreign root"), self.key.public_key(), self.key)
        self.leaf = _leaf("leaf", self.root, self.key, 1 << 71)

    def ocsp(
        self, this_update: _dt.datetime, next_update: _dt.datetime | None
    ) -> ocsp.OCSPResponse:
        return (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=self.leaf,
                issuer=self.root,
                algorithm=hashes.SHA256(),
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=this_update,
                next_update=next_update,
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.root)
            .sign(self.key, hashes.SHA256())
        )


@pytest.fixture(scope="module")
def foreign() -> _Foreign:
    return _Foreign()


def test_an_ocsp_response_without_next_update_older_than_the_max_age_is_stale(
    foreign: _Foreign,
) -> None:
    stale = foreign.ocsp(_NOW - _dt.timedelta(days=5 * 365), None)
    with pytest.raises(CertificateVerificationError) as caught:
        check_ocsp_response(stale, cert=foreign.leaf, issuer=foreign.root, at=_NOW)
    assert _reason(caught.value) == "ocsp-stale"


def test_an_ocsp_response_without_next_update_within_the_max_age_is_accepted(
    foreign: _Foreign,
) -> None:
    recent = foreign.ocsp(_NOW - DEFAULT_OCSP_MAX_AGE + _dt.timedelta(hours=1), None)
    status = check_ocsp_response(recent, cert=foreign.leaf, issuer=foreign.root, at=_NOW)
    assert status.status is CertStatus.GOOD
    assert status.next_update is None


def test_the_ocsp_max_age_is_the_callers_to_choose(foreign: _Foreign) -> None:
    response = foreign.ocsp(_NOW - _dt.timedelta(hours=2), None)
    with pytest.raises(CertificateVerificationError):
        check_ocsp_response(
            response,
            cert=foreign.leaf,
            issuer=foreign.root,
            at=_NOW,
            max_age=_dt.timedelta(hours=1),
        )


def test_a_negative_ocsp_max_age_is_refused(foreign: _Foreign) -> None:
    response = foreign.ocsp(_NOW, None)
    with pytest.raises(InvalidArgumentError):
        check_ocsp_response(
            response,
            cert=foreign.leaf,
            issuer=foreign.root,
            at=_NOW,
            max_age=_dt.timedelta(seconds=-1),
        )
    with pytest.raises(InvalidArgumentError):
        CertificateVerifier(trust_anchors=[foreign.root], ocsp_max_age=_dt.timedelta(seconds=-1))


def test_verify_does_not_count_a_stale_ocsp_response_without_next_update(
    foreign: _Foreign,
) -> None:
    verifier = CertificateVerifier(trust_anchors=[foreign.root])
    stale = foreign.ocsp(_NOW - _dt.timedelta(days=5 * 365), None)
    with pytest.raises(CertificateVerificationError) as caught:
        verifier.verify(foreign.leaf, ocsp_responses=[stale], at=_NOW)
    assert _reason(caught.value) is VerificationFailure.REVOCATION_UNKNOWN


def test_verify_honours_the_verifiers_ocsp_max_age(foreign: _Foreign) -> None:
    response = foreign.ocsp(_NOW - _dt.timedelta(days=30), None)
    lenient = CertificateVerifier(trust_anchors=[foreign.root], ocsp_max_age=_dt.timedelta(days=31))
    path = lenient.verify(foreign.leaf, ocsp_responses=[response], at=_NOW)
    assert path.revocation == (RevocationSource.OCSP,)
    strict = CertificateVerifier(trust_anchors=[foreign.root])
    with pytest.raises(CertificateVerificationError):
        strict.verify(foreign.leaf, ocsp_responses=[response], at=_NOW)


def test_verify_does_not_count_a_crl_without_next_update(foreign: _Foreign) -> None:
    verifier = CertificateVerifier(trust_anchors=[foreign.root])
    no_next = _crl(
        foreign.root, foreign.key, this_update=_NOW - _dt.timedelta(hours=1), next_update=None
    )
    with pytest.raises(CertificateVerificationError) as caught:
        verifier.verify(foreign.leaf, crls=[no_next], at=_NOW)
    assert _reason(caught.value) is VerificationFailure.REVOCATION_UNKNOWN
    # The same CRL with a nextUpdate is a source.
    with_next = _crl(foreign.root, foreign.key, this_update=_NOW - _dt.timedelta(hours=1))
    assert verifier.verify(foreign.leaf, crls=[with_next], at=_NOW).revocation == (
        RevocationSource.CRL,
    )


def test_under_soft_fail_a_crl_without_next_update_counts_as_no_source(
    foreign: _Foreign,
) -> None:
    # Ignored like an expired CRL: the status is unknown, which soft-fail accepts.
    verifier = CertificateVerifier(trust_anchors=[foreign.root], policy=RevocationPolicy.SOFT_FAIL)
    no_next = _crl(
        foreign.root, foreign.key, this_update=_NOW - _dt.timedelta(hours=1), next_update=None
    )
    path = verifier.verify(foreign.leaf, crls=[no_next], at=_NOW)
    assert path.revocation == (RevocationSource.UNKNOWN,)


# -- finding 5: every certificate of a store CA resolves to that CA ----------------


@pytest.fixture
def renewed(km: KeyManager) -> tuple[CertificateAuthority, x509.Certificate]:
    """A sub-CA whose certificate was renewed; with its pre-renewal certificate."""
    root = km.pki.create_root_ca("root", path_length=1)
    sub = root.create_intermediate("sub")
    old = sub.certificate
    root.renew(old.serial_number)
    return km.pki.ca("sub"), old


def _client(ca: CertificateAuthority, cn: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return ca.issue(public_key=key.public_key(), subject=cn, profile=TLS_CLIENT)


def test_a_revoked_leaf_sent_with_the_pre_renewal_intermediate_is_refused_under_soft_fail(
    km: KeyManager, clock: FakeClock, renewed: tuple[CertificateAuthority, x509.Certificate]
) -> None:
    sub, old = renewed
    assert sub.certificate != old
    bad = _client(sub, "bad")
    sub.revoke(bad.serial_number, "key-compromise")
    clock.advance(60)
    with pytest.raises(CertificateRevokedError):
        km.pki.verify(bad, intermediates=[old], policy="soft-fail")


def test_a_good_leaf_sent_with_the_pre_renewal_intermediate_has_its_status_from_the_registry(
    km: KeyManager, clock: FakeClock, renewed: tuple[CertificateAuthority, x509.Certificate]
) -> None:
    sub, old = renewed
    good = _client(sub, "good")
    clock.advance(60)
    path = km.pki.verify(good, intermediates=[old])
    assert path.chain[1] == old
    assert path.revocation == (RevocationSource.REGISTRY, RevocationSource.REGISTRY)


def _lookup_world() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, RevocationLookup]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca = _ca(_name("Store CA"), key.public_key(), key)
    revoked = {"store-ca:7"}
    lookup = ca_lookup(
        {ca: "store-ca"},
        revoked.__contains__,
        lambda s: Revocation(
            kind=SubjectKind.CERTIFICATE,
            subject=s,
            reason=RevocationReason.KEY_COMPROMISE,
            revoked_at=_NOW,
        ),
    )
    return key, ca, lookup


def test_the_registry_lookup_knows_a_ca_by_normalised_name_and_key() -> None:
    key, _, lookup = _lookup_world()
    # Another certificate of the same key whose name differs only in case and spacing.
    other = _ca(_name("  store   ca "), key.public_key(), key, serial=1 << 71)
    leaf = _leaf("leaf", other, key, 7)
    answer = lookup(other, leaf)
    assert isinstance(answer, Revocation)
    assert answer.reason is RevocationReason.KEY_COMPROMISE
    assert lookup(other, _leaf("leaf", other, key, 8)) is None


def test_the_registry_lookup_does_not_know_a_same_named_ca_with_another_key() -> None:
    _, ca, lookup = _lookup_world()
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    impostor = _ca(ca.subject, impostor_key.public_key(), impostor_key)
    assert lookup(impostor, _leaf("leaf", impostor, impostor_key, 7)) is NOT_OURS


def test_the_registry_lookup_does_not_know_another_name_with_the_cas_key() -> None:
    key, _, lookup = _lookup_world()
    renamed = _ca(_name("other CA"), key.public_key(), key)
    assert lookup(renamed, _leaf("leaf", renamed, key, 7)) is NOT_OURS


# -- finding 7: URI hosts that parsers read differently fail closed ----------------


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.com\\@example.com/",  # WHATWG: host evil.com; urllib: example.com
        "https://evil.com\\.example.com/",
        "https://user@example.com/",
        "https://evil.com%40@example.com/",
        "https://exa\tmple.com/",  # urllib drops the tab
        "https://example.com\n/",
        " https://example.com/",
        "https://example.com/\x00",
        "https://example.com/\u200b",
    ],
)
def test_an_ambiguous_uri_has_no_host(uri: str) -> None:
    assert _uri_host(uri) is None


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("https://example.com/", "example.com"),
        ("https://Example.COM:8443/a%20b?q=1#f", "example.com"),
        ("https://example.com/a\\b", "example.com"),  # a path backslash: same host to both
        ("ldap://[2001:db8::1]/o=x", "2001:db8::1"),
    ],
)
def test_a_plain_uri_keeps_its_host(uri: str, host: str) -> None:
    assert _uri_host(uri) == host


_URI_CONSTRAINTS = x509.NameConstraints(
    permitted_subtrees=[x509.UniformResourceIdentifier("example.com")],
    excluded_subtrees=[x509.UniformResourceIdentifier("evil.com")],
)


def test_verify_refuses_a_backslash_userinfo_uri_under_uri_name_constraints() -> None:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _ca(_name("root"), root_key.public_key(), root_key)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("constrained"))
        .issuer_name(root.subject)
        .public_key(ca_key.public_key())
        .serial_number(1 << 72)
        .not_valid_before(_NOW - _dt.timedelta(days=1))
        .not_valid_after(_NOW + _dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .add_extension(_URI_CONSTRAINTS, critical=True)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    uri = "https://evil.com\\@example.com/"
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("svc"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(1 << 73)
        .not_valid_before(_NOW - _dt.timedelta(days=1))
        .not_valid_after(_NOW + _dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    verifier = CertificateVerifier(trust_anchors=[root], policy=RevocationPolicy.SOFT_FAIL)
    with pytest.raises(CertificateVerificationError) as caught:
        verifier.verify(leaf, intermediates=[ca], at=_NOW)
    assert _reason(caught.value) is VerificationFailure.NAME_CONSTRAINTS


def test_issuance_name_check_refuses_an_ambiguous_uri_under_excluded_uri_constraints() -> None:
    # Only an excluded subtree: a URI with no readable host cannot be shown outside it.
    excluded_only = x509.NameConstraints(
        permitted_subtrees=None,
        excluded_subtrees=[x509.UniformResourceIdentifier("evil.com")],
    )
    ambiguous = x509.UniformResourceIdentifier("https://evil.com\\@example.com/")
    assert not name_allowed(excluded_only, ambiguous)
    assert not name_allowed(_URI_CONSTRAINTS, ambiguous)
    assert name_allowed(excluded_only, x509.UniformResourceIdentifier("https://example.com/"))


# -- finding 10: the OCSP responder answers nonces of 1 to 32 bytes only ------------


def _nonce_request(ca: CertificateAuthority, size: int) -> bytes:
    cert = _client(ca, "c")
    return (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, ca.certificate, hashes.SHA256())
        .add_extension(x509.OCSPNonce(b"\x01" * size), critical=False)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )


@pytest.mark.parametrize("size", [0, 33, 128, 4000])
def test_the_ocsp_responder_answers_a_nonce_outside_1_to_32_bytes_with_malformed_request(
    root: CertificateAuthority, size: int
) -> None:
    response = ocsp.load_der_ocsp_response(root.ocsp_respond(_nonce_request(root, size)))
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.mark.parametrize("size", [1, 16, 32])
def test_the_ocsp_responder_echoes_a_nonce_of_1_to_32_bytes(
    root: CertificateAuthority, size: int
) -> None:
    response = ocsp.load_der_ocsp_response(root.ocsp_respond(_nonce_request(root, size)))
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert echoed == b"\x01" * size


# -- finding 13 (registry and OCSP parts): dates out of range are typed errors ------

_END_OF_TIME = _dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=_dt.UTC)


def test_a_ca_revocation_with_an_invalidity_date_after_it_is_refused(
    root: CertificateAuthority, clock: FakeClock
) -> None:
    cert = _client(root, "c")
    with pytest.raises(InvalidArgumentError):
        root.revoke(
            cert.serial_number,
            "key-compromise",
            invalidity_date=_dt.datetime(9999, 1, 1, tzinfo=_dt.UTC),
        )
    assert root.revoked() == []
    status = check_ocsp_response(
        root.ocsp_respond(build_ocsp_request(cert, root.certificate)),
        cert=cert,
        issuer=root.certificate,
        at=clock.now(),
    )
    assert status.status is CertStatus.GOOD


@pytest.mark.parametrize(
    ("validity", "at"),
    [
        (_dt.timedelta(days=999_999_999), None),
        (_dt.timedelta(hours=12), _dt.datetime(9999, 12, 31, 23, tzinfo=_dt.UTC)),
    ],
)
def test_an_ocsp_response_that_would_end_after_9999_is_an_invalid_argument(
    root: CertificateAuthority,
    clock: FakeClock,
    validity: _dt.timedelta,
    at: _dt.datetime | None,
) -> None:
    cert = _client(root, "c")
    responder = root.ocsp_responder(validity=validity)
    with pytest.raises(InvalidArgumentError):
        responder.respond(build_ocsp_request(cert, root.certificate), at=at or clock.now())


def test_an_ocsp_response_whose_next_update_is_the_end_of_time_is_fresh(
    foreign: _Foreign,
) -> None:
    response = foreign.ocsp(_NOW, _END_OF_TIME)
    status = check_ocsp_response(response, cert=foreign.leaf, issuer=foreign.root, at=_NOW)
    assert status.next_update == _END_OF_TIME


def test_a_crl_whose_next_update_is_the_end_of_time_is_a_source(foreign: _Foreign) -> None:
    verifier = CertificateVerifier(trust_anchors=[foreign.root])
    crl = _crl(foreign.root, foreign.key, next_update=_END_OF_TIME)
    path = verifier.verify(foreign.leaf, crls=[crl], at=_NOW)
    assert path.revocation == (RevocationSource.CRL,)


def test_the_registry_lookup_asks_every_store_ca_sharing_a_name_and_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    first = _ca(_name("shared"), key.public_key(), key, serial=1 << 70)
    second = _ca(_name("shared"), key.public_key(), key, serial=1 << 71)
    lookup = ca_lookup(
        {first: "a", second: "b"},
        {"b:7"}.__contains__,
        lambda s: Revocation(
            kind=SubjectKind.CERTIFICATE,
            subject=s,
            reason=RevocationReason.SUPERSEDED,
            revoked_at=_NOW,
        ),
    )
    third = _ca(_name("shared"), key.public_key(), key, serial=1 << 72)
    answer = lookup(third, _leaf("leaf", third, key, 7))
    assert isinstance(answer, Revocation)
    assert answer.subject == "b:7"


# -- pyca's own exceptions from lazily parsed extensions (exchange review 3) ---------


@UNPARSABLE
def test_a_leaf_pyca_cannot_parse_lazily_is_malformed_input(
    km: KeyManager, clock: FakeClock, placeholder: bytes, relabel: bytes
) -> None:
    issuing = km.pki.create_root_ca("root").create_intermediate("issuing")
    leaf = unparsable_leaf(issuing.certificate.subject, clock.now(), placeholder, relabel)
    with pytest.raises(MalformedInputError, match="malformed certificate material"):
        km.pki.verify(leaf, purpose="tls-server")
