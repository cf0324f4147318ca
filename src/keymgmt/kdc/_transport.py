"""An in-process transport: the KDC and its clients in one Python process.

For tests and notebooks. It is a plain ``Callable[[bytes], bytes]`` that
hands each request to :meth:`KeyDistributionCenter.handle` (a batch, with
:meth:`InProcessTransport.many`, to ``handle_many``) and, if asked,
keeps a transcript so a test can replay, reorder or tamper with what was
sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keymgmt.kdc._server import KeyDistributionCenter

__all__ = ["InProcessTransport"]


class InProcessTransport:
    """Carries request bytes to an in-process KDC and returns its reply bytes.

    Args:
        kdc: the KDC to answer requests.
        record: keep every (request, reply) pair in :attr:`transcript`.
    """

    def __init__(self, kdc: KeyDistributionCenter, *, record: bool = False) -> None:
        self._kdc = kdc
        self._record = record
        self.transcript: list[tuple[bytes, bytes]] = []

    def __call__(self, request: bytes) -> bytes:
        """Deliver ``request`` and return the KDC's reply."""
        reply = self._kdc.handle(request)
        if self._record:
            self.transcript.append((request, reply))
        return reply

    def many(self, requests: Sequence[bytes]) -> list[bytes]:
        """Deliver a batch through :meth:`KeyDistributionCenter.handle_many`.

        The KDC writes the batch's grant records in one commit and returns
        the replies only after it.
        """
        replies = self._kdc.handle_many(requests)
        if self._record:
            self.transcript.extend(zip(requests, replies, strict=True))
        return replies

    def __repr__(self) -> str:
        return f"InProcessTransport(record={self._record}, exchanges={len(self.transcript)})"
