"""Key shares drawn from the injected randomness: seeded, a handshake replays byte for byte.

A handshake takes its nonces from the randomness it is given; its ephemeral
shares (and ``km.exchange.credential``'s keys) come from it too, so a test
with ``SeededRandomness`` and a fake clock sees the same messages every run,
and Hypothesis can replay a failing draw. The default is the OS CSPRNG.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keymgmt import KeyManager
from keymgmt.algorithms import ExchangeGroup
from keymgmt.exchange import KeyShare, respond
from keymgmt.testing import FakeClock, SeededRandomness

_GROUPS = [ExchangeGroup.X25519, ExchangeGroup.P256, ExchangeGroup.P384]


@pytest.mark.parametrize("group", [*_GROUPS, ExchangeGroup.X25519_MLKEM768])
def test_a_seeded_share_is_the_same_share(group: ExchangeGroup) -> None:
    first = KeyShare.generate(group, randomness=SeededRandomness("s"))
    again = KeyShare.generate(group, randomness=SeededRandomness("s"))
    other = KeyShare.generate(group, randomness=SeededRandomness("t"))
    assert first.public_bytes == again.public_bytes
    assert first.public_bytes != other.public_bytes


@pytest.mark.parametrize("group", _GROUPS)
def test_seeded_shares_still_agree_with_the_responder(group: ExchangeGroup) -> None:
    share = KeyShare.generate(group, randomness=SeededRandomness("i"))
    answer, theirs = respond(
        group, share.public_bytes, salt=b"s", info=b"i", randomness=SeededRandomness("r")
    )
    assert share.derive(answer, salt=b"s", info=b"i").reveal() == theirs.reveal()


@pytest.mark.parametrize("group", _GROUPS)
def test_default_shares_are_fresh(group: ExchangeGroup) -> None:
    assert KeyShare.generate(group).public_bytes != KeyShare.generate(group).public_bytes


@settings(max_examples=50, derandomize=True, database=None)
@given(seed=st.binary(min_size=0, max_size=64), group=st.sampled_from(_GROUPS[1:]))
def test_any_seed_gives_a_valid_ec_scalar(seed: bytes, group: ExchangeGroup) -> None:
    # The scalar is reduced into [1, n-1]: never 0, never past the order.
    share = KeyShare.generate(group, randomness=SeededRandomness(seed.hex()))
    assert len(share.public_bytes) in (65, 97)


def _hello_and_reply(seed: str) -> tuple[bytes, bytes]:
    with KeyManager.in_memory(clock=FakeClock(), randomness=SeededRandomness(seed)) as km:
        root = km.pki.create_root_ca("root", key_type="ed25519")
        server = km.exchange.credential(root, "server.example", client=False)
        client = km.exchange.credential(root, "client.example", server=False)
        initiator = km.exchange.initiator(client, server_identity="server.example")
        responder = km.exchange.responder(server)
        hello = initiator.start()
        responder.receive_data(hello)
        responder.next_event()
        return hello, responder.data_to_send()


def test_a_seeded_handshake_replays_byte_for_byte() -> None:
    assert _hello_and_reply("run") == _hello_and_reply("run")
    assert _hello_and_reply("run") != _hello_and_reply("other")
