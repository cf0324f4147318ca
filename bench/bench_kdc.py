"""KDC: key requests and tickets through the in-process KDC beside the raw AEAD work.

One symmetric key request needs four AES-256-GCM operations: the client seals
the request, the KDC opens it, the KDC seals the reply (with the key
material), the client opens it. The ``raw`` column does exactly those four
with ready ``AESGCM`` objects. The ``ours`` column is the whole round trip:
building and parsing the strict wire format, the principal and policy
lookups, the replay cache, the revocation checks, the key store's state
check, and the audited grant record (one store transaction: sealed grant
record + hash-chained audit entry, and the read checks of what the grant
was decided on: the principal's and the policy's records at the revisions
the KDC cached, the registry entries that would refuse it as absent). The
grant-record write is what makes
``compromise`` able to say who received what; it is also most of the cost.

The replay cache (the shared :mod:`keymgmt._replay`) is timed at 1M live
entries beside a bare dict probe + insert, and its memory is reported.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import os
import sys
import tempfile
import tracemalloc
from pathlib import Path

from _harness import Case
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keymgmt import KeyManager
from keymgmt._replay import ReplayCache
from keymgmt.kdc import InProcessTransport, KdcClient, TicketReceiver
from keymgmt.kdc import _protocol as p
from keymgmt.kdc import _wire as w
from keymgmt.kdc._wire import MessageType
from keymgmt.keyring import KdfProfile
from keymgmt.revocation import SubjectKind
from keymgmt.testing import FakeClock

_ENTRIES = 1_000_000


def _key_request_cases() -> list[Case]:
    clock = FakeClock()
    km = KeyManager.in_memory(clock=clock, consistency_interval=1.0)
    km.keys.create("payments")
    alice = km.kdc.register("alice")
    bob = km.kdc.register("bob")
    km.kdc.grant("alice", keys=["payments"], peers=["bob"])
    transport = InProcessTransport(km.kdc)
    client = KdcClient(alice, clock=clock)
    receiver = TicketReceiver(bob, clock=clock)
    client.fetch_key("payments", transport)  # warm caches, create the signing key

    # The raw work: four AEAD operations on the same sizes as the protocol.
    long_term = AESGCM(os.urandom(32))
    request_body = w.encode_fields([b"payments", os.urandom(16), w.u64(0), b""])
    reply_body = w.encode_fields(
        [b"payments", w.u32(1), b"aes-256-gcm", os.urandom(32), w.u64(0), w.u64(0), bytes(16)]
    )
    aad = w.header(MessageType.KEY_REQUEST) + b"alice"

    def raw_request() -> None:
        nonce = os.urandom(12)
        sealed = long_term.encrypt(nonce, request_body, aad)
        long_term.decrypt(nonce, sealed, aad)
        nonce = os.urandom(12)
        sealed = long_term.encrypt(nonce, reply_body, aad)
        long_term.decrypt(nonce, sealed, aad)

    def ours_request() -> None:
        client.receive_key_reply(transport(client.key_request("payments")))

    # The protocol alone, without the KDC's lookups and grant record: what
    # the sans-IO layer itself costs around the same four AEAD operations.
    # The server builds a reply from fields, so they are ready here (the
    # raw side's reply body is their encoding).
    reply_fields = w.decode_fields(reply_body, w.INNER["key_reply"], "reply")

    def ours_protocol_only() -> None:
        nonce = os.urandom(16)
        data = p.build_request(
            MessageType.KEY_REQUEST,
            "alice",
            target="payments",
            nonce=nonce,
            timestamp=clock.now(),
            randomness=km._context.randomness,
            aead=long_term,
        )
        body = p.open_request(p.parse_request(data), aead=long_term)
        reply = p.build_reply(
            MessageType.KEY_REPLY,
            "alice",
            body.nonce,
            reply_fields,
            randomness=km._context.randomness,
            aead=long_term,
        )
        p.open_reply(reply, MessageType.KEY_REPLY, principal="alice", nonce=nonce, aead=long_term)

    batch = 32

    def ours_batch() -> None:
        requests = [client.key_request("payments") for _ in range(batch)]
        for reply in transport.many(requests):
            client.receive_key_reply(reply)

    def raw_batch() -> None:
        for _ in range(batch):
            raw_request()

    # A reference, not keymgmt: the least a Python KDC round trip can do
    # around the same four AEAD operations (fixed-offset framing, a dict
    # for the principal, the policy, the key and the replay set, no
    # bounds, no typed errors, no audit, no grant record). It shows how
    # much of the 3x target the interpreter alone takes.
    floor_principals = {b"alice": long_term}
    floor_allowed = {(b"alice", b"payments")}
    floor_keys = {b"payments": (1, os.urandom(32))}
    floor_seen: dict[bytes, int] = {}
    floor_head = b"KD\x01\x01alice"
    floor_reply_head = b"KD\x01\x02alice"
    floor_micros = itertools.count(1_000_000)

    def floor_request() -> None:
        nonce = os.urandom(16)
        stamp = next(floor_micros)
        iv = os.urandom(12)
        body = b"payments" + nonce + stamp.to_bytes(8, "big")
        message = floor_head + iv + long_term.encrypt(iv, body, floor_head)
        aead = floor_principals[message[4:9]]
        inner = aead.decrypt(message[9:21], message[21:], message[:9])
        target, got_nonce = inner[:8], inner[8:24]
        if abs(stamp - int.from_bytes(inner[24:32], "big")) > 300_000_000:
            raise AssertionError
        if got_nonce in floor_seen or (b"alice", target) not in floor_allowed:
            raise AssertionError
        floor_seen[got_nonce] = stamp
        version, material = floor_keys[target]
        reply_body = target + version.to_bytes(4, "big") + material + got_nonce
        iv = os.urandom(12)
        reply = floor_reply_head + iv + aead.encrypt(iv, reply_body, floor_reply_head)
        opened = long_term.decrypt(reply[9:21], reply[21:], reply[:9])
        if opened[44:60] != nonce:
            raise AssertionError

    ticket_aead = AESGCM(os.urandom(32))
    ticket_body = os.urandom(140)

    def raw_ticket() -> None:
        # ticket request/reply (4), ticket seal/open (2), authenticator (2), AP reply (2)
        for _ in range(5):
            nonce = os.urandom(12)
            ticket_aead.decrypt(nonce, ticket_aead.encrypt(nonce, ticket_body, aad), aad)

    def ours_ticket() -> None:
        ticket = client.fetch_ticket("bob", transport)
        request = client.ap_request(ticket)
        client.receive_ap_reply(request, receiver.accept(request.data).reply)

    return [
        Case(
            "kdc",
            "key request round trip vs 4 raw AES-GCM ops",
            ours_request,
            raw_request,
            target=3.0,
            note="includes the audited grant record (a store transaction, ~half); docs/kdc.md",
        ),
        Case(
            "kdc",
            f"key requests, batches of {batch} (group commit) vs raw",
            ours_batch,
            raw_batch,
            target=3.0,
            note="handle_many: one grant-log commit per batch, replies after it",
        ),
        Case(
            "kdc",
            "protocol only (wire + AEAD) vs 4 raw AES-GCM ops",
            ours_protocol_only,
            raw_request,
            target=3.0,
            note="sans-IO layer alone, no KDC lookups or store write",
        ),
        Case(
            "kdc",
            "reference: minimal Python round trip vs 4 raw AES-GCM ops",
            floor_request,
            raw_request,
            note="not keymgmt: no checks, no audit, no grant record; the interpreter's floor",
        ),
        Case(
            "kdc",
            "ticket + AP exchange vs 10 raw AES-GCM ops",
            ours_ticket,
            raw_ticket,
            target=3.0,
            note="includes the audited ticket record",
        ),
    ]


def _sqlite_cases() -> list[Case]:
    """Key requests against a durable SQLite store: one commit per request vs per batch."""
    clock = FakeClock()
    tmp = Path(tempfile.mkdtemp(prefix="keymgmt-bench-kdc-"))
    km = KeyManager.open(
        tmp / "kdc.db",
        passphrase="bench",
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=clock,
    )
    km.keys.create("payments")
    alice = km.kdc.register("alice")
    km.kdc.grant("alice", keys=["payments"])
    transport = InProcessTransport(km.kdc)
    client = KdcClient(alice, clock=clock)
    client.fetch_key("payments", transport)
    batch = 32

    def single() -> None:
        for _ in range(batch):
            client.receive_key_reply(transport(client.key_request("payments")))

    def batched() -> None:
        requests = [client.key_request("payments") for _ in range(batch)]
        for reply in transport.many(requests):
            client.receive_key_reply(reply)

    return [
        Case(
            "kdc",
            f"SQLite: {batch} key requests, one batch vs one by one",
            batched,
            single,
            number=3,
            note="group commit: one durable grant-log commit per batch instead of per request",
        )
    ]


def _replay_cases() -> list[Case]:
    from collections.abc import Callable

    # Both caches run in a steady state: every 1,024 inserts the time moves on
    # by `step`, so buckets expire at the rate new ones fill and the size stays
    # put while the harness calls them (hundreds of thousands of times). The
    # big cache holds 1M (1,024 per 0.6 s over its 10-minute horizon); the
    # small one jumps a whole horizon per step, so it holds 1k to 2k. Both
    # sides run the same code, expiry included.
    window = _dt.timedelta(minutes=5)
    skew = _dt.timedelta(minutes=5)
    start = FakeClock().now()

    def steady(cache: ReplayCache, step: _dt.timedelta) -> Callable[[], None]:
        counter = itertools.count()
        now = [start]

        def insert() -> None:
            i = next(counter)
            if not i & 1023:
                now[0] += step
            at = now[0]
            cache.check_and_insert(i.to_bytes(32, "big"), at, at=at)

        return insert

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cache = ReplayCache(
        window=window, max_skew=skew, max_entries=_ENTRIES + 10_000_000, clock=FakeClock()
    )
    ours = steady(cache, (window + skew) / 1000)
    for _ in range(_ENTRIES):
        ours()
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    print(
        f"# replay cache: {len(cache):,} entries hold about {size / 1e6:.0f} MB "
        f"({size / len(cache):.0f} B per entry)",
        file=sys.stderr,
    )
    small = ReplayCache(
        window=window, max_skew=skew, max_entries=_ENTRIES + 10_000_000, clock=FakeClock()
    )
    ours_small = steady(small, window + skew)
    for _ in range(1_024):
        ours_small()

    now = start
    plain: dict[bytes, _dt.datetime] = {i.to_bytes(32, "big"): now for i in range(100_000)}
    raw_counter = itertools.count(_ENTRIES)

    def raw() -> None:
        key = next(raw_counter).to_bytes(32, "big")
        if key in plain:
            raise AssertionError
        plain[key] = now

    return [
        Case(
            "kdc",
            "replay cache check+insert @1M vs @1k (O(1))",
            ours,
            ours_small,
            target=1.5,
            number=4096,  # short rounds: both sides see the same load on a shared machine
            note=f"{size / 1e6:.0f} MB at 1M entries; both in steady state, expiry included",
        ),
        Case(
            "kdc",
            "replay cache check+insert @1M vs dict",
            ours,
            raw,
            note="the shared keymgmt._replay cache; no target in the issue",
        ),
    ]


def _revocation_list_cases() -> list[Case]:
    """The signed revocation list with 1M revoked certificates in the registry.

    Anyone may ask for it, unauthenticated. Its entries (key versions,
    principals, and the certificate principals whose certificates are
    revoked at their CA) are cached per change of those kinds, so a request
    is a store sync, the message and one Ed25519 signature whatever the
    registry's certificate revocations; the raw side is that signature. The
    second row revokes one more certificate (of no principal) before each
    request: the list then probes the registry once per certificate
    principal, and neither scans the registry nor encodes the list again.
    """
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from keymgmt import _codec

    clock = FakeClock()
    km = KeyManager.in_memory(clock=clock, consistency_interval=1.0)
    km.keys.create("payments")
    km.kdc.register("alice")
    ca = km.pki.create_root_ca("root", key_type="ed25519")
    for i in range(10):  # ten certificate principals, one revoked at the CA
        name = f"client-{i}"
        cert = ca.issue(
            public_key=ed25519.Ed25519PrivateKey.generate().public_key(),
            subject=name,
            names=[name],
            profile="tls-client",
        )
        km.kdc.register_certificate(name, cert)
        if i == 0:
            ca.revoke(cert.serial_number, "key-compromise")
    for version in range(1, 101):  # a hundred revoked key versions
        km.revocation.revoke(SubjectKind.KEY, f"payments#{version}")
    micros = _codec.to_micros(clock.now())
    registry = km.revocation
    entries = registry._entries
    for serial in range(1, _ENTRIES + 1):
        entries[f"certificate:bench:{serial:x}"] = ("key-compromise", micros, None)
    kdc = km.kdc
    kdc.revocation_list()
    nonce = os.urandom(16)
    signer = ed25519.Ed25519PrivateKey.generate()
    message = kdc.revocation_list(nonce=nonce)
    serials = itertools.count(_ENTRIES + 1)

    from keymgmt.revocation import Revocation, RevocationReason

    again = Revocation(
        kind=SubjectKind.KEY,
        subject="payments#50",
        reason=RevocationReason.UNSPECIFIED,
        revoked_at=clock.now(),
    )

    def after_a_key_revocation() -> None:
        # A key revocation applied before each request (what _set does when
        # one commits; the same one, so the list keeps its 101 entries): the
        # key and principal entries are rebuilt from the registry's names of
        # those kinds, not a pass over its 1M entries.
        registry._set("key:payments#50", again)
        kdc.revocation_list(nonce=nonce)

    def after_a_certificate_revocation() -> None:
        # What RevocationRegistry._set does when a revocation commits (the
        # store transaction itself is not what is measured here).
        entries[f"certificate:bench:{next(serials):x}"] = ("key-compromise", micros, None)
        registry._count_change("certificate:")
        kdc.revocation_list(nonce=nonce)

    return [
        Case(
            "kdc",
            "revocation list, 1M revoked certs in the registry vs 1 Ed25519 sign",
            lambda: kdc.revocation_list(nonce=nonce),
            lambda: signer.sign(message),
            note="unauthenticated requests: entries cached per key/principal/certificate change",
        ),
        Case(
            "kdc",
            "revocation list after each new cert revocation, 1M revoked vs 1 Ed25519 sign",
            after_a_certificate_revocation,
            lambda: signer.sign(message),
            note="one registry probe per certificate principal (10 here), no scan, no re-encoding",
        ),
        Case(
            "kdc",
            "revocation list after each new key revocation, 1M revoked certs vs 1 Ed25519 sign",
            after_a_key_revocation,
            lambda: signer.sign(message),
            note="rebuilt from the registry's key and principal names, not its 1M certificates",
        ),
    ]


def cases() -> list[Case]:
    """Key request and ticket round trips beside raw AEAD; the replay cache at 1M."""
    return _key_request_cases() + _sqlite_cases() + _replay_cases() + _revocation_list_cases()
