"""An in-process transport: the KDC and its clients in one Python process.

For tests and notebooks. It is a plain ``Callable[[bytes], bytes]`` that
hands each request to :meth:`KeyDistributionCenter.handle` and, if asked,
keeps a transcript so a test can replay, reorder or tamper with what was
sent.
"""

from __future__ import annotations

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

    def __repr__(self) -> str:
        return f"InProcessTransport(record={self._record}, exchanges={len(self.transcript)})"
