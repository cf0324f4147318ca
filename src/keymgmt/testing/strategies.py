"""Hypothesis strategies for testing code that uses keymgmt.

Import this module only in tests: it needs ``hypothesis`` (in the ``test``
extra), which the core install does not. Every strategy draws small, valid
values by default; the ``broken_*`` strategies draw deliberately invalid ones
to test error paths.
"""

from __future__ import annotations

import datetime as _dt

from hypothesis import strategies as st

from keymgmt._secret import SecretBytes
from keymgmt.algorithms import Algorithm, KeyKind
from keymgmt.revocation import RevocationReason

__all__ = [
    "aware_datetimes",
    "contexts",
    "key_names",
    "naive_datetimes",
    "plaintexts",
    "revocation_reasons",
    "secret_bytes",
    "symmetric_algorithms",
]

_NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-_."


def key_names() -> st.SearchStrategy[str]:
    """Valid key names: 1-64 characters of ``[a-z0-9._-]``, starting with a letter."""
    return st.builds(
        lambda first, rest: first + rest,
        st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
        st.text(_NAME_ALPHABET, max_size=63),
    )


def symmetric_algorithms() -> st.SearchStrategy[Algorithm]:
    """The symmetric algorithms keymgmt manages."""
    return st.sampled_from([a for a in Algorithm if a.kind is KeyKind.SYMMETRIC])


def plaintexts(max_size: int = 4096) -> st.SearchStrategy[bytes]:
    """Arbitrary plaintexts, empty included."""
    return st.binary(max_size=max_size)


def contexts() -> st.SearchStrategy[dict[str, str]]:
    """Encryption contexts: small str -> str mappings (any Unicode)."""
    return st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=40), max_size=5)


def secret_bytes(min_size: int = 1, max_size: int = 64) -> st.SearchStrategy[SecretBytes]:
    """:class:`SecretBytes` holding random bytes."""
    return st.binary(min_size=min_size, max_size=max_size).map(SecretBytes)


def revocation_reasons() -> st.SearchStrategy[RevocationReason]:
    """Every RFC 5280 revocation reason."""
    return st.sampled_from(list(RevocationReason))


def aware_datetimes() -> st.SearchStrategy[_dt.datetime]:
    """Aware UTC datetimes between 2000 and 2100 (whole microseconds)."""
    return st.datetimes(
        min_value=_dt.datetime(2000, 1, 1),
        max_value=_dt.datetime(2100, 1, 1),
        timezones=st.just(_dt.UTC),
    )


def naive_datetimes() -> st.SearchStrategy[_dt.datetime]:
    """Naive datetimes, which keymgmt refuses at every boundary."""
    return st.datetimes(min_value=_dt.datetime(2000, 1, 1), max_value=_dt.datetime(2100, 1, 1))
