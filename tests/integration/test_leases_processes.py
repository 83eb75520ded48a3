"""Leases between real OS processes on a real Redis: mutual exclusion and a killed holder."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import random
import signal
import time
from collections import defaultdict
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest
import redis

from catalog_sync.leases import LeaseManager, LeaseSettings, LeaseTimeout, record_scope

pytestmark = pytest.mark.timeout(90)

WORKERS = 8
KEYS = 50
ROUNDS = 25
SPAWN = multiprocessing.get_context("spawn")


def contender(redis_url: str, ils: str, seed: int, log_path: str, start: Event) -> None:
    """One process: take 1-3 random keys of the shared 50, note entry and exit, repeat."""
    rng = random.Random(seed)
    keys = [record_scope(ils, f"DLC|{n:08d}") for n in range(KEYS)]
    settings = LeaseSettings(ttl=10.0, wait=30.0, poll=0.01)

    async def main() -> None:
        async with LeaseManager.from_url(redis_url, settings) as leases:
            start.wait(30)
            with open(log_path, "a", encoding="utf-8") as log:
                for _ in range(ROUNDS):
                    chosen = rng.sample(keys, rng.randint(1, 3))
                    async with leases.hold(chosen):
                        entered = time.monotonic_ns()
                        await asyncio.sleep(rng.uniform(0, 0.004))
                        left = time.monotonic_ns()
                        for key in chosen:
                            log.write(f"{key}\t{os.getpid()}\t{entered}\t{left}\n")
                        log.flush()

    asyncio.run(main())


def holder(redis_url: str, key: str, ttl: float, ready: Any) -> None:
    """Take the key, say so, then keep it (renewing) until killed."""

    async def main() -> None:
        settings = LeaseSettings(ttl=ttl)
        async with (
            LeaseManager.from_url(redis_url, settings) as leases,
            leases.hold([key]) as lease,
        ):
            ready.put(lease.fences[key])
            await asyncio.sleep(3600)

    asyncio.run(main())


def overlaps(entries: list[tuple[str, int, int, int]]) -> list[str]:
    by_key: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for key, pid, entered, left in entries:
        by_key[key].append((entered, left, pid))
    found = []
    for key, spans in by_key.items():
        spans.sort()
        for (_, prev_left, prev_pid), (entered, _, pid) in itertools.pairwise(spans):
            if entered < prev_left:
                found.append(f"{key}: pid {pid} entered before pid {prev_pid} left")
    return found


def test_overlap_check_reports_two_holders_inside_one_key() -> None:
    # The checker below must be able to fail: two spans of one key that intersect.
    entries = [("k", 1, 0, 10), ("k", 2, 5, 15), ("j", 1, 0, 10), ("j", 2, 10, 20)]
    assert overlaps(entries) == ["k: pid 2 entered before pid 1 left"]


@pytest.mark.slow
def test_eight_processes_on_fifty_shared_keys_are_never_inside_one_key_together(
    redis_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ils = f"test-{request.node.name}-{os.getpid()}"
    start = SPAWN.Event()
    logs = [tmp_path / f"worker-{i}.tsv" for i in range(WORKERS)]
    procs = [
        SPAWN.Process(target=contender, args=(redis_url, ils, i, str(logs[i]), start))
        for i in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(75)
    assert [p.exitcode for p in procs] == [0] * WORKERS

    entries = []
    for path in logs:
        for line in path.read_text(encoding="utf-8").splitlines():
            key, pid, entered, left = line.split("\t")
            entries.append((key, int(pid), int(entered), int(left)))

    assert overlaps(entries) == []
    # The run really contended: every worker finished its rounds, most keys were entered by
    # several processes, and critical sections of different processes ran at the same time.
    assert len({(pid, entered) for _, pid, entered, _ in entries}) == WORKERS * ROUNDS
    pids_per_key: dict[str, set[int]] = defaultdict(set)
    for entry in entries:
        pids_per_key[entry[0]].add(entry[1])
    assert sum(len(p) >= 2 for p in pids_per_key.values()) >= KEYS // 2
    spans = sorted({(entered, left, pid) for _, pid, entered, left in entries})
    concurrent = sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1] and b[2] != a[2])
    assert concurrent > 0


def test_a_killed_holders_key_is_free_again_once_its_ttl_runs_out(
    redis_url: str, request: pytest.FixtureRequest
) -> None:
    ttl = 1.0
    key = record_scope(f"test-{request.node.name}-{os.getpid()}", "killed")
    ready = SPAWN.Queue()
    proc = SPAWN.Process(target=holder, args=(redis_url, key, ttl, ready))
    proc.start()
    try:
        killed_fence = int(ready.get(timeout=30))
    finally:
        os.kill(proc.pid or 0, signal.SIGKILL)
        proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    remaining_ms: int = redis.Redis.from_url(redis_url).pttl(key)  # type: ignore[assignment]
    assert 0 < remaining_ms <= ttl * 1000  # still held: nobody released it, it only expires

    async def take(wait: float) -> int:
        settings = LeaseSettings(ttl=5.0, wait=wait, poll=0.02)
        async with (
            LeaseManager.from_url(redis_url, settings) as leases,
            leases.hold([key]) as lease,
        ):
            return lease.fences[key]

    with pytest.raises(LeaseTimeout):
        asyncio.run(take(wait=0.0))
    # Taken again within the TTL plus a small margin, and with a later fencing token.
    assert asyncio.run(take(wait=ttl + 0.5)) > killed_fence
