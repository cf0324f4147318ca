"""Views of the KDC's public types: compromise reports, principals and grants, never keys."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import attrs
import pytest

from keymgmt import KeyManager
from keymgmt.kdc import CompromiseReport, InProcessTransport, KdcClient
from keymgmt.testing import SeededRandomness, in_memory_manager
from keymgmt.views import show, text


@attrs.frozen
class _World:
    km: KeyManager
    report: CompromiseReport
    secrets: tuple[bytes, ...]


class _Printer:
    """Stands in for IPython's RepresentationPrinter."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def text(self, value: str) -> None:
        self.out.append(value)


def _renderings(obj: object) -> list[str]:
    shown = show(obj)
    printer = _Printer()
    shown._repr_pretty_(printer, False)
    return [shown._repr_html_(), *printer.out, str(shown)]


def _assert_absent(secret: bytes, renderings: list[str]) -> None:
    forms = [
        secret.hex(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        secret.decode("latin-1"),
    ]
    for rendering in renderings:
        for form in forms:
            assert form not in rendering


@pytest.fixture
def world() -> Iterator[_World]:
    """alice got key ``payments`` and a ticket for bob; then payments#1 was compromised."""
    with in_memory_manager(seed=21) as km:
        km.keys.create("payments")
        alice = km.kdc.register("alice")
        bob = km.kdc.register("bob")
        km.kdc.grant("alice", keys=["payments"], peers=["bob"])
        client = KdcClient(alice, clock=km.clock, randomness=SeededRandomness("alice"))
        transport = InProcessTransport(km.kdc)
        granted = client.fetch_key("payments", transport)
        ticket = client.fetch_ticket("bob", transport)
        report = km.compromise(key="payments#1")
        yield _World(
            km=km,
            report=report,
            secrets=(
                granted.material.reveal(),
                ticket.session_key.reveal(),
                alice.key.reveal(),
                bob.key.reveal(),
            ),
        )


def test_compromise_report_names_what_was_exposed_and_to_whom(world: _World) -> None:
    out = text(world.report)
    assert out.startswith("Compromise response: key:payments#1")
    assert "key-compromise" in out
    assert "payments#1" in out
    assert "recipients" in out
    assert "alice" in out
    (grant,) = world.report.key_grants
    assert grant.id in out


def test_compromise_report_html_is_a_table_of_the_grants(world: _World) -> None:
    rendered = show(world.report)._repr_html_()
    assert "<caption>grants of exposed material</caption>" in rendered
    assert "<td>alice</td>" in rendered
    assert "<td>payments#1</td>" in rendered


def test_principal_view_shows_status_not_the_key(world: _World) -> None:
    out = text(world.km.kdc.get("alice"))
    assert out.startswith("KDC principal 'alice'")
    assert "symmetric" in out
    assert "enabled" in out


def test_revoked_principal_is_marked_unusable() -> None:
    with in_memory_manager(seed=3) as km:
        km.kdc.register("mallory")
        km.kdc.revoke("mallory")
        rendered = show(km.kdc.get("mallory"))._repr_html_()
    assert '<td class="bad">revoked</td>' in rendered


def test_lists_of_principals_and_grants_render_as_tables(world: _World) -> None:
    principals = text(world.km.kdc.list())
    assert principals.startswith("KDC principals (2)")
    assert "alice" in principals
    assert "bob" in principals
    grants = text(world.km.kdc.grants())
    assert grants.startswith("KDC grants (2)")
    assert "payments#1" in grants  # the key grant
    assert "bob" in grants  # the ticket's peer


def test_grant_view_names_key_and_expiry(world: _World) -> None:
    (grant,) = world.km.kdc.grants(key="payments#1")
    out = text(grant)
    assert out.startswith(f"KDC key grant {grant.id}")
    assert "payments#1" in out
    assert "expires" in out


def test_kdc_views_never_show_keys_credentials_or_session_keys(world: _World) -> None:
    kdc = world.km.kdc
    views = [
        *_renderings(world.report),
        *_renderings(kdc.list()),
        *_renderings(kdc.grants()),
        *[r for g in kdc.grants() for r in _renderings(g)],
        *[r for p in kdc.list() for r in _renderings(p)],
        *_renderings(world.km),
    ]
    for secret in world.secrets:
        _assert_absent(secret, views)


def test_kdc_types_render_by_themselves_in_jupyter_and_ipython(world: _World) -> None:
    (grant, *_) = world.km.kdc.grants()
    for obj in (world.report, world.km.kdc.get("alice"), grant):
        printer = _Printer()
        obj._repr_pretty_(printer, False)
        assert printer.out == [text(obj)]
        assert obj._repr_html_() == show(obj)._repr_html_()
