"""Adversary properties of the handshake, against an in-process network.

The network records every message and lets Hypothesis choose, per message,
what the adversary does with it: pass it, deliver it byte by byte, drop it,
duplicate it, truncate it, flip a byte, replay the same message from an
earlier recorded session, substitute the one from a parallel session, or
deliver a message out of order. The properties:

* every failure is one of our ``RemoteProtocolError`` subclasses;
* a side completes **if and only if** every message it depends on arrived
  genuine, and then both sides hold the same session id and the right peer;
* a man in the middle is always detected (its own certificate from another
  CA, or from the same CA under another name; or relaying while swapping the
  key share);
* a recorded session stays unreadable after both long-term keys leak;
* all of it for X25519 and for the X25519 + ML-KEM-768 hybrid.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools

import attrs
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import assume, given
from hypothesis import strategies as st

from keymgmt.algorithms import ExchangeGroup
from keymgmt.errors import (
    HandshakeError,
    KeyMgmtError,
    LocalProtocolError,
    PeerVerificationError,
    RemoteProtocolError,
    ReplayError,
)
from keymgmt.exchange import (
    NEED_DATA,
    Credential,
    Data,
    HandshakeComplete,
    HandshakeState,
    Initiator,
    ReplayCache,
    Responder,
    SecureChannel,
    Session,
)
from keymgmt.testing import FakeClock, ThrowawayCA, handshake_pair

SERVER = "server.example"
CLIENT = "client.example"
GROUPS = [ExchangeGroup.X25519, ExchangeGroup.X25519_MLKEM768]
NOW = FakeClock().now()


@attrs.frozen
class Pki:
    ca: ThrowawayCA
    server: Credential
    client: Credential
    rogue_server: Credential  # right name, another CA
    other_name: Credential  # same CA, another name (server and client usages)


@functools.cache
def pki() -> Pki:
    ca = ThrowawayCA("honest CA", now=NOW)
    rogue = ThrowawayCA("rogue CA", now=NOW)
    return Pki(
        ca=ca,
        server=ca.issue(SERVER, client=False),
        client=ca.issue(CLIENT, server=False),
        rogue_server=rogue.issue(SERVER),
        other_name=ca.issue("mallory.example"),
    )


@attrs.define
class World:
    """One responder deployment: a clock and a replay cache shared by its handshakes."""

    group: ExchangeGroup
    clock: FakeClock = attrs.field(factory=lambda: FakeClock(NOW))
    cache: ReplayCache = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.cache = ReplayCache(clock=self.clock)

    def initiator(self, credential: Credential | None = None, identity: str = SERVER) -> Initiator:
        return Initiator(
            credential=credential or pki().client,
            verifier=pki().ca.verifier(),
            server_identity=identity,
            group=self.group,
            clock=self.clock,
        )

    def responder(self, credential: Credential | None = None) -> Responder:
        return Responder(
            credential=credential or pki().server,
            verifier=pki().ca.verifier(),
            replay_cache=self.cache,
            clock=self.clock,
        )


@attrs.frozen
class Recording:
    """The three handshake messages of one honest session, and its sessions."""

    messages: tuple[bytes, bytes, bytes]
    client: Session
    server: Session


def record(world: World) -> Recording:
    initiator, responder = world.initiator(), world.responder()
    ch = initiator.start()
    responder.receive_data(ch)
    responder.next_event()
    sh = responder.data_to_send()
    initiator.receive_data(sh)
    done_i = initiator.next_event()
    cf = initiator.data_to_send()
    responder.receive_data(cf)
    done_r = responder.next_event()
    assert isinstance(done_i, HandshakeComplete)
    assert isinstance(done_r, HandshakeComplete)
    return Recording((ch, sh, cf), done_i.session, done_r.session)


class Action(enum.Enum):
    PASS = "pass"
    BYTEWISE = "bytewise"
    DROP = "drop"
    DUPLICATE = "duplicate"
    TRUNCATE = "truncate"
    FLIP = "flip"
    REPLAY = "replay"  # the same message from an earlier, completed session
    SUBSTITUTE = "substitute"  # the same message from a parallel session
    REORDER = "reorder"  # a later message (of the parallel session) arrives first


@attrs.frozen
class Move:
    action: Action
    position: int = 0  # for TRUNCATE / FLIP, taken modulo the message length
    mask: int = 1  # for FLIP


moves = st.builds(
    Move,
    st.sampled_from(Action),
    st.integers(0, 4000),
    st.integers(1, 255),
)


def genuine(move: Move, index: int) -> bool:
    """Whether the receiver sees exactly the honest message.

    A duplicated ServerHello or ClientFinish counts: the receiver completes on
    the first copy and leaves the second as trailing data, which the secure
    channel then refuses. A duplicated ClientHello does not: the responder is
    still reading handshake messages and refuses it as unexpected.
    """
    if move.action in (Action.PASS, Action.BYTEWISE):
        return True
    return move.action is Action.DUPLICATE and index > 0


@attrs.define
class Side:
    machine: Initiator | Responder
    completed: Session | None = None
    failed: RemoteProtocolError | None = None

    def feed(self, chunks: list[bytes]) -> None:
        if self.failed is not None or self.completed is not None:
            return
        try:
            for chunk in chunks:
                self.machine.receive_data(chunk)
                while self.machine.state not in (HandshakeState.COMPLETE, HandshakeState.FAILED):
                    event = self.machine.next_event()
                    if event is NEED_DATA:
                        break
                    if isinstance(event, HandshakeComplete):
                        self.completed = event.session
        except RemoteProtocolError as exc:
            self.failed = exc

    def output(self) -> bytes:
        return self.machine.data_to_send()


def adversary(
    move: Move, index: int, message: bytes, earlier: Recording, parallel: Recording
) -> list[bytes]:
    """What the receiver gets instead of ``message`` (``b""`` is end of stream)."""
    a = move.action
    if a is Action.PASS:
        return [message]
    if a is Action.BYTEWISE:
        return [message[i : i + 1] for i in range(len(message))]
    if a is Action.DROP:
        return [b""]
    if a is Action.DUPLICATE:
        return [message + message]
    if a is Action.TRUNCATE:
        return [message[: move.position % len(message)], b""]
    if a is Action.FLIP:
        tampered = bytearray(message)
        tampered[move.position % len(message)] ^= move.mask
        return [bytes(tampered)]
    if a is Action.REPLAY:
        return [earlier.messages[index]]
    if a is Action.SUBSTITUTE:
        return [parallel.messages[index]]
    # REORDER: the parallel session's next message overtakes this one.
    return [parallel.messages[(index + 1) % 3] + message]


def run_under_adversary(group: ExchangeGroup, moves: tuple[Move, Move, Move]) -> None:
    world = World(group)
    earlier = record(world)  # completed through the same responder deployment
    parallel = record(World(group))  # another deployment (its nonces are unknown here)
    client = Side(world.initiator())
    server = Side(world.responder())

    server.feed(adversary(moves[0], 0, client.machine.start(), earlier, parallel))  # type: ignore[union-attr]
    server_hello = server.output()
    if server_hello:
        client.feed(adversary(moves[1], 1, server_hello, earlier, parallel))
    else:
        client.feed([b""])  # the responder gave up: the client sees the stream end
    client_finish = client.output()
    if client_finish:
        server.feed(adversary(moves[2], 2, client_finish, earlier, parallel))
    else:
        server.feed([b""])

    ok = [genuine(m, i) for i, m in enumerate(moves)]
    assert (client.completed is not None) == (ok[0] and ok[1])
    assert (server.completed is not None) == (ok[0] and ok[1] and ok[2])
    if server.completed is not None:
        assert client.completed is not None
        assert server.completed.session_id == client.completed.session_id
        assert server.completed.peer.identity == CLIENT
        assert client.completed.peer.identity == SERVER
    for side in (client, server):
        if side.completed is None and side.failed is None:
            pytest.fail("a side neither completed nor failed")
    if moves[0].action is Action.REPLAY:
        assert isinstance(server.failed, ReplayError)


@pytest.mark.parametrize("group", GROUPS)
@given(moves=st.tuples(moves, moves, moves))
def test_network_adversary_cannot_make_a_side_complete_on_altered_messages(
    group: ExchangeGroup, moves: tuple[Move, Move, Move]
) -> None:
    run_under_adversary(group, moves)


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("action", list(Action))
def test_each_adversary_action_on_each_message(
    group: ExchangeGroup, index: int, action: Action
) -> None:
    # Every single action on every message, the others passed: the exhaustive
    # complement of the random schedules above.
    chosen = [Move(Action.PASS)] * 3
    chosen[index] = Move(action, position=37, mask=0x40)
    run_under_adversary(group, (chosen[0], chosen[1], chosen[2]))


@pytest.mark.parametrize("group", GROUPS)
@given(
    which=st.sampled_from(["ClientHello", "ServerHello", "ClientFinish"]),
    position=st.integers(0, 10_000),
    mask=st.integers(1, 255),
)
def test_every_tampered_byte_fails_the_handshake(
    group: ExchangeGroup, which: str, position: int, mask: int
) -> None:
    world = World(group)
    client, server = Side(world.initiator()), Side(world.responder())

    def tamper(message: bytes, name: str) -> bytes:
        if name != which:
            return message
        out = bytearray(message)
        out[position % len(out)] ^= mask
        return bytes(out)

    server.feed([tamper(client.machine.start(), "ClientHello")])  # type: ignore[union-attr]
    client.feed([tamper(server.output(), "ServerHello") or b""])
    server.feed([tamper(client.output(), "ClientFinish") or b""])
    assert server.completed is None
    assert server.failed is not None or client.failed is not None
    if which != "ClientFinish":
        assert client.completed is None


# -- man in the middle --------------------------------------------------------------


def mitm_relay(world: World, mallory: Credential) -> Side:
    """Mallory terminates the client's handshake with her own credential and opens
    her own to the server; returns the client's side."""
    client = Side(world.initiator())
    toward_client = Side(world.responder(mallory))
    toward_server = Side(world.initiator(mallory, identity=SERVER))
    honest_server = Side(world.responder())
    honest_server.feed([toward_server.machine.start()])  # type: ignore[union-attr]
    toward_client.feed([client.machine.start()])  # type: ignore[union-attr]
    client.feed([toward_client.output()])
    return client


@pytest.mark.parametrize("group", GROUPS)
def test_mitm_with_a_certificate_from_another_ca_is_detected(group: ExchangeGroup) -> None:
    client = mitm_relay(World(group), pki().rogue_server)
    assert isinstance(client.failed, PeerVerificationError)
    assert client.failed.reason == "unknown-issuer"  # type: ignore[attr-defined]
    assert client.completed is None


@pytest.mark.parametrize("group", GROUPS)
def test_mitm_with_a_same_ca_certificate_under_another_name_is_detected(
    group: ExchangeGroup,
) -> None:
    client = mitm_relay(World(group), pki().other_name)
    assert isinstance(client.failed, PeerVerificationError)
    assert client.failed.reason == "name-mismatch"  # type: ignore[attr-defined]


@pytest.mark.parametrize("group", GROUPS)
def test_mitm_posing_as_a_client_to_the_server_is_detected(group: ExchangeGroup) -> None:
    world = World(group)
    responder = world.responder()
    rogue_client = ThrowawayCA("rogue CA 2", now=NOW).issue(CLIENT)
    a = Side(world.initiator(rogue_client))
    b = Side(responder)
    b.feed([a.machine.start()])  # type: ignore[union-attr]
    a.feed([b.output()])
    b.feed([a.output()])
    assert isinstance(b.failed, PeerVerificationError)
    assert b.failed.reason == "unknown-issuer"  # type: ignore[attr-defined]


@pytest.mark.parametrize("group", GROUPS)
@given(data=st.data())
def test_mitm_swapping_key_shares_while_relaying_is_detected(
    group: ExchangeGroup, data: st.DataObject
) -> None:
    # Mallory relays the honest server's authentication but answers the client
    # with her own share (from a handshake she ran with the server herself), or
    # sends the server her own ClientHello share and relays the rest.
    world = World(group)
    honest = record(World(group))
    client, server = Side(world.initiator()), Side(world.responder())
    hello = client.machine.start()  # type: ignore[union-attr]
    target = data.draw(st.sampled_from(["client-share", "server-share"]))
    if target == "client-share":
        info = hello[5 + 32 + 8 + 1 + 2 :]
        forged = hello[: len(hello) - len(info)] + honest.messages[0][-len(info) :]
        server.feed([forged])
        client.feed([server.output()])
        assert isinstance(client.failed, HandshakeError)
    else:
        server.feed([hello])
        genuine_sh = server.output()
        share_len = len(honest.messages[1]) - len(genuine_sh)  # equal sizes per group
        assert share_len == 0
        # Same plain-part layout: nonce | group | share<u16> | sealed<u16>
        head = 5 + 32 + 1
        n = int.from_bytes(genuine_sh[head : head + 2], "big")
        forged = genuine_sh[: head + 2] + honest.messages[1][head + 2 : head + 2 + n]
        forged += genuine_sh[head + 2 + n :]
        client.feed([forged])
        assert isinstance(client.failed, HandshakeError)
        assert client.failed.reason == "bad-seal"  # type: ignore[attr-defined]
    assert client.completed is None


@attrs.frozen
class StolenChain:
    """Mallory presents the honest server's certificate chain but signs with her key."""

    chain_der: tuple[bytes, ...]
    mallory: Credential

    def sign(self, data: bytes) -> bytes:
        return self.mallory.sign(data)


@pytest.mark.parametrize("group", GROUPS)
def test_mitm_presenting_the_servers_own_certificate_cannot_sign_for_it(
    group: ExchangeGroup,
) -> None:
    # A full active MITM: Mallory terminates the client's handshake with her own
    # ephemeral share (so she can seal and MAC), relaying the honest server's
    # chain. Only the transcript signature stops her.
    world = World(group)
    stolen = StolenChain(pki().server.chain_der, pki().other_name)
    mallory = Responder(
        credential=stolen,  # type: ignore[arg-type]
        verifier=pki().ca.verifier(),
        replay_cache=world.cache,
        clock=world.clock,
    )
    client, fake_server = Side(world.initiator()), Side(mallory)
    fake_server.feed([client.machine.start()])  # type: ignore[union-attr]
    client.feed([fake_server.output()])
    assert isinstance(client.failed, HandshakeError)
    assert client.failed.reason == "bad-signature"  # type: ignore[attr-defined]
    assert client.completed is None


@attrs.frozen
class ForgedChain:
    """A peer that presents arbitrary certificate bytes, signing with its own key.

    The peer (or a man in the middle who answered with her own ephemeral
    share) holds the handshake keys, so what she sends opens and reaches
    certificate parsing: the fuzzing above never gets past the seal.
    """

    chain_der: tuple[bytes, ...]
    mallory: Credential

    def sign(self, data: bytes) -> bytes:
        return self.mallory.sign(data)


def flipped(der: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(der)
    for position, mask in flips:
        out[position % len(out)] ^= mask
    return bytes(out)


# Half the flips land in the first 40 bytes (version, serial, algorithm),
# where a flip makes pyca refuse or warn at load time rather than later.
flips = st.lists(
    st.tuples(st.one_of(st.integers(0, 40), st.integers(0, 2000)), st.integers(1, 255)),
    max_size=3,
)


@pytest.mark.parametrize("forger", ["server", "client"])
@given(leaf_flips=flips.filter(bool), root_flips=flips)
def test_mutated_certificates_under_a_valid_seal_raise_only_protocol_errors(
    forger: str, leaf_flips: list[tuple[int, int]], root_flips: list[tuple[int, int]]
) -> None:
    world = World(ExchangeGroup.X25519)
    honest = pki().server if forger == "server" else pki().client
    # The peer's leaf, always altered, and a copy of the root (an extra
    # certificate the path does not need), maybe altered too.
    root = pki().ca.certificate.public_bytes(Encoding.DER)
    chain = (flipped(honest.chain_der[0], leaf_flips), flipped(root, root_flips))
    assume(chain[0] != honest.chain_der[0])  # flips at one position may cancel out
    forged = ForgedChain(chain, honest)
    if forger == "server":
        client = Side(world.initiator())
        server = Side(world.responder(forged))  # type: ignore[arg-type]
        victim = client
    else:
        client = Side(world.initiator(forged))  # type: ignore[arg-type]
        server = Side(world.responder())
        victim = server
    server.feed([client.machine.start()])  # type: ignore[union-attr]
    client.feed([server.output() or b""])
    if forger == "client":
        server.feed([client.output() or b""])
    # Side.feed lets anything but a RemoteProtocolError propagate (and fail this test).
    assert isinstance(victim.failed, RemoteProtocolError)
    assert victim.completed is None
    assert victim.machine.state is HandshakeState.FAILED


# -- forward secrecy -----------------------------------------------------------------


def exchange_records(recording: Recording, messages: list[bytes]) -> list[bytes]:
    channel = recording.client.channel()
    return [channel.send(m) for m in messages]


def attempt_open(channel: SecureChannel, records: list[bytes]) -> list[bytes]:
    channel.receive_data(b"".join(records))
    out: list[bytes] = []
    try:
        while (event := channel.next_event()) is not NEED_DATA:
            if isinstance(event, Data):
                out.append(event.data)
    except RemoteProtocolError:
        pass
    return out


@pytest.mark.parametrize("group", GROUPS)
@given(secrets=st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=4))
def test_recorded_session_stays_unreadable_after_both_long_term_keys_leak(
    group: ExchangeGroup, secrets: list[bytes]
) -> None:
    world = World(group)
    recording = record(world)
    wire = exchange_records(recording, secrets)
    ch, sh, cf = recording.messages
    assert all(s not in b"".join([*recording.messages, *wire]) for s in secrets if len(s) > 4)

    # Positive control: the honest receiver reads the recording.
    assert attempt_open(recording.server.channel(), wire) == secrets

    # The attacker now holds both certificate keys (pki().server / pki().client).
    # 1. Re-run the responder's schedule on the recorded ClientHello with the
    #    leaked server key: it must pick a new ephemeral, so its keys differ and
    #    the recorded ClientFinish does not open.
    replayer = Responder(
        credential=pki().server,
        verifier=pki().ca.verifier(),
        replay_cache=ReplayCache(clock=world.clock),
        clock=world.clock,
    )
    replayer.receive_data(ch)
    replayer.next_event()
    replayer.receive_data(cf)
    with pytest.raises(HandshakeError):
        replayer.next_event()
    # 2. Re-run the initiator's schedule on the recorded ServerHello with the
    #    leaked client key: its ephemeral differs, the server's sealed
    #    authentication does not open, so no keys come out.
    initiator = Initiator(
        credential=pki().client,
        verifier=pki().ca.verifier(),
        server_identity=SERVER,
        group=group,
        clock=world.clock,
    )
    initiator.start()
    initiator.receive_data(sh)
    with pytest.raises(HandshakeError):
        initiator.next_event()
    # 3. Whatever session the attacker *can* complete with the leaked keys has
    #    unrelated keys: the recorded records do not open under them.
    _, forged_server = handshake_pair(world.initiator(), world.responder())
    assert forged_server.session_id != recording.server.session_id
    assert attempt_open(forged_server.channel(), wire) == []


# -- raw input fuzzing -------------------------------------------------------------


@pytest.mark.parametrize("group", GROUPS)
@given(garbage=st.binary(max_size=300), prefix=st.integers(0, 3))
def test_arbitrary_bytes_raise_only_remote_protocol_errors(
    group: ExchangeGroup, garbage: bytes, prefix: int
) -> None:
    world = World(group)
    headers = [b"", b"\x01\x01", b"\x01\x02", b"\x01\x03"]
    for machine in (world.responder(), world.initiator()):
        if isinstance(machine, Initiator):
            machine.start()
        try:
            machine.receive_data(headers[prefix] + garbage)
            machine.receive_data(b"")
            while machine.next_event() is not NEED_DATA:
                pass
        except RemoteProtocolError:
            continue
        except LocalProtocolError:
            # Only legitimate once the machine has finished or stopped.
            assert machine.state in (HandshakeState.COMPLETE, HandshakeState.FAILED)
        except KeyMgmtError as exc:  # pragma: no cover - the property under test
            pytest.fail(f"non-protocol error {type(exc).__name__}: {exc}")


@pytest.mark.parametrize("group", GROUPS)
@given(cuts=st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), which=st.integers(0, 2))
def test_truncation_anywhere_from_either_end_fails_cleanly(
    group: ExchangeGroup, cuts: tuple[int, int], which: int
) -> None:
    world = World(group)
    client, server = Side(world.initiator()), Side(world.responder())
    messages: list[bytes] = []

    def deliver(side: Side, message: bytes, index: int) -> None:
        messages.append(message)
        if index == which:
            cut = cuts[0] % len(message)
            side.feed([message[:cut], b""])
        else:
            side.feed([message])

    deliver(server, client.machine.start(), 0)  # type: ignore[union-attr]
    if out := server.output():
        deliver(client, out, 1)
    if out := client.output():
        deliver(server, out, 2)
    assert server.completed is None
    failed = server if which in (0, 2) else client
    assert isinstance(failed.failed, HandshakeError)
    assert failed.failed.reason == "truncated"  # type: ignore[attr-defined]


def test_stale_recorded_clienthello_is_refused_even_by_a_fresh_responder() -> None:
    world = World(ExchangeGroup.X25519)
    hello = world.initiator().start()
    world.clock.advance(dt.timedelta(minutes=6))
    fresh = World(ExchangeGroup.X25519, clock=world.clock).responder()
    fresh.receive_data(hello)
    with pytest.raises(RemoteProtocolError) as info:
        fresh.next_event()
    assert info.value.reason == "too-old"  # type: ignore[attr-defined]
