"""Regression tests for the third PKI review (issue #5): OCSP, CRLs, export, CLI."""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp

from keymgmt import KeyManager
from keymgmt.cli import main
from keymgmt.errors import (
    CertificateRevokedError,
    CertificateVerificationError,
    InvalidArgumentError,
    KeyStateError,
    MalformedInputError,
    NotFoundError,
    RevokedError,
)
from keymgmt.pki import (
    OCSP_SIGNING,
    TLS_CLIENT,
    CertificateAuthority,
    CertStatus,
    Profile,
    Purpose,
    build_ocsp_request,
    check_ocsp_response,
    export_certificate,
    export_chain,
    export_crl,
    export_pkcs12,
    export_private_key,
)
from keymgmt.revocation import RevocationReason
from keymgmt.testing import FakeClock, in_memory_manager


def _other_key() -> ec.EllipticCurvePublicKey:
    return ec.generate_private_key(ec.SECP256R1()).public_key()


def _client(ca: CertificateAuthority, subject: str = "held") -> x509.Certificate:
    return ca.issue(public_key=_other_key(), subject=subject, profile=TLS_CLIENT)


# -- a delta CRL older than the complete CRL must not be combined with it -----------


def _hold_release_hold(
    clock: FakeClock, root: CertificateAuthority, cert: x509.Certificate
) -> tuple[
    x509.CertificateRevocationList,
    x509.CertificateRevocationList,
    x509.CertificateRevocationList,
]:
    """CRL 1 (on hold), delta 2 (hold released), then on hold again."""
    root.revoke(cert.serial_number, "certificate-hold")
    complete = root.crl()
    clock.advance(60)
    root.release_hold(cert.serial_number)
    released = root.crl(delta=True)
    clock.advance(60)
    root.revoke(cert.serial_number, "certificate-hold")
    return complete, released, root.crl(delta=True)


def test_an_older_delta_crl_does_not_lift_a_hold_on_a_newer_complete_crl(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = _client(root)
    _, released, _ = _hold_release_hold(clock, root, cert)
    newer = root.crl(force=True)  # number 4, lists the hold again; the delta is number 2
    relying_party = in_memory_manager(clock=clock)
    with pytest.raises(CertificateRevokedError) as info:
        relying_party.pki.verify(cert, trust_anchors=[root.certificate], crls=[newer, released])
    assert info.value.reason is RevocationReason.CERTIFICATE_HOLD


@pytest.mark.parametrize("order", ["oldest-first", "newest-first"])
def test_only_the_newest_delta_crl_counts_whatever_the_order(
    clock: FakeClock, root: CertificateAuthority, order: str
) -> None:
    cert = _client(root)
    complete, released, held_again = _hold_release_hold(clock, root, cert)
    deltas = [released, held_again] if order == "oldest-first" else [held_again, released]
    relying_party = in_memory_manager(clock=clock)
    with pytest.raises(CertificateRevokedError):
        relying_party.pki.verify(cert, trust_anchors=[root.certificate], crls=[complete, *deltas])


def test_a_newer_delta_crl_still_lifts_a_released_hold(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = _client(root)
    root.revoke(cert.serial_number, "certificate-hold")
    complete = root.crl()
    clock.advance(60)
    root.release_hold(cert.serial_number)
    released = root.crl(delta=True)
    relying_party = in_memory_manager(clock=clock)
    path = relying_party.pki.verify(
        cert, trust_anchors=[root.certificate], crls=[released, complete]
    )
    assert path.chain[0] == cert


# -- OCSP: a 'good' response does not outvote a 'revoked' one -------------------------


@pytest.mark.parametrize("order", ["good-first", "revoked-first"])
def test_a_good_ocsp_response_does_not_hide_a_later_revocation(
    clock: FakeClock, root: CertificateAuthority, order: str
) -> None:
    cert = _client(root, "leaf")
    good = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    clock.advance(60)
    root.revoke(cert.serial_number, "key-compromise")
    revoked = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    responses = [good, revoked] if order == "good-first" else [revoked, good]
    relying_party = in_memory_manager(clock=clock)
    with pytest.raises(CertificateRevokedError) as info:
        relying_party.pki.verify(cert, trust_anchors=[root.certificate], ocsp_responses=responses)
    assert info.value.reason is RevocationReason.KEY_COMPROMISE


def test_a_newer_good_ocsp_response_lifts_an_older_hold(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = _client(root, "leaf")
    root.revoke(cert.serial_number, "certificate-hold")
    held = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    clock.advance(60)
    root.release_hold(cert.serial_number)
    good = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    relying_party = in_memory_manager(clock=clock)
    path = relying_party.pki.verify(
        cert, trust_anchors=[root.certificate], ocsp_responses=[held, good]
    )
    assert path.chain[0] == cert


def test_a_good_ocsp_response_older_than_a_hold_does_not_lift_it(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = _client(root, "leaf")
    good = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    clock.advance(60)
    root.revoke(cert.serial_number, "certificate-hold")
    held = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    relying_party = in_memory_manager(clock=clock)
    with pytest.raises(CertificateRevokedError):
        relying_party.pki.verify(
            cert, trust_anchors=[root.certificate], ocsp_responses=[good, held]
        )


# -- export: wrong types and passphrases are InvalidArgumentError ---------------------

_PASSPHRASE = "export passphrase"


@pytest.fixture
def leaf_and_key(
    root: CertificateAuthority,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = root.issue(public_key=key.public_key(), subject="leaf", names=["leaf.example"])
    return cert, key


def test_a_pkcs12_passphrase_with_a_nul_is_refused(
    leaf_and_key: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    # A NUL ends the passphrase for PKCS#12 readers: the bundle could not be opened.
    cert, key = leaf_and_key
    with pytest.raises(InvalidArgumentError, match="NUL"):
        export_pkcs12(name="leaf", key=key, certificate=cert, passphrase="abcdefgh\x00ijkl")


def test_a_passphrase_with_a_lone_surrogate_is_an_invalid_argument(
    leaf_and_key: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    cert, key = leaf_and_key
    with pytest.raises(InvalidArgumentError, match="Unicode"):
        export_pkcs12(name="leaf", key=key, certificate=cert, passphrase="abcdefgh\udc80")
    with pytest.raises(InvalidArgumentError, match="Unicode"):
        export_private_key(key, "abcdefgh\udc80")


def test_a_public_key_given_as_the_private_key_is_an_invalid_argument(
    leaf_and_key: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    cert, key = leaf_and_key
    with pytest.raises(InvalidArgumentError):
        export_private_key(key.public_key(), _PASSPHRASE)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        export_pkcs12(
            name="leaf",
            key=key.public_key(),  # type: ignore[arg-type]
            certificate=cert,
            passphrase=_PASSPHRASE,
        )


@pytest.mark.parametrize(
    "change",
    [
        {"name": b"leaf"},
        {"name": "leaf\udc80"},
        {"certificate": "not a certificate"},
        {"chain": None},
        {"chain": ["not a certificate"]},
    ],
)
def test_pkcs12_arguments_of_the_wrong_type_are_invalid_arguments(
    leaf_and_key: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], change: dict[str, object]
) -> None:
    cert, key = leaf_and_key
    arguments: dict[str, object] = {
        "name": "leaf",
        "key": key,
        "certificate": cert,
        "chain": (),
        "passphrase": _PASSPHRASE,
        **change,
    }
    with pytest.raises(InvalidArgumentError):
        export_pkcs12(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "export",
    [
        lambda: export_certificate("not a certificate"),  # type: ignore[arg-type]
        lambda: export_chain(None),  # type: ignore[arg-type]
        lambda: export_chain("not a chain"),  # type: ignore[arg-type]
        lambda: export_crl(b"not a crl"),  # type: ignore[arg-type]
    ],
    ids=["certificate", "chain-none", "chain-str", "crl"],
)
def test_exporting_what_is_not_a_certificate_or_crl_is_an_invalid_argument(
    export: Callable[[], bytes],
) -> None:
    with pytest.raises(InvalidArgumentError):
        export()


def test_a_pkcs12_bundle_still_holds_the_key_and_the_chain_in_order(
    root: CertificateAuthority,
    leaf_and_key: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    cert, key = leaf_and_key
    bundle = export_pkcs12(
        name="leaf", key=key, certificate=cert, chain=iter(root.chain), passphrase=_PASSPHRASE
    )
    loaded = pkcs12.load_pkcs12(bundle, _PASSPHRASE.encode())
    assert loaded.cert is not None
    assert loaded.cert.certificate == cert
    assert [c.certificate for c in loaded.additional_certs] == root.chain


# -- CLI: bad input is refused before anything is issued ------------------------------


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store.db"
    monkeypatch.setenv("KEYMGMT_PASSPHRASE", "cli test passphrase")
    monkeypatch.setenv("KEYMGMT_KEY_PASSPHRASE", "leaf key passphrase")
    monkeypatch.setenv("KEYMGMT_TEST_KDF", "insecure")
    monkeypatch.setenv("KEYMGMT_STORE", str(path))
    assert main(["init"]) == 0
    assert main(["ca", "create-root", "root"]) == 0
    return path


def _issued(capsys: pytest.CaptureFixture[str]) -> list[object]:
    capsys.readouterr()
    assert main(["--format", "json", "ca", "issued", "root"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list)
    return rows


@pytest.mark.parametrize(
    ("passphrase", "message"), [("short", "at least 8"), ("abcdefgh\x00ij", "NUL")]
)
def test_cli_new_key_with_a_bad_passphrase_issues_nothing(
    cli_store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    passphrase: str,
    message: str,
) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(passphrase)
    code = main(["ca", "issue", "root", "--new-key", "--subject", "alice",
                 "--profile", "tls-client", "--p12-out", str(tmp_path / "a.p12"),
                 "--key-passphrase-file", str(secret)])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert passphrase not in err
    assert _issued(capsys) == []
    assert not (tmp_path / "a.p12").exists()


def test_cli_new_key_into_a_missing_directory_issues_nothing(
    cli_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ca", "issue", "root", "--new-key", "--subject", "alice", "--profile",
                 "tls-client", "--key-out", str(tmp_path / "missing" / "a.key")])  # fmt: skip
    assert code == 1
    assert "no such directory" in capsys.readouterr().err
    assert _issued(capsys) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["ca", "crl", "root", "--next-update-hours", "99999999999"],
        ["ca", "create-root", "other", "--validity-days", "99999999999"],
    ],
    ids=["crl-next-update", "root-validity"],
)
def test_cli_an_absurd_duration_is_a_one_line_error(
    cli_store: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "too long" in err
    assert "unexpected" not in err
    assert len(err.splitlines()) == 1


# -- arguments of the wrong type are InvalidArgumentError, not TypeError/ValueError ----


def test_a_zero_validity_is_refused_not_replaced_by_the_profiles(
    root: CertificateAuthority,
) -> None:
    with pytest.raises(InvalidArgumentError, match="positive"):
        root.issue(
            public_key=_other_key(), subject="x", profile=TLS_CLIENT, validity=_dt.timedelta(0)
        )
    assert root.issued() == []


def test_a_zero_root_validity_is_refused(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError, match="positive"):
        km.pki.create_root_ca("zero", validity=_dt.timedelta(0))


@pytest.mark.parametrize(
    "call",
    [
        lambda km, ca: km.pki.create_root_ca("other", validity=30),
        lambda km, ca: km.pki.create_root_ca("other", path_length="1"),
        lambda km, ca: km.pki.create_root_ca("other", path_length=2**70),
        lambda km, ca: km.pki.create_root_ca("other", path_length=True),
        lambda km, ca: ca.create_intermediate("sub", path_length="1"),
        lambda km, ca: ca.issue(public_key=_other_key(), subject="x", validity=30),
        lambda km, ca: ca.issue_many(None),
        lambda km, ca: ca.crl(next_update=3600),
        lambda km, ca: ca.ocsp_responder(validity=3600),
        lambda km, ca: ca.renew_root(validity=30),
        lambda km, ca: TLS_CLIENT.evolve(validity=30),
    ],
    ids=[
        "root-validity",
        "root-path-length-str",
        "root-path-length-huge",
        "root-path-length-bool",
        "intermediate-path-length-str",
        "issue-validity",
        "issue-many-none",
        "crl-next-update",
        "ocsp-validity",
        "renew-root-validity",
        "profile-validity",
    ],
)
def test_ca_arguments_of_the_wrong_type_are_invalid_arguments(
    km: KeyManager, root: CertificateAuthority, call: Callable[..., object]
) -> None:
    with pytest.raises(InvalidArgumentError):
        call(km, root)
    assert [ca.name for ca in km.pki.list_cas()] == ["root"]
    assert root.issued() == []


@pytest.mark.parametrize(
    "change",
    [
        {"purpose": "nope"},
        {"policy": "nope"},
        {"name": 5},
        {"crls": [b"DER bytes"]},
        {"crls": None},
        {"intermediates": [b"DER bytes"]},
        {"trust_anchors": [b"DER bytes"]},
    ],
)
def test_verify_arguments_of_the_wrong_type_are_invalid_arguments(
    km: KeyManager, root: CertificateAuthority, change: dict[str, object]
) -> None:
    cert = _client(root, "leaf")
    with pytest.raises(InvalidArgumentError):
        km.pki.verify(cert, **change)  # type: ignore[arg-type]


def test_an_unknown_purpose_is_still_a_value_error_for_old_callers() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        Purpose("nope")


@pytest.mark.parametrize(
    "change",
    [{"skew": 300}, {"max_age": 3600}, {"nonce": "text"}, {"cert": None}, {"issuer": b"DER"}],
)
def test_check_ocsp_response_arguments_of_the_wrong_type_are_invalid_arguments(
    clock: FakeClock, root: CertificateAuthority, change: dict[str, object]
) -> None:
    cert = _client(root, "leaf")
    response = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    arguments: dict[str, object] = {
        "cert": cert,
        "issuer": root.certificate,
        "at": clock.now(),
        **change,
    }
    with pytest.raises(InvalidArgumentError) as info:
        check_ocsp_response(response, **arguments)  # type: ignore[arg-type]
    assert not isinstance(info.value, MalformedInputError)  # the response is fine


def test_build_ocsp_request_arguments_of_the_wrong_type_are_invalid_arguments(
    root: CertificateAuthority,
) -> None:
    cert = _client(root, "leaf")
    with pytest.raises(InvalidArgumentError):
        build_ocsp_request(cert, root.certificate, nonce="text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        build_ocsp_request(None, root.certificate)  # type: ignore[arg-type]


# -- create_intermediate: the subject is checked before the key, and constrained ------


def test_an_intermediate_subject_outside_the_parents_directory_constraint_is_refused(
    km: KeyManager,
) -> None:
    acme = x509.DirectoryName(x509.Name.from_rfc4514_string("O=Acme"))
    root = km.pki.create_root_ca("constrained", permitted_names=[acme])
    with pytest.raises(InvalidArgumentError, match="outside the name constraints"):
        root.create_intermediate("evil", subject="CN=evil")
    assert [ca.name for ca in km.pki.list_cas()] == ["constrained"]
    assert [key.name for key in km.keys.list()] == ["pki-ca-constrained"]


def test_an_intermediate_subject_inside_the_parents_directory_constraint_verifies(
    km: KeyManager,
) -> None:
    acme = x509.DirectoryName(x509.Name.from_rfc4514_string("O=Acme"))
    root = km.pki.create_root_ca("constrained", permitted_names=[acme])
    sub = root.create_intermediate("sub", subject="CN=issuing,O=Acme")
    assert km.pki.verify(sub.certificate).chain[-1] == root.certificate


def test_a_malformed_intermediate_subject_leaves_no_key(
    km: KeyManager, root: CertificateAuthority
) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid subject"):
        root.create_intermediate("sub", subject="CN=a,,=b")
    assert [key.name for key in km.keys.list()] == ["pki-ca-root"]


# -- OCSP client: a delegate whose key usage forbids signing is no responder ---------


def _delegated_response(
    clock: FakeClock, ca: CertificateAuthority, cert: x509.Certificate, profile: Profile
) -> bytes:
    """A response about ``cert`` signed by a responder ``ca`` certified with ``profile``."""
    responder_key = ec.generate_private_key(ec.SECP256R1())
    responder = ca.issue(
        public_key=responder_key.public_key(), subject="responder", profile=profile
    )
    now = clock.now()
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=ca.certificate,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now,
            next_update=now + _dt.timedelta(hours=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
        .certificates([responder])
    )
    return builder.sign(responder_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_a_delegate_whose_key_usage_lacks_digital_signature_is_not_trusted(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = _client(root, "leaf")
    no_signing = OCSP_SIGNING.evolve(name="ocsp-no-signing", key_usage={"key_agreement"})
    response = _delegated_response(clock, root, cert, no_signing)
    with pytest.raises(CertificateVerificationError) as info:
        check_ocsp_response(response, cert=cert, issuer=root.certificate, at=clock.now())
    assert info.value.reason == "ocsp-bad-signature"  # type: ignore[attr-defined]


def test_a_delegate_with_digital_signature_is_trusted(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = _client(root, "leaf")
    response = _delegated_response(clock, root, cert, OCSP_SIGNING)
    status = check_ocsp_response(response, cert=cert, issuer=root.certificate, at=clock.now())
    assert status.status is CertStatus.GOOD


# -- documented: rotating a CA key through km.keys retires the CA ---------------------


def test_a_ca_whose_key_was_rotated_in_the_key_store_signs_nothing_more(
    km: KeyManager, root: CertificateAuthority
) -> None:
    km.keys.rotate("pki-ca-root")
    current = km.pki.ca("root")
    with pytest.raises(KeyStateError, match="deactivated"):
        current.issue(public_key=_other_key(), subject="x", profile=TLS_CLIENT)
    with pytest.raises(KeyStateError, match="deactivated"):
        current.crl()
    assert current.issued() == []


# -- profiles: no leaf with keyCertSign, no empty key usage (RFC 5280 4.2.1.3) --------


@pytest.mark.parametrize(
    "bits", [{"digital_signature", "key_cert_sign"}, set()], ids=["key-cert-sign", "empty"]
)
def test_a_leaf_profile_with_key_usage_rfc_5280_forbids_is_refused(bits: set[str]) -> None:
    with pytest.raises(InvalidArgumentError, match=r"4\.2\.1\.3"):
        TLS_CLIENT.evolve(name="bad", key_usage=bits)


def test_a_leaf_profile_may_sign_crls_as_an_indirect_crl_issuer(
    root: CertificateAuthority,
) -> None:
    profile = TLS_CLIENT.evolve(name="crl-signer", key_usage={"crl_sign"})
    cert = root.issue(public_key=_other_key(), subject="crl signer", profile=profile)
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.crl_sign


# -- renewal keeps a custom profile's name and so its lifetime ------------------------


def test_renewing_a_renewed_custom_profile_certificate_keeps_its_lifetime(
    root: CertificateAuthority,
) -> None:
    profile = TLS_CLIENT.evolve(name="weekly-client", validity=_dt.timedelta(days=7))
    first = root.issue(public_key=_other_key(), subject="x", profile=profile)
    second = root.renew(first.serial_number)
    third = root.renew(second.serial_number)
    assert [root.get(c.serial_number).profile for c in (first, second, third)] == [
        "weekly-client"
    ] * 3
    assert third.not_valid_after_utc - third.not_valid_before_utc == _dt.timedelta(days=7)


# -- serials: at most 20 octets, and a refused one is not echoed in full ---------------


@pytest.mark.parametrize("serial", ["ab" * 5000, 2**200], ids=["hex-10k", "int-200-bits"])
def test_a_serial_over_20_octets_is_refused_without_echoing_it(
    root: CertificateAuthority, serial: int | str
) -> None:
    with pytest.raises(InvalidArgumentError, match="20 octets") as info:
        root.revoke(serial)
    assert len(str(info.value)) < 200


def test_a_non_hex_serial_is_shown_truncated(root: CertificateAuthority) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid serial") as info:
        root.get("z" * 1000)
    assert len(str(info.value)) < 200


# -- a revoked CA gets no delegated OCSP responder either -----------------------------


def _responder(ca: CertificateAuthority) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    return ca.issue(public_key=key.public_key(), subject="responder", profile=OCSP_SIGNING), key


def test_a_ca_revoked_for_compromise_gets_no_delegated_responder(
    km: KeyManager, root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    responder_cert, responder_key = _responder(issuing)
    root.revoke(issuing.certificate.serial_number, "key-compromise")
    with pytest.raises(RevokedError):
        km.pki.ca("issuing").ocsp_responder(
            responder_cert=responder_cert, responder_key=responder_key
        )


def test_a_ca_whose_key_the_key_store_revoked_gets_no_delegated_responder(
    km: KeyManager, issuing: CertificateAuthority
) -> None:
    responder_cert, responder_key = _responder(issuing)
    km.keys.revoke("pki-ca-issuing", 1, reason="key-compromise")
    with pytest.raises(RevokedError):
        km.pki.ca("issuing").ocsp_responder(
            responder_cert=responder_cert, responder_key=responder_key
        )


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_cli_an_endless_input_file_is_a_one_line_error(
    cli_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # MAX_INPUT lowered so the test reads 1 KiB, not 64 MiB, of /dev/zero.
    monkeypatch.setattr("keymgmt.cli._pki.MAX_INPUT", 1024)
    capsys.readouterr()
    assert main(["cert", "show", "/dev/zero"]) == 1
    err = capsys.readouterr().err
    assert "larger than 1024 bytes" in err
    assert len(err.splitlines()) == 1


# -- name constraints given at CA creation: typed errors, a bare IP is its /32 ---------


@pytest.mark.parametrize(
    "constraint",
    ["*.example.com", x509.IPAddress(ipaddress.ip_address("10.0.0.1")), 5],
    ids=["wildcard", "ip-address-general-name", "int"],
)
def test_a_name_constraint_cryptography_refuses_is_an_invalid_argument(
    km: KeyManager, constraint: object
) -> None:
    with pytest.raises(InvalidArgumentError, match="name constraint"):
        km.pki.create_root_ca("constrained", permitted_names=[constraint])  # type: ignore[list-item]
    assert km.pki.list_cas() == []
    assert km.keys.list() == []


def test_a_bare_ip_address_constraint_is_that_one_address(
    km: KeyManager,
) -> None:
    root = km.pki.create_root_ca("constrained", excluded_names=["10.0.0.1"])
    constraints = root.certificate.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.value.excluded_subtrees == [
        x509.IPAddress(ipaddress.ip_network("10.0.0.1/32"))
    ]
    with pytest.raises(InvalidArgumentError, match="outside the name constraints"):
        root.issue(public_key=_other_key(), subject="x", names=["10.0.0.1"], profile=TLS_CLIENT)
    root.issue(public_key=_other_key(), subject="y", names=["10.0.0.2"], profile=TLS_CLIENT)


@pytest.mark.parametrize(
    "call",
    [
        lambda km, ca: ca.issue(public_key=_other_key(), subject="x", names=5),
        lambda km, ca: km.pki.verify(ca.certificate, initial_policy_set=5),
        lambda km, ca: ca.ocsp_responder(
            responder_cert=b"DER", responder_key=ec.generate_private_key(ec.SECP256R1())
        ),
        lambda km, ca: ca.ocsp_responder(
            responder_cert=_responder(ca)[0], responder_key=_other_key()
        ),
    ],
    ids=["names-int", "policy-set-int", "responder-cert-bytes", "responder-public-key"],
)
def test_more_arguments_of_the_wrong_type_are_invalid_arguments(
    km: KeyManager, root: CertificateAuthority, call: Callable[..., object]
) -> None:
    with pytest.raises(InvalidArgumentError):
        call(km, root)


def test_names_given_as_one_string_are_refused_as_such(root: CertificateAuthority) -> None:
    # Not read as one name per character ("invalid subject alternative name DNS:'.'").
    with pytest.raises(InvalidArgumentError, match="list of names"):
        root.issue(public_key=_other_key(), subject="x", names="a.example.com")


def test_a_ca_name_that_is_not_a_string_is_not_found(km: KeyManager) -> None:
    with pytest.raises(NotFoundError):
        km.pki.ca(["root"])  # type: ignore[arg-type]


# -- a CA under a revoked CA signs nothing (nothing it signed could verify) ------------


@pytest.fixture
def grandchild(km: KeyManager, root: CertificateAuthority) -> CertificateAuthority:
    middle = root.create_intermediate("middle", path_length=1)
    return middle.create_intermediate("grandchild")


def test_a_ca_under_a_revoked_ca_issues_nothing(
    km: KeyManager, root: CertificateAuthority, grandchild: CertificateAuthority
) -> None:
    root.revoke(km.pki.ca("middle").certificate.serial_number, "key-compromise")
    with pytest.raises(RevokedError, match="under the revoked CA 'middle'"):
        km.pki.ca("grandchild").issue(public_key=_other_key(), subject="x", profile=TLS_CLIENT)
    assert km.pki.ca("grandchild").issued() == []


def test_a_ca_under_a_held_ca_issues_again_once_the_hold_is_released(
    km: KeyManager, root: CertificateAuthority, grandchild: CertificateAuthority
) -> None:
    middle_serial = km.pki.ca("middle").certificate.serial_number
    root.revoke(middle_serial, "certificate-hold")
    with pytest.raises(RevokedError):
        km.pki.ca("grandchild").crl()
    root.release_hold(middle_serial)
    cert = km.pki.ca("grandchild").issue(public_key=_other_key(), subject="x", profile=TLS_CLIENT)
    assert km.pki.verify(cert).chain[0] == cert


def test_cli_export_of_a_chain_as_der_is_a_usage_error(
    cli_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "chain.der"
    capsys.readouterr()
    assert main(["ca", "export", "root", "--chain", "--der", "--out", str(out)]) == 2
    assert "--der" in capsys.readouterr().err
    assert not out.exists()


# -- a CA's subject: non-empty (RFC 5280 4.1.2.6), attributes checked -----------------


@pytest.mark.parametrize(
    "subject",
    [x509.Name([]), "O=", "CN=ok,O=" + "o" * 65],
    ids=["empty-name", "empty-attribute", "overlong-organization"],
)
@pytest.mark.parametrize("kind", ["root", "intermediate"])
def test_a_ca_subject_rfc_5280_forbids_is_refused_before_its_key(
    km: KeyManager, root: CertificateAuthority, subject: x509.Name | str, kind: str
) -> None:
    create = km.pki.create_root_ca if kind == "root" else root.create_intermediate
    with pytest.raises(InvalidArgumentError, match="subject"):
        create("other", subject=subject)
    assert [key.name for key in km.keys.list()] == ["pki-ca-root"]


def test_a_malformed_subject_says_why(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError, match=r"invalid subject .*: .+"):
        km.pki.create_root_ca("other", subject="CN=a\x00b")


# -- a fresh CRL saying "good" does not outvote a newer OCSP "revoked" ----------------


def test_an_ocsp_revocation_newer_than_a_fresh_crl_is_not_ignored(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = _client(root, "leaf")
    crl = root.crl()  # fresh for a day: the certificate is not on it
    clock.advance(600)
    root.revoke(cert.serial_number, "key-compromise")
    response = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    relying_party = in_memory_manager(clock=clock, seed=9)
    with pytest.raises(CertificateRevokedError) as info:
        relying_party.pki.verify(
            cert, trust_anchors=[root.certificate], crls=[crl], ocsp_responses=[response]
        )
    assert info.value.reason is RevocationReason.KEY_COMPROMISE


def test_a_crl_and_a_good_ocsp_response_verify_with_the_crl_as_source(
    clock: FakeClock, root: CertificateAuthority
) -> None:
    cert = _client(root, "leaf")
    crl = root.crl()
    response = root.ocsp_respond(build_ocsp_request(cert, root.certificate))
    relying_party = in_memory_manager(clock=clock, seed=9)
    path = relying_party.pki.verify(
        cert, trust_anchors=[root.certificate], crls=[crl], ocsp_responses=[response]
    )
    assert [s.value for s in path.revocation] == ["crl"]
