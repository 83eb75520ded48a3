"""catalog_sync_demo under the real scheduler (LocalExecutor, SQLite), triggered as the UI does."""

from __future__ import annotations

import time

import pytest

from catalog_sync.devstack import DEMO_DAG
from tests.production.conftest import POOL_SLOTS, SAMPLE_RECORDS, EmbeddedRun
from tests.production.harness import (
    assert_each_record_written_once,
    intervals,
    latest_summary,
    peak_overlap,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_scheduler_runs_chunks_side_by_side_within_the_ils_pool_and_writes_each_record_once(
    embedded: EmbeddedRun,
) -> None:
    api = embedded.start()
    started = time.monotonic()
    run_id = embedded.trigger()
    state = api.wait_for_run(DEMO_DAG, run_id, timeout=600)
    wall = time.monotonic() - started
    tis = api.task_instances(DEMO_DAG, run_id)
    assert state == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis]

    processed = intervals(tis, "process_chunk")
    committed = intervals(tis, "commit_chunk")
    assert len(committed) == len(processed) > POOL_SLOTS
    assert peak_overlap(processed) >= 2
    commit_peak = peak_overlap(committed)
    assert 2 <= commit_peak <= POOL_SLOTS
    # The UI's log view of a commit: served through the api-server from the task's log file.
    commit = next(t for t in tis if t["task_id"] == "commit_chunk")
    assert "committed" in api.task_log(DEMO_DAG, run_id, commit)
    summary = latest_summary(embedded.layout)
    assert (summary["records"], summary["created"], summary["failed"]) == (SAMPLE_RECORDS,) * 2 + (
        0,
    )
    assert_each_record_written_once(embedded.services.ils, SAMPLE_RECORDS)
    print(
        f"\nrun wall time {wall:.0f} s, {len(committed)} chunks, commit_chunk peak "
        f"{commit_peak} of {POOL_SLOTS} pool slots, process_chunk peak {peak_overlap(processed)}"
    )
