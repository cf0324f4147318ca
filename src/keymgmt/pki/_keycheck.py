"""Cheap sanity checks on an RSA public key a CA is asked to certify.

An RSA key with a small public exponent (e = 3) is what CA/Browser Forum
Baseline Requirements 6.1.6 and NIST SP 800-89 refuse; an even modulus, or
one with a small prime factor, is factored by trial division. The checks
(BR 6.1.6): the exponent is odd and in [65537, 2^256 - 1]; the modulus is
odd and has no prime factor below 752 (one gcd with the product of those
primes, computed once). They cost microseconds, nothing next to a
signature.
"""

from __future__ import annotations

import math
from typing import Final

from cryptography.hazmat.primitives.asymmetric import rsa

from keymgmt.errors import UnsupportedAlgorithmError

__all__ = ["check_rsa_public_key"]

_MIN_EXPONENT: Final = 65537
_MAX_EXPONENT: Final = (1 << 256) - 1
_SMALL_PRIME_BOUND: Final = 752


def _primes_below(bound: int) -> list[int]:
    sieve = bytearray([1]) * bound
    sieve[:2] = b"\x00\x00"
    for n in range(2, math.isqrt(bound) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytearray(len(range(n * n, bound, n)))
    return [n for n in range(bound) if sieve[n]]


_SMALL_PRIMES_PRODUCT: Final = math.prod(_primes_below(_SMALL_PRIME_BOUND))


def check_rsa_public_key(key: rsa.RSAPublicKey) -> None:
    """Refuse an RSA public key with a weak exponent or an easily factored modulus.

    Raises:
        UnsupportedAlgorithmError: even or out-of-range exponent, even
            modulus, or a prime factor of the modulus below 752.
    """
    numbers = key.public_numbers()
    e, n = numbers.e, numbers.n
    if e % 2 == 0 or not _MIN_EXPONENT <= e <= _MAX_EXPONENT:
        raise UnsupportedAlgorithmError(
            f"RSA public exponent {e} refused: it must be odd and at least 65537",
            algorithm=f"rsa-{key.key_size}",
        )
    if n % 2 == 0:
        raise UnsupportedAlgorithmError(
            "RSA modulus refused: it is even", algorithm=f"rsa-{key.key_size}"
        )
    if math.gcd(n, _SMALL_PRIMES_PRODUCT) != 1:
        raise UnsupportedAlgorithmError(
            f"RSA modulus refused: it has a prime factor below {_SMALL_PRIME_BOUND}",
            algorithm=f"rsa-{key.key_size}",
        )
