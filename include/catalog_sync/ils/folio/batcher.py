"""Coalescing of concurrent single-record calls into one batch call, each caller answered alone.

The pipeline writes record by record (each in its own task, up to pipeline.bounded's
MAX_RECORDS_IN_FLIGHT at once) and knows nothing of FOLIO's batch endpoints. A Coalescer sits
inside the adapter: `submit(item)` parks the caller, and the parked items go out together when
`size` are waiting or when no new one came for `idle` seconds (never later than `max_wait`
after the first), as soon as fewer than `concurrency` flushes are running. The flush function
answers each item with its own result or its own exception, so one record's refusal reaches
that record's caller only, and each record is still acknowledged by the pipeline after its own
call returns.

Example::

    reads = Coalescer(lambda ids: fetch_many(ids), size=64)
    copy = await reads.submit(instance_id)   # concurrent submits share one request
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

# A flush answers each item, in order, with its result or the exception its caller gets.
Flush = Callable[[list[In]], Awaitable[Sequence[Out | BaseException]]]


@dataclass
class _Parked(Generic[In, Out]):
    item: In
    future: asyncio.Future[Out]


class Coalescer(Generic[In, Out]):
    """Gathers concurrent `submit` calls into flushes of up to `size` items.

    At most `concurrency` flushes run at once: while they do, the items that arrive wait and
    go out together when one ends, so batches grow by themselves when FOLIO (or its rate
    limit) is slow, and a quick FOLIO sees the idle flush after a few ms.
    """

    def __init__(
        self,
        flush: Flush[In, Out],
        *,
        size: int,
        idle: float = 0.005,
        max_wait: float = 0.05,
        concurrency: int = 2,
    ) -> None:
        if size < 1 or concurrency < 1:
            raise ValueError("a batch holds at least one item, and one flush at least runs")
        self._flush = flush
        self.size = size
        self._idle = idle
        self._max_wait = max_wait
        self._concurrency = concurrency
        self._open: list[_Parked[In, Out]] = []  # the batch items join
        self._first = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._due = False  # the open batch's wait is over; it goes when a flush slot frees
        self._ready: deque[list[_Parked[In, Out]]] = deque()  # full batches, waiting for a slot
        # Flushes running: kept referenced so the loop does not drop them half way.
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: In) -> Out:
        loop = asyncio.get_running_loop()
        if not self._open:
            self._first = loop.time()
        parked: _Parked[In, Out] = _Parked(item, loop.create_future())
        self._open.append(parked)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if len(self._open) >= self.size:
            self._close()
        elif not self._due:
            due = min(loop.time() + self._idle, self._first + self._max_wait)
            # The flush runs in the context of the call that armed it last: its requests are
            # counted under that record's kind of work (catalog_sync.ils.requestcount).
            self._timer = loop.call_at(due, self._expire, context=contextvars.copy_context())
        self._pump()
        return await parked.future

    def _expire(self) -> None:
        self._timer = None
        self._due = True
        self._pump()

    def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due = False
        if self._open:
            self._ready.append(self._open)
            self._open = []

    def _pump(self) -> None:
        while len(self._running) < self._concurrency:
            if not self._ready and self._due:
                self._close()
            if not self._ready:
                return
            task = asyncio.get_running_loop().create_task(self._run(self._ready.popleft()))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._pump()

    async def _run(self, parked: list[_Parked[In, Out]]) -> None:
        waiting = [p for p in parked if not p.future.done()]  # a cancelled caller is not sent
        if not waiting:
            return
        try:
            answers = await self._flush([p.item for p in waiting])
            if len(answers) != len(waiting):
                raise AssertionError(f"{len(answers)} answers for {len(waiting)} items")
        except BaseException as exc:  # the whole flush failed: every caller gets why
            for p in waiting:
                if not p.future.done():
                    p.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for p, answer in zip(waiting, answers, strict=True):
            if p.future.done():
                continue
            if isinstance(answer, BaseException):
                p.future.set_exception(answer)
            else:
                p.future.set_result(answer)


__all__ = ["Coalescer"]
