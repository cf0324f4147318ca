"""A strict, minimal DER reader: one element at a time (tag, content, next offset).

For the few places keymgmt reads ASN.1 that ``cryptography`` does not expose
(the key derivation cost of an encrypted PKCS#8 key before it is loaded;
signature and certificate details in :mod:`keymgmt.pki`). Definite, minimal
lengths of at most four bytes and single-byte tags only.
"""

from __future__ import annotations

__all__ = ["der_read", "der_tlv"]


def der_tlv(tag: int, content: bytes) -> bytes:
    """One DER element: a one-byte ``tag``, the definite length, ``content``."""
    n = len(content)
    if n < 0x80:
        length = bytes((n,))
    else:
        size = (n.bit_length() + 7) // 8
        length = bytes((0x80 | size,)) + n.to_bytes(size, "big")
    return bytes((tag,)) + length + content


def der_read(data: bytes, at: int = 0) -> tuple[int, bytes, int]:
    """The element at ``at``: (tag, content, offset after it). Strict DER lengths.

    Raises:
        ValueError: truncated, a multi-byte tag, an indefinite or non-minimal length.
    """
    if at + 2 > len(data):
        raise ValueError("truncated DER element")
    tag = data[at]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags are not used here")
    first = data[at + 1]
    start = at + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise ValueError("indefinite or oversize DER length")
        if start + count > len(data):
            raise ValueError("truncated DER length")
        length = int.from_bytes(data[start : start + count], "big")
        if length < 0x80 or data[start] == 0:
            raise ValueError("non-minimal DER length")
        start += count
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER content")
    return tag, data[start:end], end
