"""N processes committing ledger rows to one SQLite state store at once: rows/s and loop stalls.

Each process runs what commit_chunk asks of the state store per record (ledger lookup,
pending, intent, a simulated 2 ms ILS write, acknowledgement) for --records records, 64 in
flight, while a ticker coroutine on the same loop measures how long the loop was stalled.
`--mode sync` calls the store synchronously from the coroutines, as commit_changes did before
issue 13; `--mode offloop` goes through StateCalls (worker thread, group commit).

    .venv/bin/python bench/state_contention.py --processes 4 --records 400 --mode offloop
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

IN_FLIGHT = 64


async def _ticker(stop: asyncio.Event, gaps: list[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def _records(url: str, worker: int, records: int, mode: str) -> dict[str, Any]:
    from catalog_sync.changes import state as st

    store = st.StateStore(url)
    gate = asyncio.Semaphore(IN_FLIGHT)
    calls: Any = None
    if mode == "offloop":
        calls = st.StateCalls(store)
        await calls.__aenter__()

    async def one(i: int) -> None:
        key_fields = {"ils": "ils_default", "record_key": f"W{worker}:{i}", "fingerprint": "f"}
        key = st.idempotency_key(*key_fields.values(), "create")
        pending = {"run_id": "r", "chunk_id": f"c{worker}", "ils_id": None, "action": "create"}
        intent = {"run_id": "r", "ils": "ils_default", "vendor": "demo", "action": "create"}
        applied = {"ils_id": str(i), "run_id": "r", "vendor": "demo", "action": "create"}
        async with gate:
            if calls is None:
                store.ledger_entry(key)
                store.record_pending(key, **key_fields, **pending)
                store.record_intent(
                    **intent, record_key=key_fields["record_key"], ils_id=None, pre_image=None
                )
                await asyncio.sleep(0.002)
                store.record_applied(key, **key_fields, **applied)
            else:
                await calls.run(st.ops.ledger_entry(key))
                await calls.run(st.ops.record_pending(key, **key_fields, **pending))
                await calls.run(
                    st.ops.record_intent(
                        **intent, record_key=key_fields["record_key"], ils_id=None, pre_image=None
                    )
                )
                await asyncio.sleep(0.002)
                await calls.run(st.ops.record_applied(key, **key_fields, **applied))

    stop, gaps = asyncio.Event(), []
    ticker = asyncio.create_task(_ticker(stop, gaps))
    start = time.time()
    await asyncio.gather(*(one(i) for i in range(records)))
    end = time.time()
    stop.set()
    await ticker
    if calls is not None:
        await calls.__aexit__(None, None, None)
    return {"start": start, "end": end, "max_stall": max(gaps, default=0.0) - 0.005}


def child(url: str, worker: int, records: int, mode: str, go: Path) -> None:
    while not go.exists():  # start together: the point is contention
        time.sleep(0.01)
    print(json.dumps(asyncio.run(_records(url, worker, records, mode))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--mode", choices=["sync", "offloop"], default="offloop")
    parser.add_argument("--child", nargs=4, metavar=("URL", "WORKER", "RECORDS", "GO"))
    args = parser.parse_args()
    if args.child:
        url, worker, records, go = args.child
        child(url, int(worker), int(records), args.mode, Path(go))
        return
    from catalog_sync.changes.state import StateStore

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'state.db'}"
        StateStore(url).close()
        go = Path(tmp) / "go"
        command = [sys.executable, __file__, "--mode", args.mode, "--child", url]
        procs = [
            subprocess.Popen(
                [*command, str(w), str(args.records), str(go)], stdout=subprocess.PIPE, text=True
            )
            for w in range(args.processes)
        ]
        time.sleep(1.0)
        go.touch()
        outputs = [p.communicate()[0] for p in procs]
        results = [json.loads(out) for out in outputs if out.strip()]
        failed = [p.returncode for p in procs if p.returncode]
        store = StateStore(url)
        with store.engine.connect() as conn:
            from sqlalchemy import text

            acked = conn.execute(
                text("SELECT COUNT(*) FROM commit_ledger WHERE status = 'applied'")
            ).scalar_one()
        store.close()
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    print(
        f"mode={args.mode} processes={args.processes} records/process={args.records} "
        f"failed_processes={len(failed)} acknowledged={acked} "
        f"acks_per_s={acked / span:.0f} max_loop_stall_ms="
        f"{max(r['max_stall'] for r in results) * 1000:.0f}"
    )


if __name__ == "__main__":
    main()
