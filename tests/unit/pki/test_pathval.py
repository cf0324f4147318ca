"""The Ed25519 path validator, on hand-made chains (what keymgmt's CA would never issue)."""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from keymgmt.errors import CertificateVerificationError
from keymgmt.pki import CertificateVerifier, RevocationPolicy, VerificationFailure
from keymgmt.pki._pathval import normalised_name

NOW = _dt.datetime(2030, 1, 1, tzinfo=_dt.UTC)


class Node:
    """A hand-made Ed25519 certificate and its key."""

    def __init__(
        self,
        name: str,
        *,
        issuer: Node | None = None,
        ca: bool = True,
        path_length: int | None = None,
        extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
        basic_constraints: bool = True,
        key_cert_sign: bool = True,
        not_after: _dt.datetime = NOW + _dt.timedelta(days=30),
        sign_with: ed25519.Ed25519PrivateKey | None = None,
    ) -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.cert: x509.Certificate
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        issuer_name = issuer.cert.subject if issuer else subject
        builder = x509.CertificateBuilder(
            issuer_name=issuer_name,
            subject_name=subject,
            public_key=self.key.public_key(),
            serial_number=x509.random_serial_number(),
            not_valid_before=NOW - _dt.timedelta(days=1),
            not_valid_after=not_after,
        )
        if basic_constraints:
            builder = builder.add_extension(
                x509.BasicConstraints(ca=ca, path_length=path_length), critical=True
            )
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca and key_cert_sign,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        signer = sign_with or (issuer.key if issuer else self.key)
        self.cert = builder.sign(signer, None)


def _leaf(issuer: Node, *names: x509.GeneralName, **kwargs: object) -> Node:
    san = [(x509.SubjectAlternativeName(list(names)), False)] if names else []
    return Node("leaf", issuer=issuer, ca=False, extensions=san, **kwargs)  # type: ignore[arg-type]


def _verify(leaf: Node, root: Node, *intermediates: Node) -> list[x509.Certificate]:
    verifier = CertificateVerifier(trust_anchors=[root.cert], policy=RevocationPolicy.SOFT_FAIL)
    path = verifier.verify(leaf.cert, intermediates=[i.cert for i in intermediates], at=NOW)
    assert path.engine == "keymgmt-eddsa"
    return list(path.chain)


def _refused(leaf: Node, root: Node, *intermediates: Node) -> object:
    with pytest.raises(CertificateVerificationError) as info:
        _verify(leaf, root, *intermediates)
    return info.value.reason  # type: ignore[attr-defined]


def test_three_level_chain_verifies() -> None:
    root = Node("root")
    sub = Node("sub", issuer=root, path_length=0)
    leaf = _leaf(sub, x509.DNSName("a.example"))
    assert _verify(leaf, root, sub) == [leaf.cert, sub.cert, root.cert]


def test_issuer_without_basic_constraints_is_not_a_ca() -> None:
    root = Node("root")
    sub = Node("sub", issuer=root, basic_constraints=False)
    assert _refused(_leaf(sub), root, sub) is VerificationFailure.NOT_A_CA


def test_issuer_without_key_cert_sign_is_wrong_usage() -> None:
    root = Node("root")
    sub = Node("sub", issuer=root, key_cert_sign=False)
    assert _refused(_leaf(sub), root, sub) is VerificationFailure.WRONG_USAGE


def test_path_length_is_enforced() -> None:
    root = Node("root", path_length=0)
    sub = Node("sub", issuer=root)
    assert _refused(_leaf(sub), root, sub) is VerificationFailure.PATH_LENGTH


def test_unknown_critical_extension_fails() -> None:
    root = Node("root")
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    leaf = Node("leaf", issuer=root, ca=False, extensions=[(odd, True)])
    assert _refused(leaf, root) is VerificationFailure.UNSUPPORTED_CRITICAL_EXTENSION


def test_expired_intermediate_is_reported() -> None:
    root = Node("root")
    sub = Node("sub", issuer=root, not_after=NOW - _dt.timedelta(hours=1))
    assert _refused(_leaf(sub), root, sub) is VerificationFailure.EXPIRED


def test_forged_signature_is_a_bad_signature() -> None:
    root = Node("root")
    forged = _leaf(root, sign_with=ed25519.Ed25519PrivateKey.generate())
    assert _refused(forged, root) is VerificationFailure.BAD_SIGNATURE


def test_path_building_spends_a_bounded_number_of_signature_checks() -> None:
    root = Node("root")
    sub = Node("sub", issuer=root)
    # Hundreds of impostors named like the issuer, each signed by its own key.
    impostors = [Node("sub", issuer=root, sign_with=ed25519.Ed25519PrivateKey.generate())]
    impostors += [Node("sub", issuer=impostors[0]) for _ in range(300)]
    assert _refused(_leaf(sub), root, *impostors, sub) is VerificationFailure.INVALID_PATH


def test_missing_intermediate_is_unknown_issuer() -> None:
    root = Node("root")
    sub = Node("sub", issuer=root)
    assert _refused(_leaf(sub), root) is VerificationFailure.UNKNOWN_ISSUER


def _constrained(nc: x509.NameConstraints) -> tuple[Node, Node]:
    root = Node("root")
    return root, Node("sub", issuer=root, extensions=[(nc, True)])


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        (x509.DNSName("www.example.com"), True),
        (x509.DNSName("example.com"), True),
        (x509.DNSName("badexample.com"), False),
        (x509.RFC822Name("ops@example.com"), True),
        (x509.RFC822Name("ops@example.org"), False),
        (x509.IPAddress(ipaddress.ip_address("10.9.8.7")), True),
        (x509.IPAddress(ipaddress.ip_address("192.168.1.1")), False),
    ],
)
def test_permitted_subtrees(name: x509.GeneralName, ok: bool) -> None:
    root, sub = _constrained(
        x509.NameConstraints(
            permitted_subtrees=[
                x509.DNSName("example.com"),
                x509.RFC822Name("example.com"),
                x509.IPAddress(ipaddress.ip_network("10.0.0.0/8")),
            ],
            excluded_subtrees=None,
        )
    )
    leaf = _leaf(sub, name)
    if ok:
        _verify(leaf, root, sub)
    else:
        assert _refused(leaf, root, sub) is VerificationFailure.NAME_CONSTRAINTS


def test_excluded_subtree_wins() -> None:
    root, sub = _constrained(
        x509.NameConstraints(
            permitted_subtrees=[x509.DNSName("example.com")],
            excluded_subtrees=[x509.DNSName("secret.example.com")],
        )
    )
    leaf = _leaf(sub, x509.DNSName("db.secret.example.com"))
    assert _refused(leaf, root, sub) is VerificationFailure.NAME_CONSTRAINTS


def test_unsupported_constraint_form_fails_closed() -> None:
    root, sub = _constrained(
        x509.NameConstraints(
            permitted_subtrees=[x509.RegisteredID(x509.ObjectIdentifier("1.3.6.1.4.1.55555.9"))],
            excluded_subtrees=None,
        )
    )
    leaf = _leaf(sub, x509.DNSName("a.example.com"))
    assert _refused(leaf, root, sub) is VerificationFailure.NAME_CONSTRAINTS


def _dn(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("https://www.example.com/a", True),
        ("https://example.com/", False),  # ".example.com" means below example.com only
        ("https://www.example.org/", False),
        ("urn:uuid:1234", False),  # no host to place: fails closed
    ],
)
def test_uri_name_constraints_apply_to_the_host(uri: str, ok: bool) -> None:
    root, sub = _constrained(
        x509.NameConstraints(
            permitted_subtrees=[x509.UniformResourceIdentifier(".example.com")],
            excluded_subtrees=None,
        )
    )
    leaf = _leaf(sub, x509.UniformResourceIdentifier(uri))
    if ok:
        _verify(leaf, root, sub)
    else:
        assert _refused(leaf, root, sub) is VerificationFailure.NAME_CONSTRAINTS


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        (_dn((NameOID.ORGANIZATION_NAME, "Example"), (NameOID.COMMON_NAME, "x")), True),
        # Compared after normalisation: case and inner spaces do not matter.
        (_dn((NameOID.ORGANIZATION_NAME, "  EXAMPLE "), (NameOID.COMMON_NAME, "x")), True),
        (_dn((NameOID.ORGANIZATION_NAME, "Other"), (NameOID.COMMON_NAME, "x")), False),
    ],
)
def test_directory_name_constraints_apply_to_san_directory_names(name: x509.Name, ok: bool) -> None:
    root, sub = _constrained(
        x509.NameConstraints(
            permitted_subtrees=[
                x509.DirectoryName(_dn((NameOID.ORGANIZATION_NAME, "Example"))),
                x509.DirectoryName(_dn((NameOID.COMMON_NAME, "leaf"))),  # the leaf's subject
            ],
            excluded_subtrees=None,
        )
    )
    leaf = _leaf(sub, x509.DirectoryName(name))
    if ok:
        _verify(leaf, root, sub)
    else:
        assert _refused(leaf, root, sub) is VerificationFailure.NAME_CONSTRAINTS


def test_directory_name_constraints_apply_to_the_subject() -> None:
    root, sub = _constrained(
        x509.NameConstraints(
            permitted_subtrees=[x509.DirectoryName(_dn((NameOID.COMMON_NAME, "someone-else")))],
            excluded_subtrees=None,
        )
    )
    assert _refused(_leaf(sub), root, sub) is VerificationFailure.NAME_CONSTRAINTS


def test_issuer_name_matches_after_normalisation() -> None:
    root = Node("root")
    key = ed25519.Ed25519PrivateKey.generate()
    # The leaf names its issuer in another case and with extra spaces.
    odd_issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "  ROOT ")])
    leaf = (
        x509.CertificateBuilder(
            issuer_name=odd_issuer,
            subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]),
            public_key=key.public_key(),
            serial_number=x509.random_serial_number(),
            not_valid_before=NOW - _dt.timedelta(days=1),
            not_valid_after=NOW + _dt.timedelta(days=1),
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(root.key, None)
    )
    verifier = CertificateVerifier(trust_anchors=[root.cert], policy=RevocationPolicy.SOFT_FAIL)
    assert verifier.verify(leaf, at=NOW).chain == (leaf, root.cert)


def test_normalisation_does_not_let_a_wrong_key_chain() -> None:
    root = Node("root")
    other = ed25519.Ed25519PrivateKey.generate()
    forged = _leaf(root, sign_with=other)
    assert _refused(forged, root) is VerificationFailure.BAD_SIGNATURE


_values = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20
)


@given(_values)
def test_names_differing_in_case_and_spaces_normalise_equal(value: str) -> None:
    plain = _dn((NameOID.ORGANIZATION_NAME, value))
    padded = _dn((NameOID.ORGANIZATION_NAME, "  " + value.upper().replace(" ", "   ") + " "))
    if value.upper().casefold() == value.casefold():  # upper() can change some letters' folding
        assert normalised_name(plain) == normalised_name(padded)


@given(_values, _values)
def test_names_with_different_words_normalise_apart(a: str, b: str) -> None:
    if " ".join(a.split()).casefold() != " ".join(b.split()).casefold():
        assert normalised_name(_dn((NameOID.ORGANIZATION_NAME, a))) != normalised_name(
            _dn((NameOID.ORGANIZATION_NAME, b))
        )
