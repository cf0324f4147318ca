"""The key schedule: RFC 8446 section 7.1, with keymgmt's labels, SHA-256, no PSK.

::

                 0
                 |
    0 (no PSK) -> HKDF-Extract = Early Secret
                 |
           Derive-Secret(., "derived", "")
                 |
    (EC)DHE   -> HKDF-Extract = Handshake Secret      (hybrid: ML-KEM ss || X25519 ss)
                 |
                 +-> Derive-Secret(., "c hs traffic", CH..SH) = client handshake secret
                 +-> Derive-Secret(., "s hs traffic", CH..SH) = server handshake secret
                 |
           Derive-Secret(., "derived", "")
                 |
         0 -> HKDF-Extract = Master Secret
                 |
                 +-> Derive-Secret(., "c ap traffic", CH..ClientFinish) = client application
                 +-> Derive-Secret(., "s ap traffic", CH..ClientFinish) = server application
                 +-> Derive-Secret(., "exp master",   CH..ClientFinish) = exporter secret

Unlike TLS 1.3 the application secrets cover the *whole* transcript, client
authentication included, because every session here is mutually
authenticated and the server has nothing to send before it knows the client.
Each handshake secret yields an AEAD key and IV (``"key"``, ``"iv"``) and a
finished key (``"finished"``); the finished MAC is
``HMAC(finished key, transcript hash)``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from keymgmt._secret import SecretBytes
from keymgmt.exchange._hkdf import HASH_SIZE, derive_secret, expand_label, hkdf_extract

__all__ = ["KeySchedule", "finished_mac", "traffic_key_iv"]

_EMPTY_HASH: Final = hashlib.sha256(b"").digest()
KEY_SIZE: Final = 32
IV_SIZE: Final = 12


class KeySchedule:
    """The secrets of one handshake, derived in order from the shared secret."""

    __slots__ = ("_handshake_secret", "_master_secret")

    def __init__(self, shared_secret: SecretBytes) -> None:
        early = hkdf_extract(salt=b"", ikm=bytes(HASH_SIZE))
        salt = derive_secret(early, b"derived", _EMPTY_HASH)
        self._handshake_secret = hkdf_extract(salt=salt.reveal(), ikm=shared_secret)
        salt = derive_secret(self._handshake_secret, b"derived", _EMPTY_HASH)
        self._master_secret = hkdf_extract(salt=salt.reveal(), ikm=bytes(HASH_SIZE))

    def handshake_secrets(self, hello_hash: bytes) -> tuple[SecretBytes, SecretBytes]:
        """(client, server) handshake traffic secrets from ``Hash(CH..SH)``."""
        return (
            derive_secret(self._handshake_secret, b"c hs traffic", hello_hash),
            derive_secret(self._handshake_secret, b"s hs traffic", hello_hash),
        )

    def application_secrets(
        self, transcript_hash: bytes
    ) -> tuple[SecretBytes, SecretBytes, SecretBytes]:
        """(client, server, exporter) secrets from ``Hash(CH..ClientFinish)``."""
        return (
            derive_secret(self._master_secret, b"c ap traffic", transcript_hash),
            derive_secret(self._master_secret, b"s ap traffic", transcript_hash),
            derive_secret(self._master_secret, b"exp master", transcript_hash),
        )

    def __repr__(self) -> str:
        return "KeySchedule(<secret>)"


def traffic_key_iv(secret: SecretBytes) -> tuple[bytes, bytes]:
    """The AEAD key and IV for a traffic secret."""
    return (
        expand_label(secret, b"key", b"", KEY_SIZE).reveal(),
        expand_label(secret, b"iv", b"", IV_SIZE).reveal(),
    )


def finished_mac(secret: SecretBytes, transcript_hash: bytes) -> bytes:
    """``HMAC(Expand-Label(secret, "finished", "", 32), transcript hash)``."""
    key = expand_label(secret, b"finished", b"", HASH_SIZE).reveal()
    return hmac.new(key, transcript_hash, hashlib.sha256).digest()
