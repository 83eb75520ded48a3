"""Clearing one mapped commit_chunk through Airflow's REST API re-runs that chunk and no other,
and the run's report still adds up to the first run's numbers."""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

import pytest

from catalog_sync.config import load_vendors
from catalog_sync.paths import REPO_ROOT
from tests.end_to_end.harness import DemoRun

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
DAG_ID = "catalog_sync_demo"
CLEARED = 1


def commit_tis(
    run_id: str, task_id: str = "commit_chunk"
) -> dict[int, tuple[int, str | None, str | None]]:
    """map index -> (try_number, state, rendered label) of the run's `task_id` instances."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(
                TaskInstance.map_index,
                TaskInstance.try_number,
                TaskInstance.state,
                TaskInstance._rendered_map_index,
            ).where(
                TaskInstance.dag_id == DAG_ID,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
            )
        ).all()
    return {i: (n, str(getattr(s, "value", s)) if s else None, label) for i, n, s, label in rows}


def resume_run(dag: Any, run_id: str, timeout: float = 120) -> str:
    """Run what is schedulable in an existing run until it ends, as dag.test() does for its own
    run (same Airflow helper, _run_task), so the cleared instance runs in this same DAG run."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils import timezone
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    session = settings.Session()
    run = session.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id))
    assert run is not None
    run.dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    run.state = DagRunState.RUNNING  # what the scheduler does with a run a clear re-queued
    session.commit()
    deadline = time.monotonic() + timeout
    while run.state == DagRunState.RUNNING and time.monotonic() < deadline:
        session.expire_all()
        schedulable, _ = run.update_state(session=session)
        for ti in schedulable:
            ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
            ti.scheduled_dttm = timezone.utcnow()
        session.commit()
        for ti in run.get_task_instances(session=session):
            if ti.state == TaskInstanceState.SCHEDULED:
                _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
    return str(run.state)


def test_clearing_one_mapped_commit_reruns_only_that_chunk_and_keeps_the_accounting_whole(
    demo: DemoRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    from catalog_sync_airflow.factory import build_vendor_dag

    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    shutil.copy(SAMPLE, demo.inbox / SAMPLE.name)
    dag = build_vendor_dag(load_vendors()["demo"])
    run = dag.test(run_conf={"force": True})
    assert run.state == "success"
    before = commit_tis(run.run_id)
    writes_before = demo.writes()
    assert len(before) == 4 and len(writes_before) == 1000
    reports = demo.home / "reports" / "demo" / "latest"
    first = json.loads((reports / "report.json").read_text())
    assert first["version"] == 1 and first["summary"]["created"] == 1000
    # The demo vendor names recipients, but this Airflow has no mail server: the report says so.
    assert [n for n in first["notes"] if "notices are not sent" in n]

    client = TestClient(create_app())
    response = client.post(
        f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
        json={
            "dry_run": False,
            "only_failed": False,
            "dag_run_id": run.run_id,
            "task_ids": [["commit_chunk", CLEARED]],
            # As the UI's Clear does by default: the report task runs again after the chunk.
            "include_downstream": True,
            "include_upstream": False,
        },
    )
    assert response.status_code == 200, response.text
    cleared = response.json()["task_instances"]
    assert sorted((t["task_id"], t["map_index"]) for t in cleared) == [
        ("commit_chunk", CLEARED),
        ("report", -1),
    ]
    assert commit_tis(run.run_id)[CLEARED][1] is None  # waiting to run again

    assert resume_run(dag, run.run_id) == "success"

    after = commit_tis(run.run_id)
    assert after[CLEARED][0] == before[CLEARED][0] + 1 and after[CLEARED][1] == "success"
    for index in set(before) - {CLEARED}:
        assert after[index] == before[index], f"chunk {index} ran again"
    # The re-run chunk found its changes in the ledger: the ILS saw no second write at all.
    assert demo.writes() == writes_before
    assert after[CLEARED][2] == "loc-books-2016-part01-first1000.mrc records 251\u2013500"
    assert commit_tis(run.run_id, "report")[-1][:2] == (2, "success")

    # The report written again counts the re-run chunk's records as what they were: the
    # totals add up and equal the first run's; the first report is kept whole beside it.
    again = json.loads((reports / "report.json").read_text())
    s = again["summary"]
    assert s == first["summary"]
    assert s["accepted"] == sum(
        s[k] for k in ("created", "updated", "deleted", "unchanged", "failed")
    )
    assert s["records"] == s["accepted"] + s["rejected"]
    rerun = again["commits"][CLEARED]
    assert (rerun["created"], rerun["already_applied"]) == (250, 250)
    assert again["version"] == 2
    assert [v["path"] for v in again["earlier_versions"]] == ["versions/1"]
    kept = json.loads((reports / "versions" / "1" / "report.json").read_text())
    assert kept == first
    assert (reports / "versions" / "1" / "manifest.json").is_file()
    manifest = json.loads((reports / "manifest.json").read_text())
    assert manifest["trigger"]["kind"] == "clear"
    assert manifest["ils_writes"]["created"] == 1000
    assert manifest["ils_writes"]["already_applied"] == 250

    from catalog_sync_airflow.report_view import commit_timeline

    timeline = commit_timeline(DAG_ID, run.run_id, [{"created": 250, "already_applied": 250}] * 4)
    assert sorted(t.label for t in timeline)[0].endswith("records 1\u2013250")
    assert len(timeline) == 4 and all(t.records == 250 for t in timeline)

    # The run's report page, through the API server, charts the real commit timings.
    page = client.get(f"/catalog-sync/runs/{DAG_ID}/{run.run_id}")
    assert page.status_code == 200
    assert "version 2 of this run" in page.text and "versions/1" in page.text
    assert page.text.count("<polyline") == 2
    assert "chunk time per record (ms)" in page.text
    assert page.text.count("seconds into the commit: ") >= 8
