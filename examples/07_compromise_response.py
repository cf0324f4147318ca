"""Compromise response: revoke, rotate, publish, and every part refuses the old key.

Run: python examples/07_compromise_response.py
"""

from __future__ import annotations

import keymgmt
from keymgmt.errors import RevokedError
from keymgmt.kdc import InProcessTransport, KdcClient


def main() -> None:
    with keymgmt.KeyManager.in_memory() as km:
        km.keys.create("payments")
        alice = km.kdc.register("alice")
        km.kdc.grant("alice", keys=["payments"])
        transport = InProcessTransport(km.kdc)
        client = KdcClient(alice, clock=km.clock)

        granted = client.fetch_key("payments", transport)
        stored = km.encrypt("payments", b"card batch 17", {"batch": "17"})

        # The key version leaked: one call runs the whole playbook.
        report = km.compromise(key=granted.key_id)
        print(
            f"revoked {report.subject}; rotated to {', '.join(report.rotated)}; "
            f"it had been handed to {', '.join(report.recipients)}"
        )

        # The store refuses the compromised version...
        try:
            km.decrypt(stored, {"batch": "17"})
        except keymgmt.KeyStateError as exc:
            print("store:", exc.message)
        else:
            raise AssertionError("the compromised version decrypted")
        # ...except for an explicit migration, which re-encrypts under the new version.
        migrated = km.rewrap(stored, {"batch": "17"}, allow_compromised=True)
        assert km.decrypt(migrated, {"batch": "17"}) == b"card batch 17"

        # Clients learn it from the KDC's signed revocation list.
        client.fetch_revocation_list(transport)
        try:
            client.check_grant(granted)
        except RevokedError:
            print(f"client: {granted.key_id} is revoked, stop using it")
        else:
            raise AssertionError("a revoked grant was accepted")
        print("the key server now hands out", client.fetch_key("payments", transport).key_id)

        assert km.revocation.is_revoked(keymgmt.SubjectKind.KEY, granted.key_id)
        print(f"audit chain verifies: {km.audit.verify().entries} entries")


if __name__ == "__main__":
    main()
