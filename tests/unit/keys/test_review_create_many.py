"""Review of KeyStore.create_many: a bad request is that request's typed error, never the call's."""

from __future__ import annotations

from typing import Any

import pytest

from keymgmt import KeyManager
from keymgmt.errors import InvalidArgumentError
from keymgmt.keys import KeyRequest
from keymgmt.model import KeyInfo


def test_a_policy_of_the_wrong_type_is_refused_as_invalid_for_create(km: KeyManager) -> None:
    bad: Any = "rotate monthly"
    with pytest.raises(InvalidArgumentError):
        km.keys.create("k", policy=bad)
    assert km.keys.list() == []


def test_a_policy_of_the_wrong_type_fails_only_its_request(km: KeyManager) -> None:
    bad: Any = "rotate monthly"
    outcomes = km.keys.create_many([KeyRequest(name="a", policy=bad), KeyRequest(name="b")])
    assert isinstance(outcomes[0], InvalidArgumentError)
    assert isinstance(outcomes[1], KeyInfo)
    assert [k.name for k in km.keys.list()] == ["b"]


def test_an_item_that_is_not_a_key_request_fails_only_itself(km: KeyManager) -> None:
    odd: Any = ("a", "aes-256-gcm")
    outcomes = km.keys.create_many([odd, KeyRequest(name="b")])
    assert isinstance(outcomes[0], InvalidArgumentError)
    assert isinstance(outcomes[1], KeyInfo)
