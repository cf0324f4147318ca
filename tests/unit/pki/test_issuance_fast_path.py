"""What issuance remembers between certificates, and that it never outlives a change.

A CA handle keeps its leaf extensions per profile, and the PKI keeps the
CA key it last checked; these tests warm both with one issuance, change
something, and check that the very next issuance sees the change.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import example, given
from hypothesis import strategies as st

from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.errors import (
    InvalidArgumentError,
    KeyStateError,
    RevokedError,
    UnsupportedAlgorithmError,
)
from keymgmt.pki import (
    CODE_SIGNING,
    OCSP_SIGNING,
    PROFILES,
    TLS_CLIENT,
    TLS_SERVER,
    CertificateAuthority,
    IssueRequest,
    Profile,
    _keyindex,
)
from keymgmt.pki._ca import _leaf_subject
from keymgmt.pki._keys import (
    CertificatePublicKey,
    algorithm_of,
    is_signing_key,
    public_key_info,
    signature_hash,
)
from keymgmt.pki._profiles import build_extensions, parse_names
from keymgmt.revocation import RevocationReason, SubjectKind
from keymgmt.testing import FakeClock


@pytest.fixture(scope="session")
def rsa_leaf() -> rsa.RSAPrivateKey:
    """One RSA-2048 subject key (made once: RSA generation is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _issue(ca: CertificateAuthority) -> x509.Certificate:
    return ca.issue(
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        subject="svc",
        names=["svc.example.com"],
    )


def _extensions(cert: x509.Certificate) -> list[tuple[x509.ObjectIdentifier, bool, object]]:
    return [(e.oid, e.critical, e.value) for e in cert.extensions]


# -- the CA key: remembered, re-checked on every change ---------------------------------


def test_suspending_a_ca_key_refuses_the_next_issuance(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    _issue(issuing)
    km.keys.suspend("pki-ca-issuing", 1)
    with pytest.raises(KeyStateError, match="suspended and cannot sign"):
        _issue(issuing)


def test_suspending_a_ca_key_is_seen_while_its_loaded_pair_is_still_alive(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    # Held here, the pair outlives the key store's cache: the key store's
    # change counter, not the pair's disappearance, must refuse it.
    _issue(issuing)
    alive = km.pki._keys._checked[issuing.key_ref][0]()
    assert alive is not None
    km.keys.suspend("pki-ca-issuing", 1)
    with pytest.raises(KeyStateError, match="suspended and cannot sign"):
        _issue(issuing)


def test_resuming_a_ca_key_lets_it_issue_again(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    _issue(issuing)
    km.keys.suspend("pki-ca-issuing", 1)
    with pytest.raises(KeyStateError):
        _issue(issuing)
    km.keys.resume("pki-ca-issuing", 1)
    _issue(issuing).verify_directly_issued_by(issuing.certificate)


def test_revoking_a_ca_key_version_through_the_key_store_refuses_the_next_issuance(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    _issue(issuing)
    km.keys.revoke("pki-ca-issuing", 1, reason=RevocationReason.KEY_COMPROMISE)
    with pytest.raises(RevokedError, match=r"the CA key pki-ca-issuing#1 is revoked"):
        _issue(issuing)


def test_a_ca_key_revoked_only_in_the_registry_is_refused_at_once(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    # No key record changes here: only the registry's index says so.
    _issue(issuing)
    km.revocation.revoke(SubjectKind.KEY, issuing.key_ref, RevocationReason.KEY_COMPROMISE)
    with pytest.raises(RevokedError, match="is revoked"):
        _issue(issuing)


def test_a_ca_key_revoked_as_a_whole_key_in_the_registry_is_refused_at_once(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    _issue(issuing)
    km.revocation.revoke(SubjectKind.KEY, "pki-ca-issuing", RevocationReason.KEY_COMPROMISE)
    with pytest.raises(RevokedError, match="is revoked"):
        _issue(issuing)


def test_scheduling_destruction_of_a_ca_key_refuses_the_next_issuance(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    _issue(issuing)
    km.keys.schedule_destruction("pki-ca-issuing")
    with pytest.raises(KeyStateError, match="cannot sign"):
        _issue(issuing)


def test_revoking_a_sub_ca_after_it_issued_refuses_its_next_issuance(
    root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    _issue(issuing)
    root.revoke(issuing.certificate.serial_number, RevocationReason.CA_COMPROMISE)
    with pytest.raises(RevokedError, match="is revoked"):
        _issue(issuing)


def test_a_ca_key_that_expires_by_date_is_refused_once_the_date_passes(
    km: KeyManager, clock: FakeClock
) -> None:
    expiry = clock.now() + _dt.timedelta(days=1)
    km.keys.create(
        "pki-ca-dated", Algorithm.ECDSA_P256, usage=KeyUsage.SIGN_VERIFY, expiry_date=expiry
    )
    keys = km.pki._keys
    assert is_signing_key(keys.load("pki-ca-dated#1"))
    assert is_signing_key(keys.load("pki-ca-dated#1"))  # the remembered check
    clock.advance(_dt.timedelta(days=2))
    with pytest.raises(KeyStateError, match="cannot sign"):
        keys.load("pki-ca-dated#1")


def test_another_process_suspending_the_ca_key_is_seen_by_the_next_issuance(
    sqlite_km: KeyManager, open_sqlite_km: Callable[[], KeyManager]
) -> None:
    root = sqlite_km.pki.create_root_ca("root")
    _issue(root)
    with open_sqlite_km() as other:
        other.keys.suspend("pki-ca-root", 1)
    with pytest.raises(KeyStateError, match="suspended and cannot sign"):
        _issue(root)


def test_the_remembered_ca_key_does_not_keep_a_dropped_key_alive(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    import gc

    _issue(issuing)
    pair, *_ = km.pki._keys._checked[issuing.key_ref]
    assert pair() is not None
    km.keys.schedule_destruction("pki-ca-issuing")  # the key store drops its loaded pair
    gc.collect()
    assert pair() is None


# -- leaf extensions: one template per (CA, profile), same certificate as before -----


@pytest.mark.parametrize("profile", [TLS_SERVER, TLS_CLIENT, CODE_SIGNING, OCSP_SIGNING])
@pytest.mark.parametrize("key_kind", ["ec", "rsa", "ed25519"])
def test_issued_extensions_are_those_build_extensions_describes(
    issuing: CertificateAuthority,
    rsa_leaf: rsa.RSAPrivateKey,
    profile: Profile,
    key_kind: str,
) -> None:
    assert profile in PROFILES.values()
    public_key: CertificatePublicKey
    if key_kind == "ec":
        public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    elif key_kind == "rsa":
        public_key = rsa_leaf.public_key()
    else:
        public_key = ed25519.Ed25519PrivateKey.generate().public_key()
    names = ["svc.example.com", "10.0.0.1"]
    for _ in range(2):  # the first builds the template, the second reuses it
        cert = issuing.issue(public_key=public_key, subject="svc", names=names, profile=profile)
        expected = build_extensions(
            profile,
            public_key=public_key,
            issuer_public_key=issuing.certificate.public_key(),  # type: ignore[arg-type]
            issuer_ski=None,
            names=parse_names(names),
            ocsp_urls=["http://ocsp.example"],
        )
        assert _extensions(cert) == [(v.oid, c, v) for v, c in expected]


def test_rsa_subject_keys_get_key_encipherment_only_where_the_profile_says(
    issuing: CertificateAuthority, rsa_leaf: rsa.RSAPrivateKey
) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()

    def usage(public_key: CertificatePublicKey, profile: Profile) -> x509.KeyUsage:
        cert = issuing.issue(
            public_key=public_key, subject="svc", names=["svc.example.com"], profile=profile
        )
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value

    # Interleaved, so one template serves both subject key types.
    assert usage(rsa_leaf.public_key(), TLS_SERVER).key_encipherment is True
    assert usage(ec_key, TLS_SERVER).key_encipherment is False
    assert usage(rsa_leaf.public_key(), TLS_SERVER).key_encipherment is True
    assert usage(rsa_leaf.public_key(), TLS_CLIENT).key_encipherment is False


def test_setting_the_handles_crl_url_changes_the_next_certificate(
    issuing: CertificateAuthority,
) -> None:
    _issue(issuing)
    issuing.crl_url = "http://pki.example/issuing.crl"
    cert = _issue(issuing)
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [p.full_name for p in points] == [
        [x509.UniformResourceIdentifier("http://pki.example/issuing.crl")]
    ]


def test_clearing_the_handles_ocsp_url_changes_the_next_certificate(
    issuing: CertificateAuthority,
) -> None:
    _issue(issuing).extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    issuing.ocsp_url = None
    with pytest.raises(x509.ExtensionNotFound):
        _issue(issuing).extensions.get_extension_for_class(x509.AuthorityInformationAccess)


def test_an_evolved_profile_gets_its_own_extensions(issuing: CertificateAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    both = TLS_SERVER.evolve(
        extended_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    )
    plain, evolved = issuing.issue_many(
        [
            IssueRequest(public_key=key, subject="a", names=["a.example"]),
            IssueRequest(public_key=key, subject="b", names=["b.example"], profile=both),
        ]
    )
    assert list(plain.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert list(evolved.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]


def test_profiles_made_per_call_do_not_grow_the_template_cache(
    issuing: CertificateAuthority,
) -> None:
    for days in range(1, 80):
        issuing.issue(
            public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
            subject="svc",
            names=["svc.example.com"],
            profile=TLS_SERVER.evolve(validity=_dt.timedelta(days=days)),
        )
    assert len(issuing._templates) <= 32


# -- key helpers -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["p256", "p384", "ed25519", "rsa"])
def test_one_key_encoding_gives_the_ski_and_the_key_index_fingerprint(
    kind: str, rsa_leaf: rsa.RSAPrivateKey
) -> None:
    public: CertificatePublicKey
    if kind == "p256":
        public = ec.generate_private_key(ec.SECP256R1()).public_key()
    elif kind == "p384":
        public = ec.generate_private_key(ec.SECP384R1()).public_key()
    elif kind == "ed25519":
        public = ed25519.Ed25519PrivateKey.generate().public_key()
    else:
        public = rsa_leaf.public_key()
    spki, key_id = public_key_info(public)
    assert key_id == x509.SubjectKeyIdentifier.from_public_key(public).digest
    assert hashlib.sha256(spki).hexdigest() == _keyindex.fingerprint(public)


def test_algorithm_of_refuses_curves_and_sizes_keymgmt_does_not_sign_with() -> None:
    with pytest.raises(UnsupportedAlgorithmError, match="unsupported curve secp521r1"):
        algorithm_of(ec.generate_private_key(ec.SECP521R1()).public_key())
    with pytest.raises(UnsupportedAlgorithmError, match="unsupported key type str"):
        algorithm_of("not a key")  # type: ignore[arg-type]


def test_only_private_keys_are_signing_keys() -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    assert is_signing_key(private)
    assert not is_signing_key(private.public_key())
    assert not is_signing_key(None)
    assert signature_hash(private).name == "sha384"  # type: ignore[union-attr]
    assert signature_hash(ed25519.Ed25519PrivateKey.generate()) is None


# -- the subject's text ----------------------------------------------------------------


@example("svc")
@example("#ops")
@example(" lead")
@example("trail ")
@example("mid dle")
@example("a\\b")
@example('say "hi"')
@example("a+b")
@example("a,b")
@example("a;b")
@example("<x>")
@example("nul\x00")
@example("#")
@example("x")
@given(
    st.text(
        alphabet=st.sampled_from(list('ab Z9#\\"+,;<>=\x00é-.')) | st.characters(),
        min_size=1,
        max_size=64,
    )
)
def test_leaf_subject_text_is_cryptographys_rfc4514_string(value: str) -> None:
    try:
        name, text = _leaf_subject(value)
    except InvalidArgumentError:
        return  # blank, malformed RFC 4514, or not encodable: refused, not written
    assert text == name.rfc4514_string()


def test_a_common_name_over_64_characters_is_an_invalid_argument(
    issuing: CertificateAuthority,
) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid subject"):
        issuing.issue(
            public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
            subject="x" * 65,
            names=["svc.example.com"],
        )


def test_issued_records_and_audit_entries_name_the_escaped_subject(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    cert = issuing.issue(
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        subject="#ops, team ",
        names=["svc.example.com"],
    )
    assert issuing.get(cert.serial_number).subject == "CN=\\#ops\\, team\\ "
    entry = km.audit.tail(1)[0]
    assert entry.details["subject"] == "CN=\\#ops\\, team\\ "


def test_a_loaded_key_without_weak_references_is_checked_in_full_each_time(
    km: KeyManager, issuing: CertificateAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    import attrs

    class Slotted:
        __slots__ = ("private",)

        def __init__(self, private: object) -> None:
            self.private = private

    use = km.keys._use

    def use_slotted(*args: Any, **kwargs: Any) -> Any:
        loaded = use(*args, **kwargs)
        return attrs.evolve(loaded, loaded=Slotted(loaded.loaded.private))

    monkeypatch.setattr(km.keys, "_use", use_slotted)
    km.pki._keys._checked.clear()
    _issue(issuing).verify_directly_issued_by(issuing.certificate)
    assert issuing.key_ref not in km.pki._keys._checked
    km.keys.suspend("pki-ca-issuing", 1)
    with pytest.raises(KeyStateError, match="suspended and cannot sign"):
        _issue(issuing)


@given(
    serial=st.integers(min_value=1 << 64, max_value=(1 << 127) - 1),
    der=st.binary(min_size=0, max_size=300),
    subject=st.text(max_size=40),
    profile=st.sampled_from([*PROFILES.values(), TLS_SERVER.evolve(name='odd "name" é')]),
    times=st.tuples(st.integers(0, 1 << 55), st.integers(0, 1 << 55)),
)
def test_a_leaf_record_is_the_canonical_json_of_its_fields(
    serial: int, der: bytes, subject: str, profile: Profile, times: tuple[int, int]
) -> None:
    from keymgmt import _codec
    from keymgmt.pki._ca import _cert_record, _leaf_record_bytes

    start, end = (_codec.from_micros(t) for t in times)
    try:
        expected = _codec.dumps(_cert_record(serial, der, profile, subject, start, end))
    except InvalidArgumentError:  # a lone surrogate: refused the same way
        with pytest.raises(InvalidArgumentError, match="valid Unicode"):
            _leaf_record_bytes(format(serial, "x"), der, profile, subject, *times)
        return
    assert _leaf_record_bytes(format(serial, "x"), der, profile, subject, *times) == expected


def test_a_key_certificate_record_is_canonical_json_and_a_clean_head_is_only_read(
    km: KeyManager,
) -> None:
    from keymgmt import _codec

    def stage(txn: Any) -> None:
        _keyindex.stage_key_head(txn, "ca", "ab")
        _keyindex.stage_key_cert(txn, "ca", "ab", 0x1F, 1_700_000_000_123_456)

    km._store.transact(stage)
    assert km._store.get(_keyindex.KEY_INDEX_KIND, "ca:ab") is None
    assert km._store.get(_keyindex.KEY_CERT_KIND, "ca:ab:1f") == _codec.dumps(
        {"not_after": 1_700_000_000_123_456}
    )


def test_an_unmarked_head_an_earlier_version_wrote_lets_the_key_be_certified(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    fp = _keyindex.fingerprint(key)
    km._store.transact(lambda txn: txn.put_json(_keyindex.KEY_INDEX_KIND, f"issuing:{fp}", {}))
    cert = issuing.issue(public_key=key, subject="a", names=["a.example"])
    assert issuing.get(cert.serial_number).certificate == cert


def test_a_compromise_revocation_racing_an_issuance_revokes_the_new_certificate_too(
    km: KeyManager, issuing: CertificateAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    first = issuing.issue(public_key=key, subject="k", names=["k.example"])
    original = _keyindex.unexpired_serials
    raced: list[x509.Certificate] = []

    def racing(txn: Any, *args: Any, **kwargs: Any) -> list[int]:
        found = original(txn, *args, **kwargs)  # the revocation has listed the key's certificates
        if not raced:  # ... and another process certifies the key again now
            raced.append(issuing.issue(public_key=key, subject="k", names=["k.example"]))
        return found

    monkeypatch.setattr(_keyindex, "unexpired_serials", racing)
    issuing.revoke(first.serial_number, "key-compromise")
    assert raced
    revocation = issuing.get(raced[0].serial_number).revocation
    assert revocation is not None
    assert revocation.reason is RevocationReason.KEY_COMPROMISE


def test_issue_many_names_the_request_that_lacks_subject_alternative_names(
    issuing: CertificateAuthority,
) -> None:
    batch = [
        IssueRequest(public_key=ec.generate_private_key(ec.SECP256R1()).public_key(), subject="a"),
    ]
    with pytest.raises(InvalidArgumentError, match=r"^request 0: the tls-server profile needs"):
        issuing.issue_many(batch)
    assert issuing.issued() == []


def test_a_serial_collision_draws_another_serial(
    km: KeyManager, issuing: CertificateAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    def key() -> Any:
        return ec.generate_private_key(ec.SECP256R1()).public_key()

    first = issuing.issue(public_key=key(), subject="a", names=["a.example"])
    serials = iter([first.serial_number, first.serial_number + 1])
    monkeypatch.setattr(km.pki, "_serial", lambda: next(serials))
    second = issuing.issue(public_key=key(), subject="b", names=["b.example"])
    assert second.serial_number == first.serial_number + 1
    assert issuing.get(first.serial_number).certificate == first  # not overwritten
    assert issuing.get(second.serial_number).certificate == second
