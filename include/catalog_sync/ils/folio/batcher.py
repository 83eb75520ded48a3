"""Coalescing of concurrent single-record calls into one batch call, each caller answered alone.

The pipeline writes record by record (each in its own task, up to pipeline.bounded's
MAX_RECORDS_IN_FLIGHT at once) and knows nothing of FOLIO's batch endpoints. A Coalescer sits
inside the adapter: `submit(item)` parks the caller, and the parked items go out together when
`size` are waiting or when no new one came for `idle` seconds (never later than `max_wait`
after the first). The flush function answers each item with its own result or its own
exception, so one record's refusal reaches that record's caller only, and each record is still
acknowledged by the pipeline after its own call returns.

Example::

    reads = Coalescer(lambda ids: fetch_many(ids), size=64)
    copy = await reads.submit(instance_id)   # concurrent submits share one request
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

# A flush answers each item, in order, with its result or the exception its caller gets.
Flush = Callable[[list[In]], Awaitable[Sequence[Out | BaseException]]]


@dataclass
class _Parked(Generic[In, Out]):
    item: In
    future: asyncio.Future[Out]


@dataclass
class _Batch(Generic[In, Out]):
    parked: list[_Parked[In, Out]] = field(default_factory=list)
    first: float = 0.0
    timer: asyncio.TimerHandle | None = None


class Coalescer(Generic[In, Out]):
    """Gathers concurrent `submit` calls into flushes of up to `size` items."""

    def __init__(
        self,
        flush: Flush[In, Out],
        *,
        size: int,
        idle: float = 0.005,
        max_wait: float = 0.05,
    ) -> None:
        if size < 1:
            raise ValueError("a batch holds at least one item")
        self._flush = flush
        self.size = size
        self._idle = idle
        self._max_wait = max_wait
        self._batch: _Batch[In, Out] = _Batch()
        # Flushes running: kept referenced so the loop does not drop them half way.
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: In) -> Out:
        loop = asyncio.get_running_loop()
        batch = self._batch
        if not batch.parked:
            batch.first = loop.time()
        parked: _Parked[In, Out] = _Parked(item, loop.create_future())
        batch.parked.append(parked)
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        if len(batch.parked) >= self.size:
            self._start(batch)
        else:
            due = min(loop.time() + self._idle, batch.first + self._max_wait)
            # The flush runs in the context of the call that armed it last: its requests are
            # counted under that record's kind of work (catalog_sync.ils.requestcount).
            batch.timer = loop.call_at(due, self._start, batch, context=contextvars.copy_context())
        return await parked.future

    def _start(self, batch: _Batch[In, Out]) -> None:
        if batch is self._batch:
            self._batch = _Batch()
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._run(batch.parked))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

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
