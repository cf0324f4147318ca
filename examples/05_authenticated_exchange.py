"""Authenticated key exchange: two parties with CA-issued certificates share a key.

The handshake is sans-IO: each side turns bytes into events, so you carry
the bytes over any transport. Here they are handed across directly.

Run: python examples/05_authenticated_exchange.py
"""

from __future__ import annotations

import keymgmt
from keymgmt.errors import PeerVerificationError
from keymgmt.exchange import Data, HandshakeComplete, HelloReceived


def main() -> None:
    with keymgmt.KeyManager.in_memory() as km:
        root = km.pki.create_root_ca("exchange-root", key_type="ed25519")
        alice_cred = km.exchange.credential(root, "alice.example", server=False)
        bob_cred = km.exchange.credential(root, "bob.example", client=False)

        alice = km.exchange.initiator(alice_cred, server_identity="bob.example")
        bob = km.exchange.responder(bob_cred)

        bob.receive_data(alice.start())  # ClientHello: ephemeral share + nonce
        assert isinstance(bob.next_event(), HelloReceived)
        alice.receive_data(bob.data_to_send())  # ServerHello: certificate, signature
        done_alice = alice.next_event()
        bob.receive_data(alice.data_to_send())  # ClientFinish: certificate, signature
        done_bob = bob.next_event()
        assert isinstance(done_alice, HandshakeComplete)
        assert isinstance(done_bob, HandshakeComplete)

        a, b = done_alice.session, done_bob.session
        print(f"alice verified {a.peer.identity}; bob verified {b.peer.identity}")
        assert a.session_id == b.session_id

        tx, rx = a.channel(), b.channel()
        rx.receive_data(tx.send(b"hello bob"))
        assert rx.next_event() == Data(b"hello bob")
        print(
            "secure channel carried a record; a shared exporter key:",
            a.export(b"example") == b.export(b"example"),
        )

        # A revoked certificate ends the next handshake.
        root.revoke(bob_cred.chain[0].serial_number, "key-compromise")
        again = km.exchange.initiator(alice_cred, server_identity="bob.example")
        server = km.exchange.responder(bob_cred)
        server.receive_data(again.start())
        server.next_event()
        again.receive_data(server.data_to_send())
        try:
            again.next_event()
        except PeerVerificationError as exc:
            print(f"bob's certificate revoked: handshake refused ({exc.reason})")
        else:
            raise AssertionError("a revoked peer completed the handshake")


if __name__ == "__main__":
    main()
