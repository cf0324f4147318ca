"""The KDC's signed revocation list: verified, fresh, never rolled back."""

from __future__ import annotations

import pytest
from _kdc_support import minutes

from keymgmt import KeyManager
from keymgmt.errors import (
    InvalidSignatureError,
    KeyMgmtError,
    ProtocolError,
    RemoteProtocolError,
    StaleMessageError,
)
from keymgmt.kdc import InProcessTransport, KdcClient, KeyDistributionCenter, SymmetricCredential
from keymgmt.revocation import Revocation, RevocationReason, SubjectKind
from keymgmt.testing import FakeClock


def test_list_names_revoked_key_versions_and_principals(
    km: KeyManager, client: KdcClient, transport: InProcessTransport
) -> None:
    km.revocation.revoke(SubjectKind.KEY, "payments#1", "key-compromise")
    km.revocation.revoke(SubjectKind.PRINCIPAL, "mallory")
    listed = client.fetch_revocation_list(transport)
    assert listed.key_revoked("payments", 1)
    assert listed.is_revoked("principal", "mallory")
    assert not listed.key_revoked("payments", 2)
    assert {(e.kind, e.subject, e.reason) for e in listed.entries} == {
        ("key", "payments#1", "key-compromise"),
        ("principal", "mallory", "unspecified"),
    }


def test_whole_key_revocation_covers_every_version(
    km: KeyManager, client: KdcClient, transport: InProcessTransport
) -> None:
    km.revocation.revoke(SubjectKind.KEY, "payments")
    assert client.fetch_revocation_list(transport).key_revoked("payments", 7)


def test_certificate_revocations_stay_in_crls(
    km: KeyManager, client: KdcClient, transport: InProcessTransport
) -> None:
    km.revocation.revoke(SubjectKind.CERTIFICATE, "root:01")
    assert client.fetch_revocation_list(transport).entries == ()


def test_list_signed_by_another_kdc_is_refused(
    km: KeyManager, kdc: KeyDistributionCenter, alice: SymmetricCredential, clock: FakeClock
) -> None:
    forger = KeyManager.in_memory(clock=clock)
    try:
        other = KeyDistributionCenter(forger._context)
        client = KdcClient(alice, clock=clock)
        with pytest.raises(InvalidSignatureError):
            client.fetch_revocation_list(InProcessTransport(other))
    finally:
        forger.close()


def test_every_tampered_byte_is_refused(
    km: KeyManager, kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    km.revocation.revoke(SubjectKind.KEY, "payments#1")
    request = client.revocation_list_request()
    data = kdc.handle(request)
    for index in range(len(data)):
        tampered = bytearray(data)
        tampered[index] ^= 0x01
        with pytest.raises(KeyMgmtError):
            client.receive_revocation_list(bytes(tampered))
    assert client.receive_revocation_list(data).key_revoked("payments", 1)


def test_list_answering_another_request_is_refused(
    kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    old = kdc.handle(client.revocation_list_request())
    client.revocation_list_request()
    with pytest.raises(RemoteProtocolError, match="does not answer this request"):
        client.receive_revocation_list(old)


def test_older_list_is_refused_as_a_rollback(
    km: KeyManager, kdc: KeyDistributionCenter, client: KdcClient, clock: FakeClock
) -> None:
    older = kdc.revocation_list()
    km.revocation.revoke(SubjectKind.KEY, "payments#1")
    clock.advance(1)
    client.receive_revocation_list(kdc.revocation_list())
    with pytest.raises(RemoteProtocolError, match="rollback"):
        client.receive_revocation_list(older)


def test_expired_list_is_refused(
    kdc: KeyDistributionCenter, client: KdcClient, clock: FakeClock
) -> None:
    data = kdc.revocation_list()
    clock.advance(minutes(15))
    with pytest.raises(StaleMessageError, match="out of date"):
        client.receive_revocation_list(data)


def test_number_grows_with_every_store_change(
    km: KeyManager, kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    first = client.receive_revocation_list(kdc.revocation_list())
    km.revocation.revoke(SubjectKind.KEY, "payments#1")
    second = client.receive_revocation_list(kdc.revocation_list())
    assert second.number > first.number


def test_a_list_too_large_for_one_message_is_refused_clearly(
    km: KeyManager, kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    subject = "k" * 500
    for i in range(8_000):
        km.revocation._set(f"key:{subject}{i}", _revocation(km, f"{subject}{i}"))
    with pytest.raises(ProtocolError, match="do not fit in one revocation list message"):
        kdc.revocation_list()
    with pytest.raises(RemoteProtocolError, match="do not fit"):
        client.receive_revocation_list(kdc.handle(client.revocation_list_request()))


def _revocation(km: KeyManager, subject: str) -> Revocation:
    return Revocation(
        kind=SubjectKind.KEY,
        subject=subject,
        reason=RevocationReason.UNSPECIFIED,
        revoked_at=km.clock.now(),
    )


# -- the list's entries are built once per change of keys or principals ----------


def _count_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from keymgmt.kdc import _protocol

    builds: list[int] = []
    real = _protocol.revocation_list_body

    def counting(entries: object) -> bytes:
        builds.append(1)
        return real(entries)  # type: ignore[arg-type]

    monkeypatch.setattr(_protocol, "revocation_list_body", counting)
    return builds


def test_certificate_revocations_do_not_rebuild_the_list(
    km: KeyManager, kdc: KeyDistributionCenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = _count_builds(monkeypatch)
    kdc.revocation_list()
    for serial in range(1, 6):
        km.revocation.revoke(SubjectKind.CERTIFICATE, f"root:{serial:x}")
        kdc.revocation_list(nonce=bytes(16))
    assert len(builds) == 1


def test_a_key_or_principal_revocation_rebuilds_the_list_at_once(
    km: KeyManager,
    kdc: KeyDistributionCenter,
    client: KdcClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds = _count_builds(monkeypatch)
    assert client.receive_revocation_list(kdc.revocation_list()).entries == ()
    km.revocation.revoke(SubjectKind.KEY, "payments#1", "key-compromise")
    assert client.receive_revocation_list(kdc.revocation_list()).key_revoked("payments", 1)
    km.revocation.revoke(SubjectKind.PRINCIPAL, "mallory")
    listed = client.receive_revocation_list(kdc.revocation_list())
    assert listed.is_revoked("principal", "mallory")
    assert len(builds) == 3


def test_a_released_hold_leaves_the_list(
    km: KeyManager, kdc: KeyDistributionCenter, client: KdcClient
) -> None:
    km.revocation.revoke(SubjectKind.PRINCIPAL, "bob", "certificate-hold")
    assert client.receive_revocation_list(kdc.revocation_list()).is_revoked("principal", "bob")
    km.revocation.release_hold(SubjectKind.PRINCIPAL, "bob")
    assert not client.receive_revocation_list(kdc.revocation_list()).is_revoked("principal", "bob")


def test_a_revocation_by_another_process_is_in_the_next_list(tmp_path: object) -> None:
    from pathlib import Path

    from keymgmt.keyring import KdfProfile

    path = Path(str(tmp_path)) / "kdc.db"
    clock = FakeClock()
    opened = [
        KeyManager.open(
            path, passphrase="pw", kdf_profile=KdfProfile.TESTING_ONLY_INSECURE, clock=clock
        )
        for _ in range(2)
    ]
    server, other = opened
    try:
        alice = server.kdc.register("alice")
        client = KdcClient(alice, clock=clock)
        assert client.receive_revocation_list(server.kdc.revocation_list()).entries == ()
        other.revocation.revoke(SubjectKind.KEY, "payments#1", "key-compromise")
        listed = client.receive_revocation_list(server.kdc.revocation_list())
        assert listed.key_revoked("payments", 1)
    finally:
        for manager in opened:
            manager.close()
