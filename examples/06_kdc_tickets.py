"""Centralized key distribution: the key server hands keys to clients, and tickets to pairs.

Run: python examples/06_kdc_tickets.py
"""

from __future__ import annotations

import keymgmt
from keymgmt.errors import AccessDeniedError, ReplayError
from keymgmt.kdc import InProcessTransport, KdcClient, TicketReceiver


def main() -> None:
    with keymgmt.KeyManager.in_memory() as km:
        km.keys.create("reports")
        alice = km.kdc.register("alice")  # long-term credential, returned once
        bob = km.kdc.register("bob")
        km.kdc.grant("alice", keys=["reports"], peers=["bob"])  # default deny otherwise

        # In production the transport is the network (keymgmt serve); here, in process.
        transport = InProcessTransport(km.kdc)
        client = KdcClient(alice, clock=km.clock)

        granted = client.fetch_key("reports", transport)
        print(f"alice got {granted.key_id}, usable until {granted.expires_at:%Y-%m-%d %H:%M}")

        try:
            KdcClient(bob, clock=km.clock).fetch_key("reports", transport)
        except AccessDeniedError:
            print("bob asked for 'reports': denied by policy")
        else:
            raise AssertionError("bob got a key the policy does not grant him")

        request = client.key_request("reports")
        client.receive_key_reply(transport(request))
        try:
            client.receive_key_reply(transport(request))
        except ReplayError:
            print("the same request replayed: refused")
        else:
            raise AssertionError("a replayed request was answered")

        # Kerberos-style: alice gets a ticket for bob, bob accepts it.
        service = TicketReceiver(bob, clock=km.clock)
        ticket = client.fetch_ticket("bob", transport)
        ap = client.ap_request(ticket)
        session = service.accept(ap.data)
        client.receive_ap_reply(ap, session.reply)  # mutual authentication
        assert session.session_key == ticket.session_key
        print(f"alice and bob share a session key; bob knows the client is {session.client}")


if __name__ == "__main__":
    main()
