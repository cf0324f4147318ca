"""XAES-256-GCM: AES-256-GCM with 192-bit nonces (C2SP, https://c2sp.org/XAES-256-GCM).

AES-256-GCM takes a 96-bit nonce; drawn at random, NIST SP 800-38D allows
at most 2^32 messages per key. XAES-256-GCM (Filippo Valsorda, C2SP) takes
a 192-bit nonce instead and derives, from the key and the first half of the
nonce, a fresh AES-256-GCM key for each message; the second half of the nonce
is that message's GCM nonce. Random nonces are then safe for any practical
number of messages (2^80 messages for a 2^-32 collision risk).

The derivation is the NIST SP 800-108r1 counter KDF with CMAC-AES-256 as the
PRF, label ``"X"``, the nonce's first 12 bytes as context, a 16-bit counter
and no length field, which the spec reduces to plain block operations::

    L  = AES-256_K(0^128)
    K1 = L << 1, XOR 0x87 into the last byte if MSB(L) = 1   (the CMAC subkey)
    M1 = 00 01 58 00 || N[:12]
    M2 = 00 02 58 00 || N[:12]
    Kx = AES-256_K(M1 XOR K1) || AES-256_K(M2 XOR K1)
    ciphertext = AES-256-GCM(key=Kx, nonce=N[12:], plaintext, aad)

The ciphertext is the AES-256-GCM one (plaintext length + 16-byte tag); the
nonce is not part of it. XAES-256-GCM is neither nonce-misuse resistant nor
key-committing, like AES-256-GCM.

Cost per message over plain AES-256-GCM: two AES block encryptions (one ECB
call over both blocks) and the key schedule of the derived key. ``L`` and
``K1`` are computed once per instance.
"""

from __future__ import annotations

import threading
from typing import Final, NoReturn

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keymgmt.errors import InvalidArgumentError

__all__ = ["XAES256GCM"]

_KEY_SIZE: Final = 32
_NONCE_SIZE: Final = 24
_HALF: Final = 12  # the nonce's first half goes to the KDF, the second to GCM


class XAES256GCM:
    """XAES-256-GCM: AES-256-GCM with 192-bit nonces (C2SP).

    Safe with random nonces for any practical number of messages.

    Drop-in shaped like ``cryptography``'s ``AESGCM``: ``encrypt`` returns the
    ciphertext with its 16-byte tag appended, ``decrypt`` raises
    ``cryptography.exceptions.InvalidTag`` when the tag does not verify, and
    callers translate that as they do for ``AESGCM``. Instances are safe to
    share between threads.
    """

    NONCE_SIZE: Final = _NONCE_SIZE

    __slots__ = ("__ecb", "__head1", "__head2", "__k1_tail", "__lock")

    def __init__(self, key: bytes) -> None:
        """Prepare the key: compute the CMAC subkey K1 once.

        Args:
            key: the 32-byte XAES-256-GCM key.

        Raises:
            InvalidArgumentError: ``key`` is not 32 bytes.
        """
        candidate: object = key  # checked at run time too: callers may be untyped
        if not isinstance(candidate, bytes) or len(candidate) != _KEY_SIZE:
            raise InvalidArgumentError(f"an XAES-256-GCM key is {_KEY_SIZE} bytes")
        # ECB is the raw AES block function here, used on exactly the two
        # one-block CMAC inputs the spec defines; it never encrypts data.
        # One context per instance (a fresh one costs ~15x the two blocks);
        # cryptography's contexts are not thread-safe, hence the lock. ECB
        # contexts carry no state between block-aligned updates, and this
        # one is never finalized.
        self.__ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
        self.__lock = threading.Lock()
        l_block = int.from_bytes(self.__ecb.update(bytes(16)))
        k1 = (l_block << 1) & ((1 << 128) - 1)
        if l_block >> 127:
            k1 ^= 0x87
        k1_bytes = k1.to_bytes(16)
        # M1 and M2 differ only in their first 4 bytes, which do not depend
        # on the nonce: XOR those with K1 now, leaving one 96-bit XOR a call.
        self.__head1 = bytes(a ^ b for a, b in zip(b"\x00\x01\x58\x00", k1_bytes[:4], strict=True))
        self.__head2 = bytes(a ^ b for a, b in zip(b"\x00\x02\x58\x00", k1_bytes[:4], strict=True))
        self.__k1_tail = int.from_bytes(k1_bytes[4:])

    def __derive(self, nonce: bytes) -> tuple[AESGCM, bytes]:
        """Return the AES-256-GCM instance and 96-bit nonce for ``nonce``."""
        candidate: object = nonce
        if not isinstance(candidate, bytes) or len(candidate) != _NONCE_SIZE:
            raise InvalidArgumentError(f"an XAES-256-GCM nonce is {_NONCE_SIZE} bytes")
        return self.__subkey(nonce[:_HALF]), nonce[_HALF:]

    def __subkey(self, prefix: bytes) -> AESGCM:
        tail = (int.from_bytes(prefix) ^ self.__k1_tail).to_bytes(_HALF)
        blocks = self.__head1 + tail + self.__head2 + tail
        with self.__lock:
            derived = self.__ecb.update(blocks)
        return AESGCM(derived)

    def subkey(self, prefix: bytes) -> AESGCM:
        """The AES-256-GCM instance (key *Kx*) of every nonce starting with ``prefix``.

        XAES-256-GCM of ``(prefix + n, data, aad)`` is exactly
        ``subkey(prefix).encrypt(n, data, aad)``. For callers that keep one
        random prefix for many messages and so derive *Kx* once: under one
        prefix the second halves are plain random 96-bit GCM nonces, so the
        caller must count its messages and take a fresh random prefix well
        before 2^32 of them (NIST SP 800-38D).

        Args:
            prefix: the nonce's first 12 bytes.

        Raises:
            InvalidArgumentError: ``prefix`` is not 12 bytes.
        """
        candidate: object = prefix
        if not isinstance(candidate, bytes) or len(candidate) != _HALF:
            raise InvalidArgumentError(f"an XAES-256-GCM nonce prefix is {_HALF} bytes")
        return self.__subkey(prefix)

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        """Encrypt and authenticate ``data``, authenticate ``associated_data``.

        Args:
            nonce: 24 bytes, never reused with this key; draw them at random.
            data: the plaintext.
            associated_data: authenticated, not encrypted; ``None`` is empty.

        Returns:
            The ciphertext followed by the 16-byte tag (the nonce is not included).

        Raises:
            InvalidArgumentError: ``nonce`` is not 24 bytes, or ``data`` /
                ``associated_data`` is not bytes-like or too long for GCM.
        """
        aead, gcm_nonce = self.__derive(nonce)
        try:
            return aead.encrypt(gcm_nonce, data, associated_data)
        except (TypeError, OverflowError):
            raise InvalidArgumentError(
                "data and associated data must be bytes of at most 2**31 - 1 bytes"
            ) from None

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        """Verify and decrypt ``data`` (ciphertext and tag) made by :meth:`encrypt`.

        Args:
            nonce: the 24-byte nonce given to :meth:`encrypt`.
            data: the ciphertext followed by its 16-byte tag.
            associated_data: as given to :meth:`encrypt`; ``None`` is empty.

        Returns:
            The plaintext.

        Raises:
            cryptography.exceptions.InvalidTag: the key, nonce, ciphertext,
                tag or associated data is not the one sealed (callers
                translate it, as for ``AESGCM``).
            InvalidArgumentError: ``nonce`` is not 24 bytes, or ``data`` /
                ``associated_data`` is not bytes-like or too long for GCM.
        """
        aead, gcm_nonce = self.__derive(nonce)
        try:
            return aead.decrypt(gcm_nonce, data, associated_data)
        except (TypeError, OverflowError):
            raise InvalidArgumentError(
                "data and associated data must be bytes of at most 2**31 - 1 bytes"
            ) from None

    def __repr__(self) -> str:
        return "XAES256GCM(<key redacted>)"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("XAES256GCM cannot be pickled")
