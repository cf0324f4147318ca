"""Jupyter/IPython views: every supported object renders, escaped, without secret material."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from hypothesis import given, settings

from keymgmt import InvalidArgumentError, KeyManager
from keymgmt.exchange import HandshakeComplete
from keymgmt.hazmat import export_raw_key
from keymgmt.testing import in_memory_manager
from keymgmt.testing import strategies as kst
from keymgmt.testing._pki import build_crl
from keymgmt.views import View, show, text


@pytest.fixture
def km() -> Iterator[KeyManager]:
    with in_memory_manager(seed=11) as manager:
        yield manager


class _Printer:
    """Stands in for IPython's RepresentationPrinter."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def text(self, value: str) -> None:
        self.out.append(value)


def _forms(secret: bytes) -> list[str]:
    """How leaked bytes would show up in a rendering."""
    return [
        secret.hex(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        secret.decode("latin-1"),
    ]


def _renderings(obj: object) -> list[str]:
    printer = _Printer()
    obj._repr_pretty_(printer, False)  # type: ignore[attr-defined]
    return [obj._repr_html_(), *printer.out]  # type: ignore[attr-defined]


def _assert_absent(secret: bytes, renderings: list[str]) -> None:
    for rendering in renderings:
        for form in _forms(secret):
            assert form not in rendering


def test_key_info_shows_the_version_timeline(km: KeyManager) -> None:
    km.keys.create("payments")
    km.keys.rotate("payments")
    km.keys.revoke("payments", 1, reason="key-compromise")
    out = text(km.keys.get("payments"))
    assert "version timeline" in out
    assert "compromised" in out
    assert "key-compromise" in out
    assert "v2 (primary)" in out


def test_key_info_html_marks_unusable_states(km: KeyManager) -> None:
    km.keys.create("payments")
    km.keys.rotate("payments")
    km.keys.revoke("payments", 1, reason="key-compromise")
    assert '<td class="bad">compromised</td>' in km.keys.get("payments")._repr_html_()


def test_symmetric_key_material_never_appears_in_any_view(km: KeyManager) -> None:
    km.keys.create("payments")
    km.encrypt("payments", b"x", {"tenant": "acme"})
    secret = export_raw_key(km, "payments", allow_plaintext=True).reveal()
    info = km.keys.get("payments")
    _assert_absent(secret, [*_renderings(km), *_renderings(info), *_renderings(info.versions[0])])
    _assert_absent(secret, [*_renderings(km.audit), *_renderings(show(km.audit.tail(50)))])


def test_private_key_material_never_appears_in_any_view(km: KeyManager) -> None:
    km.keys.create("signer", "ed25519")
    root = km.pki.create_root_ca("root", key_type="ed25519")
    secrets = [
        export_raw_key(km, "signer", allow_plaintext=True).reveal(),
        export_raw_key(km, root.key_ref.split("#")[0], allow_plaintext=True).reveal(),
    ]
    views = [*_renderings(km), *_renderings(root), *_renderings(km.keys.get("signer"))]
    for secret in secrets:
        _assert_absent(secret, views)
        _assert_absent(secret[-32:], views)  # the raw Ed25519 seed at the end of PKCS#8


def test_manager_view_summarizes_the_store(km: KeyManager) -> None:
    km.keys.create("payments")
    out = text(km)
    assert "MemoryBackend" in out
    assert "payments" in out
    assert "aes-256-gcm" in out


def test_closed_manager_view_says_closed() -> None:
    manager = in_memory_manager()
    manager.close()
    assert "closed" in text(manager)


def test_certificate_subject_is_html_escaped(km: KeyManager) -> None:
    root = km.pki.create_root_ca("root", key_type="ed25519")
    cert = root.issue(
        public_key=ed25519.Ed25519PrivateKey.generate().public_key(),
        subject="<script>alert(1)</script>",
        names=["x.example"],
        profile="tls-client",
    )
    rendered = show(cert)._repr_html_()
    assert "<script>" not in rendered
    assert "&lt;script" in rendered  # RFC 4514 adds a backslash; HTML escapes the rest
    assert "&lt;/script" in rendered


def test_audit_details_are_html_escaped(km: KeyManager) -> None:
    km.revocation.revoke("principal", "<b>mallory</b>", "key-compromise")
    rendered = km.audit._repr_html_()
    assert "<b>mallory</b>" not in rendered
    assert "&lt;b&gt;mallory&lt;/b&gt;" in rendered


def test_chain_verified_path_and_issued_certificate_render(km: KeyManager) -> None:
    root = km.pki.create_root_ca("root", key_type="ed25519")
    issuing = root.create_intermediate("issuing")
    cert = issuing.issue(
        public_key=ed25519.Ed25519PrivateKey.generate().public_key(),
        subject="svc",
        names=["svc.example"],
    )
    path = km.pki.verify(cert, purpose="tls-server", name="svc.example")
    assert "CN=svc" in text(path)
    assert "CN=root" in text(path)
    assert text(show(list(path.chain))).startswith("Certificate chain (3 certificates")
    issued = issuing.get(cert.serial_number)
    issuing.revoke(cert.serial_number, "superseded")
    assert "tls-server" in text(issued)
    assert "revoked superseded" in text(issuing.get(cert.serial_number))


def test_crl_view_lists_entries_and_truncates_long_lists() -> None:
    crl, _ = build_crl(1, list(range(1, 61)), at=in_memory_manager().clock.now())
    out = text(show(crl))
    assert "entries      60" in out
    assert "… 10 more" in out
    assert "keyCompromise" in out


def test_handshake_session_view_shows_the_peer_but_no_secrets(km: KeyManager) -> None:
    root = km.pki.create_root_ca("root", key_type="ed25519")
    server_cred = km.exchange.credential(root, "server.example", client=False)
    client_cred = km.exchange.credential(root, "client.example", server=False)
    client = km.exchange.initiator(client_cred, server_identity="server.example")
    server = km.exchange.responder(server_cred)
    server.receive_data(client.start())
    server.next_event()
    client.receive_data(server.data_to_send())
    done = client.next_event()
    assert isinstance(done, HandshakeComplete)
    session = done.session
    views = [*_renderings(session), *_renderings(done)]
    assert all("server.example" in v for v in views)
    secrets = [session._send.reveal(), session._recv.reveal(), session._exporter.reveal()]
    for secret in secrets:
        _assert_absent(secret, views)
    assert session.session_id.hex() not in views[0]  # only a prefix is shown
    key_bytes = server_cred.private_key.private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    _assert_absent(key_bytes, views)


def test_pretty_printer_falls_back_to_repr_on_cycles(km: KeyManager) -> None:
    printer = _Printer()
    km._repr_pretty_(printer, True)
    assert printer.out == [repr(km)]


def test_show_wraps_for_print_and_jupyter(km: KeyManager) -> None:
    view = show(km.audit.tail(1))
    assert isinstance(view, View)
    assert str(view).startswith("Audit log excerpt (1 entries)")
    assert view._repr_html_().startswith("<style>")


def test_show_refuses_objects_without_a_view() -> None:
    with pytest.raises(InvalidArgumentError, match="keymgmt has no view for dict"):
        show({"a": 1})


@settings(max_examples=15, deadline=None)
@given(kst.managed_keys())
def test_no_view_of_any_managed_key_holds_its_material(key: kst.ManagedKey) -> None:
    material = export_raw_key(key.manager, key.name, allow_plaintext=True).reveal()
    info = key.manager.keys.get(key.name)
    views = [*_renderings(key.manager), *_renderings(info), *_renderings(key.manager.audit)]
    # The whole material, and its last 32 bytes (a raw private scalar or seed in PKCS#8).
    _assert_absent(material, views)
    _assert_absent(material[-32:], views)
