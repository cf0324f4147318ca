"""Regression tests for the KDC review of the third session (one per finding fixed)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pytest

from keymgmt import KeyManager
from keymgmt._replay import ReplayCache
from keymgmt.errors import (
    InvalidArgumentError,
    KeyNotFoundError,
    KeyUsageError,
    MalformedInputError,
    ReplayError,
    RevokedError,
    StaleMessageError,
)
from keymgmt.kdc import (
    InProcessTransport,
    KdcClient,
    KdcSettings,
    KeyDistributionCenter,
    MessageType,
    Policy,
    PrincipalReplayCache,
    TicketReceiver,
)
from keymgmt.kdc import _wire as w
from keymgmt.kdc._integration import ManagerKeySource
from keymgmt.testing import FakeClock

SKEW = _dt.timedelta(minutes=5)


@pytest.fixture
def kdc_km(clock: FakeClock) -> KeyManager:
    km = KeyManager.in_memory(clock=clock)
    km.keys.create("payments")
    return km


def _refusals(km: KeyManager, reason: str) -> list[Any]:
    return [
        e
        for e in km.audit.entries()
        if e.operation == "kdc.request" and e.details.get("reason") == reason
    ]


# -- a name the policy allows but the key store refuses ------------------------------


@pytest.mark.parametrize("name", ["app/payments", "x#1"])
def test_a_key_name_the_key_store_refuses_is_answered_not_found_and_audited(
    kdc_km: KeyManager, clock: FakeClock, name: str
) -> None:
    alice = kdc_km.kdc.register("alice")
    kdc_km.kdc.grant("alice", keys=["*"])
    client = KdcClient(alice, clock=clock)
    with pytest.raises(KeyNotFoundError):
        client.receive_key_reply(kdc_km.kdc.handle(client.key_request(name)))
    assert len(_refusals(kdc_km, "not-found")) == 1


def test_one_bad_key_name_in_a_batch_does_not_cost_the_others_their_replies(
    kdc_km: KeyManager, clock: FakeClock
) -> None:
    bob = kdc_km.kdc.register("bob")
    kdc_km.kdc.grant("bob", keys=["*"])
    client = KdcClient(bob, clock=clock)
    good, bad = client.key_request("payments"), client.key_request("x#1")
    replies = InProcessTransport(kdc_km.kdc).many([good, bad])
    assert client.receive_key_reply(replies[0]).key_name == "payments"
    with pytest.raises(KeyNotFoundError):
        client.receive_key_reply(replies[1])


# -- the signing key's name taken by another key ---------------------------------------


def test_a_squatted_signing_key_name_is_a_clear_error_not_a_crash(kdc_km: KeyManager) -> None:
    kdc_km.keys.create("kdc-signing")  # AES-256-GCM, as anyone allowed to create keys could
    reply = kdc_km.kdc.handle(w.encode(MessageType.REVOCATION_LIST_REQUEST, [bytes(16)]))
    assert w.peek_type(reply) is MessageType.ERROR
    with pytest.raises(KeyUsageError, match="not the KDC's Ed25519 signing key"):
        kdc_km.kdc.register("alice")


# -- replay caches ----------------------------------------------------------------------


def test_receivers_sharing_an_empty_cache_refuse_each_others_replays(
    kdc_km: KeyManager, clock: FakeClock
) -> None:
    alice, bob = kdc_km.kdc.register("alice"), kdc_km.kdc.register("bob")
    kdc_km.kdc.grant("alice", peers=["bob"])
    ticket = KdcClient(alice, clock=clock).fetch_ticket("bob", InProcessTransport(kdc_km.kdc))
    request = KdcClient(alice, clock=clock).ap_request(ticket)
    for shared in (PrincipalReplayCache(clock=clock), ReplayCache(clock=clock)):
        first = TicketReceiver(bob, clock=clock, replay_cache=shared)
        second = TicketReceiver(bob, clock=clock, replay_cache=shared)
        first.accept(request.data)
        with pytest.raises(ReplayError):
            second.accept(request.data)


def _flood(client: KdcClient, count: int, ahead: FakeClock, send: Any) -> None:
    for _ in range(count):
        ahead.advance(_dt.timedelta(microseconds=1))
        send(client)


def test_a_principal_flooding_the_kdc_with_future_stamps_narrows_only_its_own_window(
    clock: FakeClock,
) -> None:
    km = KeyManager.in_memory(clock=clock)
    km.keys.create("payments")
    kdc = KeyDistributionCenter(
        km._context, keys=ManagerKeySource(km), settings=KdcSettings(replay_capacity=20)
    )
    mallory, alice = kdc.register("mallory"), kdc.register("alice")
    kdc.grant("mallory", keys=["payments"])
    kdc.grant("alice", keys=["payments"])
    transport = InProcessTransport(kdc)
    ahead = FakeClock(clock.now() + SKEW - _dt.timedelta(milliseconds=1))
    flooder = KdcClient(mallory, clock=ahead)
    _flood(flooder, 60, ahead, lambda c: c.fetch_key("payments", transport))
    # mallory's own cache is full of future stamps: an honest stamp of hers is stale ...
    with pytest.raises(StaleMessageError):
        KdcClient(mallory, clock=clock).fetch_key("payments", transport)
    # ... but alice, stamping the real time, is served.
    assert KdcClient(alice, clock=clock).fetch_key("payments", transport).key_name == "payments"


def test_a_client_flooding_a_service_cannot_lock_out_another_client(
    kdc_km: KeyManager, clock: FakeClock
) -> None:
    mallory, alice, bob = (kdc_km.kdc.register(n) for n in ("mallory", "alice", "bob"))
    kdc_km.kdc.grant("mallory", peers=["bob"])
    kdc_km.kdc.grant("alice", peers=["bob"])
    transport = InProcessTransport(kdc_km.kdc)
    service = TicketReceiver(
        bob,
        clock=clock,
        replay_cache=PrincipalReplayCache(window=SKEW, max_skew=SKEW, capacity=20, clock=clock),
    )
    ahead = FakeClock(clock.now() + SKEW - _dt.timedelta(milliseconds=1))
    flooder = KdcClient(mallory, clock=ahead)
    ticket = flooder.fetch_ticket("bob", transport)
    _flood(flooder, 60, ahead, lambda c: service.accept(c.ap_request(ticket).data))
    honest = KdcClient(alice, clock=clock)
    session = service.accept(honest.ap_request(honest.fetch_ticket("bob", transport)).data)
    assert session.client == "alice"


def test_a_disabled_principals_request_is_refused_before_its_nonce_is_remembered(
    kdc_km: KeyManager, clock: FakeClock
) -> None:
    alice = kdc_km.kdc.register("alice")
    kdc_km.kdc.grant("alice", keys=["payments"])
    client = KdcClient(alice, clock=clock)
    kdc_km.kdc.disable("alice")
    request = client.key_request("payments")
    assert w.decode(kdc_km.kdc.handle(request))[1][0] == b"principal-disabled"
    assert len(kdc_km.kdc._replays) == 0  # its key cannot fill the replay cache
    kdc_km.kdc.enable("alice")
    # The refusal left a marker in the store (fourth review): the same, still
    # fresh, request is a replay now, not a grant.
    assert w.decode(kdc_km.kdc.handle(request))[1][0] == b"replay"
    assert client.fetch_key("payments", InProcessTransport(kdc_km.kdc)).key_name == "payments"


def test_principal_replay_caches_that_empty_are_dropped(clock: FakeClock) -> None:
    caches = PrincipalReplayCache(clock=clock, capacity=10)
    for index in range(1000):
        caches.check_and_insert(f"p{index}", bytes(16), clock.now())
    clock.advance(SKEW * 3)  # every one of those nonces is past its window
    for index in range(1000, 1030):  # the table reaches 1,024: it is swept
        caches.check_and_insert(f"p{index}", bytes(16), clock.now())
    assert len(caches) <= 30
    with pytest.raises(ReplayError):  # what is still fresh is still remembered
        caches.check_and_insert("p1029", bytes(16), clock.now())


# -- principal and policy caches --------------------------------------------------------


def test_a_rotation_committed_while_a_principal_is_read_is_not_cached_as_old(
    kdc_km: KeyManager, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = kdc_km.kdc.register("alice")
    kdc_km.kdc.grant("alice", keys=["payments"])
    kdc = kdc_km.kdc
    store = kdc._store
    original = store.get_json_with_revision
    rotated: list[object] = []

    def racing_read(kind: str, name: str) -> Any:
        value = original(kind, name)  # this thread has read the record ...
        if kind == "kdc-principal" and not rotated:
            rotated.append(kdc.rotate_credential("alice"))  # ... another commits now
        return value

    monkeypatch.setattr(store, "get_json_with_revision", racing_read)
    transport = InProcessTransport(kdc)
    # The racing request was made with the old key: its grant's commit
    # expects the record it was checked on, which the rotation changed.
    with pytest.raises(Exception, match="could not be authenticated"):
        KdcClient(old, clock=clock).fetch_key("payments", transport)
    monkeypatch.setattr(store, "get_json_with_revision", original)
    assert rotated
    clock.advance(1)
    with pytest.raises(Exception, match="could not be authenticated"):
        KdcClient(old, clock=clock).fetch_key("payments", transport)


def test_requests_in_unknown_names_leave_nothing_cached(
    kdc_km: KeyManager, clock: FakeClock
) -> None:
    from keymgmt.kdc import SymmetricCredential

    kdc = kdc_km.kdc
    public = kdc.public_key
    for index in range(50):
        fake = SymmetricCredential(
            principal=f"nobody-{index}", key=_secret(bytes(32)), kdc_public_key=public
        )
        kdc.handle(KdcClient(fake, clock=clock).key_request("payments"))
    assert kdc._principals == {}


def _secret(value: bytes) -> Any:
    from keymgmt._secret import SecretBytes

    return SecretBytes(value)


# -- client-side checks -------------------------------------------------------------------


def test_a_grant_is_usable_by_a_client_whose_clock_is_behind_within_the_skew(
    kdc_km: KeyManager, clock: FakeClock
) -> None:
    alice = kdc_km.kdc.register("alice")
    kdc_km.kdc.grant("alice", keys=["payments"])
    transport = InProcessTransport(kdc_km.kdc)
    client = KdcClient(alice, clock=FakeClock(clock.now() - _dt.timedelta(seconds=60)))
    granted = client.fetch_key("payments", transport)
    client.fetch_revocation_list(transport)
    client.check_grant(granted)  # no "expired" although issued_at is ahead of this clock


def test_a_newer_revocation_list_is_taken_even_if_the_kdc_clock_stepped_back(
    kdc_km: KeyManager, clock: FakeClock
) -> None:
    alice = kdc_km.kdc.register("alice")
    kdc_km.kdc.grant("alice", keys=["payments"])
    transport = InProcessTransport(kdc_km.kdc)
    client = KdcClient(alice, clock=FakeClock(clock.now()))
    granted = client.fetch_key("payments", transport)
    first = client.fetch_revocation_list(transport)
    clock.set(clock.now() - _dt.timedelta(seconds=2))
    kdc_km.compromise(key="payments#1")
    assert client.fetch_revocation_list(transport).number > first.number
    with pytest.raises(RevokedError):
        client.check_grant(granted)


# -- parsing of operator input ------------------------------------------------------------


@pytest.mark.parametrize("key", ["payments#²", "payments#\u0661", "payments#0", "payments#x"])
def test_compromise_takes_ascii_version_numbers_only(kdc_km: KeyManager, key: str) -> None:
    with pytest.raises(InvalidArgumentError, match="bad key version"):
        kdc_km.compromise(key=key)


@pytest.mark.parametrize(
    "rule",
    [
        {"principal": "alice", "keys": "payments"},
        {"principal": "alice", "peers": "bob"},
        {"principal": 7, "keys": ["payments"]},
        {"principal": "alice", "keys": [1]},
    ],
)
def test_a_policy_document_needs_strings_and_lists_of_strings(rule: dict[str, Any]) -> None:
    with pytest.raises(MalformedInputError):
        Policy.from_json({"version": 1, "rules": [rule]})


# -- compromise response ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "revoked"), [("key-compromise", True), ("affiliation-changed", False)]
)
def test_a_certificate_key_compromise_revokes_principals_holding_the_same_key(
    kdc_km: KeyManager, reason: str, revoked: bool
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    ca = kdc_km.pki.create_root_ca("root", key_type="ed25519")
    leaked = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key()

    def certificate(subject: str) -> Any:
        return ca.issue(public_key=leaked, subject=subject, names=[subject], profile="tls-client")

    first, renewed = certificate("client-b"), certificate("client-b")
    kdc_km.kdc.register_certificate("client-b", renewed)
    report = kdc_km.compromise(certificate=first, reason=reason)
    assert ("principal:client-b" in report.revoked) is revoked


def test_a_principal_compromise_reports_each_of_its_grants_once(
    kdc_km: KeyManager, clock: FakeClock
) -> None:
    alice = kdc_km.kdc.register("alice")
    kdc_km.kdc.register("bob")
    kdc_km.kdc.grant("alice", keys=["payments"], peers=["bob"])
    transport = InProcessTransport(kdc_km.kdc)
    client = KdcClient(alice, clock=clock)
    for _ in range(30):
        client.fetch_key("payments", transport)
        client.fetch_ticket("bob", transport)
    report = kdc_km.compromise(principal="alice")
    assert len(report.key_grants) == 30
    assert len(report.tickets) == 30
    assert not report.not_exposed  # a symmetric principal's grants are all exposed


def test_compromising_a_certificate_principal_revokes_its_certificate_at_the_ca(
    kdc_km: KeyManager,
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from keymgmt.errors import CertificateRevokedError

    ca = kdc_km.pki.create_root_ca("root", key_type="ed25519")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key()
    cert = ca.issue(public_key=key, subject="client-b", names=["client-b"], profile="tls-client")
    kdc_km.kdc.register_certificate("client-b", cert)
    report = kdc_km.compromise(principal="client-b")
    assert any(item.startswith("certificate:root:") for item in report.revoked)
    with pytest.raises(CertificateRevokedError):
        kdc_km.pki.verify(cert, purpose="tls-client")


# -- registration -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ops[1]", "*", "a?b", "x]"])
def test_principal_names_cannot_hold_policy_wildcards(kdc_km: KeyManager, name: str) -> None:
    with pytest.raises(InvalidArgumentError, match="policy wildcard"):
        kdc_km.kdc.register(name)


def test_a_credential_file_that_cannot_be_written_leaves_no_principal_behind(
    kdc_km: KeyManager, tmp_path: Any
) -> None:
    target = tmp_path / "missing-dir" / "alice.cred"
    with pytest.raises(InvalidArgumentError, match="cannot create credential file"):
        kdc_km.kdc.register("alice", write_to=target)
    credential = kdc_km.kdc.register("alice", write_to=tmp_path / "alice.cred")  # name still free
    assert credential.principal == "alice"


def test_a_rotation_whose_file_cannot_be_written_keeps_the_old_key(
    kdc_km: KeyManager, clock: FakeClock, tmp_path: Any
) -> None:
    old = kdc_km.kdc.register("alice")
    kdc_km.kdc.grant("alice", keys=["payments"])
    with pytest.raises(InvalidArgumentError):
        kdc_km.kdc.rotate_credential("alice", write_to=tmp_path / "no" / "new.cred")
    granted = KdcClient(old, clock=clock).fetch_key("payments", InProcessTransport(kdc_km.kdc))
    assert granted.key_name == "payments"


def test_a_registration_that_fails_removes_the_file_it_wrote(
    kdc_km: KeyManager, tmp_path: Any
) -> None:
    from keymgmt.errors import AlreadyExistsError

    kdc_km.kdc.register("alice")
    target = tmp_path / "alice.cred"
    with pytest.raises(AlreadyExistsError):
        kdc_km.kdc.register("alice", write_to=target)
    assert not target.exists()


def test_a_revocation_list_from_another_process_carries_what_its_number_covers(
    clock: FakeClock,
) -> None:
    from keymgmt.keyring import RawMasterKey
    from keymgmt.storage import MemoryBackend

    backend, master = MemoryBackend(), RawMasterKey(b"\x07" * 32)
    first = KeyManager(backend=backend, master_key=master, clock=clock)
    first.keys.create("payments")
    alice = first.kdc.register("alice")
    first.kdc.grant("alice", keys=["payments"])
    second = KeyManager(backend=backend, master_key=master, clock=clock)  # another process
    transport = InProcessTransport(second.kdc)
    client = KdcClient(alice, clock=clock)
    granted = client.fetch_key("payments", transport)
    client.fetch_revocation_list(transport)  # the second process has synced just now
    report = first.compromise(key="payments#1")  # within its consistency interval
    listed = client.fetch_revocation_list(transport)
    assert listed.number >= report.revocation_list_number
    assert listed.key_revoked("payments", 1)
    with pytest.raises(RevokedError):
        client.check_grant(granted)


# -- second review ---------------------------------------------------------------------------


def test_a_swept_principal_cache_does_not_reopen_a_window_after_the_clock_comes_back(
    clock: FakeClock,
) -> None:
    caches = PrincipalReplayCache(window=SKEW, max_skew=SKEW, capacity=10, clock=clock)
    captured_at = clock.now()
    caches.check_and_insert("p", b"\x01" * 16, captured_at)
    clock.advance(_dt.timedelta(days=1))  # a forward jump: every cache empties
    for index in range(1030):  # the table grows past 1,024 and is swept
        caches.check_and_insert(f"q{index}", b"\x02" * 16, clock.now())
    assert len(caches) <= 1031
    clock.set(captured_at + _dt.timedelta(seconds=1))  # the clock is corrected
    with pytest.raises(StaleMessageError):  # as one cache would: the jump is remembered
        caches.check_and_insert("p", b"\x01" * 16, captured_at)


def test_a_credential_file_is_kept_when_the_commit_may_have_landed(
    kdc_km: KeyManager, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keymgmt.errors import StoreError

    assert kdc_km.kdc.public_key  # the KDC's signing key exists before the failing write
    store = kdc_km.kdc._store
    original = store.transact

    def lands_then_fails(fn: Any) -> Any:
        original(fn)
        raise StoreError("the connection dropped during COMMIT")

    monkeypatch.setattr(store, "transact", lands_then_fails)
    target = tmp_path / "alice.cred"
    with pytest.raises(StoreError):
        kdc_km.kdc.register("alice", write_to=target)
    assert target.exists()  # the only copy of a key the store may now hold


@pytest.mark.skipif(not hasattr(__import__("resource"), "RLIMIT_FSIZE"), reason="no RLIMIT_FSIZE")
def test_a_credential_file_that_cannot_be_written_in_full_is_removed(
    kdc_km: KeyManager, tmp_path: Any
) -> None:
    import resource
    import signal

    target = tmp_path / "alice.cred"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16, hard))
    try:
        with pytest.raises(InvalidArgumentError, match="cannot write credential file"):
            kdc_km.kdc.register("alice", write_to=target)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert not target.exists()
    assert kdc_km.kdc.register("alice").principal == "alice"  # nothing was registered


def test_compromising_a_certificate_principal_revokes_others_holding_its_key(
    kdc_km: KeyManager,
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    ca = kdc_km.pki.create_root_ca("root", key_type="ed25519")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key()

    def certificate(subject: str) -> Any:
        return ca.issue(public_key=key, subject=subject, names=[subject], profile="tls-client")

    kdc_km.kdc.register_certificate("client-b", certificate("client-b"))
    kdc_km.kdc.register_certificate("client-c", certificate("client-c"))
    report = kdc_km.compromise(principal="client-b")
    assert "principal:client-c" in report.revoked


def test_nothing_granted_to_a_certificate_principal_outlives_its_certificate(
    kdc_km: KeyManager, clock: FakeClock
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from keymgmt.kdc import CertificateCredential

    ca = kdc_km.pki.create_root_ca("root", key_type="ed25519")
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    cert = ca.issue(
        public_key=private.public_key(),
        subject="client-b",
        names=["client-b"],
        profile="tls-client",
        validity=_dt.timedelta(minutes=10),
    )
    kdc_km.kdc.register_certificate("client-b", cert)
    kdc_km.kdc.register("bob")
    kdc_km.kdc.grant("client-b", keys=["payments"], peers=["bob"])
    client = KdcClient(
        CertificateCredential(
            principal="client-b", private_key=private, kdc_public_key=kdc_km.kdc.public_key
        ),
        clock=clock,
    )
    transport = InProcessTransport(kdc_km.kdc)
    assert client.fetch_key("payments", transport).expires_at == cert.not_valid_after_utc
    assert client.fetch_ticket("bob", transport).expires_at == cert.not_valid_after_utc
