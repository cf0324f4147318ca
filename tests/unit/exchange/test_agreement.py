"""Key agreement: both sides derive the same key; bad peer shares are refused."""

from __future__ import annotations

import pickle

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from keymgmt._secret import SecretBytes
from keymgmt.algorithms import ExchangeGroup
from keymgmt.errors import LocalProtocolError, MalformedInputError, UnsupportedAlgorithmError
from keymgmt.exchange import KeyShare, LegacyAlgorithmWarning, group_info, respond
from keymgmt.exchange._groups import FFDHE2048_P

MODERN = [ExchangeGroup.X25519, ExchangeGroup.P256, ExchangeGroup.P384]
FFDHE = [ExchangeGroup.FFDHE2048, ExchangeGroup.FFDHE3072, ExchangeGroup.FFDHE4096]


def agree(group: ExchangeGroup) -> tuple[SecretBytes, SecretBytes]:
    share = KeyShare.generate(group)
    reply, theirs = respond(group, share.public_bytes, salt=b"s", info=b"test", length=32)
    ours = share.derive(reply, salt=b"s", info=b"test", length=32)
    return ours, theirs


@pytest.mark.parametrize("group", [*MODERN, ExchangeGroup.X25519_MLKEM768])
def test_both_sides_derive_the_same_key(group: ExchangeGroup) -> None:
    ours, theirs = agree(group)
    assert ours == theirs
    assert len(ours) == 32


@pytest.mark.parametrize("group", FFDHE)
def test_ffdhe_agrees_and_warns_that_it_is_legacy(group: ExchangeGroup) -> None:
    with pytest.warns(LegacyAlgorithmWarning, match="legacy choice") as record:
        ours, theirs = agree(group)
    assert ours == theirs
    # Only our warning reaches the caller, not pyca's deprecation warning.
    assert {type(w.message) for w in record} == {LegacyAlgorithmWarning}


def test_ffdhe_touches_no_warning_filter_once_cryptographys_names_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import warnings

    from keymgmt.exchange import _agreement

    _agreement._ffdh()  # the one read per process

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("an FFDHE operation changed the process-wide warning filters")

    monkeypatch.setattr(
        _agreement,
        "warnings",
        type(
            "NoFilters",
            (),
            {
                "warn": staticmethod(warnings.warn),
                "catch_warnings": staticmethod(forbidden),
                "filterwarnings": staticmethod(forbidden),
                "simplefilter": staticmethod(forbidden),
            },
        ),
    )
    with pytest.warns(LegacyAlgorithmWarning):
        ours, theirs = agree(ExchangeGroup.FFDHE2048)
    assert ours == theirs


def test_default_group_is_x25519() -> None:
    assert KeyShare.generate().group is ExchangeGroup.X25519


@pytest.mark.parametrize("group", [*MODERN, ExchangeGroup.X25519_MLKEM768])
def test_share_sizes_match_the_group_table(group: ExchangeGroup) -> None:
    share = KeyShare.generate(group)
    info = group_info(group)
    assert len(share.public_bytes) == info.initiator_share_size
    reply, _ = respond(group, share.public_bytes, salt=b"", info=b"x")
    assert len(reply) == info.responder_share_size


def test_different_info_gives_different_keys() -> None:
    share = KeyShare.generate()
    peer = KeyShare.generate()
    a = share.derive(peer.public_bytes, salt=b"s", info=b"a")
    b = peer.derive(share.public_bytes, salt=b"s", info=b"b")
    assert a != b


def test_a_share_is_used_once() -> None:
    share = KeyShare.generate()
    peer = KeyShare.generate().public_bytes
    share.derive(peer, salt=b"", info=b"x")
    with pytest.raises(LocalProtocolError, match="one agreement only"):
        share.derive(peer, salt=b"", info=b"x")


@pytest.mark.parametrize("u", [bytes(32), (1).to_bytes(32, "little")])
def test_x25519_low_order_point_is_refused(u: bytes) -> None:
    with pytest.raises(MalformedInputError, match="all zero") as info:
        KeyShare.generate().derive(u, salt=b"", info=b"x")
    assert info.value.reason == "low-order"


@pytest.mark.parametrize("size", [0, 31, 33])
def test_x25519_share_of_wrong_size_is_refused(size: int) -> None:
    with pytest.raises(MalformedInputError, match="expected 32 bytes"):
        KeyShare.generate().derive(bytes(size), salt=b"", info=b"x")


def test_ec_point_not_on_the_curve_is_refused() -> None:
    bogus = b"\x04" + bytes(31) + b"\x01" + bytes(31) + b"\x01"
    with pytest.raises(MalformedInputError, match="not on the curve") as info:
        KeyShare.generate(ExchangeGroup.P256).derive(bogus, salt=b"", info=b"x")
    assert info.value.reason == "not-on-curve"


def test_compressed_ec_point_is_refused() -> None:
    point = ec.generate_private_key(ec.SECP256R1()).public_key()
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    compressed = point.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    with pytest.raises(MalformedInputError, match="uncompressed point"):
        KeyShare.generate(ExchangeGroup.P256).derive(compressed, salt=b"", info=b"x")


def _non_residue(p: int) -> int:
    y = 3
    while pow(y, (p - 1) // 2, p) == 1:
        y += 1
    return y


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0, "out-of-range"),
        (1, "out-of-range"),
        (FFDHE2048_P - 1, "out-of-range"),
        (FFDHE2048_P, "out-of-range"),
        (_non_residue(FFDHE2048_P), "not-in-subgroup"),
    ],
)
def test_ffdhe_value_outside_the_subgroup_is_refused(value: int, reason: str) -> None:
    share = value.to_bytes(256, "big")
    with pytest.warns(LegacyAlgorithmWarning):
        mine = KeyShare.generate(ExchangeGroup.FFDHE2048)
    with pytest.raises(MalformedInputError) as info:
        mine.derive(share, salt=b"", info=b"x")
    assert info.value.reason == reason


def test_ffdhe_share_of_wrong_size_is_refused() -> None:
    with pytest.warns(LegacyAlgorithmWarning):
        mine = KeyShare.generate(ExchangeGroup.FFDHE2048)
    with pytest.raises(MalformedInputError, match="expected 256 bytes"):
        mine.derive(bytes(254) + b"\x02", salt=b"", info=b"x")


def test_hybrid_ciphertext_of_wrong_size_is_refused() -> None:
    share = KeyShare.generate(ExchangeGroup.X25519_MLKEM768)
    with pytest.raises(MalformedInputError, match="expected 1120 bytes"):
        share.derive(bytes(100), salt=b"", info=b"x")


def test_hybrid_encapsulation_key_that_fails_the_modulus_check_is_refused() -> None:
    bogus = b"\xff" * 1184 + KeyShare.generate().public_bytes
    with pytest.raises(MalformedInputError) as info:
        respond(ExchangeGroup.X25519_MLKEM768, bogus, salt=b"", info=b"x")
    assert info.value.reason == "bad-encapsulation-key"


def test_hybrid_secret_depends_on_both_components() -> None:
    # Replacing the X25519 half of the reply changes the key even though ML-KEM matches.
    share = KeyShare.generate(ExchangeGroup.X25519_MLKEM768)
    reply, theirs = respond(ExchangeGroup.X25519_MLKEM768, share.public_bytes, salt=b"", info=b"x")
    forged = reply[:-32] + KeyShare.generate().public_bytes
    assert share.derive(forged, salt=b"", info=b"x") != theirs


def test_unknown_group_is_refused() -> None:
    with pytest.raises(UnsupportedAlgorithmError):
        KeyShare.generate("curve9999")


def test_share_repr_hides_the_key_and_pickling_is_refused() -> None:
    share = KeyShare.generate()
    assert repr(share) == "KeyShare(x25519, <private>)"
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(share)


@given(st.integers(2, FFDHE2048_P - 2))
def test_subgroup_check_agrees_with_eulers_criterion(y: int) -> None:
    from keymgmt.exchange._agreement import _jacobi

    q = (FFDHE2048_P - 1) // 2
    assert (_jacobi(y, FFDHE2048_P) == 1) == (pow(y, q, FFDHE2048_P) == 1)


def test_ffdhe_share_made_by_the_peer_passes_the_subgroup_check() -> None:
    with pytest.warns(LegacyAlgorithmWarning):
        a, b = (
            KeyShare.generate(ExchangeGroup.FFDHE3072),
            KeyShare.generate(ExchangeGroup.FFDHE3072),
        )
    assert a.derive(b.public_bytes, salt=b"", info=b"x") == b.derive(
        a.public_bytes, salt=b"", info=b"x"
    )
