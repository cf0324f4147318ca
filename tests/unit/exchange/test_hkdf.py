"""HKDF argument checking and the labelled expansion."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from keymgmt._secret import SecretBytes
from keymgmt.errors import InvalidArgumentError
from keymgmt.exchange import hkdf, hkdf_expand
from keymgmt.exchange._hkdf import derive_secret, expand_label

PRK = SecretBytes(bytes(range(32)))


@given(
    st.binary(max_size=80),
    st.binary(min_size=1, max_size=80),
    st.binary(max_size=80),
    st.integers(1, 300),
)
def test_hkdf_matches_pyca(ikm: bytes, salt: bytes, info: bytes, length: int) -> None:
    expected = HKDF(hashes.SHA256(), length, salt, info).derive(ikm)
    assert hkdf(ikm, salt=salt, info=info, length=length).reveal() == expected


@pytest.mark.parametrize("length", [0, 255 * 32 + 1])
def test_output_length_out_of_range_is_refused(length: int) -> None:
    with pytest.raises(InvalidArgumentError, match="length must be 1 to 8160"):
        hkdf_expand(PRK, info=b"", length=length)


def test_short_prk_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="prk must be at least 32 bytes"):
        hkdf_expand(b"short", info=b"", length=32)


def test_non_bytes_input_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="ikm must be bytes"):
        hkdf("text", salt=b"", info=b"")  # type: ignore[arg-type]


def test_bytearray_and_memoryview_are_accepted() -> None:
    a = hkdf(bytearray(b"k"), salt=b"s", info=b"i")
    b = hkdf(memoryview(b"k"), salt=b"s", info=b"i")  # type: ignore[arg-type]
    assert a == b


def test_labels_separate_outputs() -> None:
    assert expand_label(PRK, b"key", b"", 32) != expand_label(PRK, b"iv", b"", 32)
    assert derive_secret(PRK, b"x", b"a" * 32) != derive_secret(PRK, b"x", b"b" * 32)


def test_overlong_label_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="at most 255 bytes"):
        expand_label(PRK, b"x" * 300, b"", 32)
