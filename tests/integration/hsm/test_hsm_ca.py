"""CA private keys generated in a PKCS#11 token (SoftHSM2 in CI); every CA signature by the token.

Root and intermediate keys live in the token; the store keeps a sealed
reference. What the token-held CAs sign (certificates, CRLs, delta CRLs,
OCSP responses) is checked by ``km.pki.verify``, by plain cryptography, and
by the openssl CLI.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as _dt
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from _openssl_cli import openssl, openssl_ocsp_check
from keymgmt import KeyManager
from keymgmt.errors import (
    IntegrityError,
    RevokedError,
    TokenUnavailableError,
    UnsupportedAlgorithmError,
)
from keymgmt.keyring import KdfProfile
from keymgmt.keyring.pkcs11 import Pkcs11Token
from keymgmt.pki import (
    CertificateAuthority,
    CertStatus,
    build_ocsp_request,
    check_ocsp_response,
    export_certificate,
    export_crl,
)
from keymgmt.revocation import RevocationReason, SubjectKind
from keymgmt.testing import DEFAULT_START

pytestmark = pytest.mark.hsm

PASSPHRASE = "correct horse battery staple"
# The fake clock's time plus a minute, as OpenSSL's validation time.
ATTIME = str(int(DEFAULT_START.timestamp()) + 60)
needs_openssl = pytest.mark.usefixtures("openssl_cli")


@pytest.fixture
def token(pkcs11_module: str) -> Iterator[Pkcs11Token]:
    """The test token (SoftHSM2), as a CA key holder; closed afterwards.

    Closing ends its signing session, so the process is logged out again
    (PKCS#11 login state is per process and token) for the next test.
    """
    token = Pkcs11Token(
        pkcs11_module,
        token_label=os.environ.get("KEYMGMT_TEST_PKCS11_TOKEN", "keymgmt-test"),
        pin=os.environ.get("KEYMGMT_TEST_PKCS11_PIN", ""),
    )
    yield token
    token.close()


@pytest.fixture
def token_pki(
    km: KeyManager, token: Pkcs11Token
) -> tuple[CertificateAuthority, CertificateAuthority]:
    """A root and an intermediate CA, both with their keys in the token."""
    root = km.pki.create_root_ca("root", token=token)
    sub = root.create_intermediate("sub", token=token)
    return root, sub


def _csr(name: str = "svc.example.com") -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )


def _session(token: Pkcs11Token) -> Any:
    """A python-pkcs11 session on the test token (bypassing keymgmt)."""
    import pkcs11

    found = pkcs11.lib(token.module).get_token(token_label=token.token_label)
    try:
        return found.open(user_pin=os.environ["KEYMGMT_TEST_PKCS11_PIN"], rw=True)
    except pkcs11.UserAlreadyLoggedIn:  # the token's signing session logged this process in
        return found.open(rw=True)


def _reference(km: KeyManager, ca: str) -> dict[str, Any]:
    """The sealed token key reference of CA ``ca`` (its key_ref is ``pkcs11:<record name>``)."""
    ref = km.pki.ca(ca).key_ref
    assert ref.startswith(f"pkcs11:{ca}#")
    record = km._store.get_json("pki-tokenkey", ref.removeprefix("pkcs11:"))
    assert record is not None
    return record


def _token_private_key(session: Any, km: KeyManager, ca: str) -> Any:
    import pkcs11

    record = _reference(km, ca)
    (key,) = session.get_objects(
        {
            pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
            pkcs11.Attribute.LABEL: record["label"],
            pkcs11.Attribute.ID: bytes.fromhex(record["key_id"]),
        }
    )
    return key


# -- issuance, CRLs, OCSP --------------------------------------------------------------


def test_a_leaf_issued_by_a_token_intermediate_verifies_with_km_pki(
    km: KeyManager, token_pki: tuple[CertificateAuthority, CertificateAuthority]
) -> None:
    _, sub = token_pki
    cert = sub.issue(_csr())
    path = km.pki.verify(cert, purpose="tls-server", name="svc.example.com")
    assert [c.subject for c in path.chain] == [
        cert.subject,
        sub.certificate.subject,
        token_pki[0].certificate.subject,
    ]


def test_the_token_chain_verifies_with_plain_cryptography(
    km: KeyManager, token_pki: tuple[CertificateAuthority, CertificateAuthority]
) -> None:
    from cryptography.x509.verification import PolicyBuilder, Store

    root, sub = token_pki
    cert = sub.issue(_csr())
    cert.verify_directly_issued_by(sub.certificate)
    sub.certificate.verify_directly_issued_by(root.certificate)
    root.certificate.verify_directly_issued_by(root.certificate)
    verifier = (
        PolicyBuilder()
        .store(Store([root.certificate]))
        .time(km.clock.now())
        .build_server_verifier(x509.DNSName("svc.example.com"))
    )
    chain = verifier.verify(cert, [sub.certificate])
    assert chain[-1] == root.certificate


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"])
def test_each_token_key_type_signs_certificates_crls_and_ocsp(
    km: KeyManager, token: Pkcs11Token, key_type: str
) -> None:
    root = km.pki.create_root_ca("root", token=token, key_type=key_type)
    assert root.key_type.value == key_type
    cert = root.issue(_csr())
    cert.verify_directly_issued_by(root.certificate)
    crl = root.crl()
    assert crl.is_signature_valid(root.certificate.public_key())  # type: ignore[arg-type]
    response = ocsp.load_der_ocsp_response(
        root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    )
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    status = check_ocsp_response(response, cert=cert, issuer=root.certificate, at=DEFAULT_START)
    assert status.status is CertStatus.GOOD


def test_crls_and_delta_crls_from_the_token_number_up_and_list_revocations(
    token_pki: tuple[CertificateAuthority, CertificateAuthority],
) -> None:
    _, sub = token_pki
    first, second = sub.issue(_csr("a.example.com")), sub.issue(_csr("b.example.com"))
    sub.revoke(first.serial_number, RevocationReason.KEY_COMPROMISE)
    base = sub.crl()
    sub.revoke(second.serial_number, RevocationReason.SUPERSEDED)
    delta = sub.crl(delta=True)
    public = sub.certificate.public_key()
    assert base.is_signature_valid(public)  # type: ignore[arg-type]
    assert delta.is_signature_valid(public)  # type: ignore[arg-type]
    number = base.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    delta_number = delta.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value
    assert (number, delta_number, indicator.crl_number) == (1, 2, 1)
    assert [r.serial_number for r in base] == [first.serial_number]
    assert [r.serial_number for r in delta] == [second.serial_number]
    assert {i.serial for i in sub.issued()} == {first.serial_number, second.serial_number}


@pytest.mark.parametrize("revoked", [False, True])
def test_ocsp_responses_signed_by_the_token_check_with_nonce(
    km: KeyManager,
    token_pki: tuple[CertificateAuthority, CertificateAuthority],
    revoked: bool,
) -> None:
    _, sub = token_pki
    cert = sub.issue(_csr())
    if revoked:
        sub.revoke(cert.serial_number, RevocationReason.KEY_COMPROMISE)
    request = build_ocsp_request(cert, sub.certificate, nonce=b"nonce-123")
    status = check_ocsp_response(
        sub.ocsp_respond(request),
        cert=cert,
        issuer=sub.certificate,
        at=DEFAULT_START,
        nonce=b"nonce-123",
    )
    if revoked:
        assert (status.status, status.reason) == (
            CertStatus.REVOKED,
            RevocationReason.KEY_COMPROMISE,
        )
    else:
        assert status.status is CertStatus.GOOD


def test_a_revoked_leaf_of_a_token_ca_is_refused_by_km_pki(
    km: KeyManager, token_pki: tuple[CertificateAuthority, CertificateAuthority]
) -> None:
    from keymgmt.errors import CertificateRevokedError

    _, sub = token_pki
    cert = sub.issue(_csr())
    sub.revoke(cert.serial_number, RevocationReason.KEY_COMPROMISE)
    with pytest.raises(CertificateRevokedError):
        km.pki.verify(cert, crls=[sub.crl()])


# -- openssl ---------------------------------------------------------------------------


@needs_openssl
@pytest.mark.interop
@pytest.mark.parametrize("flag", ["-crl_check", "-crl_check_all"])
@pytest.mark.parametrize("revoke", [False, True])
def test_openssl_verify_with_crl_checks_judges_the_token_chain(
    token_pki: tuple[CertificateAuthority, CertificateAuthority],
    tmp_path: Path,
    revoke: bool,
    flag: str,
) -> None:
    root, sub = token_pki
    cert = sub.issue(_csr())
    if revoke:
        sub.revoke(cert.serial_number, RevocationReason.KEY_COMPROMISE)
    files = {
        "root.pem": export_certificate(root.certificate),
        "sub.pem": export_certificate(sub.certificate),
        "leaf.pem": export_certificate(cert),
        "crls.pem": export_crl(sub.crl()) + export_crl(root.crl()),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    leaf = tmp_path / "leaf.pem"
    result = openssl(
        "verify", "-attime", ATTIME, "-CAfile", tmp_path / "root.pem",
        "-untrusted", tmp_path / "sub.pem", flag,
        "-CRLfile", tmp_path / "crls.pem", "-purpose", "sslserver", leaf,
    )  # fmt: skip
    if revoke:
        assert result.returncode != 0
        assert "certificate revoked" in result.stdout + result.stderr
    else:
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{leaf}: OK" in result.stdout


@needs_openssl
@pytest.mark.interop
def test_openssl_ocsp_accepts_a_token_signed_response(token: Pkcs11Token, tmp_path: Path) -> None:
    # openssl ocsp checks thisUpdate/nextUpdate against the real time: use the system clock.
    with KeyManager.in_memory() as live:
        root = live.pki.create_root_ca("root", token=token)
        sub = root.create_intermediate("sub", token=token, key_type="ecdsa-p384")
        cert = sub.issue(_csr())
        sub.revoke(cert.serial_number, RevocationReason.KEY_COMPROMISE)
        response = sub.ocsp_respond(build_ocsp_request(cert, sub.certificate))
    leaf, output = openssl_ocsp_check(tmp_path, root.certificate, sub.certificate, cert, response)
    assert "Response verify OK" in output, output
    assert f"{leaf}: revoked" in output, output
    assert "keyCompromise" in output, output


# -- the key stays in the token ----------------------------------------------------------


def test_the_ca_private_keys_in_the_token_are_sensitive_and_never_extractable(
    km: KeyManager,
    token: Pkcs11Token,
    token_pki: tuple[CertificateAuthority, CertificateAuthority],
) -> None:
    import pkcs11

    session = _session(token)
    try:
        for ca in ("root", "sub"):
            key = _token_private_key(session, km, ca)
            assert key[pkcs11.Attribute.SENSITIVE] is True
            assert key[pkcs11.Attribute.EXTRACTABLE] is False
            assert key[pkcs11.Attribute.ALWAYS_SENSITIVE] is True
            assert key[pkcs11.Attribute.NEVER_EXTRACTABLE] is True
            assert key[pkcs11.Attribute.TOKEN] is True
            with pytest.raises(pkcs11.AttributeSensitive):
                key[pkcs11.Attribute.VALUE]
    finally:
        session.close()


def test_key_attributes_reports_the_protection_of_a_token_ca_key(
    km: KeyManager,
    token: Pkcs11Token,
    token_pki: tuple[CertificateAuthority, CertificateAuthority],
) -> None:
    record = _reference(km, "sub")
    attributes = token.key_attributes(label=record["label"], key_id=bytes.fromhex(record["key_id"]))
    assert attributes == {
        "sensitive": True,
        "extractable": False,
        "always_sensitive": True,
        "never_extractable": True,
        "token": True,
        "sign": True,
    }


def _private_keys_in_store(path: Path, km: KeyManager) -> list[str]:
    """Every sealed record of the store file, unsealed, searched for private keys.

    A value counts when a base64 string in a JSON record (or the record
    itself) loads as a DER private key (PKCS#8 or traditional). Unsealed
    records (audit entries, the keyring's) are searched as they are.
    """
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT kind, name FROM records").fetchall()
    found = []

    def blobs(value: Any) -> Iterator[bytes]:
        if isinstance(value, dict):
            for item in value.values():
                yield from blobs(item)
        elif isinstance(value, list):
            for item in value:
                yield from blobs(item)
        elif isinstance(value, str) and len(value) >= 40:
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                with contextlib.suppress(binascii.Error, ValueError):
                    yield decode(value + "=" * (-len(value) % 4))

    import json

    for kind, name in rows:
        record = km._store.backend.get(kind, name)
        assert record is not None
        try:
            data = km._store.keyring.unseal(kind, name, record.data)
        except IntegrityError:  # not sealed: audit entries, the keyring record
            data = record.data
        candidates = [data]
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            candidates.extend(blobs(json.loads(data)))
        for blob in candidates:
            try:
                serialization.load_der_private_key(blob, password=None)
            except (ValueError, TypeError, UnsupportedAlgorithm):
                continue
            found.append(f"{kind}/{name}")
    return found


def _open(path: Path, **kwargs: Any) -> KeyManager:
    return KeyManager.open(
        path,
        passphrase=PASSPHRASE,
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        consistency_interval=0,
        **kwargs,
    )


def test_the_store_file_holds_no_private_key_of_a_token_ca(
    token: Pkcs11Token, tmp_path: Path
) -> None:
    path = tmp_path / "hsm.db"
    with _open(path) as km:
        root = km.pki.create_root_ca("root", token=token)
        root.create_intermediate("sub", token=token).issue(_csr())
        assert _private_keys_in_store(path, km) == []
        names = sorted(name.partition("#")[0] for name, _ in km._store.list_json("pki-tokenkey"))
        assert names == ["root", "sub"]
        assert not any(info.name.startswith("pki-ca-") for info in km.keys.list())


def test_the_store_scan_finds_the_private_key_of_a_software_ca(tmp_path: Path) -> None:
    # The control for the test above: the same scan sees a sealed software CA key.
    path = tmp_path / "soft.db"
    with _open(path) as km:
        km.pki.create_root_ca("root")
        assert _private_keys_in_store(path, km) != []


def test_the_token_key_reference_names_the_key_and_holds_only_its_public_half(
    km: KeyManager, token_pki: tuple[CertificateAuthority, CertificateAuthority]
) -> None:
    _, sub = token_pki
    record = _reference(km, "sub")
    assert set(record) == {
        "type",
        "token",
        "label",
        "key_id",
        "algorithm",
        "public_key",
        "attributes",
    }
    public = serialization.load_der_public_key(
        base64.urlsafe_b64decode(record["public_key"] + "==")
    )
    assert public == sub.certificate.public_key()
    assert sub.key_ref == f"pkcs11:sub#{record['key_id']}"


# -- without the token -----------------------------------------------------------------


def test_a_reopened_store_cannot_sign_until_the_token_is_attached(
    token: Pkcs11Token, tmp_path: Path
) -> None:
    path = tmp_path / "hsm.db"
    with _open(path) as km:
        km.pki.create_root_ca("root", token=token)
    with _open(path, create=False) as km:
        root = km.pki.ca("root")
        audit_before = km.audit.verify().entries
        with pytest.raises(TokenUnavailableError, match="not attached") as info:
            root.issue(_csr())
        assert getattr(info.value, "token", None) == token.token_label
        with pytest.raises(TokenUnavailableError):
            root.crl()
        assert root.issued() == []
        assert km.audit.verify().entries == audit_before
        km.pki.use_token(token)
        cert = root.issue(_csr())
        assert km.pki.verify(cert).chain[-1] == root.certificate


def test_a_closed_token_refuses_issuance_crls_and_ocsp_and_writes_nothing(
    km: KeyManager,
    token: Pkcs11Token,
    token_pki: tuple[CertificateAuthority, CertificateAuthority],
) -> None:
    root, sub = token_pki
    cert = sub.issue(_csr())
    token.close()
    before = len(sub.issued())
    with pytest.raises(TokenUnavailableError, match="closed"):
        sub.issue(_csr())
    with pytest.raises(TokenUnavailableError, match="closed"):
        sub.crl()
    with pytest.raises(TokenUnavailableError, match="closed"):
        sub.ocsp_respond(build_ocsp_request(cert, sub.certificate))
    with pytest.raises(TokenUnavailableError, match="closed"):
        root.create_intermediate("other")
    assert not any(info.name == "pki-ca-other" for info in km.keys.list())
    assert len(sub.issued()) == before
    assert km._store.get_json("pki-crl", "sub") is None


def test_a_token_without_the_ca_key_is_unavailable(
    km: KeyManager,
    token: Pkcs11Token,
    token_pki: tuple[CertificateAuthority, CertificateAuthority],
) -> None:
    _, sub = token_pki
    session = _session(token)
    try:
        _token_private_key(session, km, "sub").destroy()
    finally:
        session.close()
    with pytest.raises(TokenUnavailableError, match="has no \\(single\\) private key"):
        sub.issue(_csr())
    assert sub.issued() == []


def test_an_absent_token_cannot_hold_a_new_ca_and_nothing_is_written(
    km: KeyManager, pkcs11_module: str
) -> None:
    absent = Pkcs11Token(pkcs11_module, token_label="no-such-token", pin="1234")
    with pytest.raises(TokenUnavailableError, match="no single PKCS#11 token"):
        km.pki.create_root_ca("root", token=absent)
    assert km.pki.list_cas() == []
    assert km._store.list_json("pki-tokenkey") == []


def test_ed25519_cannot_be_held_in_the_token(km: KeyManager, token: Pkcs11Token) -> None:
    with pytest.raises(UnsupportedAlgorithmError, match="cannot be held in a PKCS#11 token"):
        km.pki.create_root_ca("root", token=token, key_type="ed25519")
    assert km.pki.list_cas() == []


def test_a_token_key_that_does_not_match_the_stored_public_key_fails_closed(
    km: KeyManager, token_pki: tuple[CertificateAuthority, CertificateAuthority]
) -> None:
    # Point the reference of "sub" at the root's token key: the token then
    # signs with a key whose signatures do not verify under sub's public key.
    root_ref = _reference(km, "root")
    sub_name = km.pki.ca("sub").key_ref.removeprefix("pkcs11:")

    def run(txn: Any) -> None:
        record = txn.get_json("pki-tokenkey", sub_name)
        record["label"], record["key_id"] = root_ref["label"], root_ref["key_id"]
        txn.put_json("pki-tokenkey", sub_name, record)

    km._store.transact(run)
    _, sub = token_pki
    with pytest.raises(IntegrityError, match="does not verify under the CA public key"):
        sub.issue(_csr())
    with pytest.raises(IntegrityError):
        sub.crl()
    assert sub.issued() == []


# -- lifecycle as for software CAs -------------------------------------------------------


def test_revoking_a_token_sub_ca_for_key_compromise_revokes_its_token_key(
    km: KeyManager, token_pki: tuple[CertificateAuthority, CertificateAuthority]
) -> None:
    root, sub = token_pki
    root.revoke(sub.certificate.serial_number, RevocationReason.KEY_COMPROMISE)
    assert km.revocation.is_revoked(SubjectKind.KEY, sub.key_ref)
    with pytest.raises(RevokedError):
        km.pki.ca("sub").issue(_csr())


def test_token_ca_creation_and_issuance_are_audited_without_key_material(
    km: KeyManager, token_pki: tuple[CertificateAuthority, CertificateAuthority]
) -> None:
    _, sub = token_pki
    sub.issue(_csr())
    entries = list(km.audit.entries())
    operations = [e.operation for e in entries]
    assert operations.count("pki.create-token-key") == 2
    assert "pki.create-root-ca" in operations
    assert "pki.issue" in operations
    created = [e for e in entries if e.operation == "pki.create-root-ca"]
    assert created[0].details["key_storage"] == "pkcs11"
    assert km.audit.verify().entries == len(entries)


def test_renewing_a_token_root_signs_in_the_token(
    km: KeyManager, clock: Any, token: Pkcs11Token
) -> None:
    root = km.pki.create_root_ca("root", token=token, validity=_dt.timedelta(days=30))
    clock.advance(_dt.timedelta(days=10))
    renewed = root.renew_root(validity=_dt.timedelta(days=60))
    renewed.verify_directly_issued_by(renewed)
    assert renewed.public_key() == root.certificate.public_key()


def test_a_root_whose_token_signature_failed_can_be_created_again(
    km: KeyManager, token: Pkcs11Token, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unplugged(data: bytes, **kwargs: Any) -> bytes:
        raise TokenUnavailableError("the token was unplugged", token=token.token_label)

    with monkeypatch.context() as patch:
        patch.setattr(token, "sign", unplugged)
        with pytest.raises(TokenUnavailableError, match="unplugged"):
            km.pki.create_root_ca("root", token=token)
    assert km.pki.list_cas() == []
    root = km.pki.create_root_ca("root", token=token)
    root.certificate.verify_directly_issued_by(root.certificate)


def test_signing_reopens_a_signing_session_the_token_dropped(
    token: Pkcs11Token, token_pki: tuple[CertificateAuthority, CertificateAuthority]
) -> None:
    _, sub = token_pki
    sub.issue(_csr())
    token._sign_session.close()  # as a token reset would
    sub.issue(_csr()).verify_directly_issued_by(sub.certificate)


def test_the_master_key_token_holds_the_ca_keys_too(hsm_key: Any, store_path: Path) -> None:
    source = hsm_key()
    try:
        with KeyManager.open(store_path, master_key=source, consistency_interval=0) as km:
            km.pki.create_root_ca("root", token=source.token).issue(_csr())
        with KeyManager.open(
            store_path, master_key=source, create=False, consistency_interval=0
        ) as km:
            km.pki.use_token(source.token)
            root = km.pki.ca("root")
            assert root.crl().is_signature_valid(root.certificate.public_key())  # type: ignore[arg-type]
            assert len(root.issued()) == 1
    finally:
        source.token.close()
