"""Key exchange: ephemeral agreement always followed by HKDF, and an authenticated handshake.

* :class:`KeyShare` / :func:`respond` — one ephemeral agreement in X25519
  (default), ECDH P-256/P-384, the X25519+ML-KEM-768 hybrid, or the legacy
  RFC 7919 FFDHE groups (which warn with :class:`LegacyAlgorithmWarning`).
  Peer shares are validated; callers only ever get HKDF output bound to a
  salt and an info they name.
* :func:`hkdf`, :func:`hkdf_extract`, :func:`hkdf_expand` — RFC 5869.
* :class:`Initiator` / :class:`Responder` — the sans-IO, mutually
  authenticated handshake with forward secrecy, key confirmation and replay
  protection (essay in :mod:`keymgmt.exchange.handshake._connection`).
* :class:`SecureChannel` — per-direction AEAD records with implicit sequence
  numbers, rekey and close.
* :class:`ReplayCache` — the bounded nonce cache the responder keeps.
* :class:`Exchange` (``km.exchange``) — handshakes wired to a manager, and
  audited as :class:`HandshakeAuditPolicy` says.
"""

from keymgmt._replay import ReplayCache
from keymgmt.exchange._agreement import DEFAULT_GROUP, KeyShare, respond
from keymgmt.exchange._audit import HandshakeAuditMode, HandshakeAuditPolicy
from keymgmt.exchange._channel import (
    NEED_DATA,
    ChannelCipher,
    Closed,
    Data,
    KeyUpdated,
    NeedData,
    SecureChannel,
)
from keymgmt.exchange._groups import GroupInfo, LegacyAlgorithmWarning, group_info
from keymgmt.exchange._hkdf import hkdf, hkdf_expand, hkdf_extract
from keymgmt.exchange._part import Exchange
from keymgmt.exchange.handshake import (
    DEFAULT_ACCEPTED_GROUPS,
    ChainVerifier,
    Credential,
    HandshakeComplete,
    HandshakeEvent,
    HandshakeState,
    HelloReceived,
    Initiator,
    PeerPrivateKey,
    PeerPublicKey,
    PeerRole,
    PeerVerifier,
    PKIPeerVerifier,
    Responder,
    Role,
    Session,
    VerifiedPeer,
)

__all__ = [
    "DEFAULT_ACCEPTED_GROUPS",
    "DEFAULT_GROUP",
    "NEED_DATA",
    "ChainVerifier",
    "ChannelCipher",
    "Closed",
    "Credential",
    "Data",
    "Exchange",
    "GroupInfo",
    "HandshakeAuditMode",
    "HandshakeAuditPolicy",
    "HandshakeComplete",
    "HandshakeEvent",
    "HandshakeState",
    "HelloReceived",
    "Initiator",
    "KeyShare",
    "KeyUpdated",
    "LegacyAlgorithmWarning",
    "NeedData",
    "PKIPeerVerifier",
    "PeerPrivateKey",
    "PeerPublicKey",
    "PeerRole",
    "PeerVerifier",
    "ReplayCache",
    "Responder",
    "Role",
    "SecureChannel",
    "Session",
    "VerifiedPeer",
    "group_info",
    "hkdf",
    "hkdf_expand",
    "hkdf_extract",
    "respond",
]
