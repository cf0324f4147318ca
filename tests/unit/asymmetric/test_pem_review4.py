"""Fourth review of keymgmt.pem: reading a key file is bounded and typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from keymgmt import pem
from keymgmt.errors import InvalidArgumentError, MalformedInputError


def test_load_private_key_file_refuses_a_file_larger_than_any_key_without_reading_it_all(
    tmp_path: Path,
) -> None:
    huge = tmp_path / "huge.pem"
    with huge.open("wb") as handle:
        handle.truncate(pem.MAX_KEY_FILE_SIZE + 1)  # sparse: costs no disk
    with pytest.raises(MalformedInputError, match=r"larger than 1 MiB: not a private key file"):
        pem.load_private_key_file(huge)


def test_load_private_key_file_of_a_non_path_is_a_typed_error() -> None:
    with pytest.raises(InvalidArgumentError, match="a str or path, not int"):
        pem.load_private_key_file(5)  # type: ignore[arg-type]
