"""What keymgmt's PKI emits, checked by OpenSSL's own command line.

``openssl verify`` with ``-crl_check``/``-crl_check_all`` must accept good
chains and refuse revoked ones naming revocation; ``openssl x509``/``crl``
must parse what we emit; ``openssl ocsp`` must accept our OCSP responses.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keymgmt import KeyManager
from keymgmt.pki import (
    CertificateAuthority,
    Encoding,
    build_ocsp_request,
    export_certificate,
    export_chain,
    export_crl,
)
from keymgmt.testing import DEFAULT_START

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]


# The fake clock's time (2030-01-01) plus a minute, as OpenSSL's validation time.
ATTIME = str(int(DEFAULT_START.timestamp()) + 60)


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


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
    result = _openssl(
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
    result = _openssl(
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
    result = _openssl(
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
    result = _openssl("crl", "-inform", "DER", "-in", crl, "-noout", "-text")
    assert result.returncode == 0, result.stderr
    assert "X509v3 CRL Number" in result.stdout
    assert f"{cert.serial_number:X}" in result.stdout.replace(":", "").upper()
    assert "Superseded" in result.stdout
    verify = _openssl("crl", "-inform", "DER", "-in", crl, "-noout", "-CAfile", path("sub.pem"))
    assert "verify OK" in verify.stdout + verify.stderr


def test_openssl_parses_our_delta_crl(
    pki: tuple[CertificateAuthority, CertificateAuthority, Callable[[str], Path]],
) -> None:
    _root, sub, path = pki
    sub.crl()
    sub.revoke(_leaf(sub).serial_number, "key-compromise")
    delta = path("delta.pem")
    delta.write_bytes(export_crl(sub.crl(delta=True)))
    result = _openssl("crl", "-in", delta, "-noout", "-text")
    assert result.returncode == 0, result.stderr
    assert "Delta CRL Indicator" in result.stdout


def test_openssl_x509_parses_our_certificates(
    pki: tuple[CertificateAuthority, CertificateAuthority, Callable[[str], Path]],
) -> None:
    _root, sub, path = pki
    leaf = path("leaf.der")
    leaf.write_bytes(export_certificate(_leaf(sub), Encoding.DER))
    result = _openssl("x509", "-inform", "DER", "-in", leaf, "-noout", "-text")
    assert result.returncode == 0, result.stderr
    assert "TLS Web Server Authentication" in result.stdout
    assert "DNS:svc.example.com" in result.stdout
    assert "CA:FALSE" in result.stdout
    chain = path("chain.pem")
    chain.write_bytes(export_chain([sub.certificate]))
    assert _openssl("x509", "-in", chain, "-noout").returncode == 0


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
    files = {
        "root.pem": export_certificate(root.certificate),
        "sub.pem": export_certificate(sub.certificate),
        "leaf.pem": export_certificate(cert),
        "resp.der": response_der,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    leaf = tmp_path / "leaf.pem"
    result = _openssl(
        "ocsp", "-respin", tmp_path / "resp.der", "-sha256",
        "-issuer", tmp_path / "sub.pem", "-cert", leaf,
        "-CAfile", tmp_path / "root.pem", "-verify_other", tmp_path / "sub.pem",
        "-no_nonce", "-validity_period", "300",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "Response verify OK" in output, output
    assert "WARNING" not in output, output
    if revoked:
        assert f"{leaf}: revoked" in output
        assert "keyCompromise" in output
    else:
        assert f"{leaf}: good" in output
