"""The ``keymgmt demo`` step for key exchange: a handshake, then each attack stopped.

Lives beside the code it shows; ``keymgmt.cli._demo`` lists it in ``STEPS``.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

from keymgmt.algorithms import ExchangeGroup
from keymgmt.errors import (
    HandshakeError,
    PeerVerificationError,
    RemoteProtocolError,
    ReplayError,
    StaleMessageError,
)
from keymgmt.exchange._channel import NEED_DATA, Data, SecureChannel
from keymgmt.exchange.handshake._connection import Initiator, Responder
from keymgmt.testing import ThrowawayCA, handshake_pair

if TYPE_CHECKING:
    from keymgmt.cli._demo import Demo

__all__ = ["step_exchange"]

SERVER = "server.demo.example"
CLIENT = "client.demo.example"


def _read(channel: SecureChannel, wire: bytes) -> list[bytes]:
    channel.receive_data(wire)
    out = []
    while (event := channel.next_event()) is not NEED_DATA:
        if isinstance(event, Data):
            out.append(event.data)
    return out


def step_exchange(d: Demo) -> None:
    """Mutually authenticated handshake; MITM, replay, tampering, revocation refused."""
    km = d.km
    x = km.exchange
    root = km.pki.create_root_ca("exchange-demo-root", key_type="ed25519")
    server = x.credential(root, SERVER, client=False)
    client = x.credential(root, CLIENT, server=False)
    d.say(f"A root CA (Ed25519) issued {SERVER} (tls-server) and {CLIENT} (tls-client).")

    initiator = x.initiator(client, server_identity=SERVER)
    responder = x.responder(server)
    hello = initiator.start()
    responder.receive_data(hello)
    responder.next_event()
    server_hello = responder.data_to_send()
    initiator.receive_data(server_hello)
    done_i = initiator.next_event()
    client_finish = initiator.data_to_send()
    responder.receive_data(client_finish)
    done_r = responder.next_event()
    a, b = done_i.session, done_r.session  # type: ignore[union-attr]
    d.say(
        f"ClientHello {len(hello)} B -> ServerHello {len(server_hello)} B -> "
        f"ClientFinish {len(client_finish)} B (X25519, transcript signed, finished MACs)"
    )
    d.proves(
        f"both sides authenticated: client sees {a.peer.identity}, server sees "
        f"{b.peer.identity}; same session id {a.session_id.hex()[:16]}..."
    )
    tx, rx = a.channel(), b.channel()
    record = tx.send(b"transfer 100 to alice")
    assert _read(rx, record) == [b"transfer 100 to alice"]
    d.proves("the channel carries AEAD records with per-direction keys")

    hybrid_a, _ = handshake_pair(
        x.initiator(client, server_identity=SERVER, group=ExchangeGroup.X25519_MLKEM768),
        x.responder(server),
    )
    d.proves(f"post-quantum hybrid handshake ({hybrid_a.group.value}) completes too")

    def replay_hello() -> None:
        again = x.responder(server)
        again.receive_data(hello)
        again.next_event()

    d.expect_failure("replaying the recorded ClientHello", replay_hello, ReplayError)

    def stale_hello() -> None:
        late = x.initiator(client, server_identity=SERVER)
        old = late.start(at=km.clock.now() - _dt.timedelta(minutes=10))
        r = x.responder(server)
        r.receive_data(old)
        r.next_event()

    d.expect_failure("a ClientHello stamped 10 minutes ago", stale_hello, StaleMessageError)

    rogue = ThrowawayCA("rogue CA", now=km.clock.now()).issue(SERVER)
    d.expect_failure(
        "a man in the middle with a certificate for the right name from another CA",
        lambda: handshake_pair(x.initiator(client, server_identity=SERVER), x.responder(rogue)),
        PeerVerificationError,
    )
    mallory = x.credential(root, "mallory.demo.example", client=False)
    d.expect_failure(
        "a man in the middle with a certificate from the same CA under another name",
        lambda: handshake_pair(x.initiator(client, server_identity=SERVER), x.responder(mallory)),
        PeerVerificationError,
    )

    def tampered() -> None:
        i = x.initiator(client, server_identity=SERVER)
        r = x.responder(server)
        r.receive_data(i.start())
        r.next_event()
        sh = bytearray(r.data_to_send())
        sh[50] ^= 0x01  # a bit of the responder's key share
        i.receive_data(bytes(sh))
        i.next_event()

    d.expect_failure("flipping one bit of the ServerHello", tampered, HandshakeError)

    d.expect_failure(
        "replaying a recorded channel record",
        lambda: _read(rx, record),
        RemoteProtocolError,
    )

    # Forward secrecy: both long-term keys leak after a session was recorded.
    # With them an attacker can run new handshakes, but each derives its keys
    # from fresh ephemeral secrets: none opens the recorded traffic.
    c, s = handshake_pair(x.initiator(client, server_identity=SERVER), x.responder(server))
    recorded = c.channel().send(b"the secret plan")
    _, attacker_session = handshake_pair(
        Initiator(
            credential=client,
            verifier=x.peer_verifier(),
            server_identity=SERVER,
            clock=km.clock,
        ),
        Responder(
            credential=server,
            verifier=x.peer_verifier(),
            replay_cache=x.replay_cache,
            clock=km.clock,
        ),
    )
    d.expect_failure(
        "opening a recorded session with keys re-derived from both leaked long-term keys",
        lambda: _read(attacker_session.channel(), recorded),
        RemoteProtocolError,
    )
    assert _read(s.channel(), recorded) == [b"the secret plan"]
    d.proves("forward secrecy: only the ephemeral (now discarded) secrets opened it")

    root.revoke(server.chain[0].serial_number, "key-compromise")
    d.expect_failure(
        "handshaking with the server after its certificate was revoked",
        lambda: handshake_pair(x.initiator(client, server_identity=SERVER), x.responder(server)),
        PeerVerificationError,
    )

    # km.exchange audits its handshakes: accepted ones one entry per side,
    # refusals counted per kind (a flood cannot grow the log).
    x.flush_audit()
    entries = [e for e in km.audit.tail(500) if e.operation == "exchange.handshake"]
    accepted = sum(1 for e in entries if e.outcome == "accepted")
    aggregates = [e for e in entries if e.outcome == "refused"]
    refused = sum(int(e.details.get("count") or 0) for e in aggregates)
    d.proves(
        f"audited: {accepted} accepted handshake sides (one entry each, no key material), "
        f"{refused} refusals in {len(aggregates)} aggregate entries"
    )
