"""Adversarial chains for the strict RFC 5280 validator (the fallback and EdDSA engines).

Each test builds a chain the fast path (cryptography's verifier) refuses or
never sees, and checks the strict validator does not accept it for the
wrong reason: what the fast path refuses on grounds RFC 5280 or the
verifier's own contract also forbid must stay refused on the fallback.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keymgmt.errors import CertificateVerificationError
from keymgmt.pki import CertificateVerifier, Purpose, VerificationFailure, VerifiedPath
from keymgmt.testing._pki import key_usage
from keymgmt.testing._pki import name as _name

NOW = _dt.datetime(2030, 1, 1, tzinfo=_dt.UTC)


PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class Keys:
    """Keys, one per role (P-256, or Ed25519 for the EdDSA engine), made once for the module."""

    def __init__(self, eddsa: bool = False) -> None:
        def make() -> PrivateKey:
            if eddsa:
                return ed25519.Ed25519PrivateKey.generate()
            return ec.generate_private_key(ec.SECP256R1())

        self.root = make()
        self.sub = make()
        self.leaf = make()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module", params=["ecdsa", "eddsa"])
def any_keys(request: pytest.FixtureRequest) -> Keys:
    """P-256 keys (fast path first, then the fallback) and Ed25519 keys (strict validator only)."""
    return Keys(eddsa=request.param == "eddsa")


def _cert(
    subject: str,
    key: PrivateKey,
    issuer: str,
    issuer_key: PrivateKey,
    *,
    ca: bool,
    bc_critical: bool = True,
    path_length: int | None = None,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - _dt.timedelta(days=1))
        .not_valid_after(NOW + _dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=bc_critical)
    )
    if ca:
        builder = builder.add_extension(key_usage(ca=True), critical=True)
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


def _server_leaf(keys: Keys, *names: x509.GeneralName) -> x509.Certificate:
    return _cert(
        "leaf",
        keys.leaf,
        "sub",
        keys.sub,
        ca=False,
        extensions=[
            (x509.SubjectAlternativeName(list(names)), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )


def _verify(
    keys: Keys,
    leaf: x509.Certificate,
    sub_extensions: Sequence[tuple[x509.ExtensionType, bool]],
    *,
    sub_bc_critical: bool = True,
    **kwargs: object,
) -> VerifiedPath:
    root = _cert("root", keys.root, "root", keys.root, ca=True)
    sub = _cert(
        "sub",
        keys.sub,
        "root",
        keys.root,
        ca=True,
        bc_critical=sub_bc_critical,
        extensions=sub_extensions,
    )
    verifier = CertificateVerifier(trust_anchors=[root], registry=lambda issuer, cert: None)
    return verifier.verify(leaf, intermediates=[sub], at=NOW, **kwargs)  # type: ignore[arg-type]


def _refusal(
    keys: Keys,
    leaf: x509.Certificate,
    sub_extensions: Sequence[tuple[x509.ExtensionType, bool]],
    **kwargs: object,
) -> object:
    with pytest.raises(CertificateVerificationError) as caught:
        _verify(keys, leaf, sub_extensions, **kwargs)  # type: ignore[arg-type]
    return getattr(caught.value, "reason", None)


# -- extended key usage on the CAs of the path -------------------------------------


def test_an_intermediate_restricted_to_code_signing_cannot_vouch_for_a_tls_server(
    keys: Keys,
) -> None:
    code_only = [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)]
    leaf = _server_leaf(keys, x509.DNSName("www.example.com"))
    reason = _refusal(keys, leaf, code_only, purpose=Purpose.TLS_SERVER, name="www.example.com")
    assert reason is VerificationFailure.WRONG_USAGE


def test_an_intermediate_restricted_to_code_signing_cannot_vouch_for_an_unnamed_server(
    keys: Keys,
) -> None:
    code_only = [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)]
    leaf = _server_leaf(keys, x509.DNSName("www.example.com"))
    assert _refusal(keys, leaf, code_only, purpose=Purpose.TLS_SERVER) is (
        VerificationFailure.WRONG_USAGE
    )


def test_an_intermediate_allowing_the_purpose_still_verifies(keys: Keys) -> None:
    server = [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)]
    leaf = _server_leaf(keys, x509.DNSName("www.example.com"))
    path = _verify(keys, leaf, server, purpose=Purpose.TLS_SERVER)
    assert path.leaf == leaf


def test_an_intermediate_with_any_extended_key_usage_allows_every_purpose(keys: Keys) -> None:
    anything = [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]), False)]
    leaf = _server_leaf(keys, x509.DNSName("www.example.com"))
    path = _verify(keys, leaf, anything, purpose=Purpose.TLS_SERVER, name="www.example.com")
    assert path.leaf == leaf


# -- the expected name of a TLS server ----------------------------------------------


@pytest.mark.parametrize(
    "name",
    [x509.UniformResourceIdentifier("bank.example"), x509.RFC822Name("bank.example")],
    ids=["uri", "email"],
)
def test_a_tls_server_name_is_not_matched_by_a_uri_or_email_san(
    any_keys: Keys, name: x509.GeneralName
) -> None:
    # The CA may only issue under good.example (a DNS constraint): a URI or
    # email SAN spelling another host escapes it and must not name a server.
    constrained = [
        (
            x509.NameConstraints(
                permitted_subtrees=[x509.DNSName("good.example")], excluded_subtrees=None
            ),
            True,
        )
    ]
    leaf = _server_leaf(any_keys, name)
    reason = _refusal(any_keys, leaf, constrained, purpose=Purpose.TLS_SERVER, name="bank.example")
    assert reason is VerificationFailure.NAME_MISMATCH


def test_a_tls_server_name_is_matched_by_a_dns_san_on_the_eddsa_engine() -> None:
    keys = Keys(eddsa=True)
    leaf = _server_leaf(keys, x509.DNSName("www.good.example"))
    path = _verify(keys, leaf, [], purpose=Purpose.TLS_SERVER, name="www.good.example")
    assert path.engine == "keymgmt-eddsa"


# -- name constraints ------------------------------------------------------------------


def _constraints(
    permitted: Sequence[x509.GeneralName] | None = None,
    excluded: Sequence[x509.GeneralName] | None = None,
) -> list[tuple[x509.ExtensionType, bool]]:
    nc = x509.NameConstraints(
        permitted_subtrees=list(permitted) if permitted is not None else None,
        excluded_subtrees=list(excluded) if excluded is not None else None,
    )
    return [(nc, True)]


def test_a_wildcard_san_covering_an_excluded_name_is_refused(any_keys: Keys) -> None:
    leaf = _server_leaf(any_keys, x509.DNSName("*.example.com"))
    excluded = _constraints(excluded=[x509.DNSName("secret.example.com")])
    assert _refusal(any_keys, leaf, excluded) is VerificationFailure.NAME_CONSTRAINTS


def test_a_wildcard_san_beside_an_excluded_name_is_accepted(any_keys: Keys) -> None:
    leaf = _server_leaf(any_keys, x509.DNSName("*.example.com"))
    excluded = _constraints(excluded=[x509.DNSName("example.org")])
    assert _verify(any_keys, leaf, excluded).leaf == leaf


def test_a_wildcard_san_is_permitted_only_when_all_it_covers_is(any_keys: Keys) -> None:
    leaf = _server_leaf(any_keys, x509.DNSName("*.example.com"))
    narrow = _constraints(permitted=[x509.DNSName("www.example.com")])
    assert _refusal(any_keys, leaf, narrow) is VerificationFailure.NAME_CONSTRAINTS
    wide = _constraints(permitted=[x509.DNSName("example.com")])
    assert _verify(any_keys, leaf, wide).leaf == leaf


def test_an_empty_excluded_dns_subtree_excludes_every_dns_name(any_keys: Keys) -> None:
    # RFC 5280 4.2.1.10: any DNS name is the empty name with labels added.
    leaf = _server_leaf(any_keys, x509.DNSName("www.example.com"))
    excluded = _constraints(excluded=[x509.DNSName("")])
    assert _refusal(any_keys, leaf, excluded) is VerificationFailure.NAME_CONSTRAINTS


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example\\.good.example/",  # WHATWG reads the host as evil.example
        "https://evil.example%2f.good.example/",
        "https://evil.example%00.good.example/",
        "https://ev il.good.example/",
        "https://user@www.good.example:8443/?q=1#f",  # userinfo: fails closed (review #5)
        "https://evil.example\\@www.good.example/",  # WHATWG: host evil.example
    ],
)
def test_a_uri_whose_host_is_not_a_dns_name_fails_closed_under_uri_constraints(
    any_keys: Keys, uri: str
) -> None:
    leaf = _server_leaf(any_keys, x509.UniformResourceIdentifier(uri))
    permitted = _constraints(permitted=[x509.UniformResourceIdentifier(".good.example")])
    assert _refusal(any_keys, leaf, permitted) is VerificationFailure.NAME_CONSTRAINTS


@pytest.mark.parametrize(
    "uri", ["https://www.good.example/path", "https://www.good.example:8443/?q=1#f"]
)
def test_a_uri_with_a_dns_host_inside_the_constraint_is_accepted(any_keys: Keys, uri: str) -> None:
    leaf = _server_leaf(any_keys, x509.UniformResourceIdentifier(uri))
    permitted = _constraints(permitted=[x509.UniformResourceIdentifier(".good.example")])
    assert _verify(any_keys, leaf, permitted).leaf == leaf


# -- path building cost -----------------------------------------------------------------


def test_a_mesh_of_same_named_issuers_sharing_a_key_cannot_make_path_building_exponential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Eight CA certificates with the same name and key, each verifying every
    # other's signature: few signature checks (each pair once), but 8! orders
    # to walk without a bound on the search itself.
    from keymgmt.pki import _pathval

    key = ed25519.Ed25519PrivateKey.generate()
    mesh = [
        x509.CertificateBuilder(
            issuer_name=_name("mesh"),
            subject_name=_name("mesh"),
            public_key=key.public_key(),
            serial_number=serial,
            not_valid_before=NOW - _dt.timedelta(days=1),
            not_valid_after=NOW + _dt.timedelta(days=30),
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, None)
        for serial in range(1, 9)
    ]
    leaf = _cert("leaf", ed25519.Ed25519PrivateKey.generate(), "mesh", key, ca=False)
    root_key = ed25519.Ed25519PrivateKey.generate()
    root = _cert("root", root_key, "root", root_key, ca=True)
    steps = [0]
    names_issuer = _pathval._names_issuer

    def counting(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
        steps[0] += 1
        return names_issuer(cert, issuer)

    monkeypatch.setattr(_pathval, "_names_issuer", counting)
    with pytest.raises(CertificateVerificationError) as caught:
        _pathval.validate_path(leaf, mesh, [root], NOW)
    assert getattr(caught.value, "reason", None) is VerificationFailure.INVALID_PATH
    assert steps[0] <= 20_000  # unbounded, it is 178,881


# -- what the fast path refuses stays refused on the fallback ---------------------------


def _leaf_builder(
    keys: Keys,
    *,
    public_key: ec.EllipticCurvePublicKey | None = None,
    not_before: _dt.datetime = NOW - _dt.timedelta(days=1),
    not_after: _dt.datetime = NOW + _dt.timedelta(days=30),
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(_name("leaf"))
        .issuer_name(_name("sub"))
        .public_key(public_key or keys.leaf.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("www.example.com")]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    )


def _defective_leaves(keys: Keys) -> dict[str, tuple[x509.Certificate, VerificationFailure]]:
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.9"), b"\x05\x00")
    stranger = ec.generate_private_key(ec.SECP256R1())
    sub_key = keys.sub
    assert isinstance(sub_key, ec.EllipticCurvePrivateKey)
    return {
        "bad-signature": (
            _leaf_builder(keys).sign(stranger, hashes.SHA256()),
            VerificationFailure.BAD_SIGNATURE,
        ),
        "expired": (
            _leaf_builder(keys, not_after=NOW - _dt.timedelta(seconds=1)).sign(
                sub_key, hashes.SHA256()
            ),
            VerificationFailure.EXPIRED,
        ),
        "not-yet-valid": (
            _leaf_builder(keys, not_before=NOW + _dt.timedelta(seconds=1)).sign(
                sub_key, hashes.SHA256()
            ),
            VerificationFailure.NOT_YET_VALID,
        ),
        "unknown-critical-extension": (
            _leaf_builder(keys).add_extension(odd, critical=True).sign(sub_key, hashes.SHA256()),
            VerificationFailure.UNSUPPORTED_CRITICAL_EXTENSION,
        ),
        "secp256k1-key": (
            _leaf_builder(
                keys, public_key=ec.generate_private_key(ec.SECP256K1()).public_key()
            ).sign(sub_key, hashes.SHA256()),
            VerificationFailure.INVALID_PATH,
        ),
    }


@pytest.mark.parametrize(
    "defect",
    ["bad-signature", "expired", "not-yet-valid", "unknown-critical-extension", "secp256k1-key"],
)
def test_a_defect_the_fast_path_refuses_is_refused_by_the_fallback_too(
    keys: Keys, defect: str
) -> None:
    leaf, expected = _defective_leaves(keys)[defect]
    # The intermediate's basic constraints are not critical, so the path is
    # outside the fast path's profile whatever the leaf: the fallback decides.
    reason = _refusal(
        keys, leaf, [], sub_bc_critical=False, purpose=Purpose.TLS_SERVER, name="www.example.com"
    )
    assert reason is expected


def test_a_name_mismatch_hidden_behind_an_expired_stranger_is_still_a_mismatch(
    keys: Keys,
) -> None:
    # An expired certificate in the pool makes the fast path's refusal read
    # "expired", so the fallback runs: it must check the name itself.
    leaf = _server_leaf(keys, x509.DNSName("www.example.com"))
    root = _cert("root", keys.root, "root", keys.root, ca=True)
    sub = _cert("sub", keys.sub, "root", keys.root, ca=True)
    stale = (
        x509.CertificateBuilder()
        .subject_name(_name("sub"))
        .issuer_name(_name("root"))
        .public_key(keys.sub.public_key())
        .serial_number(1)
        .not_valid_before(NOW - _dt.timedelta(days=60))
        .not_valid_after(NOW - _dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(keys.root, hashes.SHA256())
    )
    verifier = CertificateVerifier(trust_anchors=[root], registry=lambda issuer, cert: None)
    with pytest.raises(CertificateVerificationError) as caught:
        verifier.verify(
            leaf,
            intermediates=[stale, sub],
            at=NOW,
            purpose=Purpose.TLS_SERVER,
            name="www.example.org",
        )
    assert getattr(caught.value, "reason", None) is VerificationFailure.NAME_MISMATCH


def test_the_defect_tests_control_a_sound_leaf_takes_the_fallback(keys: Keys) -> None:
    sub_key = keys.sub
    assert isinstance(sub_key, ec.EllipticCurvePrivateKey)
    leaf = _leaf_builder(keys).sign(sub_key, hashes.SHA256())
    path = _verify(
        keys, leaf, [], sub_bc_critical=False, purpose=Purpose.TLS_SERVER, name="www.example.com"
    )
    assert path.engine == "keymgmt-rfc5280"


# -- name normalisation (RFC 4518) ----------------------------------------------------------


def _org(value: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, value)])


@pytest.mark.parametrize("control", ["\x00", "\x1c", "\x1d", "\x1e", "\x1f", "\x7f", "\x9f"])
def test_a_control_character_is_not_a_space_when_names_are_compared(control: str) -> None:
    # RFC 4518 2.2 maps these controls to nothing: "Good<US>Corp" is "GoodCorp",
    # a different name from "Good Corp".
    from keymgmt.pki._pathval import normalised_name

    spelled = normalised_name(_org(f"Good{control}Corp"))
    assert spelled != normalised_name(_org("Good Corp"))
    assert spelled == normalised_name(_org("goodcorp"))


@pytest.mark.parametrize("space", ["\t", "\n", "\r", "\x85", "\xa0", "\u2003", "\u3000"])
def test_the_space_characters_of_rfc_4518_compare_as_one_space(space: str) -> None:
    from keymgmt.pki._pathval import normalised_name

    assert normalised_name(_org(f"Good{space}{space}Corp")) == normalised_name(_org("good corp"))


def test_an_excluded_directory_name_also_excludes_its_compatibility_spelling(
    any_keys: Keys,
) -> None:
    # Full-width "Evil" (U+FF25 U+FF56 U+FF49 U+FF4C) is "Evil" under RFC 4518's
    # NFKC step: the exclusion holds.
    leaf = _cert(
        "leaf",
        any_keys.leaf,
        "sub",
        any_keys.sub,
        ca=False,
        extensions=[
            (
                x509.SubjectAlternativeName([x509.DirectoryName(_org("\uff25\uff56\uff49\uff4c"))]),
                False,
            ),
        ],
    )
    excluded = _constraints(excluded=[x509.DirectoryName(_org("Evil"))])
    assert _refusal(any_keys, leaf, excluded) is VerificationFailure.NAME_CONSTRAINTS


@pytest.mark.parametrize(
    ("name", "tree"),
    [
        # cryptography's constructor refuses an empty email; a parsed one is built like this.
        (x509.RFC822Name("alice@example.com"), x509.RFC822Name._init_without_validation("")),
        (
            x509.UniformResourceIdentifier("https://www.example.com/"),
            x509.UniformResourceIdentifier(""),
        ),
    ],
    ids=["email", "uri"],
)
def test_an_empty_excluded_email_or_uri_subtree_excludes_every_name_of_its_form(
    any_keys: Keys, name: x509.GeneralName, tree: x509.GeneralName
) -> None:
    leaf = _server_leaf(any_keys, name)
    assert _refusal(any_keys, leaf, _constraints(excluded=[tree])) is (
        VerificationFailure.NAME_CONSTRAINTS
    )


@pytest.mark.parametrize("san", ["10.0.0.1", "*.0.0.1"])
def test_an_ip_address_is_matched_only_by_an_ip_san(any_keys: Keys, san: str) -> None:
    # A DNS SAN spelling an address escapes the CA's excluded IP range.
    leaf = _server_leaf(any_keys, x509.DNSName(san))
    excluded = _constraints(excluded=[x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))])
    reason = _refusal(any_keys, leaf, excluded, purpose=Purpose.TLS_SERVER, name="10.0.0.1")
    assert reason is VerificationFailure.NAME_MISMATCH


def test_an_ip_san_matches_an_ip_address(any_keys: Keys) -> None:
    leaf = _server_leaf(any_keys, x509.IPAddress(ipaddress.ip_address("192.0.2.7")))
    path = _verify(any_keys, leaf, [], purpose=Purpose.TLS_SERVER, name="192.0.2.7")
    assert path.leaf == leaf


# -- path length and self-issued certificates ---------------------------------------------


def _rollover_chain(keys: Keys, *, self_issued: bool) -> tuple[x509.Certificate, ...]:
    """root (pathLen 0) -> a CA named like the root (self-issued) or not -> leaf."""
    middle_key = (
        ed25519.Ed25519PrivateKey.generate()
        if isinstance(keys.root, ed25519.Ed25519PrivateKey)
        else ec.generate_private_key(ec.SECP256R1())
    )
    middle_name = "root" if self_issued else "middle"
    root = _cert("root", keys.root, "root", keys.root, ca=True, path_length=0)
    middle = _cert(middle_name, middle_key, "root", keys.root, ca=True)
    leaf = _cert("leaf", keys.leaf, middle_name, middle_key, ca=False)
    return root, middle, leaf


def test_a_self_issued_ca_does_not_count_against_path_length(any_keys: Keys) -> None:
    root, middle, leaf = _rollover_chain(any_keys, self_issued=True)
    verifier = CertificateVerifier(trust_anchors=[root], registry=lambda issuer, cert: None)
    path = verifier.verify(leaf, intermediates=[middle], at=NOW)
    assert path.chain == (leaf, middle, root)


def test_a_ca_with_another_name_counts_against_path_length(any_keys: Keys) -> None:
    root, middle, leaf = _rollover_chain(any_keys, self_issued=False)
    verifier = CertificateVerifier(trust_anchors=[root], registry=lambda issuer, cert: None)
    with pytest.raises(CertificateVerificationError) as caught:
        verifier.verify(leaf, intermediates=[middle], at=NOW)
    assert getattr(caught.value, "reason", None) is VerificationFailure.PATH_LENGTH
