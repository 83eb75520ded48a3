"""catalog_sync_demo under the real scheduler (LocalExecutor, SQLite), triggered as the UI does."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from catalog_sync.devstack import DEMO_DAG
from tests.production.conftest import POOL_SLOTS, EmbeddedRun
from tests.production.harness import intervals, layout_report, peak_overlap

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def assert_each_change_written_once(run: EmbeddedRun) -> dict[str, int]:
    """The ILS's write log against the run report: every changed record once, none missing."""
    summary = dict(layout_report(run.layout)["summary"])
    writes = run.services.ils.writes()
    per_record = Counter((w["resource"], w["record_id"], w["method"]) for w in writes)
    assert [key for key, n in per_record.items() if n > 1] == []
    methods = Counter(w["method"] for w in writes if w["resource"] == "biblio")
    assert methods["POST"] == summary["created"]
    assert methods["PUT"] == summary["updated"]
    assert methods["DELETE"] == summary["deleted"]
    assert set(run.services.ils.creates_per_control_number().values()) <= {1}
    assert len(run.services.ils.biblios()) == summary["created"]
    assert summary["failed"] == 0
    assert summary["records"] == summary["accepted"] + summary["rejected"]
    return summary


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
    summary = assert_each_change_written_once(embedded)
    assert summary["created"] > 0
    print(
        f"\nrun wall time {wall:.0f} s, {len(committed)} chunks, commit_chunk peak "
        f"{commit_peak} of {POOL_SLOTS} pool slots, process_chunk peak {peak_overlap(processed)}"
    )
