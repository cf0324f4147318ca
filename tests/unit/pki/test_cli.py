"""``keymgmt ca ...`` and ``keymgmt cert ...`` end to end on a SQLite store."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from keymgmt.cli import main

PASSPHRASE = "cli test passphrase"
KEY_PASSPHRASE = "leaf key passphrase"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store.db"
    monkeypatch.setenv("KEYMGMT_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("KEYMGMT_KEY_PASSPHRASE", KEY_PASSPHRASE)
    monkeypatch.setenv("KEYMGMT_TEST_KDF", "insecure")
    monkeypatch.setenv("KEYMGMT_STORE", str(path))
    assert main(["init"]) == 0
    assert main(["ca", "create-root", "root"]) == 0
    assert main(["ca", "create-intermediate", "issuing", "--parent", "root"]) == 0
    return path


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    assert main(["--format", "json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def _csr(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web")]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("web.example.com")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return path


def test_ca_list_shows_root_and_intermediate(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _json(capsys, "ca", "list")
    assert isinstance(rows, list)
    assert [(r["name"], r["parent"]) for r in rows] == [("root", "-"), ("issuing", "root")]


def test_issue_from_csr_then_verify_then_revoke(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "web.pem"
    issued = _json(capsys, "ca", "issue", "issuing", "--csr", str(_csr(tmp_path / "w.csr")),
                   "--out", str(out))  # fmt: skip
    assert isinstance(issued, dict)
    assert issued["names"] == ["web.example.com"]
    verified = _json(
        capsys, "cert", "verify", str(out), "--purpose", "tls-server", "--name", "web.example.com"
    )
    assert isinstance(verified, dict)
    assert verified["revocation"] == ["registry", "registry"]
    assert main(["ca", "revoke", "issuing", issued["serial"], "--reason", "key-compromise"]) == 0
    capsys.readouterr()
    assert main(["cert", "verify", str(out)]) == 1
    assert "revoked (key-compromise)" in capsys.readouterr().err


def test_issue_with_new_key_writes_encrypted_key_and_pkcs12(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_out, p12_out = tmp_path / "alice.key", tmp_path / "alice.p12"
    assert main(["ca", "issue", "issuing", "--new-key", "--subject", "alice",
                 "--profile", "tls-client", "--out", str(tmp_path / "alice.pem"),
                 "--key-out", str(key_out), "--p12-out", str(p12_out)]) == 0  # fmt: skip
    assert b"ENCRYPTED PRIVATE KEY" in key_out.read_bytes()
    assert stat.S_IMODE(os.stat(key_out).st_mode) == 0o600
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(key_out.read_bytes(), password=None)
    bundle = pkcs12.load_pkcs12(p12_out.read_bytes(), KEY_PASSPHRASE.encode())
    assert bundle.cert is not None
    assert bundle.cert.certificate.subject.rfc4514_string() == "CN=alice"


def test_new_key_without_passphrase_is_refused(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KEYMGMT_KEY_PASSPHRASE")
    code = main(["ca", "issue", "issuing", "--new-key", "--subject", "bob",
                 "--profile", "tls-client", "--key-out", str(tmp_path / "bob.key")])  # fmt: skip
    assert code == 1
    assert "written encrypted" in capsys.readouterr().err


def test_crl_and_export_are_parseable(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crl_path, chain_path = tmp_path / "issuing.crl", tmp_path / "chain.pem"
    assert main(["ca", "crl", "issuing", "--der", "--out", str(crl_path)]) == 0
    crl = x509.load_der_x509_crl(crl_path.read_bytes())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    assert main(["ca", "export", "issuing", "--chain", "--out", str(chain_path)]) == 0
    assert len(x509.load_pem_x509_certificates(chain_path.read_bytes())) == 2


def test_cert_show_describes_a_certificate(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root_pem = tmp_path / "root.pem"
    assert main(["ca", "export", "root", "--out", str(root_pem)]) == 0
    shown = _json(capsys, "cert", "show", str(root_pem))
    assert isinstance(shown, dict)
    assert shown["subject"] == "CN=root"
    assert shown["ca"] is True


def test_issued_lists_revocation_state(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = _json(capsys, "ca", "issue", "issuing", "--csr", str(_csr(tmp_path / "w.csr")),
                   "--out", str(tmp_path / "w.pem"))  # fmt: skip
    assert isinstance(issued, dict)
    assert main(["ca", "revoke", "issuing", issued["serial"], "--reason", "superseded"]) == 0
    rows = _json(capsys, "ca", "issued", "issuing")
    assert isinstance(rows, list)
    assert [r["revoked"] for r in rows] == ["superseded"]
