"""The run summary accounts for every accepted record, once (issue 14, item 7)."""

from __future__ import annotations

import shutil

import pytest

from tests.end_to_end.harness import DemoRun
from tests.end_to_end.test_demo_dag import SAMPLE

pytestmark = pytest.mark.slow

OUTCOMES = ("created", "updated", "deleted", "unchanged", "failed", "held")


def test_a_first_run_against_an_ils_that_already_holds_the_records_counts_every_record(
    demo: DemoRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ILS already holds the sample (loaded by an earlier run), but this checkout's state
    # store is new: every record is staged as a create and matched to the ILS's copy.
    shutil.copy(SAMPLE, demo.inbox / SAMPLE.name)
    assert demo.run().state == "success"
    writes_after_load = len(demo.writes())
    fresh = demo.home / "fresh-state.db"
    monkeypatch.setenv("AIRFLOW_VAR_CATALOG_SYNC_STATE_URL", f"sqlite:///{fresh}")

    assert demo.run(force=True).state == "success"

    summary = demo.summary()
    assert summary["accepted"] == 1000
    assert sum(summary.get(k, 0) for k in OUTCOMES) == summary["accepted"]
    # Matched to the ILS's own copy, which already says the same: nothing is sent.
    assert summary["unchanged"] == 1000
    assert len(demo.writes()) == writes_after_load
    report = (demo.home / "reports" / "demo" / "latest" / "report.txt").read_text()
    assert "1000 new record(s) matched an existing ILS record" in report
    assert report.rstrip().splitlines()[-1].endswith("unchanged=1000 failed=0 held=0")
