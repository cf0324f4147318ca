"""Profiles as data, name parsing, strict loaders and export."""

from __future__ import annotations

import datetime as _dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import pkcs12

from keymgmt.errors import InvalidArgumentError, MalformedInputError
from keymgmt.pki import (
    TLS_SERVER,
    CertificateAuthority,
    Encoding,
    Profile,
    _parse,
    export_certificate,
    export_chain,
    export_crl,
    export_pkcs12,
    export_private_key,
    load_certificate,
    load_certificates,
    load_crl,
    parse_names,
)


def test_parse_names_infers_each_form() -> None:
    names = parse_names(["www.Example.com", "10.1.2.3", "::1", "ops@example.com", "spiffe://x/y"])
    assert names == [
        x509.DNSName("www.example.com"),
        x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.RFC822Name("ops@example.com"),
        x509.UniformResourceIdentifier("spiffe://x/y"),
    ]


def test_parse_names_prefix_forces_the_form() -> None:
    assert parse_names(["DNS:10.1.2.3.example"]) == [x509.DNSName("10.1.2.3.example")]
    assert parse_names(["IP:127.0.0.1"]) == [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]


@pytest.mark.parametrize("bad", ["", "  ", "has space.example", ".leading.example", "IP:999.1.1.1"])
def test_parse_names_refuses_malformed(bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid subject alternative name"):
        parse_names([bad])


def test_profile_refuses_path_length_on_leaf() -> None:
    with pytest.raises(InvalidArgumentError, match="path_length needs a CA profile"):
        Profile(name="bad", path_length=1)


def test_profile_refuses_unknown_key_usage_bit() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown key usage bits: sign_everything"):
        Profile(name="bad", key_usage=frozenset({"sign_everything"}))


def test_profile_evolve_changes_one_field() -> None:
    short = TLS_SERVER.evolve(validity=_dt.timedelta(days=7))
    assert short.validity == _dt.timedelta(days=7)
    assert short.extended_key_usage == TLS_SERVER.extended_key_usage


def test_issuing_with_evolved_profile_uses_its_validity(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(
        public_key=leaf_key.public_key(),
        subject="short",
        names=["short.example.com"],
        profile=TLS_SERVER.evolve(validity=_dt.timedelta(days=7)),
    )
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == _dt.timedelta(days=7)


def test_unknown_profile_name_is_refused(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown profile 'web'"):
        issuing.issue(public_key=leaf_key.public_key(), subject="x", profile="web")


def test_loaders_accept_pem_and_der(root: CertificateAuthority) -> None:
    pem = export_certificate(root.certificate)
    der = export_certificate(root.certificate, Encoding.DER)
    assert load_certificate(pem) == load_certificate(der) == root.certificate
    assert load_certificates(export_chain([root.certificate, root.certificate])) == [
        root.certificate,
        root.certificate,
    ]
    crl = root.crl()
    assert load_crl(export_crl(crl)) == load_crl(export_crl(crl, "der")) == crl


def test_loaders_refuse_oversize_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_parse, "MAX_INPUT", 10)
    with pytest.raises(MalformedInputError, match="too large"):
        load_certificate(b"x" * 11)


def test_loaders_refuse_empty_input() -> None:
    with pytest.raises(MalformedInputError, match="certificate is empty"):
        load_certificate(b"")


def test_unknown_encoding_is_refused(root: CertificateAuthority) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown encoding 'base64'"):
        export_certificate(root.certificate, "base64")


def test_private_key_export_is_always_encrypted() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = export_private_key(key, "a long passphrase")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(pem, password=b"a long passphrase")
    assert loaded.public_key() == key.public_key()


def test_short_passphrase_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="at least 8 bytes"):
        export_private_key(ed25519.Ed25519PrivateKey.generate(), "short")


def test_pkcs12_bundle_round_trips_with_chain(
    root: CertificateAuthority, issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(public_key=leaf_key.public_key(), subject="alice", profile="tls-client")
    bundle = export_pkcs12(
        name="alice",
        key=leaf_key,
        certificate=cert,
        chain=issuing.chain,
        passphrase="bundle passphrase",
    )
    loaded = pkcs12.load_pkcs12(bundle, b"bundle passphrase")
    assert loaded.cert is not None
    assert loaded.cert.certificate == cert
    assert [c.certificate for c in loaded.additional_certs] == issuing.chain


def test_pkcs12_refuses_mismatched_key(
    issuing: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = issuing.issue(public_key=leaf_key.public_key(), subject="alice", profile="tls-client")
    with pytest.raises(InvalidArgumentError, match="does not match"):
        export_pkcs12(
            name="alice",
            key=ec.generate_private_key(ec.SECP256R1()),
            certificate=cert,
            passphrase="bundle passphrase",
        )
