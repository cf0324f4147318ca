"""Hypothesis strategies for testing code that uses keymgmt.

Import this module only in tests: it needs ``hypothesis`` (``pip install
"keymgmt[testing]"``), which the core install does not. Every strategy draws small, valid
values by default; the ``broken_*``, ``invalid_*`` and ``mutated*`` strategies
draw deliberately invalid ones to test error paths.

Strategies that need a store draw a fresh in-memory :class:`~keymgmt.KeyManager`
(fake clock, seeded randomness: cheap, deterministic, replayable) unless you
pass one. The handshake strategies (:func:`handshake_hellos`,
:func:`server_hellos`, :func:`mutated_server_hellos`) take their credential
keys and ephemeral shares from that manager's randomness too, so their
messages are the same bytes whenever a draw is replayed (a hybrid
X25519+ML-KEM-768 responder's encapsulation is the one part OpenSSL
randomizes).

Certificates come from a throwaway, seed-derived ECDSA P-256 hierarchy built
directly with :mod:`cryptography.x509`, with deterministic signatures: the
same draw gives the same bytes. Predictable keys, tests only.

Example::

    from hypothesis import given
    from keymgmt.testing import strategies as kst

    @given(kst.ciphertexts())
    def test_my_archive_round_trips(case):
        stored = my_archive.put(case.manager, case.ciphertext)
        assert case.manager.decrypt(my_archive.get(stored), case.context) == case.plaintext
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from hypothesis import strategies as st

from keymgmt._manager import KeyManager
from keymgmt._secret import SecretBytes
from keymgmt.algorithms import Algorithm, KeyKind, KeyUsage
from keymgmt.model import KeyInfo
from keymgmt.revocation import RevocationReason
from keymgmt.testing._fakes import DEFAULT_START, FakeClock, SeededRandomness
from keymgmt.testing._pki import CHAIN_DEFECTS as _CHAIN_DEFECTS
from keymgmt.testing._pki import ChainCase, build_chain, build_crl, derive_key
from keymgmt.testing._pki import name as _x509_name

__all__ = [
    "AP_REQUEST_DEFECTS",
    "CHAIN_DEFECTS",
    "ApRequestCase",
    "ChainCase",
    "CiphertextCase",
    "CRLCase",
    "HandshakeCase",
    "KdcReplyCase",
    "KdcRequestCase",
    "KeySpec",
    "ManagedKey",
    "ServerHelloCase",
    "SessionReplyCase",
    "TicketCase",
    "algorithms",
    "ap_requests",
    "asymmetric_algorithms",
    "aware_datetimes",
    "broken_ap_requests",
    "broken_certificate_chains",
    "certificate_chains",
    "ciphertexts",
    "contexts",
    "crls",
    "csrs",
    "dns_names",
    "handshake_hellos",
    "invalid_key_specs",
    "kdc_key_requests",
    "kdc_replies",
    "kdc_tickets",
    "key_names",
    "key_specs",
    "managed_keys",
    "managers",
    "mutated",
    "mutated_ap_requests",
    "mutated_ciphertexts",
    "mutated_kdc_replies",
    "mutated_kdc_tickets",
    "mutated_server_hellos",
    "mutated_session_replies",
    "naive_datetimes",
    "plaintexts",
    "revocation_reasons",
    "secret_bytes",
    "server_hellos",
    "session_replies",
    "symmetric_algorithms",
    "tampered_csrs",
]

_NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-_."


def key_names() -> st.SearchStrategy[str]:
    """Valid key names: 1-64 characters of ``[a-z0-9._-]``, starting with a letter."""
    return st.builds(
        lambda first, rest: first + rest,
        st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
        st.text(_NAME_ALPHABET, max_size=63),
    )


def symmetric_algorithms() -> st.SearchStrategy[Algorithm]:
    """The symmetric algorithms keymgmt manages."""
    return st.sampled_from([a for a in Algorithm if a.kind is KeyKind.SYMMETRIC])


def plaintexts(max_size: int = 4096) -> st.SearchStrategy[bytes]:
    """Arbitrary plaintexts, empty included."""
    return st.binary(max_size=max_size)


def contexts() -> st.SearchStrategy[dict[str, str]]:
    """Encryption contexts: small str -> str mappings (any Unicode)."""
    return st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=40), max_size=5)


def secret_bytes(min_size: int = 1, max_size: int = 64) -> st.SearchStrategy[SecretBytes]:
    """:class:`SecretBytes` holding random bytes."""
    return st.binary(min_size=min_size, max_size=max_size).map(SecretBytes)


def revocation_reasons() -> st.SearchStrategy[RevocationReason]:
    """Every RFC 5280 revocation reason."""
    return st.sampled_from(list(RevocationReason))


def aware_datetimes() -> st.SearchStrategy[_dt.datetime]:
    """Aware UTC datetimes between 2000 and 2100 (whole microseconds)."""
    return st.datetimes(
        min_value=_dt.datetime(2000, 1, 1),
        max_value=_dt.datetime(2100, 1, 1),
        timezones=st.just(_dt.UTC),
    )


def naive_datetimes() -> st.SearchStrategy[_dt.datetime]:
    """Naive datetimes, which keymgmt refuses at every boundary."""
    return st.datetimes(min_value=_dt.datetime(2000, 1, 1), max_value=_dt.datetime(2100, 1, 1))


# -- key specs and managed keys -------------------------------------------------------

#: RSA key generation costs tens of milliseconds per key: off unless asked for.
_RSA = frozenset({Algorithm.RSA_2048, Algorithm.RSA_3072, Algorithm.RSA_4096})


def _usages() -> dict[Algorithm, tuple[KeyUsage, ...]]:
    from keymgmt.keys._asymmetric import USAGES

    table: dict[Algorithm, tuple[KeyUsage, ...]] = {
        a: (KeyUsage.ENCRYPT_DECRYPT,) for a in Algorithm if a.kind is KeyKind.SYMMETRIC
    }
    table.update(USAGES)
    return table


@attrs.frozen
class KeySpec:
    """What ``km.keys.create(name, spec.algorithm, usage=spec.usage)`` is given."""

    algorithm: Algorithm
    usage: KeyUsage

    @property
    def kind(self) -> KeyKind:
        """Symmetric or asymmetric."""
        return self.algorithm.kind


def algorithms(*, include_rsa: bool = False) -> st.SearchStrategy[Algorithm]:
    """Every algorithm keymgmt manages (RSA only with ``include_rsa``: slow key generation)."""
    return st.sampled_from([a for a in Algorithm if include_rsa or a not in _RSA])


def asymmetric_algorithms(*, include_rsa: bool = False) -> st.SearchStrategy[Algorithm]:
    """The key-pair algorithms (RSA only with ``include_rsa``)."""
    return st.sampled_from(
        [a for a in Algorithm if a.kind is KeyKind.ASYMMETRIC and (include_rsa or a not in _RSA)]
    )


def key_specs(
    *, kinds: Sequence[KeyKind] | None = None, include_rsa: bool = False
) -> st.SearchStrategy[KeySpec]:
    """Valid (algorithm, usage) pairs: every usage each algorithm allows.

    Args:
        kinds: only these key kinds (default: both).
        include_rsa: include RSA (key generation is slow).
    """
    wanted = tuple(kinds) if kinds is not None else (KeyKind.SYMMETRIC, KeyKind.ASYMMETRIC)
    specs = [
        KeySpec(algorithm, usage)
        for algorithm, usages in _usages().items()
        if algorithm.kind in wanted and (include_rsa or algorithm not in _RSA)
        for usage in usages
    ]
    return st.sampled_from(specs)


def invalid_key_specs() -> st.SearchStrategy[KeySpec]:
    """(algorithm, usage) pairs keymgmt refuses at creation (``KeyUsageError``)."""
    table = _usages()
    specs = [
        KeySpec(algorithm, usage)
        for algorithm, usages in table.items()
        if algorithm not in _RSA
        for usage in KeyUsage
        if usage not in usages
    ]
    return st.sampled_from(specs)


def managers(
    *, start: _dt.datetime = DEFAULT_START, consistency_interval: float = 0
) -> st.SearchStrategy[KeyManager]:
    """Fresh in-memory managers: a :class:`FakeClock` at ``start``, randomness seeded by the draw.

    The managers are cheap (no KDF) and need no closing, though closing is
    harmless.
    """
    return st.integers(min_value=0, max_value=2**32 - 1).map(
        lambda seed: KeyManager.in_memory(
            clock=FakeClock(start),
            randomness=SeededRandomness(seed),
            consistency_interval=consistency_interval,
        )
    )


@attrs.frozen
class ManagedKey:
    """A key created in a manager: use ``manager`` with ``name``."""

    manager: KeyManager
    name: str
    spec: KeySpec
    info: KeyInfo


@st.composite
def managed_keys(
    draw: st.DrawFn,
    specs: st.SearchStrategy[KeySpec] | None = None,
    manager: KeyManager | None = None,
) -> ManagedKey:
    """A key created (with ``km.keys.create``) in a drawn manager, or in ``manager``.

    Args:
        specs: what to create (default: :func:`key_specs`).
        manager: create in this manager (names are made unique) instead of a fresh one.
    """
    km = manager if manager is not None else draw(managers())
    spec = draw(specs if specs is not None else key_specs())
    name = draw(key_names())
    if manager is not None:
        existing = {k.name for k in km.keys.list()}
        suffix = 0
        base = name[:56]
        while name in existing:
            suffix += 1
            name = f"{base}-{suffix}"
    info = km.keys.create(name, spec.algorithm, usage=spec.usage)
    return ManagedKey(manager=km, name=name, spec=spec, info=info)


# -- ciphertexts -----------------------------------------------------------------------


@attrs.frozen
class CiphertextCase:
    """A keymgmt ciphertext and what made it.

    ``ciphertext`` opens with ``manager.decrypt(ciphertext, context)`` to
    ``plaintext`` — unless the case came from :func:`mutated_ciphertexts`,
    where ``original`` is the valid one and ``ciphertext`` a mutation of it
    that must fail with ``DecryptionError`` (or another ``KeyMgmtError``).
    """

    manager: KeyManager
    key_name: str
    plaintext: bytes
    context: dict[str, str]
    ciphertext: bytes
    original: bytes


_AEAD_SPECS = key_specs(kinds=[KeyKind.SYMMETRIC]).filter(
    lambda s: s.algorithm is not Algorithm.FERNET
)


@st.composite
def ciphertexts(
    draw: st.DrawFn,
    specs: st.SearchStrategy[KeySpec] | None = None,
    max_size: int = 1024,
) -> CiphertextCase:
    """A valid ciphertext from a managed AEAD key (any algorithm, context and plaintext).

    Args:
        specs: the key kinds to encrypt under (default: the symmetric AEADs;
            Fernet takes no context and is left out).
        max_size: the largest plaintext.
    """
    key = draw(managed_keys(specs if specs is not None else _AEAD_SPECS))
    plaintext = draw(plaintexts(max_size))
    context = draw(contexts())
    ciphertext = bytes(key.manager.encrypt(key.name, plaintext, context))
    return CiphertextCase(
        manager=key.manager,
        key_name=key.name,
        plaintext=plaintext,
        context=context,
        ciphertext=ciphertext,
        original=ciphertext,
    )


@st.composite
def mutated(draw: st.DrawFn, data: bytes, *, max_extra: int = 16) -> bytes:
    """``data`` changed: a bit flipped, a byte replaced/inserted/removed, truncated or extended.

    The result always differs from ``data``.
    """
    data = bytes(data)
    kinds = ["append", "insert"] + (["flip", "replace", "delete", "truncate"] if data else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "append":
        return data + draw(st.binary(min_size=1, max_size=max_extra))
    if kind == "insert":
        i = draw(st.integers(0, len(data)))
        return data[:i] + draw(st.binary(min_size=1, max_size=max_extra)) + data[i:]
    i = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        bit = draw(st.integers(0, 7))
        return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]
    if kind == "replace":
        value = draw(st.integers(0, 255).filter(lambda v: v != data[i]))
        return data[:i] + bytes([value]) + data[i + 1 :]
    if kind == "delete":
        return data[:i] + data[i + 1 :]
    return data[:i]  # truncate


@st.composite
def mutated_ciphertexts(draw: st.DrawFn, max_size: int = 256) -> CiphertextCase:
    """A valid ciphertext case whose ``ciphertext`` was then mutated (see :func:`mutated`)."""
    case = draw(ciphertexts(max_size=max_size))
    return attrs.evolve(case, ciphertext=draw(mutated(case.original)))


# -- certificates, CSRs, CRLs -------------------------------------------------------------


#: Deliberate defects of a certificate chain (see :func:`certificate_chains`).
CHAIN_DEFECTS: tuple[str, ...] = _CHAIN_DEFECTS


def dns_names() -> st.SearchStrategy[str]:
    """Lowercase DNS names of two to four labels under ``.example``."""
    label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
    return st.lists(label, min_size=1, max_size=3).map(lambda ls: ".".join([*ls, "example"]))


def _validation_times() -> st.SearchStrategy[_dt.datetime]:
    return st.datetimes(
        min_value=_dt.datetime(2020, 1, 1),
        max_value=_dt.datetime(2040, 1, 1),
        timezones=st.just(_dt.UTC),
    ).map(lambda t: t.replace(microsecond=0))


@st.composite
def certificate_chains(draw: st.DrawFn, defects: Sequence[str | None] = (None,)) -> ChainCase:
    """Root -> intermediate -> TLS server leaf, with CRLs and a validation time.

    Valid by default: ``km.pki.verify(case.leaf, intermediates=[case.intermediate],
    trust_anchors=[case.root], crls=case.crls, at=case.at, name=case.dns_name)``
    accepts it. Pass ``defects`` (values of :data:`CHAIN_DEFECTS`, or None)
    to draw broken ones; ``case.defect`` says which.
    """
    defect = draw(st.sampled_from(list(defects)))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    return build_chain(
        seed, at=draw(_validation_times()), dns_name=draw(dns_names()), defect=defect
    )


def broken_certificate_chains(
    defects: Sequence[str] = CHAIN_DEFECTS,
) -> st.SearchStrategy[ChainCase]:
    """Chains with exactly one deliberate defect: expired, not yet valid, wrong issuer, revoked."""
    return certificate_chains(defects=list(defects))


@st.composite
def csrs(draw: st.DrawFn) -> x509.CertificateSigningRequest:
    """Valid PKCS#10 CSRs (ECDSA P-256, a CN and one to three DNS SANs)."""
    names = draw(st.lists(dns_names(), min_size=1, max_size=3, unique=True))
    key = derive_key(draw(st.integers(min_value=0, max_value=2**32 - 1)), "csr")
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_x509_name(names[0]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)  # replayable bytes
    )


@st.composite
def tampered_csrs(draw: st.DrawFn) -> bytes:
    """DER CSRs that still parse but whose signature does not verify (last byte changed)."""
    der = draw(csrs()).public_bytes(serialization.Encoding.DER)
    value = draw(st.integers(1, 255))
    return der[:-1] + bytes([der[-1] ^ value])


@attrs.frozen
class CRLCase:
    """A signed CRL, its issuer's certificate and the serials it lists."""

    crl: x509.CertificateRevocationList
    issuer: x509.Certificate
    serials: tuple[int, ...]
    at: _dt.datetime


@st.composite
def crls(draw: st.DrawFn, max_entries: int = 20) -> CRLCase:
    """CRLs (ECDSA P-256, CRL number, key-compromise entries) listing drawn serials."""
    serials = draw(
        st.lists(st.integers(min_value=1, max_value=2**159 - 1), max_size=max_entries, unique=True)
    )
    at = draw(_validation_times())
    crl, issuer = build_crl(
        draw(st.integers(0, 2**32 - 1)), serials, at=at, number=draw(st.integers(1, 2**20))
    )
    return CRLCase(crl=crl, issuer=issuer, serials=tuple(serials), at=at)


# -- protocol messages ---------------------------------------------------------------------


@attrs.frozen
class KdcRequestCase:
    """A KDC key request from a registered, authorized principal.

    ``transport(request)`` answers it; ``client.receive_key_reply(reply)``
    yields the key. ``manager.kdc.handle(mutated_request)`` must answer any
    mutation with an error reply or a ``KeyMgmtError``.
    """

    manager: KeyManager
    transport: Any
    client: Any
    key_name: str
    request: bytes


@st.composite
def kdc_key_requests(draw: st.DrawFn) -> KdcRequestCase:
    """A fresh manager with key ``key_name`` granted to a principal, and its signed request."""
    from keymgmt.kdc import InProcessTransport, KdcClient

    km = draw(managers())
    name = draw(key_names())
    principal = draw(key_names())
    km.keys.create(name)
    credential = km.kdc.register(principal)
    km.kdc.grant(principal, keys=[name])
    client = KdcClient(credential, clock=km.clock, randomness=SeededRandomness(name + principal))
    return KdcRequestCase(
        manager=km,
        transport=InProcessTransport(km.kdc),
        client=client,
        key_name=name,
        request=client.key_request(name),
    )


@attrs.frozen
class HandshakeCase:
    """A ClientHello from ``initiator`` for ``responder`` (both from ``manager.exchange``).

    ``responder.receive_data(hello); responder.next_event()`` accepts it once;
    a replay or a mutation is refused with a ``KeyMgmtError`` (a truncated
    hello only waits for more bytes; bytes appended after a whole hello are
    the next message's problem).
    """

    manager: KeyManager
    initiator: Any
    responder: Any
    server_name: str
    hello: bytes
    client_credential: Any
    server_credential: Any


@st.composite
def handshake_hellos(draw: st.DrawFn) -> HandshakeCase:
    """A manager with an Ed25519 root, client and server credentials, and a fresh ClientHello.

    The credential keys and the ephemeral key share come from the manager's
    seeded randomness: a replayed draw gives the same hello, byte for byte.
    """
    km = draw(managers())
    server_name = draw(dns_names())
    root = km.pki.create_root_ca("strategy-root", key_type="ed25519")
    server = km.exchange.credential(root, server_name, client=False)
    client = km.exchange.credential(root, "client." + server_name, server=False)
    initiator = km.exchange.initiator(client, server_identity=server_name)
    responder = km.exchange.responder(server)
    return HandshakeCase(
        manager=km,
        initiator=initiator,
        responder=responder,
        server_name=server_name,
        hello=initiator.start(),
        client_credential=client,
        server_credential=server,
    )


# -- KDC replies, tickets, AP requests and replies -------------------------------------------


@attrs.frozen
class _KdcParties:
    manager: KeyManager
    client: Any
    receiver: Any
    client_name: str
    service_name: str
    key_name: str
    service_credential: Any


@st.composite
def _kdc_parties(draw: st.DrawFn) -> _KdcParties:
    """A manager whose KDC grants ``client_name`` a key and tickets for ``service_name``."""
    from keymgmt.kdc import KdcClient, TicketReceiver

    km = draw(managers())
    key_name = draw(key_names())
    client_name = draw(key_names())
    service_name = draw(key_names().filter(lambda n: n != client_name))
    km.keys.create(key_name)
    client_credential = km.kdc.register(client_name)
    service_credential = km.kdc.register(service_name)
    km.kdc.grant(client_name, keys=[key_name], peers=[service_name])
    seed = f"{client_name}>{service_name}"
    return _KdcParties(
        manager=km,
        client=KdcClient(
            client_credential, clock=km.clock, randomness=SeededRandomness("client:" + seed)
        ),
        receiver=TicketReceiver(
            service_credential, clock=km.clock, randomness=SeededRandomness("service:" + seed)
        ),
        client_name=client_name,
        service_name=service_name,
        key_name=key_name,
        service_credential=service_credential,
    )


@attrs.frozen
class KdcReplyCase:
    """A KDC reply (``KEY_REPLY`` or ``TICKET_REPLY``) to ``client``'s pending request.

    ``case.receive(case.reply)`` checks it with the client method for its kind
    and returns a ``GrantedKey`` (for ``kind == "key"``, key ``target``) or a
    ``SessionTicket`` (``kind == "ticket"``, service ``target``), once: the
    request is then no longer pending, so the same reply again raises
    ``RemoteProtocolError``. From :func:`mutated_kdc_replies`, ``reply`` is a
    mutation of ``original`` and ``receive`` raises a ``KeyMgmtError``.
    """

    manager: KeyManager
    client: Any
    kind: str
    target: str
    request: bytes
    reply: bytes
    original: bytes

    def receive(self, data: bytes) -> Any:
        """Check ``data`` as the reply to this case's request (see the class docstring)."""
        if self.kind == "key":
            return self.client.receive_key_reply(data)
        return self.client.receive_ticket_reply(data)


@st.composite
def kdc_replies(draw: st.DrawFn, kinds: Sequence[str] = ("key", "ticket")) -> KdcReplyCase:
    """A KDC's real answer to a granted request: a key reply or a ticket (session key) reply.

    Args:
        kinds: draw from ``"key"`` (KEY_REPLY) and/or ``"ticket"`` (TICKET_REPLY).

    Raises:
        InvalidArgumentError: (when drawn) a kind that is neither.
    """
    from keymgmt.errors import InvalidArgumentError

    unknown = [k for k in kinds if k not in ("key", "ticket")]
    if unknown:
        raise InvalidArgumentError(f"unknown KDC reply kind {unknown[0]!r} (use 'key' or 'ticket')")
    parties = draw(_kdc_parties())
    kind = draw(st.sampled_from(list(kinds)))
    if kind == "key":
        target, request = parties.key_name, parties.client.key_request(parties.key_name)
    else:
        target, request = parties.service_name, parties.client.ticket_request(parties.service_name)
    reply = parties.manager.kdc.handle(request)
    return KdcReplyCase(
        manager=parties.manager,
        client=parties.client,
        kind=kind,
        target=target,
        request=request,
        reply=reply,
        original=reply,
    )


@st.composite
def mutated_kdc_replies(draw: st.DrawFn, kinds: Sequence[str] = ("key", "ticket")) -> KdcReplyCase:
    """A :func:`kdc_replies` case whose ``reply`` was then mutated (see :func:`mutated`)."""
    case = draw(kdc_replies(kinds))
    return attrs.evolve(case, reply=draw(mutated(case.original)))


@attrs.frozen
class TicketCase:
    """A session ticket the KDC issued to ``client`` for the service ``receiver`` checks.

    ``ticket`` is the client's ``SessionTicket`` (session key, expiry, and the
    sealed ``ticket.ticket`` bytes only the service can open):
    ``receiver.accept(client.ap_request(ticket).data)`` accepts it. From
    :func:`mutated_kdc_tickets`, ``ticket.ticket`` is a mutation of
    ``original`` and the same call raises a ``KeyMgmtError``.
    """

    manager: KeyManager
    client: Any
    receiver: Any
    ticket: Any
    original: bytes


@st.composite
def kdc_tickets(draw: st.DrawFn) -> TicketCase:
    """A ticket fetched by a real ``KdcClient`` from the manager's KDC."""
    from keymgmt.kdc import InProcessTransport

    parties = draw(_kdc_parties())
    km = parties.manager
    ticket = parties.client.fetch_ticket(parties.service_name, InProcessTransport(km.kdc))
    return TicketCase(
        manager=km,
        client=parties.client,
        receiver=parties.receiver,
        ticket=ticket,
        original=ticket.ticket,
    )


@st.composite
def mutated_kdc_tickets(draw: st.DrawFn) -> TicketCase:
    """A :func:`kdc_tickets` case whose sealed ticket bytes were then mutated (:func:`mutated`)."""
    case = draw(kdc_tickets())
    return attrs.evolve(case, ticket=attrs.evolve(case.ticket, ticket=draw(mutated(case.original))))


#: Deliberate defects of an AP request (see :func:`ap_requests`).
AP_REQUEST_DEFECTS = ("expired", "replayed", "wrong-service", "tampered-ticket")


@attrs.frozen
class ApRequestCase:
    """A client's AP request (ticket + authenticator) for the service ``receiver`` checks.

    Valid (``defect is None``): ``accepted = receiver.accept(data)`` succeeds
    once (a second time raises ``ReplayError``), and
    ``client.receive_ap_reply(request, accepted.reply)`` completes mutual
    authentication. ``ticket`` is the client's ``SessionTicket``.

    With a ``defect`` (:data:`AP_REQUEST_DEFECTS`) ``receiver.accept(data)``
    raises: ``"expired"`` — the shared clock has moved past the ticket's
    expiry (``StaleMessageError``); ``"replayed"`` — the receiver has accepted
    ``data`` once already (``ReplayError``); ``"wrong-service"`` —
    ``receiver`` is another registered service (``RemoteProtocolError``);
    ``"tampered-ticket"`` — one byte of the sealed ticket was changed, and
    ``ticket.ticket`` is the tampered one (a ``KeyMgmtError``: the ticket no
    longer opens or names another service). From
    :func:`mutated_ap_requests`, ``data`` is a mutation of ``original``.
    """

    manager: KeyManager
    client: Any
    receiver: Any
    ticket: Any
    request: Any
    data: bytes
    original: bytes
    defect: str | None = None


@st.composite
def ap_requests(draw: st.DrawFn, defects: Sequence[str | None] = (None,)) -> ApRequestCase:
    """A fresh AP request built by a real ``KdcClient`` from a real ticket.

    Args:
        defects: draw from these (values of :data:`AP_REQUEST_DEFECTS`, or
            None for a valid request); ``case.defect`` says which.

    Raises:
        InvalidArgumentError: (when drawn) a defect that is not one of
            :data:`AP_REQUEST_DEFECTS`.
    """
    from keymgmt.errors import InvalidArgumentError
    from keymgmt.kdc import InProcessTransport, TicketReceiver

    unknown = [d for d in defects if d is not None and d not in AP_REQUEST_DEFECTS]
    if unknown:
        raise InvalidArgumentError(f"unknown AP request defect {unknown[0]!r}")
    defect = draw(st.sampled_from(list(defects)))
    parties = draw(_kdc_parties())
    km = parties.manager
    ticket = parties.client.fetch_ticket(parties.service_name, InProcessTransport(km.kdc))
    receiver = parties.receiver
    if defect == "tampered-ticket":
        at = draw(st.integers(0, len(ticket.ticket) - 1))
        flip = draw(st.integers(1, 255))
        raw = ticket.ticket
        ticket = attrs.evolve(ticket, ticket=raw[:at] + bytes([raw[at] ^ flip]) + raw[at + 1 :])
    request = parties.client.ap_request(ticket)
    if defect == "expired":
        assert isinstance(km.clock, FakeClock)
        km.clock.advance(seconds=(ticket.expires_at - km.clock.now()).total_seconds() + 1)
    elif defect == "replayed":
        receiver.accept(request.data)
    elif defect == "wrong-service":
        other = draw(
            key_names().filter(lambda n: n not in (parties.client_name, parties.service_name))
        )
        receiver = TicketReceiver(km.kdc.register(other), clock=km.clock)
    return ApRequestCase(
        manager=km,
        client=parties.client,
        receiver=receiver,
        ticket=ticket,
        request=request,
        data=request.data,
        original=request.data,
        defect=defect,
    )


def broken_ap_requests(
    defects: Sequence[str] = AP_REQUEST_DEFECTS,
) -> st.SearchStrategy[ApRequestCase]:
    """AP requests with exactly one deliberate defect (``case.defect``): the service refuses."""
    return ap_requests(defects=list(defects))


@st.composite
def mutated_ap_requests(draw: st.DrawFn) -> ApRequestCase:
    """A valid :func:`ap_requests` case whose ``data`` was then mutated (see :func:`mutated`)."""
    case = draw(ap_requests())
    return attrs.evolve(case, data=draw(mutated(case.original)))


@attrs.frozen
class SessionReplyCase:
    """A service's AP reply: it proves to ``client`` that the service holds the session key.

    ``client.receive_ap_reply(request, reply)`` accepts it; from
    :func:`mutated_session_replies`, ``reply`` is a mutation of ``original``
    and raises a ``KeyMgmtError``. ``session`` is what the service accepted.
    """

    manager: KeyManager
    client: Any
    request: Any
    session: Any
    reply: bytes
    original: bytes


@st.composite
def session_replies(draw: st.DrawFn) -> SessionReplyCase:
    """The reply a real ``TicketReceiver`` made when it accepted a fresh AP request."""
    case = draw(ap_requests())
    session = case.receiver.accept(case.data)
    return SessionReplyCase(
        manager=case.manager,
        client=case.client,
        request=case.request,
        session=session,
        reply=session.reply,
        original=session.reply,
    )


@st.composite
def mutated_session_replies(draw: st.DrawFn) -> SessionReplyCase:
    """A :func:`session_replies` case whose ``reply`` was then mutated (see :func:`mutated`)."""
    case = draw(session_replies())
    return attrs.evolve(case, reply=draw(mutated(case.original)))


# -- handshake ServerHellos ---------------------------------------------------------------------


@attrs.frozen
class ServerHelloCase:
    """A responder's ServerHello (its whole flight) for ``initiator``, which is waiting for it.

    ``initiator.receive_data(server_hello); initiator.next_event()`` yields a
    ``HandshakeComplete`` once; the initiator's ``data_to_send()`` then
    completes ``responder``. From :func:`mutated_server_hellos`,
    ``server_hello`` is a mutation of ``original``: the initiator raises a
    ``KeyMgmtError`` — unless the mutation only cut the flight short (it
    waits for more bytes: ``NEED_DATA``) or only appended bytes after it
    (they belong to the next frame).
    """

    manager: KeyManager
    initiator: Any
    responder: Any
    server_name: str
    server_hello: bytes
    original: bytes


@st.composite
def server_hellos(draw: st.DrawFn) -> ServerHelloCase:
    """A real handshake driven to the point where the initiator awaits the ServerHello."""
    case = draw(handshake_hellos())
    case.responder.receive_data(case.hello)
    case.responder.next_event()
    flight = case.responder.data_to_send()
    return ServerHelloCase(
        manager=case.manager,
        initiator=case.initiator,
        responder=case.responder,
        server_name=case.server_name,
        server_hello=flight,
        original=flight,
    )


@st.composite
def mutated_server_hellos(draw: st.DrawFn) -> ServerHelloCase:
    """A :func:`server_hellos` case whose ``server_hello`` was then mutated (:func:`mutated`)."""
    case = draw(server_hellos())
    return attrs.evolve(case, server_hello=draw(mutated(case.original)))
