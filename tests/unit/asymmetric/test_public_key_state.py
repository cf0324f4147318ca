"""km.public_key honours the version's state; forensic_public_key is the explicit way past it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from _cli_env import cli_env, run
from keymgmt import KeyManager
from keymgmt.algorithms import Algorithm
from keymgmt.errors import (
    DestroyedKeyError,
    InvalidArgumentError,
    KeyNotFoundError,
    KeyUsageError,
    RevokedError,
)
from keymgmt.model import KeyState
from keymgmt.public import ForensicPublicKey, PublicKey
from keymgmt.revocation import RevocationReason, SubjectKind
from keymgmt.testing import FakeClock

# -- the normal path refuses compromised versions ----------------------------------------


def test_public_key_of_a_compromised_version_is_refused_naming_the_revocation(
    km: KeyManager,
) -> None:
    km.keys.create("inbox", Algorithm.X25519, usage="encrypt-decrypt")
    km.keys.revoke("inbox", 1, reason="key-compromise")
    with pytest.raises(RevokedError) as refused:
        km.public_key("inbox")
    error = refused.value
    assert error.key_name == "inbox"  # type: ignore[attr-defined]
    assert error.version == 1  # type: ignore[attr-defined]
    assert error.reason == "key-compromise"  # type: ignore[attr-defined]
    assert error.state == "compromised"  # type: ignore[attr-defined]
    assert error.message == (
        "key 'inbox' version 1 is compromised (key-compromise): its public key is not "
        "handed out to encrypt to, verify with or publish; for an investigation use "
        "km.keys.forensic_public_key('inbox', 1)"
    )


def test_public_key_of_an_explicit_compromised_version_is_refused(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    km.keys.rotate("signer")
    km.keys.revoke("signer", 1, reason="key-compromise")
    with pytest.raises(RevokedError, match="version 1 is compromised"):
        km.keys.public_key("signer", 1)
    assert km.keys.public_key("signer").version == 2


def test_public_key_of_a_version_compromised_in_the_registry_only_is_refused(
    km: KeyManager,
) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    km.public_key("signer")  # cached before the revocation
    km.revocation.revoke(SubjectKind.KEY, "signer#1", RevocationReason.KEY_COMPROMISE)
    with pytest.raises(RevokedError, match=r"compromised \(key-compromise\)"):
        km.public_key("signer")


def test_public_key_of_a_whole_key_compromised_in_the_registry_is_refused(
    km: KeyManager,
) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    km.public_key("signer")
    km.revocation.revoke(SubjectKind.KEY, "signer", RevocationReason.CA_COMPROMISE)
    with pytest.raises(RevokedError, match=r"compromised \(ca-compromise\)"):
        km.public_key("signer")


def test_public_key_of_a_version_retired_without_compromise_still_answers(
    km: KeyManager,
) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    signature = km.sign("signer", b"release 1")
    km.keys.rotate("signer")
    km.keys.revoke("signer", 1, reason="superseded")
    old = km.public_key("signer", 1)
    old.verify(b"release 1", signature)  # old signatures stay checkable
    assert km.keys.get("signer").versions[0].state is KeyState.DEACTIVATED


def test_public_key_of_a_pre_active_version_answers(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create(
        "inbox",
        Algorithm.X25519,
        usage="encrypt-decrypt",
        activation_date=clock.now() + dt.timedelta(days=1),
    )
    assert km.public_key("inbox").version == 1  # published ahead of its activation


def test_public_key_of_a_cached_version_destroyed_by_date_is_refused(
    km: KeyManager, clock: FakeClock
) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    km.keys.rotate("signer")
    km.keys.destroy("signer", 1)
    km.public_key("signer", 1)  # cached while the destruction is pending
    clock.advance(days=8)
    with pytest.raises(DestroyedKeyError, match="'signer' version 1 was destroyed"):
        km.public_key("signer", 1)


def test_public_key_of_a_destroyed_compromised_version_says_destroyed(
    km: KeyManager, clock: FakeClock
) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    km.keys.rotate("signer")
    km.keys.revoke("signer", 1, reason="key-compromise")
    km.keys.destroy("signer", 1, grace=dt.timedelta(0))
    with pytest.raises(DestroyedKeyError, match="destroyed-compromised"):
        km.public_key("signer", 1)


def test_verify_refuses_a_compromised_versions_signature(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    signature = km.sign("signer", b"m")
    km.keys.revoke("signer", 1, reason="key-compromise")
    with pytest.raises(RevokedError):
        km.verify("signer", b"m", signature)
    with pytest.raises(RevokedError):
        km.verify("signer", b"m", signature[-64:], version=1)


# -- the forensic path ------------------------------------------------------------------


def test_forensic_public_key_answers_for_a_compromised_version_with_its_state(
    km: KeyManager,
) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    published = km.public_key("signer")
    km.keys.revoke("signer", 1, reason="key-compromise")
    forensic = km.keys.forensic_public_key("signer", 1)
    assert isinstance(forensic, ForensicPublicKey)
    assert not isinstance(forensic, PublicKey)  # nothing that takes a PublicKey takes it
    assert forensic.state is KeyState.COMPROMISED
    assert forensic.revocation_reason == "key-compromise"
    assert (forensic.key_name, forensic.version, forensic.key_id) == ("signer", 1, published.key_id)
    assert forensic.fingerprint() == published.fingerprint()
    assert forensic.key == published.key
    assert repr(forensic) == (
        f"<ForensicPublicKey ed25519 signer#1 compromised sha256:{published.fingerprint()[:16]}>"
    )


def test_forensic_public_key_cannot_encrypt_verify_or_export(km: KeyManager) -> None:
    km.keys.create("inbox", Algorithm.X25519, usage="encrypt-decrypt")
    km.keys.revoke("inbox", 1, reason="key-compromise")
    forensic = km.keys.forensic_public_key("inbox", 1)
    for name in ("encrypt", "verify", "pem", "jwk", "der", "export"):
        assert not hasattr(forensic, name)


def test_forensic_public_key_of_a_healthy_version_says_its_state(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    forensic = km.keys.forensic_public_key("signer", 1)
    assert forensic.state is KeyState.ACTIVE
    assert forensic.revocation_reason is None


def test_forensic_public_key_needs_an_explicit_version(km: KeyManager) -> None:
    km.keys.create("signer", Algorithm.ED25519)
    with pytest.raises(InvalidArgumentError, match="names the version"):
        km.keys.forensic_public_key("signer", None)  # type: ignore[arg-type]


def test_forensic_public_key_refuses_symmetric_destroyed_and_missing(
    km: KeyManager, clock: FakeClock
) -> None:
    km.keys.create("sym")
    with pytest.raises(KeyUsageError):
        km.keys.forensic_public_key("sym", 1)
    km.keys.create("signer", Algorithm.ED25519)
    km.keys.rotate("signer")
    km.keys.destroy("signer", 1, grace=dt.timedelta(0))
    with pytest.raises(DestroyedKeyError):
        km.keys.forensic_public_key("signer", 1)
    with pytest.raises(KeyNotFoundError):
        km.keys.forensic_public_key("signer", 9)


def test_compromise_of_an_already_compromised_key_pair_still_revokes_its_certificates(
    km: KeyManager,
) -> None:
    ca = km.pki.create_root_ca("root")
    km.keys.create("signer", Algorithm.ECDSA_P256)
    cert = ca.issue(
        public_key=km.keys.public_key("signer").key,  # type: ignore[arg-type]
        subject="www",
        names=["www.example.com"],
    )
    km.keys.revoke("signer", 1, reason="key-compromise")  # first the key store alone
    report = km.compromise(key="signer#1")  # then the whole playbook
    assert f"certificate:root:{cert.serial_number:x}" in report.revoked
    crl = ca.crl()
    assert isinstance(
        crl.get_revoked_certificate_by_serial_number(cert.serial_number), x509.RevokedCertificate
    )


# -- the CLI agrees -------------------------------------------------------------------------


def test_cli_key_public_refuses_a_compromised_version(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cli_env(monkeypatch, tmp_path, "cli public passphrase")
    store = str(tmp_path / "s.db")
    assert run(capsys, "--store", store, "init")[0] == 0
    for argv in (
        ("key", "create", "signer", "--algorithm", "ed25519"),
        ("key", "revoke", "signer", "--version", "1", "--reason", "key-compromise"),
    ):
        code, _, err = run(capsys, "--store", store, *argv)
        assert code == 0, err
    code, out, err = run(capsys, "--store", store, "key", "public", "signer")
    assert code != 0
    assert "compromised (key-compromise)" in err
    assert "BEGIN PUBLIC KEY" not in out


def test_cli_key_public_forensic_shows_a_compromised_versions_state_never_the_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cli_env(monkeypatch, tmp_path, "cli public passphrase")
    store = str(tmp_path / "s.db")
    assert run(capsys, "--store", store, "init")[0] == 0
    run(capsys, "--store", store, "key", "create", "signer", "--algorithm", "ed25519")
    run(capsys, "--store", store, "key", "revoke", "signer", "--version", "1",
        "--reason", "key-compromise")  # fmt: skip
    with KeyManager.open(store, passphrase="cli public passphrase") as km:
        fingerprint = km.keys.forensic_public_key("signer", 1).fingerprint()
    code, out, err = run(
        capsys, "--store", store, "key", "public", "signer", "--version", "1", "--forensic"
    )
    assert code == 0, err
    assert out == f"signer version 1: compromised (key-compromise), ed25519, sha256:{fingerprint}\n"
    code, out, _ = run(
        capsys, "--store", store, "--format", "json", "key", "public", "signer",
        "--version", "1", "--forensic",
    )  # fmt: skip
    assert code == 0
    assert '"state": "compromised"' in out
    assert "BEGIN PUBLIC KEY" not in out


def test_cli_key_public_forensic_needs_a_version(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cli_env(monkeypatch, tmp_path, "cli public passphrase")
    store = str(tmp_path / "s.db")
    assert run(capsys, "--store", store, "init")[0] == 0
    run(capsys, "--store", store, "key", "create", "signer", "--algorithm", "ed25519")
    code, _, err = run(capsys, "--store", store, "key", "public", "signer", "--forensic")
    assert code == 2
    assert "--forensic needs --version" in err
