"""``keymgmt kdc ...``: register, grant, list, disable, revoke, compromise from the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keymgmt import KeyManager
from keymgmt.cli import main
from keymgmt.kdc import InProcessTransport, KdcClient, SymmetricCredential
from keymgmt.keyring import KdfProfile
from keymgmt.testing import FakeClock

PASSPHRASE = "cli test passphrase"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store.db"
    monkeypatch.setenv("KEYMGMT_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("KEYMGMT_TEST_KDF", "insecure")
    monkeypatch.setenv("KEYMGMT_STORE", str(path))
    assert main(["init"]) == 0
    return path


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    capsys.readouterr()
    assert main(["--format", "json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_register_writes_a_private_credential_that_works(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cred = tmp_path / "alice.cred"
    assert main(["kdc", "register", "alice", "--out", str(cred)]) == 0
    assert main(["kdc", "grant", "alice", "--key", "payments"]) == 0
    credential = SymmetricCredential.from_file(cred)
    with KeyManager.open(
        store, passphrase=PASSPHRASE, kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
    ) as km:
        km.keys.create("payments")
        granted = KdcClient(credential, clock=km.clock).fetch_key(
            "payments", InProcessTransport(km.kdc)
        )
    assert granted.version == 1


def test_list_and_show_print_principals_and_rules(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["kdc", "register", "alice", "--out", str(tmp_path / "a.cred")])
    main(["kdc", "grant", "alice", "--key", "app/*", "--peer", "bob"])
    rows = _json(capsys, "kdc", "list")
    assert [r["name"] for r in rows] == ["alice"]
    shown = _json(capsys, "kdc", "show", "alice")
    assert shown["rules"] == [{"principal": "alice", "keys": ["app/*"], "peers": ["bob"]}]


def test_disable_and_revoke_show_in_the_listing(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["kdc", "register", "alice", "--out", str(tmp_path / "a.cred")])
    main(["kdc", "register", "bob", "--out", str(tmp_path / "b.cred")])
    assert main(["kdc", "disable", "alice"]) == 0
    assert main(["kdc", "revoke", "bob", "--reason", "key-compromise"]) == 0
    rows = {r["name"]: r for r in _json(capsys, "kdc", "list")}
    assert (rows["alice"]["enabled"], rows["alice"]["revoked"]) == (False, False)
    assert (rows["bob"]["enabled"], rows["bob"]["revoked"]) == (False, True)


def test_register_needs_out_or_certificate(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kdc", "register", "alice"]) == 2
    assert "exactly one of --out" in capsys.readouterr().err


def test_unknown_principal_is_a_one_line_error(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["kdc", "disable", "ghost"]) == 1
    assert capsys.readouterr().err == "error: no principal named 'ghost'\n"


def test_policy_loads_from_a_reviewed_file(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {"version": 1, "rules": [{"principal": "svc-*", "keys": ["k"], "peers": []}]}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(document))
    capsys.readouterr()
    assert main(["kdc", "policy", "--load", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == document


def test_compromise_prints_the_report(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with KeyManager.open(store, passphrase=PASSPHRASE, clock=FakeClock()) as km:
        km.keys.create("payments")
    report = _json(capsys, "kdc", "compromise", "--key", "payments#1")
    assert report["rotated"] == ["payments#2"]
    grants = _json(capsys, "kdc", "grants", "--key", "payments")
    assert grants == []


def test_revocation_list_is_written_signed(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rl.bin"
    info = _json(capsys, "kdc", "revocation-list", "--out", str(out))
    assert out.read_bytes()[:4] == b"KD\x01\x0a"
    assert len(info["kdc_public_key"]) == 64


def test_certificate_principal_registers_and_its_compromise_revokes_it(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import Encoding

    with KeyManager.open(store, passphrase=PASSPHRASE) as km:
        ca = km.pki.create_root_ca("root", key_type="ed25519")
        private = ed25519.Ed25519PrivateKey.generate()
        cert = ca.issue(
            public_key=private.public_key(),
            subject="client-b",
            names=["client-b"],
            profile="tls-client",
        )
    pem = tmp_path / "b.pem"
    pem.write_bytes(cert.public_bytes(Encoding.PEM))
    info = _json(capsys, "kdc", "register", "client-b", "--certificate", str(pem))
    assert info["certificate_serial"] == format(cert.serial_number, "x")
    report = _json(capsys, "kdc", "compromise", "--certificate", str(pem))
    assert report["revoked"][-1] == "principal:client-b"
    assert report["crl"].endswith("crl=1")


def test_compromise_lists_the_data_keys_issued_under_the_exposed_version(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with KeyManager.open(
        store, passphrase=PASSPHRASE, kdf_profile=KdfProfile.TESTING_ONLY_INSECURE
    ) as km:
        km.keys.create("k")
        with km.acting_as("batch-job"):
            issued = [km.generate_data_key("k") for _ in range(2)]
    capsys.readouterr()
    assert main(["kdc", "compromise", "--key", "k#1"]) == 0
    out = capsys.readouterr().out
    for data_key in issued:
        line = next(row for row in out.splitlines() if data_key.id in row)
        assert "k#1" in line
        assert "batch-job" in line
