"""The run report page, served inside Airflow's API server and linked from each DAG run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from catalog_sync.config import load_vendors
from catalog_sync.paths import layout, runtime_home
from catalog_sync.pipeline.report import report_dir
from catalog_sync.report_html import ChunkTiming, render_run_report
from catalog_sync.storage import SharedStorage, StorageError

URL_PREFIX = "/catalog-sync"
DAG_PREFIX = "catalog_sync_"
COMMIT_TASK = "commit_chunk"

# The Airflow UI fills {DAG_ID} and {RUN_ID}; "dag_run" puts a "Run report" tab on each run.
EXTERNAL_VIEW = {
    "name": "Run report",
    "href": URL_PREFIX + "/runs/{DAG_ID}/{RUN_ID}",
    "destination": "dag_run",
    "url_route": "catalog-sync-run-report",
}


def _setting(variable: str, env: str | None = None) -> str | None:
    """An Airflow Variable as the API server sees it (env var first), else `env`, else None."""
    value = os.environ.get(f"AIRFLOW_VAR_{variable.upper()}")
    if not value:
        try:
            from airflow.models.variable import Variable

            value = Variable.get(variable, default_var=None)
        except Exception:  # the page still works from the defaults without a metadata DB
            value = None
    return value or (os.environ.get(env) if env else None) or None


def report_home() -> Path:
    """The runtime folder the tasks write to: the catalog_sync_home Variable, else the default."""
    home = _setting("catalog_sync_home")
    return Path(home) if home else runtime_home()


def report_storage() -> SharedStorage:
    """The run storage the report task published to (the API server shares no disk with it)."""
    from catalog_sync_airflow.runtime import (
        STORAGE_CONN_VARIABLE,
        STORAGE_URL_VARIABLE,
        run_storage,
    )

    url = _setting(STORAGE_URL_VARIABLE, "CATALOG_SYNC_STORAGE_URL")
    conn_id = _setting(STORAGE_CONN_VARIABLE, "CATALOG_SYNC_STORAGE_CONN_ID")
    return run_storage(layout(report_home()).root, url, conn_id, fresh=True)


def commit_timeline(dag_id: str, run_id: str, commits: list[dict[str, Any]]) -> list[ChunkTiming]:
    """When each mapped commit_chunk ran (Airflow's task instances) and what it sent."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(
                TaskInstance.map_index,
                TaskInstance._rendered_map_index,
                TaskInstance.start_date,
                TaskInstance.end_date,
            ).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == COMMIT_TASK,
            )
        ).all()
    timeline = []
    for map_index, label, started, finished in rows:
        if started is None or finished is None:
            continue
        sent = commits[map_index] if 0 <= map_index < len(commits) else {}
        records = sum(
            int(sent.get(k, 0))
            for k in ("created", "updated", "deleted", "unchanged", "already_applied", "failed")
        )
        latency = sent.get("latency_ms_mean")
        timeline.append(
            ChunkTiming(
                label or str(map_index),
                started,
                finished,
                records,
                float(latency) if isinstance(latency, int | float) else None,
            )
        )
    return timeline


def load_report(dag_id: str, run_id: str) -> dict[str, Any]:
    """report.json of one run; only configured vendors' folders are ever read."""
    vendor = dag_id.removeprefix(DAG_PREFIX)
    if not dag_id.startswith(DAG_PREFIX) or vendor not in load_vendors():
        raise HTTPException(404, f"{dag_id!r} is not a Catalog Sync vendor DAG")
    storage = report_storage()
    home = layout(report_home())
    key = storage.key(report_dir(home, vendor, run_id) / "report.json")
    try:
        text = storage.read_text(key)
    except (StorageError, FileNotFoundError) as exc:
        raise HTTPException(
            404, f"no run report for {dag_id} run {run_id!r} yet: the report task writes it"
        ) from exc
    body: dict[str, Any] = json.loads(text)
    return body


def run_report_page(dag_id: str, run_id: str) -> str:
    report = load_report(dag_id, run_id)
    try:
        timeline = commit_timeline(dag_id, run_id, list(report.get("commits", [])))
    except Exception:  # no metadata DB reachable: the counts are still worth showing
        timeline = []
    return render_run_report(report, timeline)


def create_report_app() -> FastAPI:
    app = FastAPI(title="Catalog Sync run reports")

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run_report(dag_id: str, run_id: str) -> HTMLResponse:
        return HTMLResponse(run_report_page(dag_id, run_id))

    return app


report_app = create_report_app()
FASTAPI_APP = {"app": report_app, "url_prefix": URL_PREFIX, "name": "Catalog Sync run reports"}
