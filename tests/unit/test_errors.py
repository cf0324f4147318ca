"""The exception tree: one root, typed families, opaque crypto failures."""

from __future__ import annotations

import inspect

import pytest

from keymgmt import errors
from keymgmt.errors import (
    AlreadyExistsError,
    ConflictError,
    DecryptionError,
    IntegrityError,
    InvalidArgumentError,
    InvalidSignatureError,
    KeyMgmtError,
    KeyNotFoundError,
    NotFoundError,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
    UnsupportedAlgorithmError,
    WrongPassphraseError,
)

ALL_CLASSES = [
    obj
    for name in errors.__all__
    if inspect.isclass(obj := getattr(errors, name)) and issubclass(obj, BaseException)
]


def test_all_is_sorted() -> None:
    assert list(errors.__all__) == sorted(errors.__all__)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_every_exception_derives_from_the_root(cls: type[BaseException]) -> None:
    assert issubclass(cls, KeyMgmtError)
    assert cls.__doc__


@pytest.mark.parametrize(
    "cls", [InvalidArgumentError, UnsupportedAlgorithmError, AlreadyExistsError]
)
def test_argument_errors_are_value_errors(cls: type[KeyMgmtError]) -> None:
    assert issubclass(cls, ValueError)


@pytest.mark.parametrize("cls", [NotFoundError, KeyNotFoundError])
def test_lookup_errors_are_lookup_errors(cls: type[KeyMgmtError]) -> None:
    assert issubclass(cls, LookupError)


@pytest.mark.parametrize(
    "cls", [StoreUnavailableError, SchemaVersionError, ConflictError], ids=lambda c: c.__name__
)
def test_storage_failures_are_store_errors(cls: type[KeyMgmtError]) -> None:
    assert issubclass(cls, StoreError)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (DecryptionError, "decryption failed"),
        (InvalidSignatureError, "signature verification failed"),
    ],
)
def test_crypto_failures_take_no_arguments_and_have_one_message(
    cls: type[KeyMgmtError], message: str
) -> None:
    exc = cls()
    assert exc.message == message
    assert str(exc) == message
    with pytest.raises(TypeError):
        cls("details that could leak")  # type: ignore[call-arg]


def test_errors_carry_structured_attributes_and_the_message() -> None:
    exc = ConflictError("record a/b moved", kind="a", name="b")
    assert (exc.message, exc.kind, exc.name) == ("record a/b moved", "a", "b")  # type: ignore[attr-defined]
    assert str(exc) == "record a/b moved"


def test_integrity_and_passphrase_errors_are_distinct_families() -> None:
    assert not issubclass(IntegrityError, StoreError)
    assert not issubclass(WrongPassphraseError, IntegrityError)
