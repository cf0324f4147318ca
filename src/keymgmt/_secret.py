"""SecretBytes: key material that cannot leak by accident."""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

__all__ = ["SecretBytes"]


class SecretBytes:
    """Bytes that hide themselves.

    The repr and str are redacted, equality is constant-time, pickling and
    copying to ``bytes()`` are refused. The one way out is :meth:`reveal`,
    which is easy to grep for.
    """

    __slots__ = ("__value",)

    def __init__(self, value: bytes | bytearray | memoryview) -> None:
        candidate: object = value  # checked at run time too: callers may be untyped
        if not isinstance(candidate, bytes | bytearray | memoryview):
            from keymgmt.errors import InvalidArgumentError

            raise InvalidArgumentError("SecretBytes takes bytes")
        self.__value = bytes(value)

    def reveal(self) -> bytes:
        """Return the secret bytes. Every call site is a place a secret leaves."""
        return self.__value

    def __len__(self) -> int:
        return len(self.__value)

    def __repr__(self) -> str:
        return f"SecretBytes(<redacted {len(self.__value)} bytes>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecretBytes):
            return hmac.compare_digest(self.__value, other.__value)
        return NotImplemented

    def __hash__(self) -> int:
        # Hashing would let a dict lookup act as an equality oracle; refuse.
        raise TypeError("SecretBytes is not hashable")

    def __bytes__(self) -> NoReturn:
        raise TypeError("SecretBytes has no bytes(); call reveal() deliberately")

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretBytes cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("SecretBytes cannot be pickled")

    def __copy__(self) -> SecretBytes:
        return self

    def __deepcopy__(self, memo: Any) -> SecretBytes:
        return self
