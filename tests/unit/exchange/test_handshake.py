"""The handshake state machine, driven from both ends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from keymgmt.algorithms import ExchangeGroup
from keymgmt.errors import (
    HandshakeError,
    InvalidArgumentError,
    LocalProtocolError,
    PeerVerificationError,
    RemoteProtocolError,
    ReplayError,
    StaleMessageError,
)
from keymgmt.exchange import (
    NEED_DATA,
    ChainVerifier,
    Credential,
    Data,
    HandshakeComplete,
    HandshakeState,
    HelloReceived,
    Initiator,
    LegacyAlgorithmWarning,
    ReplayCache,
    Responder,
)
from keymgmt.testing import FakeClock, ThrowawayCA, handshake_pair

SERVER = "server.example"
CLIENT = "client.example"
MakeInitiator = Callable[..., Initiator]
MakeResponder = Callable[..., Responder]


def complete(initiator: Initiator, responder: Responder) -> None:
    handshake_pair(initiator, responder)


# -- success ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "group",
    [ExchangeGroup.X25519, ExchangeGroup.X25519_MLKEM768, ExchangeGroup.P256, ExchangeGroup.P384],
)
def test_handshake_authenticates_both_sides_and_agrees_on_keys(
    make_initiator: MakeInitiator, make_responder: MakeResponder, group: ExchangeGroup
) -> None:
    client, server = handshake_pair(make_initiator(group=group), make_responder())
    assert client.peer.identity == SERVER
    assert server.peer.identity == CLIENT
    assert client.group is server.group is group
    assert client.session_id == server.session_id
    a, b = client.channel(), server.channel()
    b.receive_data(a.send(b"hello"))
    assert b.next_event() == Data(b"hello")


def test_ffdhe_handshake_works_and_warns_on_both_ends(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    with pytest.warns(LegacyAlgorithmWarning):
        responder = make_responder(groups=[ExchangeGroup.FFDHE2048])
    initiator = make_initiator(group=ExchangeGroup.FFDHE2048)
    with pytest.warns(LegacyAlgorithmWarning, match="legacy"):
        client, server = handshake_pair(initiator, responder)
    assert client.session_id == server.session_id


def test_two_handshakes_give_different_session_ids(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    first, _ = handshake_pair(make_initiator(randomness=None), make_responder(randomness=None))
    second, _ = handshake_pair(make_initiator(randomness=None), make_responder(randomness=None))
    assert first.session_id != second.session_id


def test_exporter_agrees_and_depends_on_label(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    client, server = handshake_pair(make_initiator(), make_responder())
    assert client.export(b"app", b"ctx") == server.export(b"app", b"ctx")
    assert client.export(b"app") != client.export(b"other")


def test_channel_opens_once_per_session(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    client, _ = handshake_pair(make_initiator(), make_responder())
    client.channel()
    with pytest.raises(LocalProtocolError, match="opened already"):
        client.channel()


def test_responder_without_expected_name_accepts_and_names_any_verified_client(
    ca: ThrowawayCA, make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    other = ca.issue("other-client.example", server=False)
    _, server = handshake_pair(make_initiator(credential=other), make_responder())
    assert server.peer.identity == "other-client.example"


def test_ecdsa_p256_credentials_work(
    ca: ThrowawayCA, make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cred = ca.issue(CLIENT, server=False, key=key)
    _, server = handshake_pair(make_initiator(credential=cred), make_responder())
    assert server.peer.identity == CLIENT


def test_chain_through_an_intermediate_verifies(
    ca: ThrowawayCA, make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    intermediate = ThrowawayCA("issuing CA", now=ca.now, parent=ca)
    cred = intermediate.issue(SERVER, client=False)
    client, _ = handshake_pair(make_initiator(), make_responder(credential=cred))
    assert len(client.peer.chain) == 3


def test_clientfinish_and_first_record_in_one_chunk_leave_trailing_data(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    initiator, responder = make_initiator(), make_responder()
    responder.receive_data(initiator.start())
    responder.next_event()
    initiator.receive_data(responder.data_to_send())
    done = initiator.next_event()
    assert isinstance(done, HandshakeComplete)
    record = done.session.channel().send(b"early")
    responder.receive_data(initiator.data_to_send() + record)
    finished = responder.next_event()
    assert isinstance(finished, HandshakeComplete)
    assert responder.trailing_data == record


# -- byte-by-byte, truncation, duplication -----------------------------------------


@given(st.integers(1, 64))
def test_byte_by_byte_and_chunked_input_from_both_ends_completes(chunk: int) -> None:
    clock = FakeClock()
    ca = ThrowawayCA(now=clock.now())
    initiator = Initiator(
        credential=ca.issue(CLIENT), verifier=ca.verifier(), server_identity=SERVER, clock=clock
    )
    responder = Responder(
        credential=ca.issue(SERVER),
        verifier=ca.verifier(),
        replay_cache=ReplayCache(clock=clock),
        clock=clock,
    )

    def deliver(data: bytes, to: Initiator | Responder) -> object:
        event: object = NEED_DATA
        for i in range(0, len(data), chunk):
            assert event is NEED_DATA
            to.receive_data(data[i : i + chunk])
            event = to.next_event()
        return event

    assert isinstance(deliver(initiator.start(), responder), HelloReceived)
    assert isinstance(deliver(responder.data_to_send(), initiator), HandshakeComplete)
    assert isinstance(deliver(initiator.data_to_send(), responder), HandshakeComplete)


@pytest.mark.parametrize("cut", [1, 4, 5, 40])
def test_truncated_clienthello_fails_at_end_of_stream(
    make_initiator: MakeInitiator, make_responder: MakeResponder, cut: int
) -> None:
    responder = make_responder()
    responder.receive_data(make_initiator().start()[:cut])
    assert responder.next_event() is NEED_DATA
    responder.receive_data(b"")
    with pytest.raises(HandshakeError, match="ended mid-handshake") as info:
        responder.next_event()
    assert info.value.reason == "truncated"
    assert responder.state is HandshakeState.FAILED


def test_truncated_serverhello_fails_at_end_of_stream(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    initiator, responder = make_initiator(), make_responder()
    responder.receive_data(initiator.start())
    responder.next_event()
    initiator.receive_data(responder.data_to_send()[:-1])
    assert initiator.next_event() is NEED_DATA
    initiator.receive_data(b"")
    with pytest.raises(HandshakeError, match="ended mid-handshake"):
        initiator.next_event()


def test_duplicated_clienthello_is_an_unexpected_message(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    responder = make_responder()
    hello = make_initiator().start()
    responder.receive_data(hello + hello)
    responder.next_event()
    with pytest.raises(HandshakeError, match="unexpected ClientHello") as info:
        responder.next_event()
    assert info.value.reason == "unexpected-message"


def test_duplicated_serverhello_is_left_as_trailing_data(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    # The initiator is done after one ServerHello; a duplicate is the channel's problem.
    initiator, responder = make_initiator(), make_responder()
    responder.receive_data(initiator.start())
    responder.next_event()
    server_hello = responder.data_to_send()
    initiator.receive_data(server_hello + server_hello)
    done = initiator.next_event()
    assert isinstance(done, HandshakeComplete)
    channel = done.session.channel()
    channel.receive_data(initiator.trailing_data)
    with pytest.raises(RemoteProtocolError):
        channel.next_event()


def test_failed_handshake_refuses_further_use(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    responder = make_responder()
    responder.receive_data(b"\x02" + bytes(10))
    with pytest.raises(HandshakeError):
        responder.next_event()
    with pytest.raises(LocalProtocolError, match="has failed"):
        responder.next_event()
    with pytest.raises(LocalProtocolError, match="has failed"):
        responder.receive_data(b"x")


# -- wire format strictness ---------------------------------------------------------


def test_unknown_version_is_refused(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    responder = make_responder()
    responder.receive_data(b"\x02" + make_initiator().start()[1:])
    with pytest.raises(HandshakeError, match="unsupported handshake version 2"):
        responder.next_event()


def test_trailing_byte_inside_a_message_is_refused(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    hello = make_initiator().start()
    body = hello[5:] + b"\x00"
    responder = make_responder()
    responder.receive_data(hello[:2] + len(body).to_bytes(3, "big") + body)
    with pytest.raises(HandshakeError, match="trailing bytes"):
        responder.next_event()


def test_oversized_frame_is_refused_from_its_header(make_responder: MakeResponder) -> None:
    responder = make_responder()
    responder.receive_data(b"\x01\x01\xff\xff\xff")
    with pytest.raises(HandshakeError, match="exceeds") as info:
        responder.next_event()
    assert info.value.reason == "too-large"


def test_unknown_group_code_is_refused(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    hello = bytearray(make_initiator().start())
    hello[5 + 32 + 8] = 99
    responder = make_responder()
    responder.receive_data(bytes(hello))
    with pytest.raises(HandshakeError, match="unknown group 99"):
        responder.next_event()


def test_group_not_accepted_by_the_responder_is_refused(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    responder = make_responder(groups=[ExchangeGroup.X25519])
    responder.receive_data(make_initiator(group=ExchangeGroup.P256).start())
    with pytest.raises(HandshakeError, match="not accepted") as info:
        responder.next_event()
    assert info.value.reason == "unsupported-group"


def test_invalid_key_share_is_a_handshake_error(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    hello = bytearray(make_initiator().start())
    hello[-32:] = bytes(32)  # X25519 all-zero (low-order) share
    responder = make_responder()
    responder.receive_data(bytes(hello))
    with pytest.raises(HandshakeError, match="invalid key share") as info:
        responder.next_event()
    assert info.value.reason == "invalid-key-share"


# -- freshness and replay ----------------------------------------------------------


def test_replayed_clienthello_of_a_completed_handshake_is_refused(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    initiator, first = make_initiator(), make_responder()
    hello = initiator.start()
    first.receive_data(hello)
    first.next_event()
    initiator.receive_data(first.data_to_send())
    initiator.next_event()
    first.receive_data(initiator.data_to_send())
    assert isinstance(first.next_event(), HandshakeComplete)
    second = make_responder()
    second.receive_data(hello)
    with pytest.raises(ReplayError):
        second.next_event()


def test_stale_clienthello_is_refused(
    make_initiator: MakeInitiator, make_responder: MakeResponder, clock: FakeClock
) -> None:
    hello = make_initiator().start()
    clock.advance(minutes=6)
    responder = make_responder()
    responder.receive_data(hello)
    with pytest.raises(StaleMessageError, match="older than the freshness window"):
        responder.next_event()


def test_clienthello_from_the_future_is_refused(
    make_initiator: MakeInitiator, make_responder: MakeResponder, clock: FakeClock
) -> None:
    hello = make_initiator().start(at=clock.now() + dt.timedelta(minutes=2))
    responder = make_responder()
    responder.receive_data(hello)
    with pytest.raises(StaleMessageError, match="future"):
        responder.next_event()


# -- peer verification ----------------------------------------------------------------


def test_server_with_the_wrong_name_is_refused(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    with pytest.raises(PeerVerificationError, match=r"not issued to 'bank\.example'") as info:
        complete(make_initiator(server_identity="bank.example"), make_responder())
    assert info.value.reason == "name-mismatch"


def test_client_with_the_wrong_name_is_refused(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    with pytest.raises(PeerVerificationError) as info:
        complete(make_initiator(), make_responder(client_identity="admin.example"))
    assert info.value.reason == "name-mismatch"


def test_server_from_an_unknown_ca_is_refused(
    make_initiator: MakeInitiator, make_responder: MakeResponder, clock: FakeClock
) -> None:
    rogue = ThrowawayCA("rogue CA", now=clock.now())
    with pytest.raises(PeerVerificationError, match="does not lead to a trusted CA") as info:
        complete(make_initiator(), make_responder(credential=rogue.issue(SERVER)))
    assert info.value.reason == "unknown-issuer"


def test_expired_server_certificate_is_refused(
    ca: ThrowawayCA, make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    old = ca.issue(
        SERVER,
        not_before=ca.now - dt.timedelta(days=30),
        not_after=ca.now - dt.timedelta(days=1),
    )
    with pytest.raises(PeerVerificationError, match="expired") as info:
        complete(make_initiator(), make_responder(credential=old))
    assert info.value.reason == "expired"


def test_not_yet_valid_client_certificate_is_refused(
    ca: ThrowawayCA, make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    future = ca.issue(CLIENT, not_before=ca.now + dt.timedelta(days=1))
    with pytest.raises(PeerVerificationError) as info:
        complete(make_initiator(credential=future), make_responder())
    assert info.value.reason == "not-yet-valid"


def test_revoked_server_certificate_is_refused(
    ca: ThrowawayCA,
    server_cred: Credential,
    make_initiator: MakeInitiator,
    make_responder: MakeResponder,
) -> None:
    revoked_serials = {server_cred.chain[0].serial_number}
    verifier = ChainVerifier(
        [ca.certificate],
        revoked=lambda cert, issuer: (
            "key-compromise" if cert.serial_number in revoked_serials else None
        ),
    )
    with pytest.raises(PeerVerificationError, match="revoked") as info:
        complete(make_initiator(verifier=verifier), make_responder())
    assert info.value.reason == "revoked"
    assert info.value.revocation_reason == "key-compromise"  # type: ignore[attr-defined]


def test_client_certificate_without_client_usage_is_refused(
    ca: ThrowawayCA, make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    server_only = ca.issue(CLIENT, client=False)
    with pytest.raises(PeerVerificationError, match="not for client authentication") as info:
        complete(make_initiator(credential=server_only), make_responder())
    assert info.value.reason == "wrong-usage"


# -- local misuse ---------------------------------------------------------------------


def test_start_twice_is_local_misuse(make_initiator: MakeInitiator) -> None:
    initiator = make_initiator()
    initiator.start()
    with pytest.raises(LocalProtocolError, match="start"):
        initiator.start()


def test_next_event_before_start_is_local_misuse(make_initiator: MakeInitiator) -> None:
    with pytest.raises(LocalProtocolError, match="idle"):
        make_initiator().next_event()


def test_next_event_without_a_time_source_is_local_misuse(
    make_responder: MakeResponder,
) -> None:
    with pytest.raises(LocalProtocolError, match="at="):
        make_responder(clock=None).next_event()


def test_naive_time_is_refused(make_responder: MakeResponder) -> None:
    with pytest.raises(InvalidArgumentError, match="timezone-aware"):
        make_responder().next_event(at=dt.datetime(2030, 1, 1))


def test_empty_server_identity_is_refused(make_initiator: MakeInitiator) -> None:
    with pytest.raises(InvalidArgumentError, match="server_identity"):
        make_initiator(server_identity="")


def test_credential_with_a_mismatched_key_is_refused(ca: ThrowawayCA) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    cred = ca.issue(CLIENT)
    with pytest.raises(InvalidArgumentError, match="does not match the leaf"):
        Credential(cred.chain, ed25519.Ed25519PrivateKey.generate())


def test_reprs_hide_secrets(make_initiator: MakeInitiator, make_responder: MakeResponder) -> None:
    client, _ = handshake_pair(make_initiator(), make_responder())
    text = repr(client) + repr(client.peer) + repr(client.channel())
    assert "server.example" in text
    assert client.session_id.hex() not in text


def test_wrong_finished_mac_inside_a_valid_seal_is_refused(
    make_initiator: MakeInitiator, make_responder: MakeResponder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keymgmt.exchange.handshake import _connection

    genuine = _connection.finished_mac
    calls = []

    def first_call_lies(secret: object, transcript: bytes) -> bytes:
        calls.append(1)
        mac = genuine(secret, transcript)  # type: ignore[arg-type]
        return bytes(32) if len(calls) == 1 else mac

    monkeypatch.setattr(_connection, "finished_mac", first_call_lies)
    with pytest.raises(HandshakeError, match="finished MAC does not verify") as info:
        complete(make_initiator(), make_responder())
    assert info.value.reason == "bad-finished"
