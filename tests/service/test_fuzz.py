"""Hostile input against the real server: only documented refusals, never a 500, still serving."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import HttpFactory

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "plaintext": st.text(max_size=12) | st.integers(),
        "ciphertext": st.text(max_size=40) | st.none(),
        "context": _JSON,
        "name": _JSON,
        "csr": st.text(max_size=30),
        "profile": _JSON,
        "kind": st.sampled_from(["key", "principal", "certificate", "x"]),
        "subject": _JSON,
        "reason": st.text(max_size=12),
    },
)
_PATHS = st.sampled_from(
    [
        "/v1/transit/keys",
        "/v1/transit/keys/app-orders/encrypt",
        "/v1/transit/keys/app-orders/decrypt",
        "/v1/transit/keys/app-orders/rewrap",
        "/v1/transit/keys/app-orders/datakey",
        "/v1/pki/cas/issuing/sign",
        "/v1/revocations",
        "/v1/kdc",
    ]
)
_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(path=_PATHS, body=_FIELDS | _JSON)
def test_any_json_body_gets_a_documented_answer(http: HttpFactory, path: str, body: object) -> None:
    client = http("app-1")
    response = client.post(path, content=json.dumps(body).encode())
    # The OpenAPI hook has checked status and body; a 500 is never documented.
    assert response.status_code < 500
    assert client.get("/v1/health").status_code == 200


@_SETTINGS
@given(path=_PATHS, body=st.binary(max_size=300))
def test_any_bytes_get_a_documented_answer(http: HttpFactory, path: str, body: bytes) -> None:
    response = http("app-1").post(path, content=body)
    assert response.status_code < 500


@_SETTINGS
@given(
    segment=st.text(alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=40)
)
def test_any_path_gets_a_documented_answer(http: HttpFactory, segment: str) -> None:
    response = http(None).get("/v1/pki/ocsp/" + segment.replace("?", "").replace("#", ""))
    assert response.status_code < 500
