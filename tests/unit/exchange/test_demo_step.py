"""The demo's exchange step shows a handshake and every attack refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from keymgmt import KeyManager
from keymgmt.cli._demo import STEPS, Demo
from keymgmt.exchange._demo_step import step_exchange


def test_exchange_step_is_listed() -> None:
    assert any("Key exchange" in title for title, _ in STEPS)


def test_exchange_step_refuses_each_attack(
    km: KeyManager, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    step_exchange(Demo(km=km, path=tmp_path / "x.db", passphrase="p", workdir=tmp_path))
    out = capsys.readouterr().out
    for attack in (
        "replaying the recorded ClientHello: refused (ReplayError",
        "stamped 10 minutes ago: refused (StaleMessageError",
        "from another CA: refused (PeerVerificationError",
        "under another name: refused (PeerVerificationError",
        "flipping one bit of the ServerHello: refused (HandshakeError",
        "replaying a recorded channel record: refused (RemoteProtocolError",
        "both leaked long-term keys: refused (RemoteProtocolError",
        "revoked: refused (PeerVerificationError",
    ):
        assert attack in out
    assert "hybrid handshake (x25519-mlkem768) completes" in out
    assert "audited: 6 accepted handshake sides" in out
