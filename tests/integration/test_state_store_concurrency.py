"""The SQLite state store under concurrent task processes, as LocalExecutor runs commit_chunk.

Real SQLite files and real OS processes: several writers at once lose nothing, a step waiting
for the lock leaves the event loop running, and a lock held past every retry ends in an error
that tells the operator to move the store to Postgres.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from catalog_sync.changes.state import (
    Contention,
    StateCalls,
    StateStore,
    StateStoreContended,
    idempotency_key,
    ops,
)

pytestmark = pytest.mark.timeout(300)

PROCESSES = 6
RECORDS = 120
ILS = "ils_default"


async def _commit_like(url: str, worker: int, offloop: bool) -> dict[str, int]:
    """What commit_chunk asks of the store per record, for RECORDS records, 64 at a time."""
    store = StateStore(url)
    gate = asyncio.Semaphore(64)
    async with StateCalls(store) as calls:

        async def step(op: ops.Op[Any]) -> Any:
            return await calls.run(op) if offloop else store.run(op)

        async def one(i: int) -> None:
            record = {"ils": ILS, "record_key": f"W{worker}:{i}", "fingerprint": "fp"}
            key = idempotency_key(ILS, record["record_key"], "fp", "create")
            async with gate:
                assert await step(ops.ledger_entry(key)) is None
                await step(
                    ops.record_pending(
                        key, **record, action="create", run_id=f"run-{worker}", chunk_id="c",
                        ils_id=None,
                    )
                )  # fmt: skip
                await step(
                    ops.record_intent(
                        run_id=f"run-{worker}", ils=ILS, vendor="demo",
                        record_key=record["record_key"], action="create", ils_id=None,
                        pre_image=None,
                    )
                )  # fmt: skip
                await asyncio.sleep(0)  # the ILS write would be here
                await step(
                    ops.record_applied(
                        key, **record, action="create", ils_id=str(i), run_id=f"run-{worker}",
                        vendor="demo",
                    )
                )  # fmt: skip

        await asyncio.gather(*(one(i) for i in range(RECORDS)))
        # Every process marks the same delivery loaded: all of them upsert one row.
        await step(ops.mark_loaded("demo", "sha", "delivery.mrc", "run-0"))
    return {"transactions": calls.transactions, "steps": RECORDS * 4 + 1}


def child_main(args: dict[str, Any]) -> None:
    """One task process: waits for the start signal so that all of them write at once."""
    go = Path(args["go"])
    while not go.exists():
        time.sleep(0.01)
    result = asyncio.run(_commit_like(args["url"], args["worker"], args["offloop"]))
    print(json.dumps(result))


def test_processes_writing_one_sqlite_store_at_once_all_succeed_and_lose_nothing(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore(url).close()
    go = tmp_path / "go"
    # Most go through StateCalls as commit_chunk does; one calls the store directly, as the
    # blocking StateStore does for process_chunk and fetch.
    args = [{"url": url, "worker": w, "offloop": w > 0, "go": str(go)} for w in range(PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, json.dumps(a)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a in args
    ]
    go.touch()
    outputs = [p.communicate(timeout=240) for p in procs]

    assert [p.returncode for p in procs] == [0] * PROCESSES, [err[-2000:] for _, err in outputs]
    store = StateStore(url)
    total = PROCESSES * RECORDS
    with store.engine.connect() as conn:
        counts = [
            conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()
            for table in (
                "commit_ledger WHERE status = 'applied'",
                "catalog_records",
                "run_changes WHERE status = 'applied'",
                "loaded_files",
            )
        ]
    assert counts == [total, total, total, 1]
    assert store.applied(ILS, [f"W{PROCESSES - 1}:{RECORDS - 1}"]) != {}
    # The off-loop processes committed concurrent records' steps together, not one by one.
    for out, _ in outputs[1:]:
        result = json.loads(out)
        assert result["transactions"] < result["steps"]


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another connection holding SQLite's write lock until it commits."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_state_call_waiting_for_the_lock_leaves_the_event_loop_running(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    # A budget of retries far longer than the test needs: had the call blocked the loop, the
    # ticker could never release the lock and the call would end in StateStoreContended.
    patient = Contention(busy_timeout_ms=50, attempts=400, backoff=0.01, max_backoff=0.05)
    store = StateStore(f"sqlite:///{path}", contention=patient)
    key = idempotency_key(ILS, "DLC:1", "fp", "create")
    holder = _hold_write_lock(path)

    async def scenario() -> tuple[int, bool]:
        async with StateCalls(store) as calls:
            write = asyncio.create_task(
                calls.run(
                    ops.record_pending(
                        key, ils=ILS, record_key="DLC:1", fingerprint="fp", action="create",
                        run_id="r", chunk_id="c", ils_id=None,
                    )
                )
            )  # fmt: skip
            ticks = 0
            while ticks < 20:  # another coroutine on the same loop keeps running
                await asyncio.sleep(0.005)
                ticks += 1
            waiting_when_released = not write.done()
            holder.commit()
            await write
        return ticks, waiting_when_released

    try:
        ticks, waiting_when_released = asyncio.run(scenario())
    finally:
        holder.close()

    assert ticks == 20
    assert waiting_when_released, "the write cannot finish while another connection holds the lock"
    entry = store.ledger_entry(key)
    assert entry is not None and entry.status == "pending"


def test_a_store_locked_past_every_retry_fails_with_advice_to_use_postgres(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    impatient = Contention(busy_timeout_ms=10, attempts=3, backoff=0.01, max_backoff=0.02)
    store = StateStore(f"sqlite:///{path}", contention=impatient)
    key = idempotency_key(ILS, "DLC:1", "fp", "create")
    pending = ops.record_pending(
        key, ils=ILS, record_key="DLC:1", fingerprint="fp", action="create", run_id="r",
        chunk_id="c", ils_id=None,
    )  # fmt: skip

    async def through_calls() -> None:
        async with StateCalls(store) as calls:
            await calls.run(pending)

    holder = _hold_write_lock(path)
    try:
        with pytest.raises(StateStoreContended) as blocking:
            store.run(pending)
        with pytest.raises(StateStoreContended) as off_loop:
            asyncio.run(through_calls())
    finally:
        holder.close()

    for error in (blocking.value, off_loop.value):
        message = str(error)
        assert "SQLite" in message and "3 attempts" in message
        assert "'catalog_sync_state_url'" in message and "Postgres" in message
        assert error.reason == "state_store_contended"
    assert store.ledger_entry(key) is None, "a call that gave up recorded nothing"


if __name__ == "__main__":
    child_main(json.loads(sys.argv[1]))
