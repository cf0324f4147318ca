"""Known-answer vectors: RFC 7748 (X25519) and RFC 5869 (HKDF-SHA-256).

Kept apart from behaviour tests, pyca-style. The X25519 vectors run through
keymgmt's own agreement path (share validation included), not just the
primitive.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from keymgmt.algorithms import ExchangeGroup
from keymgmt.exchange import KeyShare, group_info, hkdf, hkdf_expand, hkdf_extract

# RFC 7748 section 5.2: (scalar, u-coordinate, output)
X25519_FUNCTION_VECTORS = [
    (
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
    ),
]

# RFC 7748 section 6.1
ALICE_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB_PRIVATE = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
BOB_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"


def share_from(private_hex: str) -> KeyShare:
    key = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex))
    return KeyShare(group_info(ExchangeGroup.X25519), key)


@pytest.mark.parametrize(("scalar", "u", "expected"), X25519_FUNCTION_VECTORS)
def test_rfc7748_x25519_function_vectors(scalar: str, u: str, expected: str) -> None:
    assert share_from(scalar)._complete(bytes.fromhex(u)).reveal() == bytes.fromhex(expected)


def test_rfc7748_alice_and_bob_public_keys() -> None:
    assert share_from(ALICE_PRIVATE).public_bytes == bytes.fromhex(ALICE_PUBLIC)
    assert share_from(BOB_PRIVATE).public_bytes == bytes.fromhex(BOB_PUBLIC)


def test_rfc7748_alice_and_bob_share_the_secret() -> None:
    alice = share_from(ALICE_PRIVATE)._complete(bytes.fromhex(BOB_PUBLIC))
    bob = share_from(BOB_PRIVATE)._complete(bytes.fromhex(ALICE_PUBLIC))
    assert alice.reveal() == bob.reveal() == bytes.fromhex(SHARED)


def test_rfc7748_derive_is_hkdf_of_the_shared_secret() -> None:
    derived = share_from(ALICE_PRIVATE).derive(
        bytes.fromhex(BOB_PUBLIC), salt=b"salt", info=b"info", length=32
    )
    assert derived == hkdf(bytes.fromhex(SHARED), salt=b"salt", info=b"info", length=32)


# RFC 5869 appendix A, test cases 1 to 3 (SHA-256): (ikm, salt, info, length, prk, okm)
HKDF_VECTORS = [
    (
        "0b" * 22,
        "000102030405060708090a0b0c",
        "f0f1f2f3f4f5f6f7f8f9",
        42,
        "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    ),
    (
        bytes(range(0x50)).hex(),
        bytes(range(0x60, 0xB0)).hex(),
        bytes(range(0xB0, 0x100)).hex(),
        82,
        "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87",
    ),
    (
        "0b" * 22,
        "",
        "",
        42,
        "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    ),
]


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "prk", "okm"), HKDF_VECTORS)
def test_rfc5869_hkdf_extract(
    ikm: str, salt: str, info: str, length: int, prk: str, okm: str
) -> None:
    assert hkdf_extract(salt=bytes.fromhex(salt), ikm=bytes.fromhex(ikm)).reveal() == (
        bytes.fromhex(prk)
    )


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "prk", "okm"), HKDF_VECTORS)
def test_rfc5869_hkdf_expand(
    ikm: str, salt: str, info: str, length: int, prk: str, okm: str
) -> None:
    out = hkdf_expand(bytes.fromhex(prk), info=bytes.fromhex(info), length=length)
    assert out.reveal() == bytes.fromhex(okm)


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "prk", "okm"), HKDF_VECTORS)
def test_rfc5869_hkdf(ikm: str, salt: str, info: str, length: int, prk: str, okm: str) -> None:
    out = hkdf(
        bytes.fromhex(ikm), salt=bytes.fromhex(salt), info=bytes.fromhex(info), length=length
    )
    assert out.reveal() == bytes.fromhex(okm)
