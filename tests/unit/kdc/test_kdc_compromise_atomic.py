"""km.compromise is one audited transaction, and its report lists data keys and tickets."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from _kdc_support import client_certificate

from keymgmt import KeyManager
from keymgmt.errors import KeyMgmtError, KeyNotFoundError, StoreError
from keymgmt.kdc import InProcessTransport, KdcClient
from keymgmt.keyring import KdfProfile, RawMasterKey
from keymgmt.keys import data_key_id
from keymgmt.model import KeyState
from keymgmt.pki import CertificateAuthority
from keymgmt.revocation import SubjectKind
from keymgmt.storage import MemoryBackend, Operation, Record
from keymgmt.testing import FakeClock, SeededRandomness

PASSPHRASE = "correct horse battery staple"


class _Boom(KeyMgmtError):
    """The failure the tests inject."""


class FailingBackend(MemoryBackend):
    """A MemoryBackend whose commit raises while ``fail`` is set (nothing written)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = False
        self.commits = 0

    def commit(self, operations: Sequence[Operation]) -> list[Record]:
        if self.fail:
            raise StoreError("injected commit failure")
        self.commits += 1
        return super().commit(operations)


@pytest.fixture
def backend() -> FailingBackend:
    return FailingBackend()


@pytest.fixture
def fkm(backend: FailingBackend, clock: FakeClock) -> Iterator[KeyManager]:
    rng = SeededRandomness(99)
    with KeyManager(
        backend=backend,
        master_key=RawMasterKey(rng.token_bytes(32)),
        clock=clock,
        randomness=rng,
        consistency_interval=0,
    ) as manager:
        yield manager


Setup = tuple[KdcClient, KdcClient, InProcessTransport]


@pytest.fixture
def setup(fkm: KeyManager, clock: FakeClock) -> Setup:
    fkm.keys.create("payments")
    fkm.keys.create("reports")
    alice = fkm.kdc.register("alice")
    bob = fkm.kdc.register("bob")
    fkm.kdc.grant("alice", keys=["payments", "reports"], peers=["bob"])
    fkm.kdc.grant("bob", keys=["payments"])
    transport = InProcessTransport(fkm.kdc)
    fkm.kdc.public_key  # noqa: B018 - creates the KDC signing key before snapshots
    return (
        KdcClient(alice, clock=clock, randomness=SeededRandomness("a")),
        KdcClient(bob, clock=clock, randomness=SeededRandomness("b")),
        transport,
    )


def _snapshot(km: KeyManager, backend: MemoryBackend) -> dict[tuple[str, str], Record]:
    km.keys.flush_usage()
    return dict(backend._records)


# -- one transaction -------------------------------------------------------------


def test_key_compromise_commits_once_with_its_audit_entries(
    fkm: KeyManager, backend: FailingBackend, setup: Setup
) -> None:
    alice, _, transport = setup
    alice.fetch_key("payments", transport)
    fkm.keys.flush_usage()
    head = fkm.audit.tail(1)[0].seq
    before = backend.commits
    fkm.compromise(key="payments#1")
    assert backend.commits - before == 1
    written = [(e.operation, e.object) for e in fkm.audit.entries() if e.seq > head]
    assert written == [
        ("revoke", "key:payments#1"),
        ("key.revoke", "payments#1"),
        ("key.rotate", "payments#2"),
        ("kdc.compromise", "key:payments#1"),
    ]


def test_principal_compromise_with_cascade_commits_once(
    fkm: KeyManager, backend: FailingBackend, setup: Setup
) -> None:
    alice, _, transport = setup
    alice.fetch_key("payments", transport)
    alice.fetch_key("reports", transport)
    fkm.keys.flush_usage()
    before = backend.commits
    report = fkm.compromise(principal="alice")
    assert backend.commits - before == 1
    assert report.rotated == ("payments#2", "reports#2")
    compromise = [e for e in fkm.audit.entries() if e.operation == "kdc.compromise"]
    assert len(compromise) == 1


def test_a_failed_commit_leaves_the_store_and_caches_as_they_were(
    fkm: KeyManager, backend: FailingBackend, setup: Setup
) -> None:
    alice, _, transport = setup
    alice.fetch_key("payments", transport)
    before = _snapshot(fkm, backend)
    backend.fail = True
    with pytest.raises(StoreError):
        fkm.compromise(principal="alice")
    backend.fail = False
    assert dict(backend._records) == before
    assert not fkm.revocation.is_revoked(SubjectKind.PRINCIPAL, "alice")
    assert not fkm.revocation.is_revoked(SubjectKind.KEY, "payments#1")
    assert fkm.keys.get("payments").versions[0].state is KeyState.ACTIVE
    assert alice.fetch_key("payments", transport).version == 1


def test_a_failing_rotation_step_leaves_no_revocation_behind(
    fkm: KeyManager, backend: FailingBackend, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, _, transport = setup
    alice.fetch_key("payments", transport)
    before = _snapshot(fkm, backend)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise _Boom("rotation failed")

    monkeypatch.setattr(fkm.keys, "stage_rotate", boom)
    with pytest.raises(_Boom):
        fkm.compromise(key="payments#1")
    assert dict(backend._records) == before
    assert not fkm.revocation.is_revoked(SubjectKind.KEY, "payments#1")
    assert fkm.keys.get("payments").primary_version == 1
    assert fkm.keys.get("payments").versions[0].state is KeyState.ACTIVE
    assert alice.fetch_key("payments", transport).version == 1


def test_a_failure_in_the_second_cascaded_key_undoes_the_first_and_the_principal(
    fkm: KeyManager, backend: FailingBackend, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, _, transport = setup
    alice.fetch_key("payments", transport)
    alice.fetch_key("reports", transport)
    before = _snapshot(fkm, backend)
    real = fkm.keys.stage_rotate

    def fail_on_reports(txn: Any, name: str, **kwargs: Any) -> Any:
        if name == "reports":
            raise _Boom("rotation failed")
        return real(txn, name, **kwargs)

    monkeypatch.setattr(fkm.keys, "stage_rotate", fail_on_reports)
    with pytest.raises(_Boom):
        fkm.compromise(principal="alice")
    assert dict(backend._records) == before
    assert not fkm.revocation.is_revoked(SubjectKind.PRINCIPAL, "alice")
    assert fkm.keys.get("payments").primary_version == 1
    assert alice.fetch_key("payments", transport).version == 1


def test_an_unknown_key_version_writes_nothing(
    fkm: KeyManager, backend: FailingBackend, setup: Setup
) -> None:
    before = _snapshot(fkm, backend)
    with pytest.raises(KeyNotFoundError):
        fkm.compromise(key="payments#7")
    assert dict(backend._records) == before


def test_a_run_repeated_on_a_write_conflict_still_writes_once(
    fkm: KeyManager, backend: FailingBackend, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keymgmt.errors import ConflictError

    real_commit = MemoryBackend.commit
    conflicts = [1]

    def commit_once_conflicting(self: FailingBackend, operations: Sequence[Operation]) -> Any:
        if conflicts and any(op.kind == "kdc-principal" for op in operations):
            conflicts.pop()
            raise ConflictError("injected conflict")
        return real_commit(self, operations)

    monkeypatch.setattr(FailingBackend, "commit", commit_once_conflicting)
    report = fkm.compromise(principal="alice")
    assert not conflicts  # the first attempt conflicted
    assert report.revoked == ("principal:alice",)
    assert len([e for e in fkm.audit.entries() if e.operation == "kdc.compromise"]) == 1
    assert len([e for e in fkm.audit.entries() if e.operation == "kdc.revoke"]) == 1


# -- data keys and tickets in the report -------------------------------------------


def test_report_lists_each_data_key_of_the_version_with_its_requester(
    fkm: KeyManager, setup: Setup
) -> None:
    first = fkm.generate_data_key("payments")
    with fkm.acting_as("billing-job"):
        second = fkm.generate_data_key("payments", {"tenant": "acme"})
    report = fkm.compromise(key="payments#1")
    assert [(i.id, i.actor) for i in report.data_key_issues] == [
        (first.id, "local"),
        (second.id, "billing-job"),
    ]
    assert all(i.key_id == "payments#1" for i in report.data_key_issues)
    assert report.data_keys == (("payments#1", 2),)


def test_data_keys_of_other_versions_and_keys_are_not_listed(fkm: KeyManager, setup: Setup) -> None:
    fkm.generate_data_key("reports")
    fkm.keys.rotate("payments")
    newer = fkm.generate_data_key("payments")
    report = fkm.compromise(key="payments#1")
    assert report.data_key_issues == ()
    assert report.data_keys == (("payments#1", 0),)
    assert [i.id for i in fkm.keys.data_keys_issued("payments", 2)] == [newer.id]


def test_data_key_id_is_a_hash_of_the_wrapped_key(fkm: KeyManager, setup: Setup) -> None:
    data_key = fkm.generate_data_key("payments")
    assert data_key.id == data_key_id(data_key.wrapped)
    assert len(data_key.id) == 32
    assert data_key.plaintext.reveal().hex() not in data_key.id


def test_data_key_issued_at_is_the_manager_clock(
    fkm: KeyManager, setup: Setup, clock: FakeClock
) -> None:
    data_key = fkm.generate_data_key("payments")
    (issue,) = fkm.keys.data_keys_issued("payments", 1)
    assert (issue.id, issue.issued_at) == (data_key.id, clock.now())


def test_pending_data_keys_survive_a_failed_flush(
    fkm: KeyManager, backend: FailingBackend, setup: Setup
) -> None:
    data_key = fkm.generate_data_key("payments")
    backend.fail = True
    with pytest.raises(StoreError):
        fkm.keys.flush_usage()
    backend.fail = False
    assert [i.id for i in fkm.keys.data_keys_issued("payments")] == [data_key.id]


def test_data_keys_from_another_manager_are_listed_once_it_flushed(
    open_sqlite_km: Callable[[], KeyManager],
) -> None:
    with open_sqlite_km() as first:
        first.keys.create("payments")
        made = first.generate_data_key("payments")
    with open_sqlite_km() as second:
        report = second.compromise(key="payments#1")
    assert [i.id for i in report.data_key_issues] == [made.id]


def test_report_lists_tickets_for_the_compromised_principal_as_service(
    fkm: KeyManager, setup: Setup
) -> None:
    alice, _, transport = setup
    ticket = alice.fetch_ticket("bob", transport)
    report = fkm.compromise(principal="bob")
    assert [(t.id, t.principal, t.peer) for t in report.tickets] == [
        (ticket.ticket_id, "alice", "bob")
    ]
    assert set(report.recipients) == {"alice", "bob"}


def test_report_as_dict_is_json_and_lists_data_key_issues(fkm: KeyManager, setup: Setup) -> None:
    data_key = fkm.generate_data_key("payments")
    listed = fkm.compromise(key="payments#1").as_dict()
    json.dumps(listed)
    assert listed["data_key_issues"][0]["id"] == data_key.id
    assert listed["data_key_issues"][0]["key"] == "payments#1"


def test_compromise_audit_entry_counts_data_keys(fkm: KeyManager, setup: Setup) -> None:
    fkm.generate_data_key("payments")
    fkm.compromise(key="payments#1")
    entry = fkm.audit.tail(1)[0]
    assert entry.operation == "kdc.compromise"
    assert dict(entry.details)["data_keys"] == 1


# -- certificates: the CRL ------------------------------------------------------------


def test_certificate_revocation_and_holder_revocation_commit_together(
    fkm: KeyManager, backend: FailingBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = client_certificate(fkm)
    fkm.kdc.register_certificate("client-b", cert)
    before = _snapshot(fkm, backend)
    real = type(fkm.kdc)._stage_principal_revocation

    def boom(*args: Any, **kwargs: Any) -> None:
        raise _Boom("principal step failed")

    monkeypatch.setattr(type(fkm.kdc), "_stage_principal_revocation", boom)
    with pytest.raises(_Boom):
        fkm.compromise(certificate=cert)
    monkeypatch.setattr(type(fkm.kdc), "_stage_principal_revocation", real)
    assert dict(backend._records) == before
    assert fkm.pki.ca("root").revoked() == []


def test_a_crl_that_cannot_be_signed_now_is_reported_due(
    fkm: KeyManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = client_certificate(fkm)

    def cannot_sign(*args: Any, **kwargs: Any) -> None:
        raise _Boom("the CA cannot sign")

    monkeypatch.setattr(CertificateAuthority, "crl", cannot_sign)
    report = fkm.compromise(certificate=cert)
    serial = format(cert.serial_number, "x")
    assert report.crl == f"root:{serial} crl=due"
    monkeypatch.undo()
    crl = fkm.pki.ca("root").crl()
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


# -- a crash in the middle ----------------------------------------------------------

_CRASH = textwrap.dedent(
    """
    import os, sys
    from keymgmt import KeyManager
    from keymgmt.keyring import KdfProfile

    km = KeyManager.open(sys.argv[1], passphrase=sys.argv[2],
                         kdf_profile=KdfProfile.TESTING_ONLY_INSECURE, consistency_interval=0)
    real = km.keys.stage_rotate

    def die(txn, name, **kwargs):
        real(txn, name, **kwargs)  # revocation and rotation staged...
        os._exit(9)                # ...and the process dies before the commit

    km.keys.stage_rotate = die
    km.compromise(key="payments#1")
    """
)


def test_a_process_killed_mid_playbook_leaves_nothing_half_done(store_path: Path) -> None:
    def open_km() -> KeyManager:
        return KeyManager.open(
            store_path,
            passphrase=PASSPHRASE,
            kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
            consistency_interval=0,
        )

    with open_km() as km:
        km.keys.create("payments")
        km.kdc.register("alice")
        entries = len(list(km.audit.entries()))
    done = subprocess.run(
        [sys.executable, "-c", _CRASH, str(store_path), PASSPHRASE],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 9, done.stderr.decode()
    with open_km() as km:
        assert not km.revocation.is_revoked(SubjectKind.KEY, "payments#1")
        info = km.keys.get("payments")
        assert (info.primary_version, info.versions[0].state) == (1, KeyState.ACTIVE)
        assert len(list(km.audit.entries())) == entries
        km.audit.verify()
