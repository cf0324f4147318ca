"""GroupCommitter on its own: natural batching, per-item outcomes, failures kept to their batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from keymgmt.errors import AlreadyExistsError, StoreError
from keymgmt.server._batch import GroupCommitter


class Recorder:
    """A batch function that records its batches; the first one waits to be released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail_batch: int | None = None

    def __call__(self, items: list[int]) -> Sequence[int | Exception]:
        if not self.batches:
            self.started.set()
            self.release.wait(timeout=10)
        self.batches.append(items)
        if self.fail_batch == len(self.batches) - 1:
            raise StoreError("the disk is full")
        return [AlreadyExistsError(f"{i} exists") if i < 0 else i * 10 for i in items]


def _run(recorder: Recorder, items: list[int]) -> list[object]:
    """Submit the first item; once its write is in flight, the rest; then let it finish."""

    async def main() -> list[object]:
        committer: GroupCommitter[int, int] = GroupCommitter(recorder)

        async def one(item: int) -> object:
            try:
                return await committer.submit(item)
            except Exception as exc:
                return exc

        first = asyncio.ensure_future(one(items[0]))
        await asyncio.to_thread(recorder.started.wait, 10)
        rest = [asyncio.ensure_future(one(i)) for i in items[1:]]
        for _ in range(3):
            await asyncio.sleep(0)  # a yield, not a wait: the submissions queue
        recorder.release.set()
        return [await first, *[await r for r in rest]]

    return asyncio.run(main())


def test_requests_arriving_during_a_write_share_the_next_one() -> None:
    recorder = Recorder()
    assert _run(recorder, [1, 2, 3, 4]) == [10, 20, 30, 40]
    assert recorder.batches == [[1], [2, 3, 4]]


def test_a_refused_item_gets_its_own_exception() -> None:
    recorder = Recorder()
    outcomes = _run(recorder, [1, 2, -3, 4])
    assert outcomes[:2] == [10, 20]
    assert isinstance(outcomes[2], AlreadyExistsError)
    assert outcomes[3] == 40


def test_a_failed_write_fails_only_its_own_batch() -> None:
    recorder = Recorder()
    recorder.fail_batch = 1
    outcomes = _run(recorder, [1, 2, 3])
    assert outcomes[0] == 10
    assert all(isinstance(o, StoreError) for o in outcomes[1:])


def test_the_batch_size_is_bounded() -> None:
    async def main() -> list[list[int]]:
        seen: list[list[int]] = []

        def run(items: list[int]) -> list[int]:
            seen.append(items)
            return items

        committer: GroupCommitter[int, int] = GroupCommitter(run, max_batch=3)
        await asyncio.gather(*(committer.submit(i) for i in range(7)))
        return seen

    assert [len(b) for b in asyncio.run(main())] == [3, 3, 1]


def test_a_wrong_number_of_outcomes_fails_the_batch_loudly() -> None:
    async def main() -> None:
        committer: GroupCommitter[int, int] = GroupCommitter(lambda items: [])
        await committer.submit(1)

    with pytest.raises(RuntimeError, match="wrong number"):
        asyncio.run(main())
