"""The error convention: library exceptions map to statuses and come back as the same class."""

from __future__ import annotations

import pytest

from keymgmt import errors
from keymgmt.client import ERROR_TABLE, error_body, exception_for, status_for


@pytest.mark.parametrize(("cls", "status", "kind"), ERROR_TABLE)
def test_each_library_error_round_trips_through_its_status(
    cls: type[errors.KeyMgmtError], status: int, kind: str
) -> None:
    original = cls() if cls in (errors.DecryptionError, errors.InvalidSignatureError) else cls("m")  # type: ignore[call-arg]
    got_status, got_kind, message = status_for(original)
    assert (got_status, got_kind) == (status, kind)
    again = exception_for(got_status, error_body(got_kind, message))
    assert type(again) is cls
    assert again.message == original.message


def test_foreign_exceptions_are_internal_and_say_nothing() -> None:
    assert status_for(ValueError("secret=hunter2")) == (500, "internal", "internal server error")


def test_unknown_type_becomes_service_error_with_status() -> None:
    exc = exception_for(429, error_body("rate_limited", "slow down"), {"retry-after": "3"})
    assert isinstance(exc, errors.ServiceError)
    assert (exc.status, exc.type, exc.message, exc.headers) == (
        429,
        "rate_limited",
        "slow down",
        {"retry-after": "3"},
    )


def test_malformed_error_body_still_gives_an_exception() -> None:
    exc = exception_for(502, b"<html>")
    assert isinstance(exc, errors.ServiceError)
    assert exc.message == "the service answered HTTP 502"
