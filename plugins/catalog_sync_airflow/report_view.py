"""The run report page, served inside Airflow's API server and linked from each DAG run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse

from catalog_sync.config import load_vendors
from catalog_sync.paths import layout, runtime_home
from catalog_sync.pipeline.report import report_dir
from catalog_sync.report_html import ChunkTiming, render_run_report
from catalog_sync.run_status import TaskAttempt, failed_tasks_section, render_run_status
from catalog_sync.storage import SharedStorage, StorageError
from catalog_sync_airflow.notify import notice_gaps

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
        # already_applied is part of created/updated/deleted, not records of its own.
        records = sum(
            int(sent.get(k, 0))
            for k in ("created", "updated", "deleted", "unchanged", "failed", "review")
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


def vendor_of(dag_id: str) -> str:
    """The vendor of a Catalog Sync DAG; anything else is a 404 (only its folders are read)."""
    vendor = dag_id.removeprefix(DAG_PREFIX)
    if not dag_id.startswith(DAG_PREFIX) or vendor not in load_vendors():
        raise HTTPException(404, f"{dag_id!r} is not a Catalog Sync vendor DAG")
    return vendor


def load_report(dag_id: str, run_id: str) -> dict[str, Any] | None:
    """report.json of one run from the run storage, or None when the report task has not
    written it (the API server shares no disk with the workers)."""
    storage = report_storage()
    key = storage.key(report_dir(layout(report_home()), vendor_of(dag_id), run_id) / "report.json")
    try:
        text = storage.read_text(key)
    except (StorageError, FileNotFoundError):
        return None
    body: dict[str, Any] = json.loads(text)
    return body


def run_tasks(dag_id: str, run_id: str) -> tuple[str | None, list[TaskAttempt]]:
    """The run's state and its task instances, from Airflow's metadata (None: no such run)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        state = session.scalar(
            select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        )
        tis = session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(TaskInstance.task_id, TaskInstance.map_index)
        ).all()
        attempts = [
            TaskAttempt(
                task_id=ti.task_id,
                map_index=ti.map_index,
                label=ti.rendered_map_index,
                try_number=ti.try_number,
                state=_text(ti.state),
                ended=ti.end_date,
                log_url=ti.log_url,
                log_api=f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/"
                f"{ti.task_id}/logs/{ti.try_number}?map_index={ti.map_index}",
            )
            for ti in tis
        ]
    return _text(state), attempts


def _text(state: Any) -> str | None:
    return None if state is None else str(getattr(state, "value", state))


def run_report_page(dag_id: str, run_id: str) -> str:
    report = load_report(dag_id, run_id)
    if report is None:
        try:
            state, tasks = run_tasks(dag_id, run_id)
        except Exception:  # no metadata DB reachable: nothing to say about the run
            state, tasks = None, []
        if state is None:
            raise HTTPException(404, f"no run {run_id!r} of {dag_id} and no report for it")
        notes = notice_gaps(load_vendors()[vendor_of(dag_id)].notify_to)
        return render_run_status(dag_id, run_id, state, tasks, notes)
    try:
        timeline = commit_timeline(dag_id, run_id, list(report.get("commits", [])))
        failed = failed_tasks_section(run_tasks(dag_id, run_id)[1])
    except Exception:  # no metadata DB reachable: the counts are still worth showing
        timeline, failed = [], ""
    return render_run_report(report, timeline, failed)


def read_dag_run(request: Request, user: GetUserDep) -> None:
    """Airflow's auth manager decides: a run's report needs read access to that DAG's runs.

    Airflow mounts plugin apps without its own auth, so every route here depends on this.
    The user comes from the API token (Authorization: Bearer) or the UI's session cookie;
    none gives 401, one without read access to the DAG 403.
    """
    requires_access_dag("GET", DagAccessEntity.RUN)(request, user)


def create_report_app() -> FastAPI:
    # No /docs, /redoc or /openapi.json: the page is for people who may read the DAG, and its
    # API description is nobody else's business.
    app = FastAPI(
        title="Catalog Sync run reports",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(read_dag_run)],
    )

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run_report(dag_id: str, run_id: str) -> HTMLResponse:
        return HTMLResponse(run_report_page(dag_id, run_id))

    return app


report_app = create_report_app()
FASTAPI_APP = {"app": report_app, "url_prefix": URL_PREFIX, "name": "Catalog Sync run reports"}
