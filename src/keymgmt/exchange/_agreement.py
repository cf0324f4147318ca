"""Ephemeral key agreement: X25519, ECDH P-256/P-384, FFDHE, and X25519+ML-KEM-768.

One :class:`KeyShare` is one ephemeral private key, used once. The
initiator sends :attr:`KeyShare.public_bytes`; the responder answers with
:func:`respond`, which returns its own share and the derived key; the
initiator finishes with :meth:`KeyShare.derive`. For the Diffie-Hellman
groups both halves are ordinary DH (the responder's share is a fresh public
key); for the hybrid group the responder *encapsulates* to the initiator's
ML-KEM-768 key and adds an X25519 share, and the secret is
``ML-KEM secret || X25519 secret`` (the X25519MLKEM768 order of
draft-ietf-tls-ecdhe-mlkem).

Peer shares are validated before use:

* X25519: 32 bytes, and an all-zero shared secret (a small-order point) is
  refused;
* P-256/P-384: uncompressed points only, which must lie on the curve
  (pyca/cryptography checks);
* FFDHE: exactly ``len(p)`` bytes, the value in ``[2, p-2]`` and in the
  prime-order subgroup (``y^q mod p == 1`` with ``q = (p-1)/2``, evaluated
  as the Legendre symbol; OpenSSL's own peer check covers the range only);
* ML-KEM-768: exact encapsulation-key and ciphertext sizes and the key's
  modulus check.

The raw shared secret never leaves this package: callers get HKDF output
bound to a ``salt`` and an ``info`` they name. The handshake reaches the raw
secret through the private :meth:`KeyShare._complete` and :func:`_encapsulate`
to feed its key schedule.
"""

from __future__ import annotations

import functools
import hmac as _hmac
import threading
import warnings
from typing import TYPE_CHECKING, Final, NoReturn

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dh, ec, mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning

from keymgmt._random import Randomness, SystemRandomness
from keymgmt._secret import SecretBytes
from keymgmt.algorithms import ExchangeGroup
from keymgmt.errors import MalformedInputError
from keymgmt.exchange._groups import (
    FFDHE_GENERATOR,
    FFDHE_PRIMES,
    GroupInfo,
    LegacyAlgorithmWarning,
    group_info,
)
from keymgmt.exchange._hkdf import hkdf

__all__ = ["DEFAULT_GROUP", "KeyShare", "respond"]

#: The group used when none is named.
DEFAULT_GROUP: Final = ExchangeGroup.X25519

_CURVES: Final = {ExchangeGroup.P256: ec.SECP256R1, ExchangeGroup.P384: ec.SECP384R1}
#: The group orders of the NIST curves (FIPS 186-5 / SP 800-186), for scalars
#: drawn from injected randomness.
_ORDERS: Final = {
    ExchangeGroup.P256: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ExchangeGroup.P384: int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}
_SYSTEM: Final = SystemRandomness()

if TYPE_CHECKING:
    _PrivateKey = (
        x25519.X25519PrivateKey
        | ec.EllipticCurvePrivateKey
        | dh.DHPrivateKey
        | tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]
    )


def _invalid(reason: str, message: str) -> MalformedInputError:
    return MalformedInputError(f"invalid peer key share: {message}", reason=reason)


def _share_bytes(share: object) -> bytes:
    """A peer share as ``bytes`` (network buffers are often bytearray or memoryview)."""
    if type(share) is bytes:
        return share
    if isinstance(share, bytearray | memoryview):
        return bytes(share)
    raise _invalid("wrong-type", f"expected bytes, got {type(share).__name__}")


def _warn_legacy(info: GroupInfo) -> None:
    warnings.warn(
        f"{info.group.value} is finite-field Diffie-Hellman, a legacy choice: "
        "pyca/cryptography deprecates it; prefer x25519 or x25519-mlkem768",
        LegacyAlgorithmWarning,
        stacklevel=3,
    )


# pyca/cryptography 50 deprecates finite-field DH: reading any public name of
# its ``dh`` module (DHParameterNumbers, DHPublicNumbers, ...) emits a
# CryptographyDeprecationWarning; the objects it returns never warn. keymgmt
# needs two of those names, the constructors, so it reads them once per
# process (_ffdh) and never touches the module again. The caller hears about
# the legacy status through our LegacyAlgorithmWarning on every use instead.
#
# The one read is made with cryptography's FFDH message filtered out. That
# filter is process-global in Python 3.11 (warnings.catch_warnings swaps the
# global filter list and restores it on exit, so a filter another thread adds
# in that window is lost); the window is a few microseconds, once per process,
# at the first FFDHE use, and a lock keeps two threads from nesting it. No
# later FFDHE operation touches the warnings machinery at all. (Letting the
# upstream warning surface instead would tell users once what our own
# warning tells them on every use, and would make the first FFDHE call fail
# under ``-W error`` even for a caller who filtered LegacyAlgorithmWarning.)

_FFDH_LOCK = threading.Lock()


@functools.cache
def _ffdh() -> tuple[type[dh.DHParameterNumbers], type[dh.DHPublicNumbers]]:
    """cryptography's FFDH constructors (DHParameterNumbers, DHPublicNumbers), read once."""
    with _FFDH_LOCK, warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="Diffie-Hellman over finite fields",
            category=CryptographyDeprecationWarning,
        )
        return dh.DHParameterNumbers, dh.DHPublicNumbers


@functools.cache
def _dh_parameter_numbers(group: ExchangeGroup) -> dh.DHParameterNumbers:
    return _ffdh()[0](FFDHE_PRIMES[group], FFDHE_GENERATOR)


def _dh_generate(group: ExchangeGroup) -> dh.DHPrivateKey:
    return _dh_parameter_numbers(group).parameters().generate_private_key()


def _dh_public_bytes(key: dh.DHPrivateKey, size: int) -> bytes:
    return key.public_key().public_numbers().y.to_bytes(size, "big")


def _dh_peer(group: ExchangeGroup, share: bytes, size: int) -> dh.DHPublicKey:
    if len(share) != size:
        raise _invalid("wrong-size", f"expected {size} bytes, got {len(share)}")
    p = FFDHE_PRIMES[group]
    y = int.from_bytes(share, "big")
    if not 2 <= y <= p - 2:
        raise _invalid("out-of-range", "FFDHE value outside [2, p-2]")
    # Subgroup check: p = 2q + 1 is a safe prime, so y must lie in the order-q
    # subgroup, i.e. y^q mod p == 1. By Euler's criterion y^q mod p is the
    # Legendre symbol (y/p), which the binary Jacobi algorithm computes some
    # 40x faster than pow(y, q, p) in pure Python (about 1 ms instead of tens
    # of ms for ffdhe2048); tests check the two agree.
    if _jacobi(y, p) != 1:
        raise _invalid("not-in-subgroup", "FFDHE value outside the prime-order subgroup")
    return _ffdh()[1](y, _dh_parameter_numbers(group)).public_key()


def _jacobi(a: int, n: int) -> int:
    """The Jacobi symbol (a/n) for odd n > 0 (the Legendre symbol when n is prime)."""
    a %= n
    result = 1
    while a:
        zeros = (a & -a).bit_length() - 1
        if zeros:
            a >>= zeros
            if zeros & 1 and n & 7 in (3, 5):
                result = -result
        if a & n & 3 == 3:
            result = -result
        a, n = n % a, a
    return result if n == 1 else 0


def _x25519_peer(share: bytes) -> x25519.X25519PublicKey:
    if len(share) != 32:
        raise _invalid("wrong-size", f"expected 32 bytes, got {len(share)}")
    return x25519.X25519PublicKey.from_public_bytes(share)


def _x25519_exchange(key: x25519.X25519PrivateKey, peer: x25519.X25519PublicKey) -> bytes:
    try:
        secret = key.exchange(peer)
    except ValueError:  # OpenSSL refuses the all-zero output itself
        raise _invalid("low-order", "X25519 shared secret is all zero") from None
    if _hmac.compare_digest(secret, bytes(32)):
        raise _invalid("low-order", "X25519 shared secret is all zero")
    return secret


def _ec_peer(group: ExchangeGroup, share: bytes, size: int) -> ec.EllipticCurvePublicKey:
    if len(share) != size or share[:1] != b"\x04":
        raise _invalid("wrong-size", f"expected an uncompressed point of {size} bytes")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[group](), share)
    except (ValueError, UnsupportedAlgorithm):
        raise _invalid("not-on-curve", "point is not on the curve") from None


def _x25519_public(key: x25519.X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


class KeyShare:
    """One ephemeral private key for one key agreement. Used once, never stored.

    Create with :meth:`generate`; send :attr:`public_bytes`; finish with
    :meth:`derive` on the responder's share. The private key cannot be
    exported, pickled or printed.
    """

    __slots__ = ("_info", "_key", "_public", "_used")

    def __init__(self, info: GroupInfo, key: _PrivateKey) -> None:
        self._info = info
        self._key: _PrivateKey | None = key
        self._public: bytes | None = None
        self._used = False

    @classmethod
    def generate(
        cls, group: ExchangeGroup | str = DEFAULT_GROUP, *, randomness: Randomness | None = None
    ) -> KeyShare:
        """A fresh ephemeral key share in ``group`` (default X25519).

        Args:
            group: the group.
            randomness: where the private key comes from (default: the OS
                CSPRNG); a seeded one (``keymgmt.testing.SeededRandomness``)
                makes the share reproducible in tests. FFDHE keys always
                come from OpenSSL.

        Warns:
            LegacyAlgorithmWarning: ``group`` is an FFDHE group.

        Raises:
            UnsupportedAlgorithmError: unknown group.
        """
        info = group_info(group)
        if info.legacy:
            _warn_legacy(info)
        return cls._fresh(info, randomness)

    @classmethod
    def _fresh(cls, info: GroupInfo, randomness: Randomness | None = None) -> KeyShare:
        """A fresh share in ``info``'s group, without the legacy warning.

        The private key is drawn from ``randomness`` (the OS CSPRNG by
        default; a handshake passes its own, so a seeded one makes its
        shares, and so its messages, replay byte for byte): X25519 and
        ML-KEM keys from their seeds, EC scalars reduced from 64 bits more
        than the order has. Finite-field DH keys (legacy groups) come from
        OpenSSL's generator.

        Private: for callers in this package that warn in their own words
        (the handshake's initiator) or not at all (the responder side).
        """
        rng = _SYSTEM if randomness is None else randomness
        g = info.group
        key: _PrivateKey
        if g is ExchangeGroup.X25519:
            key = x25519.X25519PrivateKey.from_private_bytes(rng.token_bytes(32))
        elif g in _CURVES:
            if type(rng) is SystemRandomness:
                # The same OS randomness, through OpenSSL's generator: its
                # fixed-base multiplication is twice as fast as derive's.
                key = ec.generate_private_key(_CURVES[g]())
            else:
                order = _ORDERS[g]
                wide = int.from_bytes(rng.token_bytes((order.bit_length() + 7) // 8 + 8), "big")
                key = ec.derive_private_key(wide % (order - 1) + 1, _CURVES[g]())
        elif g is ExchangeGroup.X25519_MLKEM768:
            key = (
                mlkem.MLKEM768PrivateKey.from_seed_bytes(rng.token_bytes(64)),
                x25519.X25519PrivateKey.from_private_bytes(rng.token_bytes(32)),
            )
        else:
            key = _dh_generate(g)
        return cls(info, key)

    @property
    def group(self) -> ExchangeGroup:
        """The group this share belongs to."""
        return self._info.group

    @property
    def public_bytes(self) -> bytes:
        """The share to send: raw X25519, an uncompressed EC point, a
        fixed-size big-endian FFDHE value, or ``ML-KEM ek || X25519``."""
        if self._public is not None:
            return self._public
        key = self._key
        assert key is not None  # a used share cached its public bytes first
        if isinstance(key, x25519.X25519PrivateKey):
            public = _x25519_public(key)
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        elif isinstance(key, tuple):
            public = key[0].public_key().public_bytes_raw() + _x25519_public(key[1])
        else:
            public = _dh_public_bytes(key, self._info.initiator_share_size)
        self._public = public
        return public

    def derive(
        self, peer_share: bytes, *, salt: bytes, info: bytes, length: int = 32
    ) -> SecretBytes:
        """Finish the agreement and return ``HKDF(secret, salt, info, length)``.

        Args:
            peer_share: the responder's share (from :func:`respond`, or the
                peer's :attr:`public_bytes` for a plain DH group).
            salt: HKDF salt (bind it to your context, e.g. both nonces).
            info: names the purpose of the output.
            length: output bytes.

        Raises:
            MalformedInputError: the peer share is invalid (``reason`` says how).
            LocalProtocolError: this share was used already.
        """
        return hkdf(self._complete(peer_share), salt=salt, info=info, length=length)

    def _complete(self, peer_share: bytes) -> SecretBytes:
        """The raw shared secret. Private: only the handshake's key schedule calls it."""
        if self._used:
            from keymgmt.errors import LocalProtocolError

            raise LocalProtocolError("a KeyShare is used for one agreement only")
        self._used = True
        self._public = self.public_bytes  # kept: the private key goes now
        key = self._key
        self._key = None  # forward secrecy: the share forgets its key once used
        assert key is not None
        peer_share = _share_bytes(peer_share)
        g = self._info.group
        size = self._info.responder_share_size
        if isinstance(key, x25519.X25519PrivateKey):
            return SecretBytes(_x25519_exchange(key, _x25519_peer(peer_share)))
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return SecretBytes(key.exchange(ec.ECDH(), _ec_peer(g, peer_share, size)))
        if isinstance(key, tuple):
            if len(peer_share) != size:
                raise _invalid("wrong-size", f"expected {size} bytes, got {len(peer_share)}")
            split = size - 32
            try:
                kem_secret = key[0].decapsulate(peer_share[:split])
            except ValueError:
                raise _invalid("bad-ciphertext", "ML-KEM-768 ciphertext rejected") from None
            ecdh = _x25519_exchange(key[1], _x25519_peer(peer_share[split:]))
            return SecretBytes(kem_secret + ecdh)
        return SecretBytes(key.exchange(_dh_peer(g, peer_share, size)))

    def __repr__(self) -> str:
        return f"KeyShare({self._info.group.value}, <private>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("KeyShare cannot be pickled")


def _encapsulate(
    group: ExchangeGroup | str, initiator_share: bytes, randomness: Randomness | None = None
) -> tuple[bytes, SecretBytes]:
    """Responder side, raw: return (our share, raw shared secret). Private.

    ``randomness`` draws the responder's share (see :meth:`KeyShare._fresh`);
    ML-KEM encapsulation takes its randomness from OpenSSL.
    """
    info = group_info(group)
    g = info.group
    initiator_share = _share_bytes(initiator_share)
    if g is not ExchangeGroup.X25519_MLKEM768:
        share = KeyShare._fresh(info, randomness)
        # Check the peer first so an invalid share costs no more than a keygen.
        secret = share._complete(initiator_share)
        return share.public_bytes, secret
    size = info.initiator_share_size
    if len(initiator_share) != size:
        raise _invalid("wrong-size", f"expected {size} bytes, got {len(initiator_share)}")
    split = size - 32
    try:
        ek = mlkem.MLKEM768PublicKey.from_public_bytes(initiator_share[:split])
    except ValueError:
        raise _invalid("bad-encapsulation-key", "ML-KEM-768 key rejected") from None
    peer_x = _x25519_peer(initiator_share[split:])
    rng = _SYSTEM if randomness is None else randomness
    ours = x25519.X25519PrivateKey.from_private_bytes(rng.token_bytes(32))
    ecdh = _x25519_exchange(ours, peer_x)
    kem_secret, ciphertext = ek.encapsulate()
    return ciphertext + _x25519_public(ours), SecretBytes(kem_secret + ecdh)


def respond(
    group: ExchangeGroup | str,
    initiator_share: bytes,
    *,
    salt: bytes,
    info: bytes,
    length: int = 32,
    randomness: Randomness | None = None,
) -> tuple[bytes, SecretBytes]:
    """Responder side: answer ``initiator_share`` and derive the key.

    Args:
        group: the group the initiator's share belongs to.
        initiator_share: the initiator's :attr:`KeyShare.public_bytes`.
        salt: HKDF salt; info: HKDF info; length: output bytes (as in
            :meth:`KeyShare.derive`, which the initiator calls with the same).
        randomness: where the responder's share comes from (as in
            :meth:`KeyShare.generate`; ML-KEM encapsulation uses OpenSSL's).

    Returns:
        ``(share to send back, derived key)``.

    Warns:
        LegacyAlgorithmWarning: ``group`` is an FFDHE group.

    Raises:
        MalformedInputError: the initiator's share is invalid.
        UnsupportedAlgorithmError: unknown group.
    """
    g = group_info(group)
    if g.legacy:
        _warn_legacy(g)
    share, secret = _encapsulate(g.group, initiator_share, randomness)
    return share, hkdf(secret, salt=salt, info=info, length=length)
