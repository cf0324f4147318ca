"""``km.exchange``: handshakes wired to the manager's PKI, clock, randomness, replay cache, log."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519

from keymgmt._context import Context
from keymgmt._replay import DEFAULT_WINDOW, ReplayCache
from keymgmt.algorithms import ExchangeGroup
from keymgmt.errors import InvalidArgumentError
from keymgmt.exchange._agreement import DEFAULT_GROUP
from keymgmt.exchange._audit import HandshakeAudit, HandshakeAuditPolicy
from keymgmt.exchange.handshake._connection import DEFAULT_ACCEPTED_GROUPS, Initiator, Responder
from keymgmt.exchange.handshake._verify import (
    Credential,
    PeerPrivateKey,
    PeerVerifier,
    PKIPeerVerifier,
)

if TYPE_CHECKING:
    from keymgmt.pki import PKI, CertificateAuthority

__all__ = ["Exchange"]


class Exchange:
    """Authenticated key exchange for one :class:`~keymgmt.KeyManager`.

    Handshakes made here read the manager's clock and randomness, verify
    peers with ``km.pki`` (chains to the store's roots, revocation from the
    registry), as responders share one replay cache, and are audited:
    each accepted handshake as one ``exchange.handshake`` entry (batched by
    default), refusals aggregated per kind and interval so that a flood of
    bad hellos cannot grow the log (see :class:`HandshakeAuditPolicy`).

    Args:
        context: the manager's wiring.
        pki: the manager's PKI.
        replay_window: how long ClientHello nonces are remembered.
        audit: how handshakes are audited (default: batched).
    """

    def __init__(
        self,
        context: Context,
        pki: PKI,
        *,
        replay_window: _dt.timedelta = DEFAULT_WINDOW,
        audit: HandshakeAuditPolicy | None = None,
    ) -> None:
        self._ctx = context
        self._pki = pki
        self._replay = ReplayCache(window=replay_window, clock=context.clock)
        self._audit = HandshakeAudit(context.store, audit or HandshakeAuditPolicy())

    @property
    def replay_cache(self) -> ReplayCache:
        """The responder-side replay cache shared by this manager's handshakes.

        It holds the ClientHello nonces of *completed* handshakes: a nonce is
        inserted once the initiator authenticated, never for a bare hello.
        """
        return self._replay

    @property
    def audit_policy(self) -> HandshakeAuditPolicy:
        """How handshakes made from now on are audited.

        Setting it writes what the old policy had pending first; handshakes
        already started follow the new policy from then on.

        Raises:
            InvalidArgumentError: (setting) not a :class:`HandshakeAuditPolicy`.
            KeyMgmtError: (setting) the pending entries could not be written.
        """
        return self._audit.policy

    @audit_policy.setter
    def audit_policy(self, policy: HandshakeAuditPolicy) -> None:
        candidate: object = policy
        if not isinstance(candidate, HandshakeAuditPolicy):
            raise InvalidArgumentError("audit_policy takes a HandshakeAuditPolicy")
        self._audit.set_policy(policy)

    def flush_audit(self) -> None:
        """Write pending handshake audit entries and refusal aggregates now.

        ``km.close()`` calls it.

        Raises:
            KeyMgmtError: the store refused the write (the entries stay pending).
        """
        self._audit.flush()

    def _observe(self, handshake: Initiator | Responder) -> None:
        audit = self._audit
        if audit.enabled:
            handshake._observer = audit

    def peer_verifier(self) -> PeerVerifier:
        """The PKI-backed verifier (the store's roots, fail-closed revocation)."""
        return PKIPeerVerifier(self._pki.verifier())

    def credential(
        self,
        ca: CertificateAuthority | str,
        identity: str,
        *,
        server: bool = True,
        client: bool = True,
        key: PeerPrivateKey | None = None,
    ) -> Credential:
        """Issue a handshake credential from one of the store's CAs.

        The key (default: a fresh Ed25519 key) stays with the caller; only
        the certificate is recorded by the CA. ``server``/``client`` choose
        the tls-server and/or tls-client profile; with both, the certificate
        carries both extended key usages.

        Raises:
            InvalidArgumentError: neither role, or a bad identity.
            NotFoundError: no such CA.
        """
        from cryptography import x509
        from cryptography.x509.oid import ExtendedKeyUsageOID

        from keymgmt.pki import TLS_CLIENT, TLS_SERVER

        if not (server or client):
            raise InvalidArgumentError("a credential needs the server or the client role")
        authority = self._pki.ca(ca) if isinstance(ca, str) else ca
        leaf_key: PeerPrivateKey = key or ed25519.Ed25519PrivateKey.from_private_bytes(
            self._ctx.randomness.token_bytes(32)  # the manager's: seeded in tests
        )
        profile = TLS_SERVER if server else TLS_CLIENT
        if server and client:
            profile = TLS_SERVER.evolve(
                name="tls-server-client",
                extended_key_usage=(
                    ExtendedKeyUsageOID.SERVER_AUTH,
                    ExtendedKeyUsageOID.CLIENT_AUTH,
                ),
            )
        cert = authority.issue(
            public_key=leaf_key.public_key(), subject=identity, names=[identity], profile=profile
        )
        # Leaf, then the issuing CAs below the root (the root is the peer's trust anchor).
        chain: list[x509.Certificate] = [cert, *authority.chain[:-1]]
        return Credential(chain, leaf_key)

    def initiator(
        self,
        credential: Credential,
        *,
        server_identity: str,
        group: ExchangeGroup | str = DEFAULT_GROUP,
        verifier: PeerVerifier | None = None,
    ) -> Initiator:
        """A client-side handshake on this manager's clock, randomness and PKI.

        Audited as :attr:`audit_policy` says (accepted: one entry; refused
        or failed: counted in an aggregate).

        Warns:
            LegacyAlgorithmWarning: an FFDHE group.
        """
        handshake = Initiator(
            credential=credential,
            verifier=verifier or self.peer_verifier(),
            server_identity=server_identity,
            group=group,
            clock=self._ctx.clock,
            randomness=self._ctx.randomness,
        )
        self._observe(handshake)
        return handshake

    def responder(
        self,
        credential: Credential,
        *,
        client_identity: str | None = None,
        groups: Iterable[ExchangeGroup | str] = DEFAULT_ACCEPTED_GROUPS,
        verifier: PeerVerifier | None = None,
    ) -> Responder:
        """A server-side handshake sharing this manager's replay cache.

        Audited as :attr:`audit_policy` says (accepted: one entry; refused
        or failed: counted in an aggregate).

        Warns:
            LegacyAlgorithmWarning: ``groups`` includes an FFDHE group.
        """
        handshake = Responder(
            credential=credential,
            verifier=verifier or self.peer_verifier(),
            replay_cache=self._replay,
            client_identity=client_identity,
            groups=groups,
            clock=self._ctx.clock,
            randomness=self._ctx.randomness,
        )
        self._observe(handshake)
        return handshake

    def __repr__(self) -> str:
        return f"Exchange(replay={self._replay!r}, audit={self._audit.policy.mode.value})"
