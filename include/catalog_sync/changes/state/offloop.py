"""StateCalls: state-store steps from async code, off the event loop and committed in groups.

A step that waits for a locked SQLite file, or for Postgres, must not stop the event loop:
requests in flight and Redis lease renewals run on it. So every step runs in one worker
thread of its own (one thread keeps a SQLite connection to one thread at a time and
serialises this process's writers, which SQLite would serialise anyway). While that thread
commits, the steps other records ask for queue up and go in its next transaction together:
a group commit. Each caller still resumes only once its own step is committed, so "intent
before the write" and "acknowledge before counting" hold exactly as with one call per step.

    async with StateCalls(store) as calls:
        entry = await calls.run(ops.ledger_entry(key))
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar, cast

from catalog_sync.changes.state.ops import Op
from catalog_sync.changes.state.store import StateStore

T = TypeVar("T")

# Steps per transaction: bounds how long one commit holds SQLite's write lock.
MAX_BATCH = 256

_Queued = tuple[Op[Any], "asyncio.Future[Any]"]


class StateCalls:
    """Runs state-store steps for one event loop in a worker thread, batching concurrent ones."""

    def __init__(self, store: StateStore, *, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-store")
        self._queue: list[_Queued] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0  # how many batches were committed (for tests and benchmarks)

    async def __aenter__(self) -> StateCalls:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Let the steps already asked for commit, then stop the worker thread."""
        if self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        self._thread.shutdown(wait=False)

    async def run(self, op: Op[T]) -> T:
        """Run `op` in the worker thread, in one transaction with the steps queued with it."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((op, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return cast(T, await future)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            steps = [op for op, _ in batch]
            try:
                outcomes = await loop.run_in_executor(self._thread, self.store.run_batch, steps)
            except asyncio.CancelledError:
                for _, future in batch + self._queue:
                    future.cancel()
                self._queue.clear()
                raise
            except Exception as exc:  # StateStoreContended: every step of the batch failed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.transactions += 1
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # its caller was cancelled; the step itself is committed
                    continue
                if outcome.error is not None:
                    future.set_exception(outcome.error)
                else:
                    future.set_result(outcome.value)
