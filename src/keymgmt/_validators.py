"""Argument checks shared by the parts' settings types: typed errors, one wording.

``attrs`` validators (``positive_int``, ``positive_timedelta``) and
:func:`enum_member`, which turns a name into an enum member or says which
names there are. Each raises :class:`~keymgmt.errors.InvalidArgumentError`.
"""

from __future__ import annotations

import datetime as _dt
import enum
from typing import Any, TypeVar

import attrs

from keymgmt.errors import InvalidArgumentError

__all__ = ["enum_member", "positive_int", "positive_timedelta"]

_E = TypeVar("_E", bound=enum.Enum)


def positive_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``attrs`` validator: an ``int`` (not a ``bool``) of at least 1.

    Raises:
        InvalidArgumentError: anything else, naming the attribute.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgumentError(f"{attribute.name} must be a positive int")


def positive_timedelta(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``attrs`` validator: a ``timedelta`` longer than zero.

    Raises:
        InvalidArgumentError: anything else, naming the attribute.
    """
    if not isinstance(value, _dt.timedelta) or value <= _dt.timedelta(0):
        raise InvalidArgumentError(f"{attribute.name} must be a positive timedelta")


def enum_member(cls: type[_E], value: object, what: str) -> _E:
    """The member of ``cls`` for ``value`` (a member or its value).

    Raises:
        InvalidArgumentError: no such member; the message names ``what`` and
            lists the values there are.
    """
    try:
        return cls(value)
    except ValueError:
        names = ", ".join(str(m.value) for m in cls)
        raise InvalidArgumentError(f"unknown {what} {value!r}; expected one of: {names}") from None
