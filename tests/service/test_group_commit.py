"""Group commit through the real service: concurrent creations share store writes.

Many clients create keys at once, each on its own TLS connection; the
service hands the requests that arrive while a write is in flight to
``km.keys.create_many`` together. What each caller sees must not change:
its own key, its own audit entry naming its own principal, its own typed
error when refused, and nothing lost.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import httpx

from keymgmt import KeyManager

from .conftest import HttpFactory, Material

PRINCIPALS = ("app-1", "app-2", "app-3")


def _create_at_once(http: HttpFactory, bodies: Sequence[dict[str, Any]]) -> list[httpx.Response]:
    """POST every body at the same moment, each from its own warm connection."""
    clients = [http(PRINCIPALS[i % len(PRINCIPALS)]) for i in range(len(bodies))]
    for client in clients:  # handshakes before the start line
        assert client.get("/v1/whoami").status_code == 200
    start = threading.Barrier(len(bodies))
    answers: list[httpx.Response | None] = [None] * len(bodies)

    def send(index: int) -> None:
        start.wait()
        answers[index] = clients[index].post("/v1/transit/keys", json=bodies[index])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def _create_entries(material: Material, prefix: str) -> list[Any]:
    with KeyManager.open(material.store, key_file=material.key_file, create=False) as km:
        km.audit.verify()
        return [
            e
            for e in km.audit.entries()
            if e.operation == "key.create" and e.object.startswith(prefix)
        ]


def test_concurrent_creates_all_land_each_audited_once_under_its_callers_name(
    http: HttpFactory, material: Material
) -> None:
    names = [f"app-gc-{i:02d}" for i in range(40)]
    answers = _create_at_once(http, [{"name": n} for n in names])
    assert [a.status_code for a in answers] == [201] * len(names)
    assert [a.json()["name"] for a in answers] == names
    reader = http("app-1")
    assert all(reader.get(f"/v1/transit/keys/{n}").status_code == 200 for n in names)
    entries = _create_entries(material, "app-gc-")
    assert sorted(e.object for e in entries) == [f"{n}#1" for n in names]
    assert {e.object: e.actor for e in entries} == {
        f"{n}#1": PRINCIPALS[i % len(PRINCIPALS)] for i, n in enumerate(names)
    }


def test_concurrent_creates_share_store_writes(http: HttpFactory, material: Material) -> None:
    names = [f"app-gw-{i:02d}" for i in range(40)]
    answers = _create_at_once(http, [{"name": n} for n in names])
    assert all(a.status_code == 201 for a in answers)
    # One write stamps its audit entries with one time: fewer times than keys
    # means some requests were committed together.
    times = {e.time for e in _create_entries(material, "app-gw-")}
    assert len(times) < len(names)


def test_a_refused_create_gets_its_typed_error_and_its_neighbours_land(
    http: HttpFactory, material: Material
) -> None:
    assert http("app-1").post("/v1/transit/keys", json={"name": "app-gr-taken"}).status_code == 201
    good = [f"app-gr-{i:02d}" for i in range(20)]
    bodies = [{"name": n} for n in good[:10]]
    bodies += [{"name": "app-gr-taken"}, {"name": "app-gr-odd", "algorithm": "rot13"}]
    bodies += [{"name": n} for n in good[10:]]
    answers = _create_at_once(http, bodies)
    by_name = dict(zip([b["name"] for b in bodies], answers, strict=True))
    assert by_name["app-gr-taken"].status_code == 409
    assert by_name["app-gr-taken"].json()["error"]["type"] == "already_exists"
    assert by_name["app-gr-odd"].status_code == 400
    assert by_name["app-gr-odd"].json()["error"]["type"] == "unsupported_algorithm"
    assert [by_name[n].status_code for n in good] == [201] * len(good)
    created = sorted(e.object for e in _create_entries(material, "app-gr-"))
    assert created == sorted([f"{n}#1" for n in good] + ["app-gr-taken#1"])


def test_two_concurrent_creates_of_one_name_make_one_key_and_one_conflict(
    http: HttpFactory, material: Material
) -> None:
    answers = _create_at_once(http, [{"name": "app-gt-twin"}] * 6)
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5
    assert len(_create_entries(material, "app-gt-twin")) == 1
    (made,) = [a.json() for a in answers if a.status_code == 201]
    described = http("app-1").get("/v1/transit/keys/app-gt-twin").json()
    assert described["key_id"] == made["key_id"]
