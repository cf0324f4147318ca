"""Regression tests for the third review of the KDC (one section per finding fixed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keymgmt.cli import main
from keymgmt.errors import RevokedError
from keymgmt.kdc import (
    InProcessTransport,
    KdcClient,
    KeyDistributionCenter,
    SymmetricCredential,
    TicketReceiver,
)

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
