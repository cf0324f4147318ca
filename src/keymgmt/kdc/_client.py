"""Client-side objects: :class:`KdcClient` (asks the KDC) and :class:`TicketReceiver`.

Both are sans-IO: they turn calls into request bytes and reply bytes into
checked results, read time only from the injected clock, and keep only the
state the protocol needs (pending request nonces; a replay cache and the
latest revocation list). A *transport* — any ``Callable[[bytes], bytes]``,
such as :class:`~keymgmt.kdc.InProcessTransport` — carries bytes when the
``fetch_*`` conveniences are used.
"""

from __future__ import annotations

import collections
import datetime as _dt
import threading
from collections.abc import Callable
from typing import Final

import attrs
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keymgmt._random import Randomness, SystemRandomness
from keymgmt._replay import ReplayCache
from keymgmt._secret import SecretBytes
from keymgmt.clock import Clock, SystemClock
from keymgmt.errors import (
    InvalidArgumentError,
    LocalProtocolError,
    RemoteProtocolError,
    RevokedError,
    StaleMessageError,
)
from keymgmt.kdc import _crypto
from keymgmt.kdc import _protocol as p
from keymgmt.kdc import _wire as w
from keymgmt.kdc._events import (
    DEFAULT_SKEW,
    AcceptedSession,
    ApRequest,
    CertificateCredential,
    Credential,
    GrantedKey,
    RevocationList,
    SessionTicket,
    SymmetricCredential,
)
from keymgmt.kdc._replays import PrincipalReplayCache
from keymgmt.kdc._wire import MessageType

__all__ = ["KdcClient", "TicketReceiver", "Transport"]

#: Carries one request to the KDC and returns its reply.
Transport = Callable[[bytes], bytes]

_MAX_PENDING: Final = 1024


@attrs.frozen
class _Pending:
    kind: MessageType
    target: str
    reply_private: x25519.X25519PrivateKey | None = attrs.field(repr=False)


class KdcClient:
    """One principal's side of the KDC protocol.

    Args:
        credential: the principal's long-term credential.
        clock: the time source (timestamps, expiry checks).
        randomness: nonces and ephemeral keys.

    Raises:
        InvalidArgumentError: an unusable credential.
    """

    def __init__(
        self,
        credential: Credential,
        *,
        clock: Clock | None = None,
        randomness: Randomness | None = None,
    ) -> None:
        if not isinstance(credential, SymmetricCredential | CertificateCredential):
            raise InvalidArgumentError(
                "credential must be a SymmetricCredential or CertificateCredential"
            )
        self.credential = credential
        self.principal = credential.principal
        self._clock = clock or SystemClock()
        self._rng = randomness or SystemRandomness()
        self._kdc_key = ed25519.Ed25519PublicKey.from_public_bytes(credential.kdc_public_key)
        self._aead = (
            AESGCM(credential.key.reveal()) if isinstance(credential, SymmetricCredential) else None
        )
        self._pending: collections.OrderedDict[bytes, _Pending] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._revocations: RevocationList | None = None
        self._list_nonce = b""

    def __repr__(self) -> str:
        return f"KdcClient(principal={self.principal!r}, pending={len(self._pending)})"

    # -- requests ------------------------------------------------------------------

    def _request(self, kind: MessageType, target: str) -> bytes:
        nonce = self._rng.token_bytes(p.NONCE_LEN)
        reply_private = None
        share = b""
        signing_key = None
        if isinstance(self.credential, CertificateCredential):
            reply_private = _crypto.x25519_from_randomness(self._rng)
            share = _crypto.share_of(reply_private)
            signing_key = self.credential.private_key
        data = p.build_request(
            kind,
            self.principal,
            target=target,
            nonce=nonce,
            timestamp=self._clock.now(),
            randomness=self._rng,
            aead=self._aead,
            signing_key=signing_key,
            reply_share=share,
        )
        with self._lock:
            self._pending[nonce] = _Pending(kind, target, reply_private)
            while len(self._pending) > _MAX_PENDING:
                self._pending.popitem(last=False)
        return data

    def key_request(self, key_name: str) -> bytes:
        """Build a KEY_REQUEST for the current version of ``key_name``.

        Raises:
            InvalidArgumentError: an empty or oversize name.
        """
        return self._request(MessageType.KEY_REQUEST, key_name)

    def ticket_request(self, service: str) -> bytes:
        """Build a TICKET_REQUEST for a session key with principal ``service``."""
        return self._request(MessageType.TICKET_REQUEST, service)

    def _take_pending(self, data: bytes, kind: MessageType) -> tuple[bytes, _Pending, list[bytes]]:
        p.raise_if_error(data)
        _, fields = w.decode(data, kind)
        nonce = fields[1]
        with self._lock:
            pending = self._pending.get(nonce)
            if pending is None or pending.kind is not _REQUEST_FOR[kind]:
                raise RemoteProtocolError(
                    "the reply answers no pending request (replayed or unsolicited)"
                )
        return nonce, pending, fields

    def _open(self, data: bytes, kind: MessageType) -> tuple[_Pending, list[bytes]]:
        nonce, pending, fields = self._take_pending(data, kind)
        inner = p.open_reply(
            data,
            kind,
            principal=self.principal,
            nonce=nonce,
            aead=self._aead,
            reply_private=pending.reply_private,
            kdc_public_key=self._kdc_key,
            fields=fields,
        )
        with self._lock:
            # Consumed only once authentic, so a forged reply cannot cancel a request.
            if self._pending.pop(nonce, None) is None:
                raise RemoteProtocolError("the reply answers no pending request (replayed)")
        return pending, inner

    def receive_key_reply(self, data: bytes) -> GrantedKey:
        """Check a KEY_REPLY and return the granted key.

        Raises:
            RemoteProtocolError: not an answer to a pending request, or the
                KDC answered another key name.
            DecryptionError / InvalidSignatureError: not authentic (opaque).
            MalformedInputError: malformed reply.
            AccessDeniedError, RevokedError, ReplayError, StaleMessageError,
            KeyNotFoundError, KeyStateError: the KDC refused (ERROR message).
        """
        pending, inner = self._open(data, MessageType.KEY_REPLY)
        name, version, algorithm, material, issued, expires, grant_id = inner
        granted = GrantedKey(
            key_name=w.text(name, "key name"),
            version=w.read_u32(version),
            algorithm=w.text(algorithm, "algorithm"),
            material=SecretBytes(material),
            issued_at=p.read_ts(issued, "issue time"),
            expires_at=p.read_ts(expires, "expiry"),
            grant_id=grant_id.hex(),
        )
        if granted.key_name != pending.target:
            raise RemoteProtocolError("the KDC answered with another key")
        if granted.expires_at <= self._clock.now():
            raise StaleMessageError("the KDC granted a key that has already expired")
        return granted

    def receive_ticket_reply(self, data: bytes) -> SessionTicket:
        """Check a TICKET_REPLY and return the session key and ticket.

        Raises:
            The same as :meth:`receive_key_reply`.
        """
        pending, inner = self._open(data, MessageType.TICKET_REPLY)
        service, session_key, issued, expires, ticket_id, ticket = inner
        result = SessionTicket(
            client=self.principal,
            service=w.text(service, "service name"),
            session_key=SecretBytes(session_key),
            issued_at=p.read_ts(issued, "issue time"),
            expires_at=p.read_ts(expires, "expiry"),
            ticket_id=ticket_id.hex(),
            ticket=ticket,
        )
        if result.service != pending.target or p.ticket_service(ticket) != pending.target:
            raise RemoteProtocolError("the KDC answered with a ticket for another service")
        if result.expires_at <= self._clock.now():
            raise StaleMessageError("the KDC issued a ticket that has already expired")
        return result

    # -- tickets -------------------------------------------------------------------

    def ap_request(self, ticket: SessionTicket) -> ApRequest:
        """Build an AP_REQUEST (ticket + fresh authenticator) for ``ticket.service``.

        Raises:
            StaleMessageError: the ticket has expired.
            LocalProtocolError: the ticket belongs to another client.
            RevokedError: the latest revocation list names the service.
            InvalidArgumentError: not a SessionTicket.
        """
        if not isinstance(ticket, SessionTicket):
            raise InvalidArgumentError("ap_request takes the SessionTicket of a ticket reply")
        if ticket.client != self.principal:
            raise LocalProtocolError("this ticket was issued to another client")
        self._refuse_revoked_service(ticket.service)
        now = self._clock.now()
        if now >= ticket.expires_at:
            raise StaleMessageError("the ticket has expired; request a new one")
        nonce = self._rng.token_bytes(p.NONCE_LEN)
        data = p.build_ap_request(
            ticket.ticket,
            AESGCM(ticket.session_key.reveal()),
            self._rng,
            client=self.principal,
            timestamp=now,
            nonce=nonce,
        )
        return ApRequest(data=data, nonce=nonce, ticket=ticket)

    def receive_ap_reply(self, request: ApRequest, data: bytes) -> None:
        """Check the service's AP_REPLY: it holds the session key (mutual authentication).

        Raises:
            DecryptionError: not made with the session key (opaque).
            RemoteProtocolError: it answers another authenticator.
            MalformedInputError: malformed reply.
            RevokedError: the latest revocation list names the service
                (whoever holds its leaked key can answer in its name).
            InvalidArgumentError: ``request`` is not an ApRequest.
        """
        if not isinstance(request, ApRequest):
            raise InvalidArgumentError("receive_ap_reply takes the ApRequest it answers")
        self._refuse_revoked_service(request.ticket.service)
        p.open_ap_reply(data, AESGCM(request.ticket.session_key.reveal()), nonce=request.nonce)

    def _refuse_revoked_service(self, service: str) -> None:
        # A ticket issued before its service was revoked still opens with the
        # service's (possibly leaked) key, as a receiver refuses a revoked
        # client on its list, the client refuses a revoked service on its own.
        current = self._revocations
        if current is not None and current.is_revoked("principal", service):
            raise RevokedError(f"principal {service!r} is revoked", principal=service)

    # -- revocation ----------------------------------------------------------------

    def revocation_list_request(self) -> bytes:
        """Build a REVOCATION_LIST_REQUEST with a fresh nonce."""
        self._list_nonce = self._rng.token_bytes(p.NONCE_LEN)
        return w.encode(MessageType.REVOCATION_LIST_REQUEST, [self._list_nonce])

    def receive_revocation_list(self, data: bytes) -> RevocationList:
        """Verify the KDC's signed revocation list and keep it for :meth:`check_grant`.

        Raises:
            InvalidSignatureError: not signed by the KDC (opaque).
            RemoteProtocolError: it does not answer our request, or it is
                older than the list we hold (rollback).
            StaleMessageError: its next update is already past.
            MalformedInputError: malformed list.
        """
        result = p.open_revocation_list(data, self._kdc_key, nonce=self._list_nonce)
        if result.next_update <= self._clock.now():
            raise StaleMessageError("the revocation list is out of date")
        current = self._revocations
        # The number alone orders lists (it is the store generation, which
        # only grows); this_update is the answering process's clock, which
        # may step back or differ between KDC processes.
        if current is not None and result.number < current.number:
            raise RemoteProtocolError("the revocation list is older than the one held (rollback)")
        self._list_nonce = b""
        self._revocations = result
        return result

    @property
    def revocation_list(self) -> RevocationList | None:
        """The latest verified revocation list, if any."""
        return self._revocations

    def check_grant(self, grant: GrantedKey) -> None:
        """Whether a granted key may still be used now.

        Raises:
            StaleMessageError: the grant expired (ask the KDC again), or no
                current revocation list is held.
            RevokedError: the latest revocation list names the key version,
                or this client's own principal (revoked, or its certificate
                revoked at its CA: what was granted to that credential is
                no longer to be used).
            InvalidArgumentError: not a GrantedKey.
        """
        if not isinstance(grant, GrantedKey):
            raise InvalidArgumentError("check_grant takes a GrantedKey")
        now = self._clock.now()
        if not grant.is_valid(now):
            raise StaleMessageError(
                f"the grant of {grant.key_id} has expired; request the key again",
                key_name=grant.key_name,
                version=grant.version,
            )
        current = self._revocations
        if current is None or current.next_update <= now:
            raise StaleMessageError("no current revocation list; fetch one from the KDC")
        if current.key_revoked(grant.key_name, grant.version):
            raise RevokedError(
                f"key {grant.key_id} is revoked", key_name=grant.key_name, version=grant.version
            )
        if current.is_revoked("principal", self.principal):
            raise RevokedError(
                f"principal {self.principal!r} (this client) is revoked; "
                f"stop using the grant of {grant.key_id}",
                principal=self.principal,
            )

    # -- conveniences over a transport --------------------------------------------

    def fetch_key(self, key_name: str, transport: Transport) -> GrantedKey:
        """Request ``key_name`` over ``transport`` and check the reply."""
        return self.receive_key_reply(transport(self.key_request(key_name)))

    def fetch_ticket(self, service: str, transport: Transport) -> SessionTicket:
        """Request a ticket for ``service`` over ``transport`` and check the reply."""
        return self.receive_ticket_reply(transport(self.ticket_request(service)))

    def fetch_revocation_list(self, transport: Transport) -> RevocationList:
        """Fetch and verify the KDC's revocation list over ``transport``."""
        return self.receive_revocation_list(transport(self.revocation_list_request()))


_REQUEST_FOR: Final = {
    MessageType.KEY_REPLY: MessageType.KEY_REQUEST,
    MessageType.TICKET_REPLY: MessageType.TICKET_REQUEST,
}


#: Authenticator nonces a receiver remembers per client by default (as the
#: KDC's ``KdcSettings.replay_capacity``): about 11 MB per flooding client.
_RECEIVER_CAPACITY: Final = 100_000


class TicketReceiver:
    """A service's side of a Kerberos-style session: checks tickets and authenticators.

    Args:
        credential: the service's symmetric credential (tickets are sealed
            under its long-term key).
        clock: the time source.
        randomness: nonces for AP replies.
        skew: the allowed clock skew (default 5 minutes).
        replay_cache: where authenticator nonces are remembered (default: a
            new :class:`~keymgmt.kdc.PrincipalReplayCache` with ``skew`` as
            its window and 100,000 nonces per client: one bounded cache per
            client, so no client can
            narrow another's window). Receivers of one service that share a
            cache pass the same object; a plain
            :class:`~keymgmt._replay.ReplayCache` is used as one cache for
            every client (its overload floor is then shared too).

    Raises:
        InvalidArgumentError: not a symmetric credential, a skew that is
            not a positive timedelta, or another kind of replay cache.
    """

    def __init__(
        self,
        credential: SymmetricCredential,
        *,
        clock: Clock | None = None,
        randomness: Randomness | None = None,
        skew: _dt.timedelta = DEFAULT_SKEW,
        replay_cache: ReplayCache | PrincipalReplayCache | None = None,
    ) -> None:
        if not isinstance(credential, SymmetricCredential):
            raise InvalidArgumentError(
                "a ticket receiver needs a symmetric credential (tickets are sealed under it)"
            )
        if not isinstance(skew, _dt.timedelta) or skew <= _dt.timedelta(0):
            raise InvalidArgumentError("skew must be a positive timedelta")
        if replay_cache is not None and not isinstance(
            replay_cache, ReplayCache | PrincipalReplayCache
        ):
            raise InvalidArgumentError("replay_cache must be a ReplayCache or PrincipalReplayCache")
        self.principal = credential.principal
        self._aead = AESGCM(credential.key.reveal())
        self._clock = clock or SystemClock()
        self._rng = randomness or SystemRandomness()
        self._skew = skew
        self._replay = (
            replay_cache
            if replay_cache is not None  # an empty cache is falsy (it has a length)
            else PrincipalReplayCache(
                window=skew, max_skew=skew, capacity=_RECEIVER_CAPACITY, clock=self._clock
            )
        )
        self._kdc_key = ed25519.Ed25519PublicKey.from_public_bytes(credential.kdc_public_key)
        self._revocations: RevocationList | None = None
        self._list_nonce = b""

    def __repr__(self) -> str:
        return f"TicketReceiver(principal={self.principal!r}, replay={self._replay!r})"

    def accept(self, data: bytes) -> AcceptedSession:
        """Check an AP_REQUEST and accept the session once.

        Raises:
            MalformedInputError: malformed request, ticket or authenticator.
            RemoteProtocolError: the ticket is for another service, or the
                authenticator names another client.
            DecryptionError: the ticket or authenticator does not open (opaque).
            StaleMessageError: the ticket is not yet valid or has expired, or
                the authenticator's time is outside the skew.
            ReplayError: the authenticator was seen before.
            RevokedError: the client is on the latest revocation list.
        """
        ticket, authenticator = p.parse_ap_request(data)
        service = p.ticket_service(ticket)
        if service != self.principal:
            raise RemoteProtocolError(
                f"the ticket is for service {service!r}, not {self.principal!r}", service=service
            )
        contents = p.open_ticket(ticket, self._aead)
        now = self._clock.now()
        if now < contents.issued_at - self._skew:
            raise StaleMessageError("the ticket is not valid yet")
        if now >= contents.expires_at:
            raise StaleMessageError("the ticket has expired")
        session = AESGCM(contents.session_key)
        client, stamp, nonce = p.open_authenticator(ticket, authenticator, session)
        if client != contents.client:
            raise RemoteProtocolError("the authenticator names another client than the ticket")
        if self._revocations is not None and self._revocations.is_revoked("principal", client):
            raise RevokedError(f"principal {client!r} is revoked", principal=client)
        replay = self._replay
        if isinstance(replay, PrincipalReplayCache):
            replay.check_and_insert(client, nonce, stamp, at=now)
        else:
            replay.check_and_insert(p.scoped_nonce(client, nonce), stamp, at=now)
        return AcceptedSession(
            client=client,
            service=contents.service,
            session_key=SecretBytes(contents.session_key),
            expires_at=contents.expires_at,
            ticket_id=contents.ticket_id.hex(),
            reply=p.build_ap_reply(session, self._rng, nonce=nonce, timestamp=stamp),
        )

    def revocation_list_request(self) -> bytes:
        """Build a REVOCATION_LIST_REQUEST with a fresh nonce."""
        self._list_nonce = self._rng.token_bytes(p.NONCE_LEN)
        return w.encode(MessageType.REVOCATION_LIST_REQUEST, [self._list_nonce])

    def receive_revocation_list(self, data: bytes) -> RevocationList:
        """Verify the KDC's revocation list; revoked clients are refused from now on.

        Raises:
            InvalidSignatureError: not signed by the KDC (opaque).
            RemoteProtocolError: it does not answer our request, or rollback.
            StaleMessageError: already out of date.
        """
        result = p.open_revocation_list(data, self._kdc_key, nonce=self._list_nonce)
        if result.next_update <= self._clock.now():
            raise StaleMessageError("the revocation list is out of date")
        current = self._revocations
        if current is not None and result.number < current.number:
            raise RemoteProtocolError("the revocation list is older than the one held (rollback)")
        self._list_nonce = b""
        self._revocations = result
        return result

    def fetch_revocation_list(self, transport: Transport) -> RevocationList:
        """Fetch and verify the KDC's revocation list over ``transport``."""
        return self.receive_revocation_list(transport(self.revocation_list_request()))
