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

from keymgmt.errors import IntegrityError, InvalidArgumentError

__all__ = ["b64d", "b64e", "dumps", "from_micros", "loads", "to_micros"]

# One encoder for every call (json.dumps with options builds a new one each time).
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_FROM_URLSAFE = str.maketrans({"-": "+", "_": "/", "+": "!", "/": "!"})


def dumps(value: Mapping[str, Any]) -> bytes:
    """Encode ``value`` as canonical JSON bytes.

    Raises:
        InvalidArgumentError: ``value`` holds something JSON cannot carry
            exactly (bytes, objects, NaN, text with lone surrogates).
    """
    try:
        return _ENCODER.encode(value).encode()
    except UnicodeEncodeError:
        raise InvalidArgumentError("text must be valid Unicode (no lone surrogates)") from None
    except (TypeError, ValueError) as exc:
        # The message names the offending type or value kind, never the value.
        raise InvalidArgumentError(f"cannot encode as JSON: {type(exc).__name__}") from None


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
    # Strict: characters outside the URL-safe alphabet are refused, not skipped.
    try:
        standard = text.translate(_FROM_URLSAFE) + "=" * (-len(text) % 4)
        return base64.b64decode(standard, validate=True)
    except (ValueError, TypeError, AttributeError):
        raise IntegrityError("stored record holds invalid base64") from None


def to_micros(value: _dt.datetime) -> int:
    """Aware datetime → integer microseconds since the epoch."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> _dt.datetime:
    """Inverse of :func:`to_micros`."""
    return _EPOCH + _dt.timedelta(microseconds=value)
