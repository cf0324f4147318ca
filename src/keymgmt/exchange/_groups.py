"""Key agreement groups: sizes, wire codes, and the RFC 7919 FFDHE primes.

The finite-field groups are the RFC 7919 named groups ``ffdhe2048``,
``ffdhe3072`` and ``ffdhe4096``: safe primes ``p = 2q + 1`` with generator
2, published as constants. keymgmt never generates DH parameters at run time
(the seed did; it took 23 to 56 seconds and gave groups nobody had vetted).
Each prime is ``2^b - 2^(b-64) + (floor(2^(b-130) * e) + X) * 2^64 - 1``;
``tests/unit/exchange/test_groups.py`` recomputes them from that formula.

Finite-field DH is a **legacy** choice here: pyca/cryptography 50 deprecates
it and plans to remove it, and its shares are 8 to 16 times larger than
X25519's for less security. It stays for the seed's sake, is never a
default, and every use emits :class:`LegacyAlgorithmWarning`.
"""

from __future__ import annotations

from typing import Final

import attrs

from keymgmt.algorithms import ExchangeGroup

__all__ = [
    "FFDHE2048_P",
    "FFDHE3072_P",
    "FFDHE4096_P",
    "FFDHE_GENERATOR",
    "GroupInfo",
    "LegacyAlgorithmWarning",
    "group_info",
]


class LegacyAlgorithmWarning(UserWarning):
    """A legacy algorithm was chosen explicitly (finite-field DH).

    It works, but its support in pyca/cryptography is deprecated; prefer
    X25519 or the X25519+ML-KEM-768 hybrid.
    """


FFDHE_GENERATOR: Final = 2

#: RFC 7919 appendix A.1: ffdhe2048 (generator 2).
FFDHE2048_P: Final = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695"
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A"
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A"
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4"
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005"
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B423861285C97FFFFFFFFFFFFFFFF",
    16,
)

#: RFC 7919 appendix A.2: ffdhe3072 (generator 2).
FFDHE3072_P: Final = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695"
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A"
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A"
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4"
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005"
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B4238611FCFDCDE355B3B6519035B"
    "BC34F4DEF99C023861B46FC9D6E6C9077AD91D2691F7F7EE598CB0FAC186D91C"
    "AEFE130985139270B4130C93BC437944F4FD4452E2D74DD364F2E21E71F54BFF"
    "5CAE82AB9C9DF69EE86D2BC522363A0DABC521979B0DEADA1DBF9A42D5C4484E"
    "0ABCD06BFA53DDEF3C1B20EE3FD59D7C25E41D2B66C62E37FFFFFFFFFFFFFFFF",
    16,
)

#: RFC 7919 appendix A.3: ffdhe4096 (generator 2).
FFDHE4096_P: Final = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695"
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A"
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A"
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4"
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005"
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B4238611FCFDCDE355B3B6519035B"
    "BC34F4DEF99C023861B46FC9D6E6C9077AD91D2691F7F7EE598CB0FAC186D91C"
    "AEFE130985139270B4130C93BC437944F4FD4452E2D74DD364F2E21E71F54BFF"
    "5CAE82AB9C9DF69EE86D2BC522363A0DABC521979B0DEADA1DBF9A42D5C4484E"
    "0ABCD06BFA53DDEF3C1B20EE3FD59D7C25E41D2B669E1EF16E6F52C3164DF4FB"
    "7930E9E4E58857B6AC7D5F42D69F6D187763CF1D5503400487F55BA57E31CC7A"
    "7135C886EFB4318AED6A1E012D9E6832A907600A918130C46DC778F971AD0038"
    "092999A333CB8B7A1A1DB93D7140003C2A4ECEA9F98D0ACC0A8291CDCEC97DCF"
    "8EC9B55A7F88A46B4DB5A851F44182E1C68A007E5E655F6AFFFFFFFFFFFFFFFF",
    16,
)


@attrs.frozen
class GroupInfo:
    """What the protocol needs to know about a group.

    Attributes:
        group: the enum member.
        code: the one-byte wire code.
        initiator_share_size: bytes in the initiator's key share.
        responder_share_size: bytes in the responder's key share.
        legacy: finite-field DH (deprecated upstream; warns on use).
        post_quantum: includes ML-KEM-768.
    """

    group: ExchangeGroup
    code: int
    initiator_share_size: int
    responder_share_size: int
    legacy: bool = False
    post_quantum: bool = False


_X25519 = 32
_MLKEM768_EK = 1184
_MLKEM768_CT = 1088

_INFO: Final = {
    ExchangeGroup.X25519: GroupInfo(ExchangeGroup.X25519, 1, _X25519, _X25519),
    ExchangeGroup.P256: GroupInfo(ExchangeGroup.P256, 2, 65, 65),
    ExchangeGroup.P384: GroupInfo(ExchangeGroup.P384, 3, 97, 97),
    ExchangeGroup.FFDHE2048: GroupInfo(ExchangeGroup.FFDHE2048, 4, 256, 256, legacy=True),
    ExchangeGroup.FFDHE3072: GroupInfo(ExchangeGroup.FFDHE3072, 5, 384, 384, legacy=True),
    ExchangeGroup.FFDHE4096: GroupInfo(ExchangeGroup.FFDHE4096, 6, 512, 512, legacy=True),
    ExchangeGroup.X25519_MLKEM768: GroupInfo(
        ExchangeGroup.X25519_MLKEM768,
        7,
        _MLKEM768_EK + _X25519,
        _MLKEM768_CT + _X25519,
        post_quantum=True,
    ),
}
_BY_CODE: Final = {info.code: info for info in _INFO.values()}

FFDHE_PRIMES: Final = {
    ExchangeGroup.FFDHE2048: FFDHE2048_P,
    ExchangeGroup.FFDHE3072: FFDHE3072_P,
    ExchangeGroup.FFDHE4096: FFDHE4096_P,
}


def group_info(group: ExchangeGroup | str) -> GroupInfo:
    """Return the :class:`GroupInfo` for ``group``.

    Raises:
        UnsupportedAlgorithmError: ``group`` names no exchange group.
    """
    try:
        return _INFO[ExchangeGroup(group)]
    except ValueError:
        from keymgmt.errors import UnsupportedAlgorithmError

        names = ", ".join(g.value for g in ExchangeGroup)
        raise UnsupportedAlgorithmError(
            f"unknown exchange group {group!r}; expected one of: {names}", algorithm=str(group)
        ) from None


def group_by_code(code: int) -> GroupInfo | None:
    """Return the group with wire code ``code``, or None."""
    return _BY_CODE.get(code)
