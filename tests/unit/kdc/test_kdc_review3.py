"""Regression tests for the third review of the KDC (one section per finding fixed)."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from _unparsable import UNPARSABLE, unparsable_leaf
from keymgmt import KeyManager, SecretBytes
from keymgmt.cli import main
from keymgmt.errors import (
    InvalidArgumentError,
    MalformedInputError,
    RemoteProtocolError,
    RevokedError,
)
from keymgmt.kdc import (
    CertificateCredential,
    InProcessTransport,
    KdcClient,
    KdcSettings,
    KeyDistributionCenter,
    PrincipalReplayCache,
    SymmetricCredential,
    TicketReceiver,
)
from keymgmt.keyring import KdfProfile
from keymgmt.testing import FakeClock, SeededRandomness

PASSPHRASE = "cli test passphrase"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store.db"
    monkeypatch.setenv("KEYMGMT_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("KEYMGMT_TEST_KDF", "insecure")
    monkeypatch.setenv("KEYMGMT_STORE", str(path))
    assert main(["init"]) == 0
    return path


# -- the CLI's revocation list never replaces a file unasked -----------------------------


def test_revocation_list_out_refuses_to_overwrite_a_credential_file(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cred = tmp_path / "alice.cred"
    assert main(["kdc", "register", "alice", "--out", str(cred)]) == 0
    before = cred.read_bytes()
    capsys.readouterr()
    assert main(["kdc", "revocation-list", "--out", str(cred)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {cred} exists already (--overwrite replaces it)\n"
    assert cred.read_bytes() == before
    assert SymmetricCredential.from_file(cred).principal == "alice"


def test_revocation_list_overwrite_replaces_an_older_list(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "kdc.rl"
    assert main(["kdc", "revocation-list", "--out", str(out)]) == 0
    first = out.read_bytes()
    assert main(["kdc", "revocation-list", "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:4] == b"KD\x01\x0a"
    assert out.read_bytes() != first  # a newer list (a later number or time)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_revocation_list_into_a_missing_directory_is_a_clear_error(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    out = tmp_path / "missing" / "kdc.rl"
    assert main(["kdc", "revocation-list", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: cannot create {out}: No such file or directory\n"


# -- a client refuses a service on its revocation list -----------------------------------


def test_client_refuses_to_use_a_ticket_for_a_service_on_its_revocation_list(
    kdc: KeyDistributionCenter,
    transport: InProcessTransport,
    client: KdcClient,
    receiver: TicketReceiver,
) -> None:
    ticket = client.fetch_ticket("bob", transport)
    kdc.revoke("bob", "key-compromise")
    client.fetch_revocation_list(transport)
    with pytest.raises(RevokedError) as caught:
        client.ap_request(ticket)
    assert caught.value.principal == "bob"


def test_client_refuses_the_ap_reply_of_a_service_revoked_meanwhile(
    kdc: KeyDistributionCenter,
    transport: InProcessTransport,
    client: KdcClient,
    receiver: TicketReceiver,
) -> None:
    request = client.ap_request(client.fetch_ticket("bob", transport))
    reply = receiver.accept(request.data).reply
    kdc.revoke("bob", "key-compromise")
    client.fetch_revocation_list(transport)
    with pytest.raises(RevokedError):
        client.receive_ap_reply(request, reply)


def test_client_uses_tickets_of_services_not_on_its_list(
    kdc: KeyDistributionCenter,
    transport: InProcessTransport,
    client: KdcClient,
    receiver: TicketReceiver,
) -> None:
    kdc.register("carol")
    kdc.revoke("carol")
    client.fetch_revocation_list(transport)
    request = client.ap_request(client.fetch_ticket("bob", transport))
    client.receive_ap_reply(request, receiver.accept(request.data).reply)


# -- wrong argument types are InvalidArgumentError, not AttributeError/TypeError/ValueError --

_KDC_KEY = bytes(32)


def _symmetric(key: Any = None, principal: Any = "alice") -> SymmetricCredential:
    return SymmetricCredential(
        principal=principal,
        key=SecretBytes(bytes(32)) if key is None else key,
        kdc_public_key=_KDC_KEY,
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: _symmetric(key=SecretBytes(b"k" * 5)),  # AESGCM's ValueError in the client
        lambda: _symmetric(key=b"k" * 32),  # AttributeError (no reveal)
        lambda: _symmetric(principal=5),  # AttributeError at the first request
        lambda: _symmetric(principal=""),
        lambda: CertificateCredential(principal="b", private_key=None, kdc_public_key=_KDC_KEY),
        lambda: CertificateCredential(
            principal="b",
            private_key=x25519.X25519PrivateKey.from_private_bytes(bytes(32)),
            kdc_public_key=_KDC_KEY,
        ),
        lambda: PrincipalReplayCache(capacity="5"),  # type: ignore[arg-type]
    ],
    ids=[
        "short-key",
        "plain-bytes-key",
        "int-principal",
        "empty-principal",
        "no-private-key",
        "x25519-private-key",
        "str-capacity",
    ],
)
def test_bad_credentials_and_caches_are_refused_when_made(make: Callable[[], object]) -> None:
    with pytest.raises(InvalidArgumentError):
        make()


def test_a_certificate_credential_takes_a_signing_key() -> None:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    credential = CertificateCredential(principal="b", private_key=private, kdc_public_key=_KDC_KEY)
    assert KdcClient(credential).principal == "b"


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.key_request(5),
        lambda c: c.ticket_request(None),
        lambda c: c.key_request("\udcff"),  # UnicodeEncodeError
        lambda c: c.ap_request(None),
        lambda c: c.check_grant(None),
        lambda c: c.receive_ap_reply(None, b""),
    ],
    ids=["int-key", "none-service", "surrogate", "ap-none", "grant-none", "ap-reply-none"],
)
def test_client_calls_with_wrong_types_raise_invalid_argument(
    client: KdcClient, call: Callable[[KdcClient], object]
) -> None:
    with pytest.raises(InvalidArgumentError):
        call(client)


@pytest.mark.parametrize(
    "call",
    [
        lambda k: k.register(5),
        lambda k: k.register("\udcff"),
        lambda k: k.register("zed", write_to=5),
        lambda k: k.register("zed", write_to="a\x00b"),  # ValueError from os.open/exists
        lambda k: k.rotate_credential("alice", write_to="a\x00b"),
        lambda k: k.grants(key=5),
        lambda k: k.compromise(key=5),
        lambda k: k.revocation_list(nonce=b"abc"),
        lambda k: k.revocation_list(nonce="a" * 16),
        lambda k: k.handle_many(None),
        lambda k: k.handle_many(b"KD"),
    ],
    ids=[
        "register-int",
        "register-surrogate",
        "write-to-int",
        "write-to-nul",
        "rotate-to-nul",
        "grants-int",
        "compromise-int",
        "short-nonce",
        "str-nonce",
        "batch-none",
        "batch-bytes",
    ],
)
def test_kdc_calls_with_wrong_types_raise_invalid_argument_and_write_nothing(
    kdc: KeyDistributionCenter, call: Callable[[KeyDistributionCenter], object]
) -> None:
    kdc.public_key  # noqa: B018  (the signing key exists before the generation is read)
    before = kdc._store.backend.generation()
    with pytest.raises(InvalidArgumentError):
        call(kdc)
    assert kdc._store.backend.generation() == before


def test_a_deeply_nested_credential_file_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "deep.cred"
    path.write_text("[" * 100_000)
    with pytest.raises(MalformedInputError):
        SymmetricCredential.from_file(path)


def test_cli_policy_load_of_deeply_nested_json_is_a_clear_error(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.json"
    path.write_text("[" * 100_000)
    capsys.readouterr()
    assert main(["kdc", "policy", "--load", str(path)]) == 1
    assert capsys.readouterr().err == f"error: {path} is not JSON\n"


# -- the CLI reads certificate and policy files bounded ------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["kdc", "register", "carol", "--certificate"],
        ["kdc", "compromise", "--certificate"],
        ["kdc", "policy", "--load"],
    ],
    ids=["register", "compromise", "policy"],
)
def test_cli_input_files_larger_than_the_bound_are_refused_unread(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    path = tmp_path / "huge"
    with path.open("wb") as handle:  # sparse: the size without the disk
        handle.truncate(64 * 1024 * 1024)
    capsys.readouterr()
    assert main([*argv, str(path)]) == 1
    assert capsys.readouterr().err == f"error: {path} is larger than 4194304 bytes\n"


def test_a_credential_file_is_read_bounded(tmp_path: Path) -> None:
    path = tmp_path / "huge.cred"
    with path.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)
    with pytest.raises(MalformedInputError, match="too large"):
        SymmetricCredential.from_file(path)


def test_a_credential_file_path_must_be_a_path() -> None:
    with pytest.raises(InvalidArgumentError):
        SymmetricCredential.from_file(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        _symmetric().to_file(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        _symmetric().to_file("a\x00b")
    with pytest.raises(InvalidArgumentError):
        SymmetricCredential.from_file("a\x00b")


# -- withdrawing: nothing to withdraw is refused; what another rule still allows is said --


def test_withdraw_needs_something_to_withdraw(kdc: KeyDistributionCenter) -> None:
    kdc.public_key  # noqa: B018
    before = kdc._store.backend.generation()
    with pytest.raises(InvalidArgumentError, match="at least one"):
        kdc.withdraw("alice")
    with pytest.raises(InvalidArgumentError):
        kdc.withdraw("alice", keys=[5])  # type: ignore[list-item]  (was TypeError)
    assert kdc._store.backend.generation() == before


def test_cli_withdraw_says_when_another_rule_still_allows_it(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kdc", "register", "alice", "--out", str(tmp_path / "a.cred")]) == 0
    assert main(["kdc", "grant", "alice", "--key", "payments"]) == 0
    assert main(["kdc", "grant", "a*", "--key", "pay*"]) == 0
    capsys.readouterr()
    assert main(["kdc", "withdraw", "alice", "--key", "payments"]) == 0
    assert capsys.readouterr().out == ("withdrawn; still allowed by another rule: key payments\n")
    assert main(["kdc", "withdraw", "a*", "--key", "pay*"]) == 0
    assert capsys.readouterr().out == "withdrawn\n"


# -- settings and receiver windows are checked when made, not at the first request ----------


@pytest.mark.parametrize(
    "settings",
    [
        {"key_grant_lifetime": "15m"},  # TypeError out of handle() at the first grant
        {"ticket_lifetime": _dt.timedelta(0)},  # tickets born expired
        {"revocation_list_lifetime": _dt.timedelta(minutes=-1)},  # lists born stale
        {"skew": 300},
        {"replay_capacity": "100"},
        {"replay_capacity": 0},
    ],
    ids=["str-lifetime", "zero-ticket", "negative-list", "int-skew", "str-capacity", "zero"],
)
def test_bad_kdc_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        KdcSettings(**settings)


def test_a_kdc_needs_kdc_settings(km: KeyManager) -> None:
    with pytest.raises(InvalidArgumentError):
        KeyDistributionCenter(km._context, settings={"skew": 5})  # type: ignore[arg-type]


def test_a_receiver_refuses_a_replay_cache_of_another_kind(
    bob: SymmetricCredential, clock: FakeClock
) -> None:
    with pytest.raises(InvalidArgumentError):
        TicketReceiver(bob, clock=clock, replay_cache={})  # type: ignore[arg-type]


@pytest.mark.parametrize("skew", ["5m", _dt.timedelta(0)], ids=["str", "zero"])
def test_a_receiver_with_a_given_cache_checks_its_skew(
    bob: SymmetricCredential, clock: FakeClock, skew: Any
) -> None:
    with pytest.raises(InvalidArgumentError):
        TicketReceiver(bob, clock=clock, skew=skew, replay_cache=PrincipalReplayCache())


# -- certificates pyca parses lazily: MalformedInputError, not its own exceptions -----------


def _unparsable(km: KeyManager, placeholder: bytes, relabel: bytes) -> x509.Certificate:
    """A tls-client-looking certificate for "leaf" whose extensions pyca refuses on access."""
    issuing = km.pki.create_root_ca("root", key_type="ed25519")
    return unparsable_leaf(issuing.certificate.subject, km.clock.now(), placeholder, relabel)


@UNPARSABLE
def test_registering_a_certificate_pyca_cannot_parse_is_malformed_input(
    km: KeyManager, placeholder: bytes, relabel: bytes
) -> None:
    cert = _unparsable(km, placeholder, relabel)
    with pytest.raises(MalformedInputError, match="malformed certificate material"):
        km.kdc.register_certificate("leaf", cert)
    assert km.kdc.list() == []


@UNPARSABLE
def test_compromising_a_certificate_pyca_cannot_parse_is_malformed_input(
    km: KeyManager, placeholder: bytes, relabel: bytes
) -> None:
    cert = _unparsable(km, placeholder, relabel)
    before = km._store.backend.generation()
    with pytest.raises(MalformedInputError, match="malformed certificate material"):
        km.compromise(certificate=cert)
    assert km._store.backend.generation() == before


# -- a grant racing another process's compromise is refused, not handed out unreported ------


def _process(store_path: Path, clock: FakeClock) -> KeyManager:
    """A manager as another process has it: it takes in others' writes only when it syncs."""
    return KeyManager.open(
        store_path,
        passphrase="pw",
        kdf_profile=KdfProfile.TESTING_ONLY_INSECURE,
        clock=clock,
        consistency_interval=3600,
    )


@pytest.fixture
def two_processes(
    store_path: Path, clock: FakeClock
) -> Iterator[tuple[KeyManager, KeyManager, KdcClient]]:
    with _process(store_path, clock) as first:
        first.keys.create("payments")
        alice = first.kdc.register("alice")
        first.kdc.register("bob")
        first.kdc.grant("alice", keys=["payments"], peers=["bob"])
        client = KdcClient(alice, clock=clock, randomness=SeededRandomness("alice"))
        client.fetch_key("payments", InProcessTransport(first.kdc))  # warm caches
        client.fetch_ticket("bob", InProcessTransport(first.kdc))
        with _process(store_path, clock) as second:
            yield first, second, client


def test_a_key_compromised_by_another_process_is_not_granted_after_the_response(
    two_processes: tuple[KeyManager, KeyManager, KdcClient],
) -> None:
    first, second, client = two_processes
    report = second.compromise(key="payments#1")
    assert report.recipients == ("alice",)
    with pytest.raises(RevokedError, match="payments#1 is revoked"):
        client.fetch_key("payments", InProcessTransport(first.kdc))
    assert len(second.kdc.grants(key="payments#1")) == 1  # only the one the report names
    assert client.fetch_key("payments", InProcessTransport(first.kdc)).version == 2


def test_a_batch_racing_another_process_refuses_what_it_revoked(
    two_processes: tuple[KeyManager, KeyManager, KdcClient],
) -> None:
    first, second, client = two_processes
    second.compromise(key="payments#1")
    second.kdc.revoke("bob")
    key, ticket = InProcessTransport(first.kdc).many(
        [client.key_request("payments"), client.ticket_request("bob")]
    )
    with pytest.raises(RevokedError):
        client.receive_key_reply(key)
    with pytest.raises(RevokedError):
        client.receive_ticket_reply(ticket)
    assert len(second.kdc.grants(key="payments#1")) == 1
    assert len(second.kdc.grants(principal="bob")) == 1  # the warm-up's ticket only


def test_a_request_made_with_a_key_rotated_by_another_process_is_refused(
    two_processes: tuple[KeyManager, KeyManager, KdcClient],
) -> None:
    first, second, client = two_processes
    second.kdc.rotate_credential("alice")  # the old key leaked, say
    with pytest.raises(RemoteProtocolError, match="could not be authenticated"):
        client.fetch_key("payments", InProcessTransport(first.kdc))
    assert len(second.kdc.grants(key="payments#1")) == 1


def test_a_ticket_for_a_peer_rotated_by_another_process_is_not_sealed_under_its_old_key(
    two_processes: tuple[KeyManager, KeyManager, KdcClient],
) -> None:
    first, second, client = two_processes
    second.kdc.rotate_credential("bob")
    with pytest.raises(RemoteProtocolError, match="changed meanwhile"):
        client.fetch_ticket("bob", InProcessTransport(first.kdc))
    assert len(second.kdc.grants(principal="bob")) == 1  # the warm-up's ticket only
    assert client.fetch_ticket("bob", InProcessTransport(first.kdc)).service == "bob"


def test_revocation_list_overwrite_never_writes_through_a_planted_temporary_name(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kdc.rl"
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / f".kdc.rl.{os.getpid()}.tmp").symlink_to(victim)
    capsys.readouterr()
    assert main(["kdc", "revocation-list", "--out", str(out), "--overwrite"]) == 1
    assert capsys.readouterr().err.startswith("error: cannot write ")
    assert victim.read_bytes() == b"precious"
    assert not out.exists()


# -- a credential file's directory entry is synced before the principal commits ------------


def test_register_syncs_the_credential_files_directory_before_committing(
    kdc: KeyDistributionCenter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[bool, bool]] = []  # (a directory?, the principal there yet?)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        import stat

        synced.append((stat.S_ISDIR(os.fstat(fd).st_mode), kdc.list() != []))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    kdc.register("carol", write_to=tmp_path / "carol.cred")
    assert (True, False) in synced  # the directory, before the registration committed
