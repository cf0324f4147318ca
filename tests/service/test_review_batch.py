"""Review of GroupCommitter: callers that go away before or during their write."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

import pytest

from keymgmt.server._batch import MAX_HISTORY, GroupCommitter

_WAIT = 10.0  # failsafe only: the events below release every wait


class Gate:
    """A batch function whose first batch waits until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: list[int]) -> Sequence[int | Exception]:
        if not self.batches:
            self.started.set()
            assert self.release.wait(_WAIT)
        self.batches.append(items)
        return [i * 10 for i in items]


async def _yield() -> None:
    for _ in range(3):
        await asyncio.sleep(0)  # a yield, not a wait


def test_a_request_cancelled_before_its_write_starts_is_not_written() -> None:
    gate = Gate()

    async def main() -> list[object]:
        committer: GroupCommitter[int, int] = GroupCommitter(gate)
        first = asyncio.ensure_future(committer.submit(1))
        await asyncio.to_thread(gate.started.wait, _WAIT)
        gone = asyncio.ensure_future(committer.submit(2))
        kept = asyncio.ensure_future(committer.submit(3))
        await _yield()
        gone.cancel()  # the client disconnected while queued
        await _yield()
        gate.release.set()
        return [await first, await kept, gone.cancelled()]

    assert asyncio.run(main()) == [10, 30, True]
    assert gate.batches == [[1], [3]]


def test_a_batch_of_only_cancelled_requests_is_not_written() -> None:
    gate = Gate()

    async def main() -> None:
        committer: GroupCommitter[int, int] = GroupCommitter(gate)
        first = asyncio.ensure_future(committer.submit(1))
        await asyncio.to_thread(gate.started.wait, _WAIT)
        gone = asyncio.ensure_future(committer.submit(2))
        await _yield()
        gone.cancel()
        await _yield()
        gate.release.set()
        assert await first == 10
        drainer = committer._drainer  # still running only if it wrote another batch
        if drainer is not None:
            await drainer

    asyncio.run(main())
    assert gate.batches == [[1]]


def test_a_request_cancelled_during_its_write_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = Gate()

    async def main() -> None:
        committer: GroupCommitter[int, int] = GroupCommitter(gate)
        first = asyncio.ensure_future(committer.submit(1))
        await asyncio.to_thread(gate.started.wait, _WAIT)
        first.cancel()  # the write is in flight: it stands
        await _yield()
        drainer = committer._drainer
        assert drainer is not None
        gate.release.set()
        await drainer

    with caplog.at_level(logging.INFO, logger="keymgmt"):
        asyncio.run(main())
    assert gate.batches == [[1]]
    assert any("went away" in r.getMessage() for r in caplog.records)


def test_the_batch_history_kept_for_diagnostics_is_bounded() -> None:
    # A service runs for months: what it remembers per batch must not grow forever.
    async def main() -> GroupCommitter[int, int]:
        committer: GroupCommitter[int, int] = GroupCommitter(lambda items: items)
        for i in range(MAX_HISTORY + 10):
            await committer.submit(i)  # one at a time: one batch each
        return committer

    committer = asyncio.run(main())
    assert len(committer.batches) == MAX_HISTORY
    assert list(committer.batches)[-1] == 1
    assert committer.batch_count == MAX_HISTORY + 10
