"""The mutually authenticated, sans-IO handshake (see :mod:`._connection` for the essay)."""

from keymgmt.exchange._channel import NEED_DATA, NeedData
from keymgmt.exchange.handshake._connection import (
    DEFAULT_ACCEPTED_GROUPS,
    HandshakeComplete,
    HandshakeEvent,
    HandshakeState,
    HelloReceived,
    Initiator,
    Responder,
    Role,
    Session,
)
from keymgmt.exchange.handshake._verify import (
    ChainVerifier,
    Credential,
    PeerPrivateKey,
    PeerPublicKey,
    PeerRole,
    PeerVerifier,
    PKIPeerVerifier,
    VerifiedPeer,
)

__all__ = [
    "DEFAULT_ACCEPTED_GROUPS",
    "NEED_DATA",
    "ChainVerifier",
    "Credential",
    "HandshakeComplete",
    "HandshakeEvent",
    "HandshakeState",
    "HelloReceived",
    "Initiator",
    "NeedData",
    "PKIPeerVerifier",
    "PeerPrivateKey",
    "PeerPublicKey",
    "PeerRole",
    "PeerVerifier",
    "Responder",
    "Role",
    "Session",
    "VerifiedPeer",
]
