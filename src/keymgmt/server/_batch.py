"""Group commit for the service: concurrent requests merged into one store write.

Each key creation is one store transaction, and on SQLite each transaction
is one fsync (``synchronous=FULL``): one at a time, a few milliseconds each,
so a service creating keys one request at a time is bound by the disk, and
its worker threads queue on the store's lock. :class:`GroupCommitter`
instead hands the library every request that arrived while the previous
write was in flight, as one call (``km.keys.create_many``: one transaction,
one fsync), and answers each caller with its own outcome.

*Natural batching*, no timer: the first request of a quiet period is sent
at once (a batch of one; no latency is added), and while that write runs,
the requests that arrive queue for the next one. Under load, batches grow
with the load; the thread hop and the fsync are paid once per batch.

What each caller is promised is what :meth:`KeyStore.create_many
<keymgmt.keys.KeyStore.create_many>` and :meth:`Store.transact_many
<keymgmt._store.Store.transact_many>` promise: its request is validated,
created and audited (naming its own principal) as alone; a success is
answered only once the batch is durable; a refused request (an existing
name, a bad algorithm, two requests for one name) gets its own typed error
and does not affect its neighbours; a failed write (the store is down)
answers every request of that batch with the error, as it would alone (the
batch is one transaction: all of it landed or none of it).

A caller that goes away (a client disconnect cancels its request) while its
request is still queued is dropped from the queue: nothing is written for
it. One that goes away while its batch is being written cannot stop the
write: the outcome stands (the key exists, audited under the caller's
principal) and an INFO line on the ``keymgmt`` logger says so.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
from collections.abc import Callable, Sequence
from typing import Final, Generic, TypeVar

from starlette.concurrency import run_in_threadpool

__all__ = ["GroupCommitter"]

_In = TypeVar("_In")
_Out = TypeVar("_Out")

_log = logging.getLogger("keymgmt")

#: The most requests one write carries (bounds one batch's latency).
MAX_BATCH: Final = 256
#: How many recent batch sizes a committer remembers (``GroupCommitter.batches``).
MAX_HISTORY: Final = 1024


class GroupCommitter(Generic[_In, _Out]):
    """Batch concurrent calls of a blocking ``run(items) -> outcomes`` function.

    Args:
        run: takes a list of items and returns one outcome per item, in
            order: a result, or the exception for that item. Runs in a
            worker thread, one batch at a time.
        max_batch: the most items in one call.
    """

    def __init__(
        self,
        run: Callable[[list[_In]], Sequence[_Out | Exception]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._pending: list[tuple[_In, asyncio.Future[_Out]]] = []
        self._drainer: asyncio.Task[None] | None = None
        #: Sizes of the last MAX_HISTORY batches (for tests and diagnostics).
        self.batches: collections.deque[int] = collections.deque(maxlen=MAX_HISTORY)
        #: How many batches were written.
        self.batch_count = 0

    def __repr__(self) -> str:
        return f"GroupCommitter(pending={len(self._pending)}, batches={self.batch_count})"

    async def submit(self, item: _In) -> _Out:
        """Queue ``item`` for the next batch; its outcome (raised if an exception)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Out] = loop.create_future()
        self._pending.append((item, future))
        if self._drainer is None:
            # A fresh context: the batch is nobody's request (each item
            # carries its own principal), so no request's values leak into it.
            self._drainer = loop.create_task(self._drain(), context=contextvars.Context())
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[_In, asyncio.Future[_Out]]] = []
        try:
            while True:
                # A caller that went away while queued (a client disconnect
                # cancels its request) is not written for: nobody would be
                # told that its key exists.
                self._pending = [entry for entry in self._pending if not entry[1].done()]
                if not self._pending:
                    break
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self.batches.append(len(batch))
                self.batch_count += 1
                items = [item for item, _ in batch]
                try:
                    outcomes: Sequence[_Out | Exception] = await run_in_threadpool(self._run, items)
                    if len(outcomes) != len(batch):
                        raise RuntimeError("a batch returned the wrong number of outcomes")
                except Exception as exc:
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # the caller went away; the write stands
                        _log.info(
                            "keymgmt service: a caller went away while its batched "
                            "request was being written; the outcome stands (%s)",
                            type(outcome).__name__ if isinstance(outcome, Exception) else "ok",
                        )
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._drainer = None
            # Only when cancelled (the server is stopping): nobody waits forever.
            for _, future in batch + self._pending:
                future.cancel()
            self._pending.clear()
