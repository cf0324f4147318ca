"""Centralized key distribution, Kerberos-style (``km.kdc``).

Principals registered with the KDC hold a long-term credential (a symmetric
key sealed in the store, or a certificate from the PKI). A default-deny
:class:`Policy` says which principal may obtain which named keys and share
session keys with which peers. The protocol is sans-IO and versioned
(:mod:`keymgmt.kdc._wire`, :mod:`keymgmt.kdc._protocol`): a
:class:`KdcClient` builds requests and checks replies, a
:class:`TicketReceiver` accepts tickets, and :class:`InProcessTransport`
connects them to the :class:`KeyDistributionCenter` in one process. See
``docs/kdc.md`` for the protocol and the wire format.
"""

from keymgmt.kdc._client import KdcClient, TicketReceiver, Transport
from keymgmt.kdc._compromise import CompromiseReport, Playbook
from keymgmt.kdc._events import (
    DEFAULT_SKEW,
    AcceptedSession,
    ApRequest,
    AuthKind,
    CertificateCredential,
    Credential,
    ErrorCode,
    GrantedKey,
    RevocationList,
    RevokedEntry,
    SessionTicket,
    SymmetricCredential,
)
from keymgmt.kdc._policy import AccessRule, Policy
from keymgmt.kdc._replays import PrincipalReplayCache
from keymgmt.kdc._server import (
    CertificateSubjects,
    CertificateVerifier,
    DistributableKey,
    GrantRecord,
    KdcSettings,
    KeyDistributionCenter,
    KeySource,
    PrincipalInfo,
    Signer,
    StoredSigner,
)
from keymgmt.kdc._transport import InProcessTransport
from keymgmt.kdc._wire import VERSION as PROTOCOL_VERSION
from keymgmt.kdc._wire import MessageType, claimed_principal

__all__ = [
    "DEFAULT_SKEW",
    "PROTOCOL_VERSION",
    "AcceptedSession",
    "AccessRule",
    "ApRequest",
    "AuthKind",
    "CertificateCredential",
    "CertificateSubjects",
    "CertificateVerifier",
    "CompromiseReport",
    "Credential",
    "DistributableKey",
    "ErrorCode",
    "GrantRecord",
    "GrantedKey",
    "InProcessTransport",
    "KdcClient",
    "KdcSettings",
    "KeyDistributionCenter",
    "KeySource",
    "MessageType",
    "Playbook",
    "Policy",
    "PrincipalInfo",
    "PrincipalReplayCache",
    "RevocationList",
    "RevokedEntry",
    "SessionTicket",
    "Signer",
    "StoredSigner",
    "SymmetricCredential",
    "TicketReceiver",
    "Transport",
    "claimed_principal",
]
