"""What keymgmt's PKI emits, checked by OpenSSL's own command line.

``openssl verify`` with ``-crl_check``/``-crl_check_all`` must accept good
chains and refuse revoked ones naming revocation; ``openssl x509``/``crl``
must parse what we emit; ``openssl ocsp`` must accept our OCSP responses.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from _openssl_cli import openssl, openssl_ocsp_check
from keymgmt import KeyManager
from keymgmt.errors import CertificateVerificationError
from keymgmt.pki import (
    CertificateAuthority,
    CertificateVerifier,
    Encoding,
    RevocationPolicy,
    build_ocsp_request,
    export_certificate,
    export_chain,
    export_crl,
)
from keymgmt.testing import DEFAULT_START

pytestmark = [
    pytest.mark.interop,
    pytest.mark.usefixtures("openssl_cli"),
]


# The fake clock's time (2030-01-01) plus a minute, as OpenSSL's validation time.
ATTIME = str(int(DEFAULT_START.timestamp()) + 60)


@pytest.fixture(params=["ecdsa-p256", "ed25519"])
def pki(
    request: pytest.FixtureRequest, km: KeyManager, tmp_path: Path
) -> tuple[CertificateAuthority, CertificateAuthority, Callable[[str], Path]]:
    root = km.pki.create_root_ca("root", key_type=request.param)
    sub = root.create_intermediate("sub", key_type=request.param)

    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    write("root.pem", export_certificate(root.certificate))
    write("sub.pem", export_certificate(sub.certificate))

    def path(name: str) -> Path:
        return tmp_path / name

    return root, sub, path


def _leaf(sub: CertificateAuthority) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svc")]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("svc.example.com")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return sub.issue(csr)


def _write_crls(
    root: CertificateAuthority, sub: CertificateAuthority, path: Callable[[str], Path]
) -> Path:
    crls = path("crls.pem")
    crls.write_bytes(export_crl(sub.crl()) + export_crl(root.crl()))
    return crls


@pytest.mark.parametrize("flag", ["-crl_check", "-crl_check_all"])
def test_openssl_verify_accepts_good_chain_with_crls(
    pki: tuple[CertificateAuthority, CertificateAuthority, Callable[[str], Path]], flag: str
) -> None:
    root, sub, path = pki
    leaf = path("leaf.pem")
    leaf.write_bytes(export_certificate(_leaf(sub)))
    crls = _write_crls(root, sub, path)
    result = openssl(
        "verify", "-attime", ATTIME, "-CAfile", path("root.pem"), "-untrusted", path("sub.pem"),
        flag, "-CRLfile", crls, "-purpose", "sslserver", leaf,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{leaf}: OK" in result.stdout


@pytest.mark.parametrize("flag", ["-crl_check", "-crl_check_all"])
def test_openssl_verify_refuses_revoked_leaf_naming_revocation(
    pki: tuple[CertificateAuthority, CertificateAuthority, Callable[[str], Path]], flag: str
) -> None:
    root, sub, path = pki
    cert = _leaf(sub)
    sub.revoke(cert.serial_number, "key-compromise")
    leaf = path("leaf.pem")
    leaf.write_bytes(export_certificate(cert))
    crls = _write_crls(root, sub, path)
    result = openssl(
        "verify", "-attime", ATTIME, "-CAfile", path("root.pem"), "-untrusted", path("sub.pem"),
        flag, "-CRLfile", crls, leaf,
    )  # fmt: skip
    assert result.returncode != 0
    assert "certificate revoked" in result.stdout + result.stderr


def test_openssl_verify_crl_check_all_refuses_revoked_intermediate(
    pki: tuple[CertificateAuthority, CertificateAuthority, Callable[[str], Path]],
) -> None:
    root, sub, path = pki
    leaf = path("leaf.pem")
    leaf.write_bytes(export_certificate(_leaf(sub)))
    sub_crl = export_crl(sub.crl())  # signed while sub may still sign
    root.revoke(sub.certificate.serial_number, "ca-compromise")
    crls = path("crls.pem")
    crls.write_bytes(sub_crl + export_crl(root.crl()))
    result = openssl(
        "verify", "-attime", ATTIME, "-CAfile", path("root.pem"), "-untrusted", path("sub.pem"),
        "-crl_check_all", "-CRLfile", crls, leaf,
    )  # fmt: skip
    assert result.returncode != 0
    assert "certificate revoked" in result.stdout + result.stderr


def test_openssl_parses_our_crl_with_number_and_reason(
    pki: tuple[CertificateAuthority, CertificateAuthority, Callable[[str], Path]],
) -> None:
    _root, sub, path = pki
    cert = _leaf(sub)
    sub.revoke(cert.serial_number, "superseded")
    crl = path("sub.crl.der")
    crl.write_bytes(export_crl(sub.crl(), Encoding.DER))
    result = openssl("crl", "-inform", "DER", "-in", crl, "-noout", "-text")
    assert result.returncode == 0, result.stderr
    assert "X509v3 CRL Number" in result.stdout
    assert f"{cert.serial_number:X}" in result.stdout.replace(":", "").upper()
    assert "Superseded" in result.stdout
    verify = openssl("crl", "-inform", "DER", "-in", crl, "-noout", "-CAfile", path("sub.pem"))
    assert "verify OK" in verify.stdout + verify.stderr


def test_openssl_parses_our_delta_crl(
    pki: tuple[CertificateAuthority, CertificateAuthority, Callable[[str], Path]],
) -> None:
    _root, sub, path = pki
    sub.crl()
    sub.revoke(_leaf(sub).serial_number, "key-compromise")
    delta = path("delta.pem")
    delta.write_bytes(export_crl(sub.crl(delta=True)))
    result = openssl("crl", "-in", delta, "-noout", "-text")
    assert result.returncode == 0, result.stderr
    assert "Delta CRL Indicator" in result.stdout


def test_openssl_x509_parses_our_certificates(
    pki: tuple[CertificateAuthority, CertificateAuthority, Callable[[str], Path]],
) -> None:
    _root, sub, path = pki
    leaf = path("leaf.der")
    leaf.write_bytes(export_certificate(_leaf(sub), Encoding.DER))
    result = openssl("x509", "-inform", "DER", "-in", leaf, "-noout", "-text")
    assert result.returncode == 0, result.stderr
    assert "TLS Web Server Authentication" in result.stdout
    assert "DNS:svc.example.com" in result.stdout
    assert "CA:FALSE" in result.stdout
    chain = path("chain.pem")
    chain.write_bytes(export_chain([sub.certificate]))
    assert openssl("x509", "-in", chain, "-noout").returncode == 0


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ed25519"])
@pytest.mark.parametrize("revoked", [False, True])
def test_openssl_ocsp_accepts_our_responses(tmp_path: Path, key_type: str, revoked: bool) -> None:
    # openssl ocsp checks thisUpdate/nextUpdate against the real time: use the system clock.
    with KeyManager.in_memory() as live:
        root = live.pki.create_root_ca("root", key_type=key_type)
        sub = root.create_intermediate("sub", key_type=key_type)
        cert = _leaf(sub)
        if revoked:
            sub.revoke(cert.serial_number, "key-compromise")
        response_der = sub.ocsp_respond(build_ocsp_request(cert, sub.certificate))
    leaf, output = openssl_ocsp_check(
        tmp_path, root.certificate, sub.certificate, cert, response_der
    )
    assert "Response verify OK" in output, output
    assert "WARNING" not in output, output
    if revoked:
        assert f"{leaf}: revoked" in output
        assert "keyCompromise" in output
    else:
        assert f"{leaf}: good" in output


# -- differential: keymgmt's Ed25519 path validator vs openssl verify -----------------


def _ed_cert(
    name: str,
    key: ed25519.Ed25519PrivateKey,
    issuer: tuple[x509.Certificate, ed25519.Ed25519PrivateKey] | None,
    *,
    ca: bool,
    path_length: int | None = None,
    key_cert_sign: bool = True,
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    public = key.public_key()
    builder = x509.CertificateBuilder(
        issuer_name=issuer[0].subject if issuer else subject,
        subject_name=subject,
        public_key=public,
        serial_number=x509.random_serial_number(),
        not_valid_before=DEFAULT_START - _dt.timedelta(days=1),
        not_valid_after=DEFAULT_START + _dt.timedelta(days=30),
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    issuer_key = issuer[1].public_key() if issuer else public
    exts: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=ca, path_length=path_length), True),
        (
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
            True,
        ),
        (ski, False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), False),
        *extensions,
    ]
    for ext, critical in exts:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer[1] if issuer else key, None)


_DNS_NC = x509.NameConstraints(
    permitted_subtrees=[x509.DNSName("example.com")],
    excluded_subtrees=[x509.DNSName("secret.example.com")],
)
_ODD = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")

# name: (root kwargs, sub kwargs, leaf SAN, leaf extra extensions)
_SCENARIOS: dict[str, tuple[dict[str, object], dict[str, object], str, tuple[object, ...]]] = {
    "good": ({}, {"path_length": 0}, "a.example.com", ()),
    "root-path-length-0": ({"path_length": 0}, {}, "a.example.com", ()),
    "sub-without-certsign": ({}, {"key_cert_sign": False}, "a.example.com", ()),
    "sub-is-not-ca": ({}, {"ca": False}, "a.example.com", ()),
    "permitted-name": ({}, {"extensions": ((_DNS_NC, True),)}, "www.example.com", ()),
    "outside-permitted": ({}, {"extensions": ((_DNS_NC, True),)}, "www.example.org", ()),
    "excluded-name": ({}, {"extensions": ((_DNS_NC, True),)}, "db.secret.example.com", ()),
    "unknown-critical": ({}, {}, "a.example.com", ((_ODD, True),)),
}


@pytest.mark.parametrize("scenario", sorted(_SCENARIOS))
def test_eddsa_validator_agrees_with_openssl(tmp_path: Path, scenario: str) -> None:
    root_kwargs, sub_kwargs, san, leaf_extra = _SCENARIOS[scenario]
    root_key, sub_key, leaf_key = (ed25519.Ed25519PrivateKey.generate() for _ in range(3))
    root = _ed_cert("root", root_key, None, ca=True, **root_kwargs)  # type: ignore[arg-type]
    sub_kwargs = dict(sub_kwargs)  # the table is shared: never edit it
    sub_ca = bool(sub_kwargs.pop("ca", True))
    sub = _ed_cert("sub", sub_key, (root, root_key), ca=sub_ca, **sub_kwargs)  # type: ignore[arg-type]
    leaf = _ed_cert(
        "leaf",
        leaf_key,
        (sub, sub_key),
        ca=False,
        extensions=((x509.SubjectAlternativeName([x509.DNSName(san)]), False), *leaf_extra),  # type: ignore[arg-type]
    )
    ours_ok = True
    try:
        CertificateVerifier(trust_anchors=[root], policy=RevocationPolicy.SOFT_FAIL).verify(
            leaf, intermediates=[sub], at=DEFAULT_START
        )
    except CertificateVerificationError:
        ours_ok = False
    for name, cert in (("root.pem", root), ("sub.pem", sub), ("leaf.pem", leaf)):
        (tmp_path / name).write_bytes(export_certificate(cert))
    result = openssl(
        "verify", "-attime", ATTIME, "-CAfile", tmp_path / "root.pem",
        "-untrusted", tmp_path / "sub.pem", tmp_path / "leaf.pem",
    )  # fmt: skip
    assert ours_ok == (result.returncode == 0), (scenario, result.stdout + result.stderr)
    assert ours_ok is (scenario in ("good", "permitted-name"))
