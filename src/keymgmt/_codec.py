"""Canonical JSON for stored records and audit entries.

Records are JSON objects with sorted keys and no whitespace, so the same value
always encodes to the same bytes (the audit chain hashes them). Bytes travel
as URL-safe base64 without padding, datetimes as integer microseconds since
the epoch (exact, no float rounding).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from collections.abc import Mapping
from typing import Any

from keymgmt.errors import IntegrityError

__all__ = ["b64d", "b64e", "dumps", "from_micros", "loads", "to_micros"]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def dumps(value: Mapping[str, Any]) -> bytes:
    """Encode ``value`` as canonical JSON bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes) -> dict[str, Any]:
    """Decode canonical JSON bytes into a dict.

    Raises:
        IntegrityError: ``data`` is not a JSON object (a record was damaged).
    """
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError("stored record is not valid JSON") from None
    if not isinstance(value, dict):
        raise IntegrityError("stored record is not a JSON object")
    return value


def b64e(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Inverse of :func:`b64e`.

    Raises:
        IntegrityError: ``text`` is not valid base64.
    """
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise IntegrityError("stored record holds invalid base64") from None


def to_micros(value: _dt.datetime) -> int:
    """Aware datetime → integer microseconds since the epoch."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> _dt.datetime:
    """Inverse of :func:`to_micros`."""
    return _EPOCH + _dt.timedelta(microseconds=value)
