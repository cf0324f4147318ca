"""Exchange: a full handshake beside the summed cost of the primitives it needs.

One mutually authenticated X25519 + Ed25519 handshake needs, at minimum:
two X25519 key generations and two agreements, two Ed25519 transcript
signatures, four Ed25519 verifications (each side checks the peer's
transcript signature and the peer's certificate signature) and the HKDF
calls of the key schedule (counted, not guessed). The ``raw`` column runs
exactly those primitives back to back; the target is ours <= 2x raw.
The hybrid case adds ML-KEM-768 key generation, encapsulation and
decapsulation to both columns. The replay cache is timed at two sizes to
show its cost does not grow with the number of remembered nonces. The
handshake audit (``km.exchange``'s default, batched) is timed against the
same store-backed handshake with auditing off.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import warnings

from _harness import Case
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from keymgmt._secret import SecretBytes
from keymgmt.algorithms import ExchangeGroup
from keymgmt.exchange import (
    HandshakeAuditPolicy,
    Initiator,
    KeyShare,
    ReplayCache,
    Responder,
    SecureChannel,
    _hkdf,
    respond,
)
from keymgmt.testing import FakeClock, ThrowawayCA, handshake_pair, in_memory_manager

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _count_hkdf_calls(run: object) -> int:
    """How many HKDF extract/expand calls one handshake makes."""
    counts = {"n": 0}
    originals = (_hkdf.hkdf_extract, _hkdf.hkdf_expand)

    def extract(**kw: object) -> SecretBytes:
        counts["n"] += 1
        return originals[0](**kw)  # type: ignore[arg-type]

    def expand(prk: object, **kw: object) -> SecretBytes:
        counts["n"] += 1
        return originals[1](prk, **kw)  # type: ignore[arg-type]

    import keymgmt.exchange.handshake._schedule as schedule

    saved = (_hkdf.hkdf_extract, _hkdf.hkdf_expand, schedule.hkdf_extract)
    _hkdf.hkdf_extract, _hkdf.hkdf_expand, schedule.hkdf_extract = extract, expand, extract  # type: ignore[assignment]
    try:
        run()  # type: ignore[operator]
    finally:
        _hkdf.hkdf_extract, _hkdf.hkdf_expand, schedule.hkdf_extract = saved
    return counts["n"]


def cases() -> list[Case]:
    """Handshake vs primitives; agreement vs raw; channel vs AEAD; replay cache at two sizes."""
    clock = FakeClock(NOW)
    ca = ThrowawayCA(now=NOW)
    server, client = ca.issue("server.example"), ca.issue("client.example")
    verifier = ca.verifier()
    cache = ReplayCache(clock=clock, max_entries=10_000_000)

    def handshake(group: ExchangeGroup = ExchangeGroup.X25519) -> None:
        handshake_pair(
            Initiator(
                credential=client,
                verifier=verifier,
                server_identity="server.example",
                group=group,
                clock=clock,
            ),
            Responder(credential=server, verifier=verifier, replay_cache=cache, clock=clock),
        )

    hkdf_calls = _count_hkdf_calls(handshake)

    # The store-backed path: peers verified by km.pki (Ed25519 chain, registry revocation).
    km = in_memory_manager(clock=FakeClock(NOW))
    root = km.pki.create_root_ca("bench-root", key_type="ed25519")
    km_server = km.exchange.credential(root, "server.example", client=False)
    km_client = km.exchange.credential(root, "client.example", server=False)

    def handshake_pki() -> None:
        handshake_pair(
            km.exchange.initiator(km_client, server_identity="server.example"),
            km.exchange.responder(km_server),
        )

    # The same with the handshake audit off (the default is batched).
    km_quiet = in_memory_manager(clock=FakeClock(NOW))
    km_quiet.exchange.audit_policy = HandshakeAuditPolicy(mode="off")
    quiet_root = km_quiet.pki.create_root_ca("bench-root", key_type="ed25519")
    quiet_server = km_quiet.exchange.credential(quiet_root, "server.example", client=False)
    quiet_client = km_quiet.exchange.credential(quiet_root, "client.example", server=False)

    def handshake_pki_unaudited() -> None:
        handshake_pair(
            km_quiet.exchange.initiator(quiet_client, server_identity="server.example"),
            km_quiet.exchange.responder(quiet_server),
        )

    # Raw primitives for one handshake.
    sk = ed25519.Ed25519PrivateKey.generate()
    pk = sk.public_key()
    sig = sk.sign(b"transcript" * 10)
    prk = os.urandom(32)

    def raw_handshake() -> None:
        a, b = x25519.X25519PrivateKey.generate(), x25519.X25519PrivateKey.generate()
        a.exchange(b.public_key())
        b.exchange(a.public_key())
        sk.sign(b"transcript" * 10)
        sk.sign(b"transcript" * 10)
        for _ in range(4):
            pk.verify(sig, b"transcript" * 10)
        for _ in range(hkdf_calls):
            HKDFExpand(hashes.SHA256(), 32, b"x").derive(prk)

    def raw_hybrid() -> None:
        raw_handshake()
        kem = mlkem.MLKEM768PrivateKey.generate()
        _, ct = kem.public_key().encapsulate()
        kem.decapsulate(ct)

    # Agreement alone.
    def ours_p256() -> None:
        share = KeyShare.generate(ExchangeGroup.P256)
        reply, _ = respond(ExchangeGroup.P256, share.public_bytes, salt=b"s", info=b"i")
        share.derive(reply, salt=b"s", info=b"i")

    def raw_p256() -> None:
        a = ec.generate_private_key(ec.SECP256R1())
        b = ec.generate_private_key(ec.SECP256R1())
        a.exchange(ec.ECDH(), b.public_key())
        b.exchange(ec.ECDH(), a.public_key())

    def ours_ffdhe() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            share = KeyShare.generate(ExchangeGroup.FFDHE2048)
            reply, _ = respond(ExchangeGroup.FFDHE2048, share.public_bytes, salt=b"", info=b"i")
            share.derive(reply, salt=b"", info=b"i")

    def raw_ffdhe() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from cryptography.hazmat.primitives.asymmetric import dh

            from keymgmt.exchange._groups import FFDHE2048_P

            params = dh.DHParameterNumbers(FFDHE2048_P, 2).parameters()
            a, b = params.generate_private_key(), params.generate_private_key()
            a.exchange(b.public_key())
            b.exchange(a.public_key())

    # Channel vs the bare AEAD.
    s1, s2 = SecretBytes(os.urandom(32)), SecretBytes(os.urandom(32))
    tx = SecureChannel(send_secret=s1, receive_secret=s2)
    rx = SecureChannel(send_secret=s2, receive_secret=s1)
    payload = os.urandom(1024)
    aead = ChaCha20Poly1305(os.urandom(32))
    nonce = bytes(12)

    def ours_channel() -> None:
        rx.receive_data(tx.send(payload))
        rx.next_event()

    def raw_channel() -> None:
        aead.decrypt(nonce, aead.encrypt(nonce, payload, b"hdr"), b"hdr")

    # Replay cache at 1k and 100k live entries vs a bare dict probe+insert.
    counter = itertools.count()
    small = ReplayCache(clock=clock, max_entries=10_000_000)
    big = ReplayCache(clock=clock, max_entries=10_000_000)
    for i in range(100_000):
        big.check_and_insert(i.to_bytes(16, "big"), NOW)
    for i in range(1_000):
        small.check_and_insert(i.to_bytes(16, "big"), NOW)
    plain: dict[bytes, dt.datetime] = {}

    def ours_small() -> None:
        small.check_and_insert((10**9 + next(counter)).to_bytes(16, "big"), NOW)

    def ours_big() -> None:
        big.check_and_insert((10**9 + next(counter)).to_bytes(16, "big"), NOW)

    def raw_dict() -> None:
        key = (10**9 + next(counter)).to_bytes(16, "big")
        if key not in plain:
            plain[key] = NOW

    return [
        Case(
            "exchange",
            "handshake x25519+ed25519 vs summed primitives",
            handshake,
            raw_handshake,
            target=2.0,
            note=f"raw = 2 keygen+2 DH, 2 sign, 4 verify, {hkdf_calls} HKDF",
        ),
        Case(
            "exchange",
            "handshake via km.pki verify vs summed primitives",
            handshake_pki,
            raw_handshake,
            note="PKI path adds registry revocation lookups",
        ),
        Case(
            "exchange",
            "handshake via km, audited (batched) vs audit off",
            handshake_pki,
            handshake_pki_unaudited,
            target=1.1,
            note="2 audit entries per handshake, written 64 at a time",
        ),
        Case(
            "exchange",
            "handshake hybrid x25519+mlkem768 vs primitives",
            lambda: handshake(ExchangeGroup.X25519_MLKEM768),
            raw_hybrid,
            target=2.0,
        ),
        Case("exchange", "agreement p256 + HKDF vs raw ECDH", ours_p256, raw_p256, target=1.5),
        Case(
            "exchange",
            "agreement ffdhe2048 (legacy) vs raw DH",
            ours_ffdhe,
            raw_ffdhe,
            target=2.5,
            note="ours adds 2 subgroup checks (Legendre symbol) raw DH skips",
        ),
        Case("exchange", "channel 1 KiB send+receive vs AEAD", ours_channel, raw_channel),
        Case("exchange", "replay cache insert @1k vs dict", ours_small, raw_dict),
        Case(
            "exchange",
            "replay cache insert @100k vs dict",
            ours_big,
            raw_dict,
            note="same cost as @1k: O(1)",
        ),
    ]
