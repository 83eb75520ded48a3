"""A worker host dies, or is cut off, in the middle of commit_chunk: nothing duplicated or lost.

Fencing in the partition: the cut-off worker's task cannot pass its write check (a Redis
compare just before each write, leases.Lease.before_write) while cut off, so the only late
writes possible are requests already on the wire at the cut; those reach the ILS after the
restore with a fencing token older than the survivor's and are refused (409, the emulator's
`fenced_writes` counter, printed). Either way the write log must hold each record once.

The sample file (1,000 real LoC records) in 8 chunks, on the two-host cluster of conftest.py.
The ILS is held to 25 requests/s (emulator and ils_default agree), so a chunk's commit lasts
long enough to strike it mid-way. Airflow notices a silent task after 20 s (heartbeat timeout),
and each chunk retries after 10 s (the test config's retry policy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.distributed.conftest import FAST_DETECTION, WORKERS, Cluster, start_cluster
from tests.production.harness import assert_each_record_written_once

from catalog_sync.devstack import DEMO_DAG, SAMPLE_FILE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SAMPLE_RECORDS = 1000
RECORDS_PER_CHUNK = 125  # eight chunks
FAULT_RATE_LIMIT = 25
# Writes the ILS has applied before the fault: commits are under way, far from done.
STRIKE_AFTER_WRITES = 60
RUN_TIMEOUT = 600
TAKE_OVER_TIMEOUT = 540


def _commit_tis(cluster: Cluster, run_id: str) -> dict[int, dict[str, Any]]:
    tis = cluster.api.task_instances(DEMO_DAG, run_id)
    return {t["map_index"]: t for t in tis if t["task_id"] == "commit_chunk"}


def strike_mid_commit(cluster: Cluster, run_id: str, timeout: float = 300) -> tuple[str, set[int]]:
    """Wait until a worker runs commit_chunk and the ILS has writes; (that worker, its chunks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = cluster.running_on(run_id, "commit_chunk")
        if running and len(cluster.ils.writes()) >= STRIKE_AFTER_WRITES:
            victim = max(running, key=lambda name: len(running[name]))
            if victim in WORKERS:
                return victim, {ti["map_index"] for ti in running[victim]}
        time.sleep(0.5)
    raise AssertionError(f"no commit_chunk with ILS writes under way within {timeout:.0f} s")


def wait_until(
    check: Callable[[], bool],
    what: str,
    timeout: float,
    explain: Callable[[], str] = lambda: "",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s\n{explain()}")


def describe_chunks(cluster: Cluster, run_id: str, chunks: set[int]) -> str:
    """Where each struck chunk stands, with its latest try's log tail: what a timeout needs."""
    names = cluster.hostnames()
    lines = []
    for i, ti in sorted(_commit_tis(cluster, run_id).items()):
        host = names.get(ti["hostname"], ti["hostname"])
        lines.append(f"chunk {i}: {ti['state']} try {ti['try_number']} on {host}")
        if i in chunks and ti["try_number"]:
            try:
                log = cluster.api.task_log(DEMO_DAG, run_id, ti).splitlines()
            except Exception as exc:  # the explanation must not hide the timeout itself
                log = [f"(no log: {exc})"]
            lines.extend(f"    {line[:300]}" for line in log[-15:])
    return "\n".join(lines)


def finish(cluster: Cluster, run_id: str, cause: tuple[str, ...]) -> tuple[str, bool]:
    """Wait for the run; a failed one must name the cause and a re-trigger must complete it."""
    state = cluster.api.wait_for_run(DEMO_DAG, run_id, timeout=RUN_TIMEOUT)
    if state == "success":
        return state, False
    tis = cluster.api.task_instances(DEMO_DAG, run_id)
    failed = [t for t in tis if t["state"] == "failed"]
    assert failed, [(t["task_id"], t["state"]) for t in tis]
    logs = "\n".join(cluster.api.task_log(DEMO_DAG, run_id, t) for t in failed)
    assert any(word in logs for word in cause), f"no {cause} in the failed tasks' logs"
    rerun = cluster.trigger()
    assert cluster.api.wait_for_run(DEMO_DAG, rerun, timeout=RUN_TIMEOUT) == "success"
    return state, True


def latest_tries(cluster: Cluster, run_id: str, chunks: set[int]) -> dict[int, tuple[int, str]]:
    """Each struck chunk's latest try and the worker it ran on."""
    names = cluster.hostnames()
    commits = _commit_tis(cluster, run_id)
    return {
        i: (commits[i]["try_number"], names.get(commits[i]["hostname"], "?"))
        for i in sorted(chunks)
    }


def test_kill_9_of_a_worker_host_mid_commit_retries_its_chunk_on_the_other(
    tmp_path: Path,
) -> None:
    with start_cluster(
        tmp_path, SAMPLE_FILE, RECORDS_PER_CHUNK, FAST_DETECTION, FAULT_RATE_LIMIT
    ) as cluster:
        started = time.monotonic()
        run_id = cluster.trigger()
        victim, chunks = strike_mid_commit(cluster, run_id)
        before = len(cluster.ils.writes())
        cluster.workers[victim].kill_host()
        assert cluster.workers[victim].host.pids() == []
        state, retriggered = finish(cluster, run_id, ("heartbeat", "zombie", "killed"))
        wall = time.monotonic() - started
        survivor = next(name for name in WORKERS if name != victim)
        if not retriggered:
            for chunk, (tries, ran_on) in latest_tries(cluster, run_id, chunks).items():
                assert (tries >= 2, ran_on) == (True, survivor), f"chunk {chunk}"
        assert before < len(cluster.ils.writes())
        assert_each_record_written_once(cluster.ils, SAMPLE_RECORDS)
        print(
            f"\nkill -9 of {victim} mid-commit (chunks {sorted(chunks)}, {before} writes in): "
            f"run {state}{', re-triggered' if retriggered else ''}, {wall:.0f} s"
        )


def test_partitioned_worker_mid_commit_is_taken_over_and_fenced(tmp_path: Path) -> None:
    with start_cluster(
        tmp_path, SAMPLE_FILE, RECORDS_PER_CHUNK, FAST_DETECTION, FAULT_RATE_LIMIT
    ) as cluster:
        started = time.monotonic()
        run_id = cluster.trigger()
        victim, chunks = strike_mid_commit(cluster, run_id)
        host = cluster.workers[victim].host
        survivor = next(name for name in WORKERS if name != victim)
        before = len(cluster.ils.writes())
        cluster.net.cut(host)
        cut_at = time.monotonic()

        def taken_over() -> bool:
            """Each struck chunk ended on the survivor: done, or failed there for a re-trigger."""
            tried = latest_tries(cluster, run_id, chunks).values()
            states = _commit_tis(cluster, run_id)
            ended = all(states[i]["state"] in ("success", "failed") for i in chunks)
            return ended and all(ran_on == survivor for _, ran_on in tried)

        # Heartbeat timeout, retry delay, then the lease TTL (30 s) before the survivor writes;
        # about a minute here. The bound is wide because until the scheduler's queued timeout
        # (90 s) the cut-off worker's running and reserved tasks still count against the
        # cluster's parallelism, and a loaded CI host stretches every one of these steps.
        wait_until(
            taken_over,
            f"{survivor} taking over the chunks {victim} held",
            TAKE_OVER_TIMEOUT,
            lambda: describe_chunks(cluster, run_id, chunks),
        )
        took_over = time.monotonic() - cut_at
        cluster.net.restore(host)
        state, retriggered = finish(cluster, run_id, ("lease", "heartbeat", "Redis"))
        wall = time.monotonic() - started
        assert cluster.workers[victim].process.poll() is None, "the cut-off worker lived on"
        assert before < len(cluster.ils.writes())
        counters = cluster.ils.counters()
        assert_each_record_written_once(cluster.ils, SAMPLE_RECORDS)
        print(
            f"\npartition of {victim} mid-commit (chunks {sorted(chunks)}, {before} writes in): "
            f"{survivor} ended them {took_over:.0f} s after the cut; run {state}"
            f"{', re-triggered' if retriggered else ''}, {wall:.0f} s; late writes fenced "
            f"(409): {counters.get('fenced_writes', 0)}"
        )
