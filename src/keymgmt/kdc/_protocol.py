"""The KDC protocol, sans-IO: how each message is built, protected and checked.

How it works
------------

There are three exchanges. All of them are bytes in, bytes out: this module
never reads a clock (times are arguments), never touches the store and
never does I/O. :class:`~keymgmt.kdc.KdcClient`,
:class:`~keymgmt.kdc.TicketReceiver` and the KDC itself
(:class:`~keymgmt.kdc.KeyDistributionCenter`) drive it.

**Key request** (client C asks for named key K)::

    C -> KDC   KEY_REQUEST  principal=C, auth, body{K, nonce, timestamp, [share_C]}
    KDC -> C   KEY_REPLY    principal=C, nonce, [share_KDC],
                            sealed{K, version, algorithm, material, issued, expires, grant id},
                            [KDC signature]

A *symmetric* principal seals the body with AES-256-GCM under its long-term
key ``L_C`` (the header and its name are associated data), which both
authenticates and hides the request; the reply is sealed under ``L_C`` too,
so only C can read it and only the KDC (the other holder of ``L_C``) can
have made it. A *certificate* principal signs the body with its certificate
key and adds an ephemeral X25519 share; the KDC answers with its own
ephemeral share, seals the reply under ``HKDF(X25519(...), salt=nonce,
info=transcript)`` and signs it with the KDC's Ed25519 key (which the client
pins), so the reply is authentic and a later leak of the certificate key
does not open recorded replies. In both cases the reply echoes the nonce
inside the authenticated data: a reply answers exactly one request, and the
client accepts it only while that request is pending.

**Session key between A and B** (Kerberos)::

    A -> KDC   TICKET_REQUEST  like a key request, target = B
    KDC -> A   TICKET_REPLY    sealed{B, session key S, issued, expires, ticket id, TICKET}
    TICKET =   service=B, sealed under L_B {A, B, S, issued, expires, ticket id}
    A -> B     AP_REQUEST      TICKET, authenticator sealed under S {A, timestamp, nonce}
    B -> A     AP_REPLY        sealed under S {nonce, timestamp}

B opens the ticket with its long-term key, checks that it names B and is
within its lifetime, opens the authenticator with S, checks that it names
the ticket's client and that its timestamp is fresh, and remembers its
nonce in a replay cache: a replayed AP_REQUEST is refused. The AP reply
proves B to A (mutual authentication).

**Revocation list**: anyone may ask (REVOCATION_LIST_REQUEST with an
optional nonce); the KDC answers with the revoked key versions and
principals, a number, this/next update and the nonce echoed, signed with its
Ed25519 key.

Every message type and version is part of the associated data or the signed
bytes, so nothing can be re-labelled; see :mod:`keymgmt.kdc._wire`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Sequence
from typing import Final, Protocol

import attrs
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keymgmt import _codec
from keymgmt._random import Randomness
from keymgmt.errors import InvalidArgumentError, MalformedInputError, RemoteProtocolError
from keymgmt.kdc import _crypto
from keymgmt.kdc import _wire as w
from keymgmt.kdc._events import AuthKind, ErrorCode, RevocationList, RevokedEntry
from keymgmt.kdc._wire import INNER, MessageType

__all__ = [
    "RequestBody",
    "RequestEnvelope",
    "TicketContents",
    "build_ap_reply",
    "build_ap_request",
    "build_error",
    "build_reply",
    "build_request",
    "build_revocation_list",
    "revocation_list_body",
    "open_ap_reply",
    "open_authenticator",
    "open_reply",
    "open_request",
    "open_revocation_list",
    "open_ticket",
    "parse_ap_request",
    "parse_request",
    "raise_if_error",
    "seal_ticket",
]


class SignsBytes(Protocol):
    """Anything with ``sign(data) -> signature`` (an Ed25519 key, a KDC signer)."""

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``."""
        ...


NONCE_LEN: Final = 16
_AUTH_KINDS: Final = {int(k): k for k in AuthKind}
_MAX_MICROS: Final = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


def ts(value: _dt.datetime) -> bytes:
    """A datetime as an 8-byte microseconds field."""
    return w.u64(_codec.to_micros(value))


def read_ts(data: bytes, what: str) -> _dt.datetime:
    """Inverse of :func:`ts`.

    Raises:
        MalformedInputError: a time beyond year 9999.
    """
    micros = w.read_u64(data)
    if micros > _MAX_MICROS:
        raise MalformedInputError(f"{what} is out of range")
    return _codec.from_micros(micros)


def scoped_nonce(principal: str, nonce: bytes) -> bytes:
    """The replay-cache key of a principal's nonce (32 bytes).

    Scoping by principal keeps one principal from spending another's nonce.
    """
    return nonce + hashlib.blake2b(principal.encode("utf-8"), digest_size=16).digest()


def name_bytes(name: str, what: str) -> bytes:
    """A principal or key name as a wire field.

    Raises:
        InvalidArgumentError: empty, too long, or holding control characters.
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"{what} must be a str, got {type(name).__name__}")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (undecodable bytes in argv, say)
        raise InvalidArgumentError(f"{what} is not valid Unicode: {name!r}") from None
    if not 1 <= len(raw) <= w.NAME_MAX or not name.isprintable():
        raise InvalidArgumentError(
            f"{what} must be 1..{w.NAME_MAX} bytes of printable UTF-8, got {name!r}"
        )
    return raw


# -- requests ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RequestBody:
    """The authenticated inside of a key or ticket request."""

    target: str
    nonce: bytes
    timestamp: _dt.datetime
    reply_share: bytes


@attrs.frozen(kw_only=True)
class RequestEnvelope:
    """A request after framing checks, before authentication."""

    kind: MessageType
    principal: str
    auth_kind: AuthKind
    body: bytes = attrs.field(repr=False)
    signature: bytes = attrs.field(repr=False)
    #: The message up to the body (header, principal, auth kind), and up to
    #: the signature: sliced from the parsed message, which encodes exactly
    #: these fields in this order, instead of encoding them again.
    _head: bytes = attrs.field(repr=False, alias="head")
    _signed: bytes = attrs.field(repr=False, alias="signed")

    def signed_bytes(self) -> bytes:
        """What a certificate principal signs (header + all fields but the signature)."""
        return self._signed

    def aad(self) -> bytes:
        """The associated data of a symmetric principal's sealed body."""
        return self._head


def build_request(
    kind: MessageType,
    principal: str,
    *,
    target: str,
    nonce: bytes,
    timestamp: _dt.datetime,
    randomness: Randomness,
    aead: AESGCM | None = None,
    signing_key: _crypto.SigningKey | None = None,
    reply_share: bytes = b"",
) -> bytes:
    """Build a KEY_REQUEST or TICKET_REQUEST, sealed (``aead``) or signed (``signing_key``)."""
    raw = name_bytes(principal, "principal name")
    inner = w.encode_fields([name_bytes(target, "target name"), nonce, ts(timestamp), reply_share])
    if aead is not None:
        auth = bytes((AuthKind.SYMMETRIC,))
        head = w.header(kind) + w.encode_fields([raw, auth])
        body = _crypto.seal(aead, randomness, inner, head)
        signature = b""
        # The checked encoding, made of the head already encoded for the AAD.
        return w.encode_after(kind, head, 2, [body, signature])
    assert signing_key is not None
    auth = bytes((AuthKind.CERTIFICATE,))
    body = inner
    signature = _crypto.sign(signing_key, w.header(kind) + w.encode_fields([raw, auth, body]))
    return w.encode(kind, [raw, auth, body, signature])


def parse_request(data: bytes) -> RequestEnvelope:
    """Check a request's framing and read who sent it (nothing is trusted yet).

    Raises:
        MalformedInputError: bad framing, unknown auth kind, or fields that
            do not fit the auth kind.
    """
    kind, (raw, auth, body, signature) = w.decode(
        data, MessageType.KEY_REQUEST, MessageType.TICKET_REQUEST
    )
    auth_kind = _AUTH_KINDS.get(auth[0])
    if auth_kind is None:
        raise MalformedInputError(f"unknown authentication kind {auth[0]}")
    if (auth_kind is AuthKind.SYMMETRIC) != (not signature):
        raise MalformedInputError("the signature field does not fit the authentication kind")
    head = 4 + 4 + len(raw) + 4 + len(auth)  # the header, then two length-prefixed fields
    signed = head + 4 + len(body)
    return RequestEnvelope(
        kind=kind,
        principal=w.text(raw, "principal name"),
        auth_kind=auth_kind,
        body=body,
        signature=signature,
        head=bytes(data[:head]),
        signed=bytes(data[:signed]),
    )


def open_request(
    envelope: RequestEnvelope,
    *,
    aead: AESGCM | None = None,
    public_key: object = None,
) -> RequestBody:
    """Authenticate a request with the principal's key and parse its body.

    Raises:
        DecryptionError: a symmetric request does not open (opaque).
        InvalidSignatureError: a signed request does not verify (opaque).
        MalformedInputError: the authenticated body is malformed.
    """
    if envelope.auth_kind is AuthKind.SYMMETRIC:
        assert aead is not None
        inner = _crypto.open_sealed(aead, envelope.body, envelope.aad())
        share_len = 0
    else:
        _crypto.verify(public_key, envelope.signature, envelope.signed_bytes())
        inner = envelope.body
        share_len = 32
    target, nonce, stamp, share = w.decode_fields(inner, INNER["request"], "request body")
    if len(share) != share_len:
        raise MalformedInputError("the reply share does not fit the authentication kind")
    return RequestBody(
        target=w.text(target, "target name"),
        nonce=nonce,
        timestamp=read_ts(stamp, "request timestamp"),
        reply_share=share,
    )


# -- replies -------------------------------------------------------------------


def _reply_transcript(principal: bytes, client_share: bytes, kdc_share: bytes) -> bytes:
    return w.encode_fields([principal, client_share, kdc_share])


def build_reply(
    kind: MessageType,
    principal: str,
    nonce: bytes,
    inner: Sequence[bytes],
    *,
    randomness: Randomness,
    aead: AESGCM | None = None,
    client_share: bytes = b"",
    kdc_signing_key: SignsBytes | None = None,
) -> bytes:
    """Build a KEY_REPLY or TICKET_REPLY for a symmetric (``aead``) or certificate principal."""
    raw = principal.encode("utf-8")
    if aead is None:
        assert kdc_signing_key is not None
        ephemeral = _crypto.x25519_from_randomness(randomness)
        kdc_share = _crypto.share_of(ephemeral)
        aead = _crypto.derive_reply_key(
            ephemeral,
            client_share,
            salt=nonce,
            transcript=w.header(kind) + _reply_transcript(raw, client_share, kdc_share),
        )
    else:
        kdc_share = b""
    aad = w.header(kind) + w.encode_fields([raw, nonce, kdc_share])
    sealed = _crypto.seal(aead, randomness, w.encode_fields(inner), aad)
    signature = b""
    if kdc_signing_key is not None and kdc_share:
        signature = kdc_signing_key.sign(aad + w.encode_fields([sealed]))
    if not 1 <= len(raw) <= w.NAME_MAX or len(nonce) != NONCE_LEN:
        return w.encode(kind, [raw, nonce, kdc_share, sealed, signature])  # raises, says why
    return w.encode_after(kind, aad, 3, [sealed, signature])


def open_reply(
    data: bytes,
    kind: MessageType,
    *,
    principal: str,
    nonce: bytes,
    aead: AESGCM | None = None,
    reply_private: x25519.X25519PrivateKey | None = None,
    kdc_public_key: ed25519.Ed25519PublicKey | None = None,
    fields: Sequence[bytes] | None = None,
) -> list[bytes]:
    """Check a reply against the pending request and return its inner fields.

    Args:
        fields: the reply's outer fields when the caller has already
            decoded ``data`` as ``kind`` (:func:`keymgmt.kdc._wire.decode`),
            so it is not parsed twice.

    Raises:
        MalformedInputError: bad framing or inner body.
        RemoteProtocolError: the reply answers another principal or nonce.
        DecryptionError / InvalidSignatureError: not authentic (opaque).
        and the errors of :func:`raise_if_error` for an ERROR message.
    """
    if fields is None:
        raise_if_error(data)
        fields = w.decode(data, kind)[1]
    raw, got_nonce, kdc_share, sealed, signature = fields
    if raw != principal.encode("utf-8") or got_nonce != nonce:
        raise RemoteProtocolError("the reply does not answer this request")
    # The header and the first three fields, as the (strictly parsed) message holds them.
    aad = bytes(data[: 4 + 12 + len(raw) + len(got_nonce) + len(kdc_share)])
    if aead is None:
        assert reply_private is not None
        assert kdc_public_key is not None
        if len(kdc_share) != 32 or not signature:
            raise MalformedInputError("a reply to a certificate principal must be signed")
        _crypto.verify(kdc_public_key, signature, aad + w.encode_fields([sealed]))
        client_share = _crypto.share_of(reply_private)
        aead = _crypto.derive_reply_key(
            reply_private,
            kdc_share,
            salt=nonce,
            transcript=w.header(kind) + _reply_transcript(raw, client_share, kdc_share),
        )
    elif kdc_share or signature:
        raise MalformedInputError("a reply to a symmetric principal carries no share")
    inner = _crypto.open_sealed(aead, sealed, aad)
    schema = INNER["key_reply" if kind is MessageType.KEY_REPLY else "ticket_reply"]
    return w.decode_fields(inner, schema, f"{kind.name} body")


# -- tickets and authenticators -----------------------------------------------


@attrs.frozen(kw_only=True)
class TicketContents:
    """The inside of a ticket, as its service reads it."""

    client: str
    service: str
    session_key: bytes = attrs.field(repr=False)
    issued_at: _dt.datetime
    expires_at: _dt.datetime
    ticket_id: bytes


def seal_ticket(
    service_aead: AESGCM,
    randomness: Randomness,
    *,
    client: str,
    service: str,
    session_key: bytes,
    issued_at: _dt.datetime,
    expires_at: _dt.datetime,
    ticket_id: bytes,
) -> bytes:
    """A TICKET for ``service``, sealed under the service's long-term key."""
    raw_service = name_bytes(service, "service name")
    inner = w.encode_fields(
        [
            name_bytes(client, "client name"),
            raw_service,
            session_key,
            ts(issued_at),
            ts(expires_at),
            ticket_id,
        ]
    )
    aad = w.header(MessageType.TICKET) + w.encode_fields([raw_service])
    sealed = _crypto.seal(service_aead, randomness, inner, aad)
    return w.encode(MessageType.TICKET, [raw_service, sealed])


def ticket_service(ticket: bytes) -> str:
    """The service a ticket claims to be for (unauthenticated, for routing).

    Raises:
        MalformedInputError: not a ticket.
    """
    _, (raw_service, _sealed) = w.decode(ticket, MessageType.TICKET)
    return w.text(raw_service, "service name")


def open_ticket(ticket: bytes, service_aead: AESGCM) -> TicketContents:
    """Open a ticket with the service's long-term key.

    Raises:
        MalformedInputError: bad framing or body.
        DecryptionError: not sealed under this key (opaque).
    """
    _, (raw_service, sealed) = w.decode(ticket, MessageType.TICKET)
    aad = w.header(MessageType.TICKET) + w.encode_fields([raw_service])
    inner = _crypto.open_sealed(service_aead, sealed, aad)
    client, service, key, issued, expires, ticket_id = w.decode_fields(
        inner, INNER["ticket"], "ticket body"
    )
    if service != raw_service:
        raise MalformedInputError("the ticket body names another service")
    return TicketContents(
        client=w.text(client, "client name"),
        service=w.text(service, "service name"),
        session_key=key,
        issued_at=read_ts(issued, "ticket issue time"),
        expires_at=read_ts(expires, "ticket expiry"),
        ticket_id=ticket_id,
    )


def build_ap_request(
    ticket: bytes,
    session_aead: AESGCM,
    randomness: Randomness,
    *,
    client: str,
    timestamp: _dt.datetime,
    nonce: bytes,
) -> bytes:
    """An AP_REQUEST: the ticket and an authenticator bound to it."""
    inner = w.encode_fields([name_bytes(client, "client name"), ts(timestamp), nonce])
    aad = w.header(MessageType.AP_REQUEST) + w.encode_fields([ticket])
    authenticator = _crypto.seal(session_aead, randomness, inner, aad)
    return w.encode(MessageType.AP_REQUEST, [ticket, authenticator])


def parse_ap_request(data: bytes) -> tuple[bytes, bytes]:
    """Split an AP_REQUEST into (ticket, sealed authenticator).

    Raises:
        MalformedInputError: bad framing.
    """
    _, (ticket, authenticator) = w.decode(data, MessageType.AP_REQUEST)
    return ticket, authenticator


def open_authenticator(
    ticket: bytes, authenticator: bytes, session_aead: AESGCM
) -> tuple[str, _dt.datetime, bytes]:
    """Open an authenticator with the session key: (client, timestamp, nonce).

    Raises:
        DecryptionError: not sealed under the ticket's session key (opaque).
        MalformedInputError: malformed body.
    """
    aad = w.header(MessageType.AP_REQUEST) + w.encode_fields([ticket])
    inner = _crypto.open_sealed(session_aead, authenticator, aad)
    client, stamp, nonce = w.decode_fields(inner, INNER["authenticator"], "authenticator")
    return w.text(client, "client name"), read_ts(stamp, "authenticator timestamp"), nonce


def build_ap_reply(
    session_aead: AESGCM, randomness: Randomness, *, nonce: bytes, timestamp: _dt.datetime
) -> bytes:
    """The service's AP_REPLY: the authenticator's nonce and time, under the session key."""
    aad = w.header(MessageType.AP_REPLY)
    sealed = _crypto.seal(session_aead, randomness, w.encode_fields([nonce, ts(timestamp)]), aad)
    return w.encode(MessageType.AP_REPLY, [sealed])


def open_ap_reply(data: bytes, session_aead: AESGCM, *, nonce: bytes) -> None:
    """Check the service's AP_REPLY against the authenticator we sent.

    Raises:
        MalformedInputError: bad framing.
        DecryptionError: not made with the session key (opaque).
        RemoteProtocolError: it answers another authenticator.
    """
    _, (sealed,) = w.decode(data, MessageType.AP_REPLY)
    inner = _crypto.open_sealed(session_aead, sealed, w.header(MessageType.AP_REPLY))
    got_nonce, _stamp = w.decode_fields(inner, INNER["ap_reply"], "AP reply")
    if got_nonce != nonce:
        raise RemoteProtocolError("the AP reply answers another authenticator")


# -- errors --------------------------------------------------------------------


def build_error(code: ErrorCode, message: str) -> bytes:
    """An ERROR message (unauthenticated: a client treats it as a refusal only)."""
    return w.encode(MessageType.ERROR, [code.value.encode(), message.encode("utf-8")[:1024]])


def raise_if_error(data: bytes) -> None:
    """Raise the client-side exception for an ERROR message; do nothing otherwise.

    Raises:
        MalformedInputError: not a KDC message at all.
        AccessDeniedError, RevokedError, ReplayError, StaleMessageError,
        KeyNotFoundError, KeyStateError, RemoteProtocolError: per error code.
    """
    if w.peek_type(data) is not MessageType.ERROR:
        return
    _, (code, message) = w.decode(data, MessageType.ERROR)
    try:
        parsed = ErrorCode(code.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise RemoteProtocolError("the KDC sent an unknown error code") from None
    raise parsed.exception(message.decode("utf-8", errors="replace"))


# -- revocation lists ----------------------------------------------------------


def revocation_list_body(entries: Sequence[RevokedEntry]) -> bytes:
    """The encoded entries of a REVOCATION_LIST (its ``entries`` field)."""
    return b"".join(
        w.encode_fields(
            [
                w.encode_fields(
                    [
                        e.kind.encode(),
                        e.subject.encode("utf-8"),
                        e.reason.encode(),
                        ts(e.revoked_at),
                    ]
                )
            ]
        )
        for e in entries
    )


def build_revocation_list(
    signing_key: SignsBytes,
    *,
    number: int,
    this_update: _dt.datetime,
    next_update: _dt.datetime,
    nonce: bytes,
    entries: Sequence[RevokedEntry] = (),
    body: bytes | None = None,
) -> bytes:
    """A signed REVOCATION_LIST of ``entries`` (or their encoded ``body``).

    Raises:
        MalformedInputError: the entries do not fit in one message.
    """
    if body is None:
        body = revocation_list_body(entries)
    fields = [w.u64(number), ts(this_update), ts(next_update), nonce, body]
    signed = w.header(MessageType.REVOCATION_LIST) + w.encode_fields(fields)
    return w.encode(MessageType.REVOCATION_LIST, [*fields, signing_key.sign(signed)])


def open_revocation_list(
    data: bytes, kdc_public_key: ed25519.Ed25519PublicKey, *, nonce: bytes = b""
) -> RevocationList:
    """Verify a REVOCATION_LIST with the KDC's public key and parse it.

    Raises:
        MalformedInputError: bad framing or entries.
        InvalidSignatureError: not signed by this KDC (opaque).
        RemoteProtocolError: it does not echo our nonce.
    """
    raise_if_error(data)
    _, fields = w.decode(data, MessageType.REVOCATION_LIST)
    number, this_update, next_update, got_nonce, body, signature = fields
    signed = w.header(MessageType.REVOCATION_LIST) + w.encode_fields(fields[:5])
    _crypto.verify(kdc_public_key, signature, signed)
    if got_nonce != nonce:
        raise RemoteProtocolError("the revocation list does not answer this request")
    entries: list[RevokedEntry] = []
    view = memoryview(body)
    pos = 0
    while pos < len(body):
        if len(body) - pos < 4:
            raise MalformedInputError("revocation list entry is truncated")
        length = int.from_bytes(view[pos : pos + 4], "big")
        pos += 4
        if length > len(body) - pos:
            raise MalformedInputError("revocation list entry is truncated")
        kind, subject, reason, stamp = w.decode_fields(
            bytes(view[pos : pos + length]), INNER["revocation_entry"], "revocation entry"
        )
        pos += length
        entries.append(
            RevokedEntry(
                w.text(kind, "entry kind"),
                w.text(subject, "entry subject"),
                w.text(reason, "entry reason"),
                read_ts(stamp, "revocation time"),
            )
        )
    return RevocationList(
        number=w.read_u64(number),
        this_update=read_ts(this_update, "this update"),
        next_update=read_ts(next_update, "next update"),
        entries=tuple(entries),
    )
