"""The authenticated handshake, sans-IO: bytes in, events and bytes out.

How it works
============

Two parties, each holding a CA-issued certificate and its private key, want
a fresh shared key and proof of who the other is. The **initiator** (client)
speaks first; the **responder** (server) keeps a replay cache. Three
messages, in the SIGMA-I pattern ("SIGn-and-MAc", identities protected) that
TLS 1.3 follows::

    Initiator                                          Responder
    ---------                                          ---------
    ClientHello
      nonce_c, timestamp, group,
      ephemeral share g^x (or ML-KEM ek + X25519)
                        ------------------------>
                                                 check timestamp window,
                                                 nonce_c not used by a completed
                                                 handshake (replay cache)
                                                 ephemeral share g^y (or encapsulate)
                                                 K = HKDF schedule(g^xy, CH..SH)
                                        ServerHello
                                          nonce_s, group, share g^y,
                                          {cert chain_s,
                                           Sig_s(Hash(CH..chain_s)),
                                           Finished_s = MAC(Hash(CH..Sig_s))}
                        <------------------------      sealed with the server
                                                       handshake key
    verify chain_s (CA, name, EKU,
      revocation, validity)
    verify Sig_s, Finished_s
    ClientFinish
      {cert chain_c, Sig_c(Hash(CH..chain_c)),
       Finished_c = MAC(Hash(CH..Sig_c))}
                        ------------------------>
                                                 verify chain_c, Sig_c, Finished_c
                                                 remember nonce_c (replay cache)
    application keys, one per direction, and the session id,
    from Hash(CH..Finished_c)

What each step gives
--------------------

* **Fresh ephemeral shares** (one :class:`~keymgmt.exchange.KeyShare` per
  handshake, thrown away after): *forward secrecy*. The long-term keys only
  sign; the session key comes from ephemeral secrets that no longer exist,
  so leaking both certificate keys later does not open a recorded session.
  The hybrid share adds ML-KEM-768 so a future quantum computer that breaks
  X25519 still faces ML-KEM; both secrets enter the schedule.
* **Nonces from both sides** enter the transcript, so each signature is over
  a transcript the other side made fresh: a *replayed* ServerHello or
  ClientFinish signs the wrong transcript. The responder also refuses a
  ClientHello whose timestamp lies outside the window or whose nonce a
  completed handshake used (:class:`~keymgmt._replay.ReplayCache`), before
  doing any expensive work. It *remembers* the nonce only once the
  initiator's signature over a transcript holding it (and the timestamp)
  verified, so unauthenticated hellos never fill the cache or raise its
  overload floor; a replayed hello whose handshake did not complete gets a
  fresh ServerHello it cannot use, and the insertion refuses a second
  completion over one hello (possible only if the responder's randomness
  repeated).
* **Signatures over the transcript hash** with the certificate keys bind
  each identity to *these* shares and nonces: a man in the middle who
  substitutes a share cannot re-sign, and one who presents its own
  certificate fails verification (another CA: unknown issuer; the same CA
  under another name: wrong name). This is *mutual authentication*.
* **Finished MACs** under keys derived from the shared secret give *key
  confirmation*: each side knows the other derived the same keys.
* **Sealed authentication**: certificates, signatures and MACs travel
  encrypted under the handshake traffic keys, so a passive observer learns
  neither identity (SIGMA-I's identity protection; an active attacker can
  still probe the responder's identity, as in TLS 1.3).
* **The key schedule** (RFC 8446 section 7.1, see
  :mod:`keymgmt.exchange.handshake._schedule`) separates handshake keys,
  per-direction application keys and an exporter; the **session id** is
  exported from the whole transcript and serves as a channel binding.

The wire format is in :mod:`keymgmt.exchange.handshake._wire`.

Driving it
==========

The model is h11: :meth:`receive_data` takes bytes, :meth:`next_event`
returns the next event or :data:`NEED_DATA`, and bytes the protocol must send
are collected by :meth:`data_to_send` (as in h2: the handshake decides its
own messages, so there is no event for the caller to build). No sockets, no
clock reads: the time is an argument (``at=``) or comes from a
:class:`~keymgmt.clock.Clock` the caller hands in.

States::

    Initiator:  IDLE --start()--> WAIT_SERVER_HELLO --ServerHello--> COMPLETE
    Responder:  WAIT_CLIENT_HELLO --ClientHello--> WAIT_CLIENT_FINISH
                                   --ClientFinish--> COMPLETE
    any state --bad input--> FAILED (every later call: LocalProtocolError)

Errors: anything wrong with what the peer sent raises a
:class:`~keymgmt.errors.RemoteProtocolError` subclass —
:class:`~keymgmt.errors.HandshakeError` (``reason`` says what),
:class:`~keymgmt.errors.PeerVerificationError`,
:class:`~keymgmt.errors.ReplayError`, :class:`~keymgmt.errors.StaleMessageError`
— and never anything else. Calling a method the state does not allow raises
:class:`~keymgmt.errors.LocalProtocolError`.
"""

from __future__ import annotations

import datetime as _dt
import enum
import hashlib
import hmac
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, NoReturn

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from keymgmt._random import Randomness, SystemRandomness
from keymgmt._replay import ReplayCache
from keymgmt._secret import SecretBytes
from keymgmt.algorithms import ExchangeGroup
from keymgmt.clock import Clock, ensure_aware, utc_from_timestamp
from keymgmt.errors import (
    HandshakeError,
    InvalidArgumentError,
    KeyMgmtError,
    LocalProtocolError,
    MalformedInputError,
    RemoteProtocolError,
    ReplayError,
    StaleMessageError,
)
from keymgmt.exchange._agreement import DEFAULT_GROUP, KeyShare, _encapsulate
from keymgmt.exchange._channel import NEED_DATA, ChannelCipher, NeedData, SecureChannel
from keymgmt.exchange._groups import LegacyAlgorithmWarning, group_info
from keymgmt.exchange._hkdf import expand_label
from keymgmt.exchange.handshake import _wire
from keymgmt.exchange.handshake._schedule import KeySchedule, finished_mac, traffic_key_iv
from keymgmt.exchange.handshake._verify import (
    Credential,
    PeerRole,
    PeerVerifier,
    VerifiedPeer,
    verify_signature,
)

if TYPE_CHECKING:
    from keymgmt.exchange._audit import HandshakeAudit

__all__ = [
    "DEFAULT_ACCEPTED_GROUPS",
    "HandshakeComplete",
    "HandshakeState",
    "HelloReceived",
    "Initiator",
    "Responder",
    "Role",
    "Session",
]

#: Groups a responder accepts unless told otherwise (no legacy FFDHE).
DEFAULT_ACCEPTED_GROUPS: Final = frozenset(
    {
        ExchangeGroup.X25519,
        ExchangeGroup.X25519_MLKEM768,
        ExchangeGroup.P256,
        ExchangeGroup.P384,
    }
)

_SERVER_CONTEXT: Final = b" " * 64 + b"keymgmt handshake v1, server signature\x00"
_CLIENT_CONTEXT: Final = b" " * 64 + b"keymgmt handshake v1, client signature\x00"


class Role(enum.StrEnum):
    """Which side of the handshake this is."""

    INITIATOR = "initiator"
    RESPONDER = "responder"


class HandshakeState(enum.StrEnum):
    """Where a handshake is (see the module docs for the transitions)."""

    IDLE = "idle"
    WAIT_SERVER_HELLO = "wait-server-hello"
    WAIT_CLIENT_HELLO = "wait-client-hello"
    WAIT_CLIENT_FINISH = "wait-client-finish"
    COMPLETE = "complete"
    FAILED = "failed"


class Session:
    """The result of a completed handshake: who the peer is and the keys.

    Attributes:
        role: this side's role.
        peer: the verified peer.
        group: the key agreement group used.
        session_id: 32 bytes exported from the whole transcript; equal on
            both sides, unique per session: use it as a channel binding.
    """

    __slots__ = ("_exporter", "_opened", "_recv", "_send", "group", "peer", "role", "session_id")

    def __init__(
        self,
        *,
        role: Role,
        peer: VerifiedPeer,
        group: ExchangeGroup,
        send_secret: SecretBytes,
        receive_secret: SecretBytes,
        exporter_secret: SecretBytes,
    ) -> None:
        self.role = role
        self.peer = peer
        self.group = group
        self._send = send_secret
        self._recv = receive_secret
        self._exporter = exporter_secret
        self._opened = False
        self.session_id = expand_label(exporter_secret, b"session id", b"", 32).reveal()

    def channel(self, cipher: ChannelCipher = ChannelCipher.CHACHA20_POLY1305) -> SecureChannel:
        """Open the secure channel (once per session).

        Raises:
            LocalProtocolError: the channel was opened already (two channels
                would reuse nonces).
            InvalidArgumentError: an unknown cipher.
        """
        if self._opened:
            raise LocalProtocolError("the session's channel was opened already")
        channel = SecureChannel(send_secret=self._send, receive_secret=self._recv, cipher=cipher)
        self._opened = True
        # The channel holds the traffic secrets now (and forgets them on
        # rekey); a copy kept here would outlive the rekey.
        del self._send, self._recv
        return channel

    def export(self, label: bytes, context: bytes = b"", length: int = 32) -> SecretBytes:
        """A keying-material exporter (RFC 8446 section 7.5 style) for other protocols.

        Raises:
            InvalidArgumentError: label/context not bytes, a label too long,
                or a bad length.
        """
        candidates: tuple[object, object] = (label, context)
        if not all(isinstance(c, bytes | bytearray | memoryview) for c in candidates):
            raise InvalidArgumentError("the exporter label and context must be bytes")
        label = bytes(label)
        secret = expand_label(self._exporter, b"exporter " + label, b"", 32)
        return expand_label(secret, b"exporter", hashlib.sha256(context).digest(), length)

    def __repr__(self) -> str:
        return f"Session({self.role.value}, peer={self.peer.identity!r}, group={self.group.value})"

    # A copy would hold the same traffic secrets with its own "opened" flag:
    # two channels under one key and IV, so the same nonces (keystream reuse).
    def __reduce__(self) -> NoReturn:
        raise TypeError("a Session cannot be pickled or copied (two channels would reuse nonces)")

    def __copy__(self) -> NoReturn:
        raise TypeError("a Session cannot be copied (two channels would reuse nonces)")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError("a Session cannot be copied (two channels would reuse nonces)")

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)


@attrs.frozen
class HelloReceived:
    """Responder: a fresh ClientHello was accepted and the ServerHello is queued."""

    group: ExchangeGroup
    post_quantum: bool


@attrs.frozen
class HandshakeComplete:
    """The peer is authenticated and the keys are confirmed."""

    session: Session

    def _repr_html_(self) -> str:
        """Jupyter's HTML view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text view (metadata only; see :mod:`keymgmt.views`)."""
        from keymgmt._views import pretty

        pretty(self, printer, cycle)


HandshakeEvent = HelloReceived | HandshakeComplete | NeedData


def _timestamp_ms(at: _dt.datetime) -> int:
    ms = int(at.timestamp() * 1000)
    if ms < 0:  # the wire field is unsigned
        raise InvalidArgumentError(f"the time {at.isoformat()} is before 1970")
    return ms


def _seal(secret: SecretBytes, plaintext: bytes) -> bytes:
    key, iv = traffic_key_iv(secret)
    return ChaCha20Poly1305(key).encrypt(iv, plaintext, None)


def _open(secret: SecretBytes, ciphertext: bytes, what: str) -> bytes:
    key, iv = traffic_key_iv(secret)
    try:
        return ChaCha20Poly1305(key).decrypt(iv, ciphertext, None)
    except InvalidTag:
        raise HandshakeError(
            f"{what} did not decrypt (tampered, or keys differ)", reason="bad-seal"
        ) from None


class _Handshake:
    """The machinery both roles share: buffering, framing, state and failure."""

    _role: Role
    _peer_role: PeerRole

    def __init__(
        self,
        *,
        credential: Credential,
        verifier: PeerVerifier,
        peer_identity: str | None,
        clock: Clock | None,
        randomness: Randomness | None,
        state: HandshakeState,
    ) -> None:
        self._credential = credential
        self._verifier = verifier
        self._peer_identity = peer_identity
        self._clock = clock
        self._rng: Randomness = randomness or SystemRandomness()
        self._state = state
        self._buffer = bytearray()
        self._eof = False
        self._outgoing = bytearray()
        self._transcript = hashlib.sha256()
        # Set by keymgmt.exchange.Exchange: told (in memory) how the handshake ended.
        self._observer: HandshakeAudit | None = None
        # The ClientHello frame (the audit's handle on this handshake) and the
        # name in a peer chain that verified before its signature was checked.
        self._hello_frame: bytes | None = None
        self._claimed: str | None = None

    @property
    def state(self) -> HandshakeState:
        """The current state."""
        return self._state

    @property
    def role(self) -> Role:
        """This side's role."""
        return self._role

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after the last handshake message (records for the channel)."""
        if self._state is not HandshakeState.COMPLETE:
            return b""
        return bytes(self._buffer)

    def _now(self, at: _dt.datetime | None) -> _dt.datetime:
        if at is not None:
            return ensure_aware(at, "at")
        if self._clock is None:
            raise LocalProtocolError("pass at= or give the handshake a clock")
        return ensure_aware(self._clock.now(), "clock time")

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the network; ``b""`` means the stream ended.

        Raises:
            LocalProtocolError: the handshake failed, or data after end of stream.
            InvalidArgumentError: ``data`` is not bytes.
        """
        candidate: object = data
        if not isinstance(candidate, bytes | bytearray | memoryview):
            raise InvalidArgumentError("receive_data takes bytes")
        if self._state is HandshakeState.FAILED:
            raise LocalProtocolError("the handshake has failed")
        if self._eof and data:
            raise LocalProtocolError("receive_data after end of stream")
        if not data:
            self._eof = True
            return
        self._buffer += data

    def data_to_send(self) -> bytes:
        """Bytes the protocol wants sent to the peer (drained on each call)."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def next_event(self, *, at: _dt.datetime | None = None) -> HandshakeEvent:
        """Process buffered input; return the next event or :data:`NEED_DATA`.

        After it returns, send :meth:`data_to_send` to the peer.

        Args:
            at: the current time (default: the handshake's clock).

        Raises:
            HandshakeError: malformed, unexpected, truncated or unauthentic input.
            PeerVerificationError: the peer's certificate or name was refused.
            ReplayError: (responder) the ClientHello nonce was used by a
                completed handshake, or (at the ClientFinish) another
                handshake over the same ClientHello completed first.
            StaleMessageError: (responder) the ClientHello timestamp is outside
                the window, at the ClientHello or by the ClientFinish.
            LocalProtocolError: called in a state that expects nothing, or
                after a failure.
        """
        state = self._state
        if state is HandshakeState.FAILED:
            raise LocalProtocolError("the handshake has failed")
        if state in (HandshakeState.IDLE, HandshakeState.COMPLETE):
            raise LocalProtocolError(f"next_event in state {state.value}")
        now = self._now(at)
        try:
            frame = self._take_frame()
            if frame is None:
                return NEED_DATA
            kind, body = frame
            event = self._handle(kind, body, now)
        except RemoteProtocolError as exc:
            self._fail(exc, now)
            raise
        except MalformedInputError as exc:
            error = HandshakeError(f"invalid key share: {exc.message}", reason="invalid-key-share")
            self._fail(error, now)
            raise error from None
        except KeyMgmtError as exc:
            self._fail(exc, now)
            raise
        except (
            ValueError,
            TypeError,
            OverflowError,
            UnsupportedAlgorithm,
            x509.InvalidVersion,
            x509.DuplicateExtension,
            x509.UnsupportedGeneralNameType,
        ):
            # Foreign parsers (certificates, keys) refusing network input.
            error = HandshakeError("malformed handshake input", reason="malformed")
            self._fail(error, now)
            raise error from None
        except BaseException as exc:
            # A local failure (a custom verifier's bug, an interrupt) mid-message:
            # the transcript and keys are half-updated, so never resume.
            self._fail(exc if isinstance(exc, Exception) else None, now)
            raise
        observer = self._observer
        if observer is not None and type(event) is HandshakeComplete:
            try:
                observer.accepted(
                    role=self._role.value,
                    credential=self._credential,
                    session=event.session,
                    hello=self._hello_frame or b"",
                    transcript=self._transcript.digest(),
                    at=now,
                )
            except BaseException as exc:
                # The audit could not be written (mode "each"): no unaudited session.
                self._fail(exc if isinstance(exc, Exception) else None, now)
                raise
        return event

    def _group_name(self) -> str | None:
        return None

    def _fail(self, error: Exception | None, now: _dt.datetime) -> None:
        self._state = HandshakeState.FAILED
        self._buffer.clear()
        self._outgoing.clear()
        self._forget_secrets()
        observer = self._observer
        if observer is not None and error is not None:
            observer.refused(
                role=self._role.value,
                credential=self._credential,
                expected_peer=self._peer_identity,
                error=error,
                group=self._group_name(),
                hello=self._hello_frame,
                claimed=self._claimed,
                at=now,
            )

    def _forget_secrets(self) -> None:
        """Drop ephemeral keys and handshake secrets (a failed handshake keeps none)."""

    def _take_frame(self) -> tuple[int, bytes] | None:
        buf = self._buffer
        if len(buf) >= _wire.HEADER_SIZE:
            kind, length = _wire.parse_header(bytes(buf[: _wire.HEADER_SIZE]))
            end = _wire.HEADER_SIZE + length
            if len(buf) >= end:
                body = bytes(buf[_wire.HEADER_SIZE : end])
                del buf[:end]
                return kind, body
        if self._eof:
            raise HandshakeError("the stream ended mid-handshake", reason="truncated")
        return None

    def _expect(self, kind: int, wanted: int) -> None:
        if kind != wanted:
            raise HandshakeError(
                f"unexpected {_wire.message_name(kind)} in state {self._state.value}",
                reason="unexpected-message",
            )

    def _handle(self, kind: int, body: bytes, now: _dt.datetime) -> HandshakeEvent:
        raise NotImplementedError

    # -- authentication, shared by both roles ---------------------------------

    def _make_auth(self, secret: SecretBytes, context: bytes) -> bytes:
        """Our chain, signature and finished MAC, hashed into the transcript, sealed."""
        chain = _wire.Auth(self._credential.chain_der, b"", b"")
        self._transcript.update(chain.chain_part())
        signature = self._credential.sign(context + self._transcript.digest())
        part = _wire.Auth((), signature, b"").signature_part()
        self._transcript.update(part)
        finished = finished_mac(secret, self._transcript.digest())
        self._transcript.update(finished)
        auth = _wire.Auth(self._credential.chain_der, signature, finished)
        return _seal(secret, _wire.encode_auth(auth))

    def _check_auth(
        self, secret: SecretBytes, sealed: bytes, context: bytes, now: _dt.datetime, what: str
    ) -> VerifiedPeer:
        """Open, parse and verify the peer's chain, signature and finished MAC."""
        auth = _wire.decode_auth(_open(secret, sealed, what), what)
        peer = self._verifier.verify_peer(
            auth.chain, expected_identity=self._peer_identity, role=self._peer_role, at=now
        )
        self._claimed = peer.identity  # until the signature and MAC verify: a claim
        self._transcript.update(auth.chain_part())
        if not verify_signature(
            peer.public_key, auth.signature, context + self._transcript.digest()
        ):
            raise HandshakeError(
                f"the {what} signature does not verify over the transcript",
                reason="bad-signature",
            )
        self._transcript.update(auth.signature_part())
        expected = finished_mac(secret, self._transcript.digest())
        if not hmac.compare_digest(expected, auth.finished):
            raise HandshakeError(f"the {what} finished MAC does not verify", reason="bad-finished")
        self._transcript.update(auth.finished)
        return peer


class Initiator(_Handshake):
    """The client side of the handshake.

    Args:
        credential: our certificate chain and key (its leaf needs the
            clientAuth extended key usage).
        verifier: judges the responder's chain.
        server_identity: the name the responder's certificate must carry.
        group: the key agreement group (default X25519;
            ``x25519-mlkem768`` for the post-quantum hybrid).
        clock: where ``next_event`` reads the time when ``at=`` is not given.
        randomness: where nonces come from (default: the OS CSPRNG).

    Warns:
        LegacyAlgorithmWarning: ``group`` is an FFDHE group.

    Raises:
        UnsupportedAlgorithmError: unknown group.
        InvalidArgumentError: a server identity that is not a non-empty str.
    """

    _role = Role.INITIATOR
    _peer_role = PeerRole.SERVER

    def __init__(
        self,
        *,
        credential: Credential,
        verifier: PeerVerifier,
        server_identity: str,
        group: ExchangeGroup | str = DEFAULT_GROUP,
        clock: Clock | None = None,
        randomness: Randomness | None = None,
    ) -> None:
        candidate: object = server_identity
        if not isinstance(candidate, str) or not server_identity:
            raise InvalidArgumentError(
                "server_identity must be a str naming the expected responder"
            )
        super().__init__(
            credential=credential,
            verifier=verifier,
            peer_identity=server_identity,
            clock=clock,
            randomness=randomness,
            state=HandshakeState.IDLE,
        )
        self._group = group_info(group)
        self._share: KeyShare | None = None
        self._hello: _wire.ClientHello | None = None

    def start(self, *, at: _dt.datetime | None = None) -> bytes:
        """Make the ClientHello: a fresh nonce, timestamp and ephemeral share.

        Returns:
            The ClientHello bytes to send.

        Raises:
            LocalProtocolError: called twice.
            InvalidArgumentError: a naive time, or one before 1970.
        """
        if self._state is not HandshakeState.IDLE:
            raise LocalProtocolError(f"start() in state {self._state.value}")
        now = self._now(at)
        if self._group.legacy:
            warnings.warn(
                f"{self._group.group.value} is a legacy (finite-field DH) group",
                LegacyAlgorithmWarning,
                stacklevel=2,
            )
        self._share = KeyShare._fresh(self._group, self._rng)
        hello = _wire.ClientHello(
            nonce=self._rng.token_bytes(_wire.NONCE_SIZE),
            timestamp_ms=_timestamp_ms(now),
            group=self._group,
            share=self._share.public_bytes,
        )
        frame = hello.encode()
        self._transcript.update(frame)
        self._hello = hello
        self._hello_frame = frame
        self._state = HandshakeState.WAIT_SERVER_HELLO
        return frame

    def _handle(self, kind: int, body: bytes, now: _dt.datetime) -> HandshakeEvent:
        self._expect(kind, _wire.SERVER_HELLO)
        hello = _wire.ServerHello.decode(body)
        if hello.group != self._group:
            raise HandshakeError("the responder answered in another group", reason="wrong-group")
        assert self._share is not None
        schedule = KeySchedule(self._share._complete(hello.share))
        self._share = None  # the ephemeral private key is gone from here on
        self._transcript.update(hello.plain_part())
        client_hs, server_hs = schedule.handshake_secrets(self._transcript.digest())
        peer = self._check_auth(server_hs, hello.sealed_auth, _SERVER_CONTEXT, now, "ServerHello")
        self._outgoing += _wire.encode_client_finish(self._make_auth(client_hs, _CLIENT_CONTEXT))
        client_ap, server_ap, exporter = schedule.application_secrets(self._transcript.digest())
        self._state = HandshakeState.COMPLETE
        return HandshakeComplete(
            Session(
                role=Role.INITIATOR,
                peer=peer,
                group=self._group.group,
                send_secret=client_ap,
                receive_secret=server_ap,
                exporter_secret=exporter,
            )
        )

    def _forget_secrets(self) -> None:
        self._share = None

    def _group_name(self) -> str | None:
        return self._group.group.value

    def __repr__(self) -> str:
        return f"Initiator({self._state.value}, group={self._group.group.value})"


class Responder(_Handshake):
    """The server side of the handshake.

    Args:
        credential: our certificate chain and key (its leaf needs the
            serverAuth extended key usage).
        verifier: judges the initiator's chain.
        replay_cache: remembers the ClientHello nonces of completed
            handshakes (inserted once the initiator authenticated); share
            one cache between all handshakes of a server.
        client_identity: the name the initiator's certificate must carry, or
            ``None`` to accept any client the verifier accepts (the session
            then names it in ``session.peer.identity``).
        groups: the groups accepted (default: X25519, the hybrid, P-256,
            P-384; FFDHE only when listed explicitly).
        clock: where ``next_event`` reads the time when ``at=`` is not given.
        randomness: where nonces come from (default: the OS CSPRNG).

    Warns:
        LegacyAlgorithmWarning: ``groups`` includes an FFDHE group.

    Raises:
        UnsupportedAlgorithmError: unknown group.
        InvalidArgumentError: a ``client_identity`` that is not a non-empty
            str, or ``groups`` given as one str.
    """

    _role = Role.RESPONDER
    _peer_role = PeerRole.CLIENT

    def __init__(
        self,
        *,
        credential: Credential,
        verifier: PeerVerifier,
        replay_cache: ReplayCache,
        client_identity: str | None = None,
        groups: Iterable[ExchangeGroup | str] = DEFAULT_ACCEPTED_GROUPS,
        clock: Clock | None = None,
        randomness: Randomness | None = None,
    ) -> None:
        candidate: object = client_identity
        if candidate is not None and (not isinstance(candidate, str) or not candidate):
            raise InvalidArgumentError("client_identity must be None or a str naming the client")
        super().__init__(
            credential=credential,
            verifier=verifier,
            peer_identity=client_identity,
            clock=clock,
            randomness=randomness,
            state=HandshakeState.WAIT_CLIENT_HELLO,
        )
        given: object = groups
        if isinstance(given, str):  # "x25519" would be read as groups "x", "2", ...
            raise InvalidArgumentError(
                f"groups takes an iterable of groups, not one str (use [{given!r}])"
            )
        self._groups = frozenset(group_info(g).group for g in groups)
        legacy = sorted(g.value for g in self._groups if group_info(g).legacy)
        if legacy:
            warnings.warn(
                f"accepting legacy finite-field DH groups: {', '.join(legacy)}",
                LegacyAlgorithmWarning,
                stacklevel=2,
            )
        self._replay_cache = replay_cache
        self._client_hs: SecretBytes | None = None
        self._schedule: KeySchedule | None = None
        self._group: ExchangeGroup | None = None
        self._nonce = b""
        self._sent: _dt.datetime | None = None

    def _handle(self, kind: int, body: bytes, now: _dt.datetime) -> HandshakeEvent:
        if self._state is HandshakeState.WAIT_CLIENT_HELLO:
            self._expect(kind, _wire.CLIENT_HELLO)
            return self._on_client_hello(body, now)
        self._expect(kind, _wire.CLIENT_FINISH)
        return self._on_client_finish(body, now)

    def _on_client_hello(self, body: bytes, now: _dt.datetime) -> HandshakeEvent:
        hello = _wire.ClientHello.decode(body)
        frame = hello.encode()  # the body parsed strictly: the same bytes
        self._hello_frame = frame
        group = hello.group.group
        self._group = group
        if group not in self._groups:
            raise HandshakeError(
                f"group {group.value} is not accepted here", reason="unsupported-group"
            )
        # Freshness before any expensive work: a stale hello, or the replay of
        # a hello whose handshake completed, costs a comparison and a set probe.
        # The nonce is *not* remembered yet: nothing here is authenticated, so
        # an unauthenticated flood must not fill the cache (and raise its
        # overload floor for everyone). It is inserted once the initiator's
        # signature over a transcript holding it (and the timestamp) verified,
        # in _on_client_finish; see the module docs, "Replay".
        try:
            sent = utc_from_timestamp(hello.timestamp_ms / 1000)
        except (OverflowError, OSError, ValueError):
            raise HandshakeError("ClientHello timestamp out of range", reason="malformed") from None
        cache = self._replay_cache
        _check_fresh(cache, sent, now)
        if cache.seen(hello.nonce, at=now):
            raise ReplayError("ClientHello nonce already used by a completed handshake")
        self._nonce, self._sent = hello.nonce, sent
        share, shared_secret = _encapsulate(group, hello.share, self._rng)
        schedule = KeySchedule(shared_secret)
        self._transcript.update(frame)
        server = _wire.ServerHello(
            nonce=self._rng.token_bytes(_wire.NONCE_SIZE),
            group=hello.group,
            share=share,
            sealed_auth=b"",
        )
        self._transcript.update(server.plain_part())
        client_hs, server_hs = schedule.handshake_secrets(self._transcript.digest())
        sealed = self._make_auth(server_hs, _SERVER_CONTEXT)
        self._outgoing += attrs.evolve(server, sealed_auth=sealed).encode()
        self._client_hs = client_hs
        self._schedule = schedule
        self._state = HandshakeState.WAIT_CLIENT_FINISH
        return HelloReceived(group=group, post_quantum=hello.group.post_quantum)

    def _on_client_finish(self, body: bytes, now: _dt.datetime) -> HandshakeEvent:
        sealed = _wire.decode_client_finish(body)
        assert self._client_hs is not None
        assert self._schedule is not None
        assert self._group is not None
        peer = self._check_auth(self._client_hs, sealed, _CLIENT_CONTEXT, now, "ClientFinish")
        # The initiator signed a transcript holding its nonce and timestamp:
        # only now may they take a place in the cache. Atomic check and insert:
        # of two handshakes answering one ClientHello (possible only if this
        # side's nonce and share repeat, e.g. a restored snapshot or a seeded
        # generator), at most one completes. A handshake slower than the
        # window ends here as stale.
        assert self._sent is not None
        self._replay_cache.check_and_insert(self._nonce, self._sent, at=now)
        client_ap, server_ap, exporter = self._schedule.application_secrets(
            self._transcript.digest()
        )
        self._schedule = None
        self._client_hs = None
        self._state = HandshakeState.COMPLETE
        return HandshakeComplete(
            Session(
                role=Role.RESPONDER,
                peer=peer,
                group=self._group,
                send_secret=server_ap,
                receive_secret=client_ap,
                exporter_secret=exporter,
            )
        )

    def _forget_secrets(self) -> None:
        self._schedule = None
        self._client_hs = None

    def _group_name(self) -> str | None:
        return None if self._group is None else self._group.value

    def __repr__(self) -> str:
        return f"Responder({self._state.value})"


def _check_fresh(cache: ReplayCache, sent: _dt.datetime, now: _dt.datetime) -> None:
    """Refuse a ClientHello stamped outside ``[now - window, now + max_skew]``.

    The same bounds (and reasons) as the cache's own check, which runs again,
    authoritatively and with its overload floor, when the nonce is inserted.
    """
    try:
        oldest, newest = now - cache.window, now + cache.max_skew
    except OverflowError:
        raise InvalidArgumentError(f"the time {now.isoformat()} is out of range") from None
    if sent < oldest:
        raise StaleMessageError(
            "message timestamp is older than the freshness window", reason="too-old"
        )
    if sent > newest:
        raise StaleMessageError("message timestamp is too far in the future", reason="in-future")
