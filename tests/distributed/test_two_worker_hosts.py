"""20,000 real records in 10 chunks on two Celery worker hosts that share no disk.

The file: the shared corpus' 5,000 LoC records, used four times; repeats 1-3 carry "-r<k>"
appended to their 001 and are otherwise the real records unchanged (the corpus holds fewer than
20,000 clean records; see tests/distributed/records.py). Each worker is its own host (network
namespace, hostname, empty CATALOG_SYNC_HOME); the file reaches them only through the SFTP
storage host.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.distributed.conftest import ILS_RATE_LIMIT, WORKERS, start_cluster
from tests.distributed.records import peak_writes_per_second, real_records_file
from tests.production.conftest import POOL_SLOTS
from tests.production.harness import assert_each_record_written_once, intervals, peak_overlap

from catalog_sync.devstack import DEMO_DAG

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

RECORDS = 20_000
RECORDS_PER_CHUNK = 2_000  # ten chunks


def test_twenty_thousand_records_run_on_both_worker_hosts_within_the_ils_rate_once_each(
    tmp_path: Path,
) -> None:
    vendor_file = real_records_file(tmp_path / "delivery" / "loc-20000.mrc", RECORDS)
    with start_cluster(tmp_path, vendor_file, RECORDS_PER_CHUNK) as cluster:
        started = time.monotonic()
        run_id = cluster.trigger()
        state = cluster.api.wait_for_run(DEMO_DAG, run_id, timeout=1200)
        wall = time.monotonic() - started
        tis = cluster.api.task_instances(DEMO_DAG, run_id)
        assert state == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis]

        hosts = cluster.hostnames()
        for task_id in ("process_chunk", "commit_chunk"):
            mapped = [t for t in tis if t["task_id"] == task_id]
            assert len(mapped) == RECORDS // RECORDS_PER_CHUNK
            ran_on = {hosts.get(t["hostname"], t["hostname"]) for t in mapped}
            assert ran_on == set(WORKERS), f"{task_id} ran on {ran_on}"

        counters = cluster.ils.counters()
        assert counters.get("rate_limited", 0) == 0, counters
        peak = peak_writes_per_second(cluster.ils)
        # The ILS's own verdict is the 429 count above; this is the rate both hosts' writes
        # reached together over the busiest ten seconds (records.peak_writes_per_second).
        assert peak <= ILS_RATE_LIMIT * 1.02, f"{peak:.1f} writes/s over the busiest 10 s"
        assert_each_record_written_once(cluster.ils, RECORDS)
        # Nothing of the run was left on a worker's home alone: the report is on the storage.
        stored = cluster.storage.root / "catalog-sync" / "reports" / "demo"
        assert any(stored.rglob("report.json"))
        commits = intervals(tis, "commit_chunk")
        # Both hosts' commits together never took more of the ILS than its pool's slots.
        assert peak_overlap(commits) <= POOL_SLOTS
        print(
            f"\n20,000 records on {len(WORKERS)} worker hosts: run wall time {wall:.0f} s, "
            f"commit_chunk peak {peak_overlap(commits)}, ILS peak {peak:.0f} writes/s of "
            f"{ILS_RATE_LIMIT}, requests {counters.get('requests')}"
        )
