"""Review 3 of the key store: each test is a bug found in review, kept as a regression test."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keymgmt import Algorithm, KeyManager, KeyState, KeyUsage, RotationPolicy
from keymgmt.errors import (
    DecryptionError,
    InvalidArgumentError,
    KeyMgmtError,
    KeyNotFoundError,
    KeyStateError,
    KeyUsageError,
    MalformedInputError,
    RevokedError,
    UnsupportedAlgorithmError,
)
from keymgmt.keys import PayloadType, data_key_id
from keymgmt.keys._plumbing import use_version
from keymgmt.public import PublicKey, Signature
from keymgmt.revocation import SubjectKind
from keymgmt.testing import FakeClock


def _generation(km: KeyManager) -> int:
    return km._store.backend.generation()


# -- an int is not a buffer: bytes(32) is 32 zero bytes ----------------------------


def test_import_key_refuses_an_int_instead_of_material(km: KeyManager) -> None:
    before = _generation(km)
    with pytest.raises(InvalidArgumentError, match="must be bytes, not int"):
        km.keys.import_key("zero", 32, algorithm="aes-256-gcm")  # type: ignore[arg-type]
    assert _generation(km) == before
    with pytest.raises(KeyNotFoundError):
        km.keys.get("zero")


def test_sign_refuses_an_int_instead_of_data(km: KeyManager) -> None:
    km.keys.create("s", "ed25519")
    with pytest.raises(InvalidArgumentError, match="data must be bytes, not int"):
        km.sign("s", 5)  # type: ignore[arg-type]


def test_verify_refuses_an_int_instead_of_data(km: KeyManager) -> None:
    km.keys.create("s", "ed25519")
    signature = km.sign("s", bytes(5))
    with pytest.raises(InvalidArgumentError, match="data must be bytes, not int"):
        km.verify("s", 5, signature)  # type: ignore[arg-type]


def test_public_key_verify_refuses_an_int_instead_of_data(km: KeyManager) -> None:
    km.keys.create("s", "ed25519")
    signature = km.sign("s", bytes(5))
    with pytest.raises(InvalidArgumentError, match="data must be bytes, not int"):
        km.public_key("s").verify(5, signature)  # type: ignore[arg-type]


def test_public_key_encrypt_refuses_an_int_plaintext(km: KeyManager) -> None:
    km.keys.create("inbox", "x25519", usage="encrypt-decrypt")
    with pytest.raises(InvalidArgumentError, match="plaintext must be bytes, not int"):
        km.public_key("inbox").encrypt(5)  # type: ignore[arg-type]


def _str_inputs(km: KeyManager) -> dict[str, Callable[[], Any]]:
    from keymgmt import pem

    km.keys.create("s", "ed25519")
    km.keys.create("a", "x25519")
    km.keys.create("inbox", "x25519", usage="encrypt-decrypt")
    signature = km.sign("s", b"m")
    public = km.public_key("s")
    return {
        "import_key": lambda: km.keys.import_key("i", "k" * 32, algorithm="aes-256-gcm"),  # type: ignore[arg-type]
        "import_private_key": lambda: km.keys.import_private_key("i", "-----BEGIN"),  # type: ignore[arg-type]
        "sign": lambda: km.sign("s", "m"),  # type: ignore[arg-type]
        "verify": lambda: km.verify("s", "m", signature),  # type: ignore[arg-type]
        "agree info": lambda: km.agree("a", km.public_key("a"), info="x"),  # type: ignore[arg-type]
        "PublicKey.verify signature": lambda: public.verify(b"m", "sig"),  # type: ignore[arg-type]
        "PublicKey.verify_detached": lambda: public.verify_detached(b"m", "sig"),  # type: ignore[arg-type]
        "PublicKey.encrypt": lambda: km.public_key("inbox").encrypt("m"),  # type: ignore[arg-type]
        "PublicKey.from_der": lambda: PublicKey.from_der("MCow"),  # type: ignore[arg-type]
        "pem.load_private_key": lambda: pem.load_private_key("-----BEGIN PRIVATE KEY-----"),  # type: ignore[arg-type]
    }


@pytest.mark.parametrize(
    "call",
    [
        "import_key",
        "import_private_key",
        "sign",
        "verify",
        "agree info",
        "PublicKey.verify signature",
        "PublicKey.verify_detached",
        "PublicKey.encrypt",
        "PublicKey.from_der",
        "pem.load_private_key",
    ],
)
def test_a_str_where_bytes_are_expected_is_a_typed_error(km: KeyManager, call: str) -> None:
    run = _str_inputs(km)[call]
    before = _generation(km)
    with pytest.raises(KeyMgmtError, match="must be bytes, not str"):
        run()
    assert _generation(km) == before


# -- a pre-active version that is superseded or revoked -----------------------------


def test_a_pre_active_primary_rotated_away_never_becomes_active(
    km: KeyManager, clock: FakeClock
) -> None:
    km.keys.create("k", activation_date=clock.now() + _dt.timedelta(days=1))
    km.keys.rotate("k")
    clock.advance(days=2)
    old = km.keys.get("k").version(1)
    assert old is not None
    assert old.state is KeyState.DEACTIVATED
    with pytest.raises(KeyStateError, match="deactivated"):
        use_version(km.keys, "k", 1, usage=KeyUsage.ENCRYPT_DECRYPT)


def test_revoking_a_pre_active_version_deactivates_it(km: KeyManager, clock: FakeClock) -> None:
    km.keys.create("k", activation_date=clock.now() + _dt.timedelta(days=1))
    info = km.keys.revoke("k", reason="cessation-of-operation")
    assert info.version(1).state is KeyState.DEACTIVATED  # type: ignore[union-attr]
    assert km.revocation.is_revoked(SubjectKind.KEY, "k#1")
    clock.advance(days=2)
    with pytest.raises(RevokedError, match="cessation-of-operation"):
        km.encrypt("k", b"x")


# -- arguments of the wrong type: typed errors, not TypeError or struct.error ----------


def test_a_context_with_a_non_str_key_is_an_invalid_argument(km: KeyManager) -> None:
    km.keys.create("k")
    with pytest.raises(InvalidArgumentError, match="must map str to str"):
        km.encrypt("k", b"x", {1: "a", "b": "c"})  # type: ignore[dict-item]


def test_decrypting_with_a_non_str_context_key_is_the_opaque_error(km: KeyManager) -> None:
    km.keys.create("k")
    ciphertext = km.encrypt("k", b"x", {"b": "c"})
    with pytest.raises(DecryptionError):
        km.decrypt(ciphertext, {1: "a", "b": "c"})  # type: ignore[dict-item]


def test_public_key_encrypt_refuses_a_non_str_context_key(km: KeyManager) -> None:
    km.keys.create("inbox", "x25519", usage="encrypt-decrypt")
    with pytest.raises(InvalidArgumentError, match="must map str to str"):
        km.public_key("inbox").encrypt(b"x", context={1: "a", "b": "c"})  # type: ignore[dict-item]


@pytest.mark.parametrize("version", ["1", True, 1.0, -1])
def test_public_key_refuses_a_version_that_is_not_a_positive_int(
    km: KeyManager, version: Any
) -> None:
    km.keys.create("s", "ed25519")
    with pytest.raises(InvalidArgumentError, match="version must be a positive integer"):
        km.public_key("s", version)


@pytest.mark.parametrize("version", ["1", True, 1.0, 0])
def test_verify_refuses_a_version_that_is_not_a_positive_int(km: KeyManager, version: Any) -> None:
    km.keys.create("s", "ed25519")
    signature = km.sign("s", b"m")
    with pytest.raises(InvalidArgumentError, match="version must be a positive integer"):
        km.verify("s", b"m", signature, version=version)


@pytest.mark.parametrize("version", ["1", True, 1.0, 0])
def test_use_refuses_a_version_that_is_not_a_positive_int(km: KeyManager, version: Any) -> None:
    km.keys.create("k")
    with pytest.raises(InvalidArgumentError, match="version must be a positive integer"):
        use_version(km.keys, "k", version, usage=KeyUsage.ENCRYPT_DECRYPT)


@pytest.mark.parametrize(
    "policy",
    [
        RotationPolicy(rotation_period="30d"),  # type: ignore[arg-type]
        RotationPolicy(rotate_after_uses="10"),  # type: ignore[arg-type]
        RotationPolicy(rotate_after_uses=True),
        RotationPolicy(rotate_after_uses=1.5),  # type: ignore[arg-type]
    ],
)
def test_a_rotation_policy_of_the_wrong_types_is_refused(
    km: KeyManager, policy: RotationPolicy
) -> None:
    before = _generation(km)
    with pytest.raises(InvalidArgumentError, match=r"rotation_period|rotate_after_uses"):
        km.keys.create("k", policy=policy)
    assert _generation(km) == before


def test_agree_refuses_a_length_that_is_not_an_int(km: KeyManager) -> None:
    km.keys.create("a", "x25519")
    with pytest.raises(InvalidArgumentError, match="length"):
        km.agree("a", km.public_key("a"), info=b"i", length="32")  # type: ignore[arg-type]


def test_pem_export_refuses_iterations_that_are_not_an_int(km: KeyManager) -> None:
    from keymgmt import pem

    km.keys.create("s", "ed25519")
    with pytest.raises(InvalidArgumentError, match="iterations"):
        pem.export_private_key_pem(km, "s", passphrase="pw", iterations="600000")  # type: ignore[arg-type]


@pytest.mark.parametrize("digit", ["\u00b2", "\u2460"])
def test_a_pem_version_line_of_unicode_digits_is_malformed(km: KeyManager, digit: str) -> None:
    km.keys.create("s", "ed25519")
    text = (
        km.public_key("s").pem().decode().replace("keymgmt-version: 1", f"keymgmt-version: {digit}")
    )
    with pytest.raises(MalformedInputError, match="keymgmt-version"):
        PublicKey.from_pem(text)


@pytest.mark.parametrize("digit", ["\u00b2", "\u2460"])
def test_a_jwk_kid_version_of_unicode_digits_is_malformed(km: KeyManager, digit: str) -> None:
    km.keys.create("s", "ed25519")
    jwk = dict(km.public_key("s").jwk(), kid=f"s#{digit}")
    with pytest.raises(MalformedInputError, match="kid"):
        PublicKey.from_jwk(jwk)


# -- suspend / resume without a version --------------------------------------------


@pytest.mark.parametrize("operation", ["suspend", "resume"])
def test_suspend_and_resume_need_a_version(km: KeyManager, operation: str) -> None:
    km.keys.create("k")
    before = _generation(km)
    with pytest.raises(InvalidArgumentError, match="version must be a positive integer"):
        getattr(km.keys, operation)("k", None)
    assert _generation(km) == before  # no record "k#None" written
    assert km.keys.get("k").primary.state is KeyState.ACTIVE


def test_suspend_without_a_version_does_not_report_a_suspension_it_did_not_make(
    km: KeyManager,
) -> None:
    km.keys.create("k")
    with pytest.raises(InvalidArgumentError):
        km.keys.suspend("k", None)  # type: ignore[arg-type]
    assert km.decrypt(km.encrypt("k", b"x")) == b"x"


def test_data_keys_issued_refuses_a_version_that_is_not_a_positive_int(km: KeyManager) -> None:
    km.keys.create("k")
    km.generate_data_key("k")
    with pytest.raises(InvalidArgumentError, match="version must be a positive integer"):
        km.keys.data_keys_issued("k", "1")  # type: ignore[arg-type]


def test_use_takes_usage_and_operation_by_value(km: KeyManager) -> None:
    km.keys.create("k")
    loaded = use_version(km.keys, "k", usage="encrypt-decrypt", operation="process")  # type: ignore[arg-type]
    assert loaded.version == 1


def test_use_refuses_an_unknown_usage_or_operation(km: KeyManager) -> None:
    km.keys.create("k")
    with pytest.raises(InvalidArgumentError, match="unknown key usage"):
        use_version(km.keys, "k", usage="sign")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="protect or process"):
        use_version(km.keys, "k", usage=KeyUsage.ENCRYPT_DECRYPT, operation="export")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="protect or process"):
        use_version(km.keys, "k", usage=KeyUsage.ENCRYPT_DECRYPT, operation=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", [None, 5])
def test_import_fernet_key_file_refuses_a_path_that_is_not_a_path(
    km: KeyManager, path: object
) -> None:
    with pytest.raises(InvalidArgumentError, match="path"):
        km.keys.import_fernet_key_file("f", path)


def test_create_many_refuses_a_non_sequence(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError, match="KeyRequest"):
        km.keys.create_many(5)  # type: ignore[arg-type]


# -- a pre-active version scheduled for destruction ----------------------------------


def test_a_pre_active_version_scheduled_for_destruction_never_encrypts(
    km: KeyManager, clock: FakeClock
) -> None:
    km.keys.create("k", activation_date=clock.now() + _dt.timedelta(days=1))
    # The whole key: its primary goes only with it (test_keys_review4).
    km.keys.destroy("k")  # the default grace: 7 days, past the activation date
    clock.advance(days=2)
    assert km.keys.get("k").primary.state is KeyState.DEACTIVATED
    with pytest.raises(KeyStateError, match="deactivated"):
        km.encrypt("k", b"would be lost in 5 days")


def test_cancelling_a_pre_active_destruction_leaves_the_version_deactivated(
    km: KeyManager, clock: FakeClock
) -> None:
    km.keys.create("k", activation_date=clock.now() + _dt.timedelta(days=1))
    km.keys.destroy("k")
    km.keys.cancel_destruction("k")
    clock.advance(days=2)
    assert km.keys.get("k").primary.state is KeyState.DEACTIVATED


# -- a plaintext passed where the key name goes --------------------------------------


def test_a_bytes_key_name_is_not_echoed_in_the_error(km: KeyManager) -> None:
    km.keys.create("k")
    with pytest.raises(InvalidArgumentError) as caught:
        km.encrypt(b"TOP SECRET PLAINTEXT", "k")  # type: ignore[arg-type]  # arguments swapped
    assert "SECRET" not in str(caught.value)
    assert "SECRET" not in repr(vars(caught.value))
    assert "key name must be a str, not bytes" in caught.value.message


@pytest.mark.parametrize("operation", ["encrypt", "generate_data_key", "sign"])
def test_an_unhashable_key_name_is_an_invalid_argument(km: KeyManager, operation: str) -> None:
    km.keys.create("k")
    call: Callable[[], object] = {
        "encrypt": lambda: km.encrypt({"a": "b"}, b"x"),  # type: ignore[arg-type]
        "generate_data_key": lambda: km.generate_data_key({"a": "b"}),  # type: ignore[arg-type]
        "sign": lambda: km.sign({"a": "b"}, b"x"),  # type: ignore[arg-type]
    }[operation]
    with pytest.raises(InvalidArgumentError, match="key name must be a str, not dict"):
        call()


# -- PEM helpers given the wrong things ------------------------------------------------


def test_encrypt_private_key_pem_refuses_what_is_not_a_private_key() -> None:
    from keymgmt import pem

    with pytest.raises(UnsupportedAlgorithmError, match="str"):
        pem.encrypt_private_key_pem("not a key", "pw")  # type: ignore[arg-type]


def test_private_key_pem_unencrypted_refuses_what_is_not_a_private_key() -> None:
    from keymgmt.hazmat import private_key_pem_unencrypted

    with pytest.raises(UnsupportedAlgorithmError, match="str"):
        private_key_pem_unencrypted("not a key", allow_plaintext=True)  # type: ignore[arg-type]


def test_write_key_file_refuses_text(tmp_path: Path) -> None:
    from keymgmt import pem

    target = tmp_path / "k.pem"
    with pytest.raises(InvalidArgumentError, match="must be bytes, not str"):
        pem.write_key_file(target, "-----BEGIN PRIVATE KEY-----")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_write_key_file_refuses_a_path_that_is_not_a_path() -> None:
    from keymgmt import pem

    with pytest.raises(InvalidArgumentError, match="path"):
        pem.write_key_file(5, b"x")  # type: ignore[arg-type]


# -- Fernet cannot bind the payload type ---------------------------------------------


def test_a_fernet_key_makes_no_data_keys(km: KeyManager) -> None:
    km.keys.create("f", "fernet")
    before = _generation(km)
    with pytest.raises(InvalidArgumentError, match="Fernet"):
        km.generate_data_key("f")
    assert _generation(km) == before


def test_a_fernet_message_relabelled_as_a_data_key_does_not_unwrap(km: KeyManager) -> None:
    # Fernet takes no associated data: only the header's payload byte said
    # "message", so an attacker-chosen 32-byte message became a "data key".
    km.keys.create("f", "fernet")
    relabelled = bytearray(km.encrypt("f", b"K" * 32))
    relabelled[3] = PayloadType.DATA_KEY
    with pytest.raises(DecryptionError):
        km.decrypt_data_key(bytes(relabelled))
    with pytest.raises(DecryptionError):
        km.rewrap(bytes(relabelled))


# -- plaintext private keys only through keymgmt.hazmat -------------------------------


def test_keymgmt_pem_hands_out_no_managed_private_key_object() -> None:
    # pem.managed_private_key(km, name, None, "<any audit label>") returned the
    # private key object of a managed key pair, outside keymgmt.hazmat, with
    # no opt-in and an audit operation the caller chose.
    from keymgmt import pem

    assert "managed_private_key" not in pem.__all__
    assert not hasattr(pem, "managed_private_key")


def test_encrypting_to_a_low_order_x25519_key_is_an_invalid_argument() -> None:
    # An all-zero X25519 public key (from a hostile JWK, say): HPKE's DH fails.
    key = PublicKey.from_jwk(
        {"kty": "OKP", "crv": "X25519", "x": "A" * 43, "key_ops": ["encrypt"]},
        key_name="inbox",
        version=1,
        key_id="00" * 8,
    )
    with pytest.raises(InvalidArgumentError, match="invalid x25519 public key"):
        key.encrypt(b"secret")


@pytest.mark.parametrize("data", ["km" * 12, None, 5])
def test_parsing_what_is_not_bytes_is_malformed_input(data: object) -> None:
    from keymgmt.keys import parse_header

    with pytest.raises(MalformedInputError, match="bytes"):
        parse_header(data)  # type: ignore[arg-type]
    with pytest.raises(MalformedInputError, match="bytes"):
        Signature.decode(data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "field",
    [{"version": "1"}, {"version": True}, {"key_id": None}, {"key_id": "12345678"}, {"raw": "x"}],
    ids=str,
)
def test_encoding_a_signature_with_a_wrong_typed_field_is_an_invalid_argument(
    field: dict[str, object],
) -> None:
    fields: dict[str, Any] = {
        "key_name": "a",
        "version": 1,
        "key_id": b"12345678",
        "algorithm": Algorithm.ED25519,
        "raw": b"x" * 64,
    }
    fields.update(field)
    with pytest.raises(InvalidArgumentError):
        Signature(**fields).encode()


# -- the data-key log ------------------------------------------------------------------


def test_a_data_key_rewrapped_to_a_new_version_is_logged_under_it(km: KeyManager) -> None:
    # A compromise report of version 2 lists the data keys logged under it:
    # an envelope moved there by rewrap was missing.
    km.keys.create("k")
    data_key = km.generate_data_key("k", {"file": "x"})
    km.keys.rotate("k")
    moved = km.rewrap(data_key.wrapped, {"file": "x"})
    issued = km.keys.data_keys_issued("k", 2)
    assert [issue.id for issue in issued] == [data_key_id(moved)]
    assert issued[0].version == 2


def test_a_rewrapped_message_is_not_logged_as_a_data_key(km: KeyManager) -> None:
    km.keys.create("k")
    ciphertext = km.encrypt("k", b"x")
    km.keys.rotate("k")
    km.rewrap(ciphertext)
    assert km.keys.data_keys_issued("k") == []


def test_a_later_milder_revocation_keeps_the_compromise_reason(km: KeyManager) -> None:
    km.keys.create("k")
    km.keys.revoke("k", 1, reason="key-compromise")
    info = km.keys.revoke("k", 1, reason="superseded")
    version = info.version(1)
    assert version is not None
    assert version.state is KeyState.COMPROMISED
    assert version.revocation_reason == "key-compromise"


@pytest.mark.parametrize("wrapped", [b"\x00" * 40, "x", None])
def test_opening_an_export_that_is_not_a_wrapped_key_is_an_invalid_argument(
    wrapped: object,
) -> None:
    from cryptography.hazmat.primitives.asymmetric import x25519

    from keymgmt.keys import open_sealed_export, unwrap_rfc5649_export

    with pytest.raises(InvalidArgumentError, match="WrappedKey"):
        unwrap_rfc5649_export(wrapped, bytes(32))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="WrappedKey"):
        open_sealed_export(wrapped, x25519.X25519PrivateKey.generate())  # type: ignore[arg-type]


def test_a_decrypt_with_a_merely_revoked_version_is_not_audited_as_compromised(
    km: KeyManager,
) -> None:
    km.keys.create("k")
    ciphertext = km.encrypt("k", b"x")
    km.keys.revoke("k", 1, reason="superseded")
    km.decrypt(ciphertext, allow_compromised=True)
    km.keys.flush_usage()
    uses = [e.details["use"] for e in km.audit.entries() if e.operation == "key.usage"]
    assert uses == ["encrypt", "decrypt"]


def test_a_decrypt_with_a_compromised_version_is_audited_as_compromised(km: KeyManager) -> None:
    km.keys.create("k")
    ciphertext = km.encrypt("k", b"x")
    km.keys.revoke("k", 1, reason="key-compromise")
    km.decrypt(ciphertext, allow_compromised=True)
    km.keys.flush_usage()
    uses = [e.details["use"] for e in km.audit.entries() if e.operation == "key.usage"]
    assert uses == ["encrypt", "decrypt-compromised"]


def test_a_passphrase_with_a_lone_surrogate_is_an_invalid_argument(km: KeyManager) -> None:
    from keymgmt import pem

    km.keys.create("s", "ed25519")
    with pytest.raises(InvalidArgumentError, match="passphrase"):
        pem.export_private_key_pem(km, "s", passphrase="pass\udc80word")
    with pytest.raises(InvalidArgumentError, match="passphrase"):
        pem.load_private_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----", passphrase="\udc80")


@pytest.mark.parametrize(
    "read",
    [
        lambda: PublicKey.from_pem("-----BEGIN PUBLIC KEY-----\udc80"),
        lambda: PublicKey.load("\udc80"),
        lambda: PublicKey.from_jwk("[" * 100_000),
        lambda: PublicKey.load("[" * 100_000),
        lambda: PublicKey.load("{" * 100_000),
    ],
    ids=["pem-surrogate", "load-surrogate", "jwk-nesting", "load-nesting", "load-object-nesting"],
)
def test_hostile_public_key_text_is_malformed_input(read: Callable[[], object]) -> None:
    with pytest.raises(MalformedInputError):
        read()


@pytest.mark.parametrize("reader", ["from_pem", "load"])
def test_reading_a_public_key_from_what_is_not_text_or_bytes_is_malformed(reader: str) -> None:
    with pytest.raises(MalformedInputError, match="not int"):
        getattr(PublicKey, reader)(5)


# -- the peer's usage in key agreement -------------------------------------------------


def test_agree_refuses_a_peer_key_whose_usage_is_not_key_agreement(km: KeyManager) -> None:
    km.keys.create("mine", "ecdh-p256")
    km.keys.create("signer", "ecdsa-p256")  # a P-256 signing key: not for DH
    km.keys.create("inbox", "x25519", usage="encrypt-decrypt")
    km.keys.create("x", "x25519")
    with pytest.raises(KeyUsageError, match="sign-verify"):
        km.agree("mine", km.public_key("signer"), info=b"i")
    with pytest.raises(KeyUsageError, match="encrypt-decrypt"):
        km.agree("x", km.public_key("inbox"), info=b"i")


def test_agree_takes_a_peer_key_of_unknown_usage(km: KeyManager) -> None:
    km.keys.create("a", "x25519")
    km.keys.create("b", "x25519")
    bare = PublicKey.from_der(km.public_key("b").der())  # no usage stated
    assert km.agree("a", bare, info=b"i") == km.agree("b", km.public_key("a"), info=b"i")


def test_the_demo_writes_its_fernet_key_file_owner_only(
    sqlite_km: KeyManager, store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import stat

    from keymgmt.cli._demo import Demo
    from keymgmt.keys._demo_step import step_keys

    workdir = tmp_path / "demo"  # `keymgmt demo --keep DIR`: any directory
    workdir.mkdir()
    old = os.umask(0o022)
    try:
        step_keys(Demo(km=sqlite_km, path=store_path, passphrase="p", workdir=workdir))
    finally:
        os.umask(old)
    capsys.readouterr()
    assert stat.S_IMODE((workdir / "symmetric.key").stat().st_mode) == 0o600


@pytest.mark.parametrize("operation", ["decrypt", "decrypt_data_key", "rewrap"])
def test_a_mapping_given_as_ciphertext_is_the_opaque_error(km: KeyManager, operation: str) -> None:
    km.keys.create("k")
    with pytest.raises(DecryptionError):
        getattr(km, operation)({"a": 1})  # a KeyError from its [13] lookup escaped


@pytest.mark.parametrize("jwk", [None, 5, [("kty", "OKP")]])
def test_a_jwk_that_is_not_a_mapping_is_malformed(jwk: object) -> None:
    with pytest.raises(MalformedInputError, match="JWK"):
        PublicKey.from_jwk(jwk)  # type: ignore[arg-type]


def test_a_key_file_path_with_a_null_byte_is_an_invalid_argument(
    km: KeyManager, tmp_path: Path
) -> None:
    from keymgmt import pem

    bad = str(tmp_path / "sym\x00metric.key")
    with pytest.raises(InvalidArgumentError, match="key file"):
        km.keys.import_fernet_key_file("f", bad)
    with pytest.raises(KeyMgmtError, match="null"):
        pem.load_private_key_file(bad)
    with pytest.raises(KeyMgmtError, match="null"):
        pem.write_key_file(bad, b"x")


@pytest.mark.parametrize("algorithm", [bytearray(b"ed25519"), {}])
def test_encoding_a_signature_with_an_unhashable_algorithm_is_an_invalid_argument(
    algorithm: object,
) -> None:
    signature = Signature(
        key_name="a",
        version=1,
        key_id=b"12345678",
        algorithm=algorithm,  # type: ignore[arg-type]
        raw=b"x",
    )
    with pytest.raises(InvalidArgumentError, match="does not sign"):
        signature.encode()


# -- periods beyond the calendar -------------------------------------------------------


def test_a_rotation_period_beyond_the_calendar_never_rotates(km: KeyManager) -> None:
    # The key was created, then every encryption raised OverflowError.
    km.keys.create("k", policy=RotationPolicy(rotation_period=_dt.timedelta.max))
    assert km.decrypt(km.encrypt("k", b"x")) == b"x"
    km.keys.run_maintenance()
    assert km.keys.get("k").primary_version == 1


def test_a_destruction_grace_beyond_the_calendar_is_an_invalid_argument(km: KeyManager) -> None:
    km.keys.create("k")
    before = _generation(km)
    with pytest.raises(InvalidArgumentError, match="grace"):
        km.keys.destroy("k", grace=_dt.timedelta.max)
    assert _generation(km) == before


# -- any value in any argument: a KeyMgmtError, and nothing written --------------------

_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.binary(max_size=40),
    st.binary(max_size=40).map(lambda b: memoryview(b + b)[::2]),  # non-contiguous
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), st.text(max_size=3), max_size=3),
    st.sampled_from(["k", "s", "x", 1, 2, _dt.timedelta(days=1), KeyUsage.SIGN_VERIFY]),
)


@given(operation=st.integers(0, 13), a=_ANY, b=_ANY, c=_ANY)
def test_any_argument_values_raise_only_keymgmt_errors_and_write_nothing(
    km: KeyManager, operation: int, a: Any, b: Any, c: Any
) -> None:
    if not km.keys.list():
        km.keys.create("k")
        km.keys.create("s", "ed25519")
        km.keys.create("x", "x25519")
    calls: list[Callable[[], object]] = [
        lambda: km.encrypt(a, b, c),
        lambda: km.decrypt(a, b),
        lambda: km.sign(a, b),
        lambda: km.verify(a, b, c),
        lambda: km.verify("s", a, b, version=c),
        lambda: km.public_key(a, b),
        lambda: km.agree(a, b, info=c),
        lambda: km.generate_data_key(a, b),
        lambda: km.decrypt_data_key(a, b),
        lambda: km.keys.export_wrapped(a, b, kek=c),
        lambda: use_version(km.keys, a, b, usage=c),
        lambda: PublicKey.load(a),
        lambda: PublicKey.from_jwk(a),
        lambda: km.keys.import_key(a, b, algorithm=c),
    ]
    before = _generation(km)
    try:
        calls[operation]()
    except KeyMgmtError:
        assert _generation(km) == before


# -- non-contiguous memoryviews: a memoryview is a documented input -------------------


def _strided(data: bytes) -> memoryview:
    """A non-contiguous view whose content is ``data``."""
    return memoryview(bytes(x for c in data for x in (c, 0)))[::2]


@pytest.mark.parametrize("size", [5, 70_000])
def test_encrypt_takes_a_non_contiguous_memoryview(km: KeyManager, size: int) -> None:
    km.keys.create("k")
    plaintext = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert km.decrypt(km.encrypt("k", _strided(plaintext))) == plaintext


@pytest.mark.parametrize("size", [5, 70_000])
def test_decrypt_takes_a_non_contiguous_memoryview(km: KeyManager, size: int) -> None:
    km.keys.create("k")
    ciphertext = bytes(km.encrypt("k", b"y" * size))
    assert km.decrypt(_strided(ciphertext)) == b"y" * size


def test_data_keys_and_rewrap_take_a_non_contiguous_memoryview(km: KeyManager) -> None:
    km.keys.create("k")
    data_key = km.generate_data_key("k")
    assert km.decrypt_data_key(_strided(data_key.wrapped)) == data_key.plaintext
    km.keys.rotate("k")
    moved = km.rewrap(_strided(data_key.wrapped))
    assert km.decrypt_data_key(moved) == data_key.plaintext


def test_encrypt_takes_a_memoryview_of_wider_items_as_its_bytes(km: KeyManager) -> None:
    import array

    km.keys.create("k")
    view = memoryview(array.array("I", range(20_000)))  # 80,000 bytes in 20,000 items
    assert km.decrypt(km.encrypt("k", view)) == view.tobytes()


def test_a_signature_in_a_non_contiguous_memoryview_parses(km: KeyManager) -> None:
    from keymgmt.keys import parse_header

    km.keys.create("s", "ed25519")
    signature = km.sign("s", b"m")
    assert parse_header(_strided(signature)).name == "s"
    assert Signature.decode(_strided(signature)).raw == Signature.decode(signature).raw


@pytest.mark.parametrize("keys", [None, "km", object()])
def test_exports_given_something_that_is_not_a_key_store_are_invalid_arguments(
    keys: object,
) -> None:
    from keymgmt import pem
    from keymgmt.hazmat import export_private_key_pem_unencrypted, export_raw_key

    with pytest.raises(InvalidArgumentError, match="KeyManager"):
        export_raw_key(keys, "k", allow_plaintext=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="KeyManager"):
        export_private_key_pem_unencrypted(keys, "k", allow_plaintext=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="KeyManager"):
        pem.export_private_key_pem(keys, "k", passphrase="pw")  # type: ignore[arg-type]
