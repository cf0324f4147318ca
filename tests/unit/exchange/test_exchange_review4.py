"""Regression tests for the fourth review of keymgmt.exchange (each failed before its fix)."""

from __future__ import annotations

import copy
import datetime as dt
import pickle
from collections.abc import Callable

import pytest

from keymgmt._secret import SecretBytes
from keymgmt.errors import InvalidArgumentError
from keymgmt.exchange import Initiator, KeyShare, Responder, SecureChannel, hkdf, respond
from keymgmt.testing import handshake_pair

MakeInitiator = Callable[..., Initiator]
MakeResponder = Callable[..., Responder]


@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy, pickle.dumps])
def test_session_cannot_be_duplicated_into_a_second_channel_under_the_same_keys(
    make_initiator: MakeInitiator,
    make_responder: MakeResponder,
    duplicate: Callable[[object], object],
) -> None:
    # Before: copy.copy(session) made a second, unopened Session over the same
    # traffic secrets; both opened a channel and sealed their first records
    # under the same key and nonce (the two ciphertexts XORed to the XOR of
    # the plaintexts).
    session, _ = handshake_pair(make_initiator(), make_responder())
    with pytest.raises(TypeError, match="nonces"):
        duplicate(session)
    session.channel()  # the original still opens its one channel


def test_initiator_refuses_a_time_before_1970_with_a_typed_error(
    make_initiator: MakeInitiator,
) -> None:
    # Before: OverflowError("can't convert negative int to unsigned") escaped.
    initiator = make_initiator()
    with pytest.raises(InvalidArgumentError, match="before 1970"):
        initiator.start(at=dt.datetime(1969, 12, 31, 23, 59, tzinfo=dt.UTC))


def test_handshake_receive_data_refuses_text_with_a_typed_error(
    make_responder: MakeResponder,
) -> None:
    # Before: TypeError("can't concat str to bytearray").
    with pytest.raises(InvalidArgumentError, match="bytes"):
        make_responder().receive_data("hello")  # type: ignore[arg-type]


def test_channel_receive_data_refuses_text_with_a_typed_error(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    _, session = handshake_pair(make_initiator(), make_responder())
    channel: SecureChannel = session.channel()
    with pytest.raises(InvalidArgumentError, match="bytes"):
        channel.receive_data("records")  # type: ignore[arg-type]


@pytest.mark.parametrize("identity", [b"server.example", 42])
def test_server_identity_that_is_not_text_is_refused_when_the_initiator_is_made(
    make_initiator: MakeInitiator, identity: object
) -> None:
    # Before: accepted here and refused only once the ServerHello arrived,
    # failing the handshake after a round trip.
    with pytest.raises(InvalidArgumentError, match="server_identity"):
        make_initiator(server_identity=identity)


@pytest.mark.parametrize("identity", [b"client.example", ""])
def test_client_identity_that_is_not_text_is_refused_when_the_responder_is_made(
    make_responder: MakeResponder, identity: object
) -> None:
    with pytest.raises(InvalidArgumentError, match="client_identity"):
        make_responder(client_identity=identity)


@pytest.mark.parametrize(
    "secret",
    [b"\x00" * 32, "k" * 32, None, SecretBytes(b"\x00" * 16)],
    ids=["bytes", "str", "none", "short"],
)
def test_channel_refuses_a_traffic_secret_that_is_not_a_secret_of_32_bytes(
    secret: object,
) -> None:
    # Before: AttributeError ('bytes' object has no attribute 'reveal') for
    # plain bytes, and a short secret was accepted.
    with pytest.raises(InvalidArgumentError, match="SecretBytes"):
        SecureChannel(send_secret=secret, receive_secret=SecretBytes(bytes(32)))  # type: ignore[arg-type]


@pytest.mark.parametrize("length", ["32", 32.0, None, True])
def test_hkdf_refuses_a_length_that_is_not_an_int_with_invalid_argument(length: object) -> None:
    # Before: TypeError from a comparison or a slice deep inside, and True
    # was taken as a length of 1.
    with pytest.raises(InvalidArgumentError, match="an int"):
        hkdf(b"k" * 32, salt=b"", info=b"", length=length)  # type: ignore[arg-type]


def test_agreement_and_exporter_refuse_a_length_that_is_not_an_int(
    make_initiator: MakeInitiator, make_responder: MakeResponder
) -> None:
    share = KeyShare.generate()
    with pytest.raises(InvalidArgumentError, match="an int"):
        respond("x25519", share.public_bytes, salt=b"", info=b"", length="1")  # type: ignore[arg-type]
    session, _ = handshake_pair(make_initiator(), make_responder())
    with pytest.raises(InvalidArgumentError, match="an int"):
        session.export(b"label", length=16.0)  # type: ignore[arg-type]


def test_responder_groups_given_as_one_string_is_refused_with_a_clear_message(
    make_responder: MakeResponder,
) -> None:
    # Before: "x25519" was iterated as the groups "x", "2", ... and refused as
    # UnsupportedAlgorithmError("unknown exchange group 'x'").
    with pytest.raises(InvalidArgumentError, match=r"not one str \(use \['x25519'\]\)"):
        make_responder(groups="x25519")
