"""The store-less public API: load an exported key, verify, encrypt in keymgmt's format."""

from __future__ import annotations

import json

import pytest

from keymgmt.algorithms import Algorithm, KeyUsage
from keymgmt.errors import (
    DecryptionError,
    InvalidArgumentError,
    InvalidSignatureError,
    KeyUsageError,
    MalformedInputError,
)
from keymgmt.keys import _asymmetric as asym
from keymgmt.keys._format import PayloadType, encode_context, parse_header
from keymgmt.public import PublicKey, Signature

KEY_ID = "0011223344556677"
MESSAGE = b"attack at dawn"


def _exported(pairs: dict, algorithm: Algorithm, usage: KeyUsage | None = None) -> PublicKey:
    """What km.public_key(name) hands out."""
    return PublicKey(
        algorithm=algorithm,
        key=pairs[algorithm].public,
        key_name="svc-key",
        version=2,
        key_id=KEY_ID,
        usage=usage or asym.default_usage(algorithm),
    )


def _sign(pairs: dict, algorithm: Algorithm, data: bytes, *, name: str = "svc-key") -> bytes:
    """What km.sign(name, data) returns."""
    raw = asym.sign(algorithm, pairs[algorithm].private, data)
    return Signature(
        key_name=name, version=2, key_id=bytes.fromhex(KEY_ID), algorithm=algorithm, raw=raw
    ).encode()


def _km_decrypt(pairs: dict, ciphertext: bytes, context: dict[str, str] | None) -> bytes:
    """What km.decrypt does for a key pair: the header finds the key; aad = prefix || context."""
    header = parse_header(ciphertext)
    assert header.payload is PayloadType.MESSAGE
    assert header.key_id.hex() == KEY_ID
    assert (header.name, header.version) == ("svc-key", 2)
    aad = ciphertext[: header.prefix_length] + encode_context(context)
    body = ciphertext[header.prefix_length :]
    return asym.AsymmetricHandler().decrypt(header.algorithm, pairs[header.algorithm], body, aad)


SIGNERS = [Algorithm.ED25519, Algorithm.ECDSA_P256, Algorithm.ECDSA_P384, Algorithm.ML_DSA_44]
ENCRYPTERS = [
    (Algorithm.X25519, KeyUsage.ENCRYPT_DECRYPT),
    (Algorithm.ECDH_P256, KeyUsage.ENCRYPT_DECRYPT),
    (Algorithm.ML_KEM_768, None),
    (Algorithm.ML_KEM_768_X25519, None),
    (Algorithm.RSA_2048, KeyUsage.ENCRYPT_DECRYPT),
]


@pytest.mark.parametrize("algorithm", SIGNERS, ids=str)
@pytest.mark.parametrize("fmt", ["pem", "jwk"])
def test_exported_key_verifies_an_enveloped_signature(
    algorithm: Algorithm, fmt: str, pairs: dict
) -> None:
    exported = _exported(pairs, algorithm).export(fmt)
    key = PublicKey.load(exported)
    assert key.kid == "svc-key#2"
    key.verify(MESSAGE, _sign(pairs, algorithm, MESSAGE))


def test_bare_der_key_verifies_a_detached_signature(pairs: dict) -> None:
    key = PublicKey.from_der(_exported(pairs, Algorithm.ED25519).der())
    assert key.kid is None
    raw = asym.sign(Algorithm.ED25519, pairs[Algorithm.ED25519].private, MESSAGE)
    key.verify_detached(MESSAGE, raw)
    with pytest.raises(InvalidSignatureError):
        key.verify_detached(MESSAGE + b"!", raw)


def test_signature_naming_another_key_is_refused(pairs: dict) -> None:
    key = _exported(pairs, Algorithm.ED25519)
    with pytest.raises(InvalidSignatureError):
        key.verify(MESSAGE, _sign(pairs, Algorithm.ED25519, MESSAGE, name="other-key"))


def test_signature_over_other_data_is_refused(pairs: dict) -> None:
    key = _exported(pairs, Algorithm.ECDSA_P256)
    with pytest.raises(InvalidSignatureError):
        key.verify(MESSAGE + b"!", _sign(pairs, Algorithm.ECDSA_P256, MESSAGE))


def test_signature_claiming_another_algorithm_is_refused(pairs: dict) -> None:
    key = _exported(pairs, Algorithm.ED25519)
    raw = asym.sign(Algorithm.ED25519, pairs[Algorithm.ED25519].private, MESSAGE)
    forged = Signature(
        key_name="svc-key",
        version=2,
        key_id=bytes.fromhex(KEY_ID),
        algorithm=Algorithm.ML_DSA_44,
        raw=raw,
    ).encode()
    with pytest.raises(InvalidSignatureError):
        key.verify(MESSAGE, forged)


def test_a_detached_signature_is_not_an_enveloped_one(pairs: dict) -> None:
    key = _exported(pairs, Algorithm.ED25519)
    raw = asym.sign(Algorithm.ED25519, pairs[Algorithm.ED25519].private, MESSAGE)
    with pytest.raises(MalformedInputError):
        key.verify(MESSAGE, raw)


@pytest.mark.parametrize(("algorithm", "usage"), ENCRYPTERS, ids=str)
@pytest.mark.parametrize("fmt", ["pem", "jwk"])
def test_encrypting_to_an_exported_key_gives_what_km_decrypt_opens(
    algorithm: Algorithm, usage: KeyUsage | None, fmt: str, pairs: dict
) -> None:
    key = PublicKey.load(_exported(pairs, algorithm, usage).export(fmt))
    context = {"purpose": "backup", "tenant": "7"}
    ciphertext = key.encrypt(MESSAGE, context=context)
    assert _km_decrypt(pairs, ciphertext, context) == MESSAGE


def test_ciphertext_with_another_context_does_not_decrypt(pairs: dict) -> None:
    key = _exported(pairs, Algorithm.X25519, KeyUsage.ENCRYPT_DECRYPT)
    ciphertext = key.encrypt(MESSAGE, context={"purpose": "backup"})
    with pytest.raises(DecryptionError):
        _km_decrypt(pairs, ciphertext, {"purpose": "other"})
    with pytest.raises(DecryptionError):
        _km_decrypt(pairs, ciphertext, None)


def test_ciphertext_with_an_edited_header_does_not_decrypt(pairs: dict) -> None:
    key = _exported(pairs, Algorithm.ML_KEM_768)
    ciphertext = bytearray(key.encrypt(MESSAGE))
    ciphertext[-(len(ciphertext) - parse_header(ciphertext).prefix_length) - 1] ^= 1  # version
    header = parse_header(bytes(ciphertext))
    aad = bytes(ciphertext[: header.prefix_length])
    with pytest.raises(DecryptionError):
        asym.decrypt(
            Algorithm.ML_KEM_768,
            pairs[Algorithm.ML_KEM_768].private,
            bytes(ciphertext[header.prefix_length :]),
            aad,
        )


def test_encrypting_without_the_identity_is_refused(pairs: dict) -> None:
    bare = PublicKey.from_der(_exported(pairs, Algorithm.X25519).der(), algorithm="x25519")
    with pytest.raises(InvalidArgumentError, match="needs the key's name, version and key id"):
        bare.encrypt(MESSAGE)


def test_encrypting_to_a_signing_key_is_refused(pairs: dict) -> None:
    with pytest.raises(KeyUsageError):
        _exported(pairs, Algorithm.ED25519).encrypt(MESSAGE)


def test_verifying_with_an_agreement_key_is_refused(pairs: dict) -> None:
    with pytest.raises(KeyUsageError):
        _exported(pairs, Algorithm.X25519).verify(MESSAGE, b"x")


def test_encrypting_to_an_rsa_signing_key_is_refused_by_its_usage(pairs: dict) -> None:
    key = _exported(pairs, Algorithm.RSA_2048, KeyUsage.SIGN_VERIFY)
    with pytest.raises(KeyUsageError, match="has usage sign-verify"):
        key.encrypt(MESSAGE)


def test_pem_export_carries_the_identity_before_the_begin_line(pairs: dict) -> None:
    pem = _exported(pairs, Algorithm.ED25519).pem().decode()
    head, _, _ = pem.partition("-----BEGIN PUBLIC KEY-----")
    assert head.splitlines() == [
        "keymgmt-key: svc-key",
        "keymgmt-version: 2",
        f"keymgmt-key-id: {KEY_ID}",
        "keymgmt-algorithm: ed25519",
        "keymgmt-usage: sign-verify",
    ]


def test_pem_arguments_must_agree_with_the_export(pairs: dict) -> None:
    pem = _exported(pairs, Algorithm.ED25519).pem()
    with pytest.raises(InvalidArgumentError, match="says key name"):
        PublicKey.from_pem(pem, key_name="someone-else")


def test_algorithm_must_match_the_key_type(pairs: dict) -> None:
    der = _exported(pairs, Algorithm.ED25519).der()
    with pytest.raises(InvalidArgumentError, match="is a ed25519 key, not x25519"):
        PublicKey.from_der(der, algorithm="x25519")


@pytest.mark.parametrize(
    ("algorithm", "kty"),
    [
        (Algorithm.ED25519, "OKP"),
        (Algorithm.X25519, "OKP"),
        (Algorithm.ECDSA_P256, "EC"),
        (Algorithm.ECDSA_P384, "EC"),
        (Algorithm.RSA_2048, "RSA"),
        (Algorithm.ML_DSA_65, "AKP"),
        (Algorithm.ML_KEM_768, "AKP"),
        (Algorithm.ML_KEM_768_X25519, "AKP"),
    ],
    ids=str,
)
def test_jwk_uses_the_registered_key_type(algorithm: Algorithm, kty: str, pairs: dict) -> None:
    jwk = _exported(pairs, algorithm).jwk()
    assert jwk["kty"] == kty
    assert jwk["kid"] == "svc-key#2"
    assert jwk["keymgmt-key-id"] == KEY_ID
    assert PublicKey.from_jwk(jwk) == _exported(pairs, algorithm)


def test_ed25519_jwk_is_rfc8037_okp(pairs: dict) -> None:
    public = pairs[Algorithm.ED25519].public
    jwk = _exported(pairs, Algorithm.ED25519).jwk()
    from keymgmt._codec import b64e

    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64e(public.public_bytes_raw()),
        "alg": "Ed25519",
        "key_ops": ["verify"],
        "kid": "svc-key#2",
        "keymgmt-key-id": KEY_ID,
    }


def test_ecdh_p256_jwk_reads_back_as_an_agreement_key(pairs: dict) -> None:
    key = PublicKey(algorithm=Algorithm.ECDH_P256, key=pairs[Algorithm.ECDH_P256].public)
    assert PublicKey.from_jwk(key.jwk_json()).algorithm is Algorithm.ECDH_P256


def test_private_jwk_is_refused() -> None:
    with pytest.raises(MalformedInputError, match="private key"):
        PublicKey.from_jwk({"kty": "OKP", "crv": "Ed25519", "x": "AA", "d": "AA"})


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "OKP", "crv": "Ed448", "x": "AA"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "oct", "k": "AA"},
        {"kty": "AKP", "alg": "SLH-DSA", "pub": "AA"},
    ],
)
def test_unsupported_jwk_is_refused_with_a_typed_error(jwk: dict) -> None:
    from keymgmt.errors import UnsupportedAlgorithmError

    with pytest.raises(UnsupportedAlgorithmError):
        PublicKey.from_jwk(json.dumps(jwk))


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "AKP", "alg": "ML-DSA-44", "pub": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "!!"},
    ],
)
def test_malformed_jwk_is_refused_with_a_typed_error(jwk: dict) -> None:
    with pytest.raises(MalformedInputError):
        PublicKey.from_jwk(jwk)


def test_xwing_key_exports_pem_but_no_der(pairs: dict) -> None:
    from keymgmt.errors import UnsupportedAlgorithmError

    key = _exported(pairs, Algorithm.ML_KEM_768_X25519)
    assert b"-----BEGIN KEYMGMT ML-KEM-768-X25519 PUBLIC KEY-----" in key.pem()
    assert PublicKey.from_pem(key.pem()) == key
    with pytest.raises(UnsupportedAlgorithmError):
        key.der()


def test_repr_names_the_key_not_its_bytes(pairs: dict) -> None:
    text = repr(_exported(pairs, Algorithm.ED25519))
    assert text.startswith("<PublicKey ed25519 svc-key#2 sha256:")


def test_garbage_is_refused_with_a_typed_error() -> None:
    for data in (b"", b"hello", b"-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----\n"):
        with pytest.raises(MalformedInputError):
            PublicKey.load(data)


def test_unknown_usage_argument_is_an_invalid_argument(pairs: dict) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown key usage 'encrypt'"):
        PublicKey.from_der(_exported(pairs, Algorithm.ED25519).der(), usage="encrypt")


def test_unknown_usage_line_is_malformed_input(pairs: dict) -> None:
    pem = _exported(pairs, Algorithm.ED25519).pem().replace(b"sign-verify", b"signing")
    with pytest.raises(MalformedInputError, match="unknown key usage 'signing'"):
        PublicKey.from_pem(pem)


def test_algorithm_and_usage_given_as_strings_are_converted(pairs: dict) -> None:
    key = PublicKey(algorithm="ed25519", key=pairs[Algorithm.ED25519].public, usage="sign-verify")
    assert key.algorithm is Algorithm.ED25519
    assert key.usage is KeyUsage.SIGN_VERIFY


def test_unknown_algorithm_name_is_refused(pairs: dict) -> None:
    from keymgmt.errors import UnsupportedAlgorithmError

    with pytest.raises(UnsupportedAlgorithmError, match="unknown algorithm 'ed448'"):
        PublicKey(algorithm="ed448", key=pairs[Algorithm.ED25519].public)
