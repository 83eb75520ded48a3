"""The `catalog_sync_revert` DAG: undo one vendor run, given its run id (safe to re-run)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowFailException

from catalog_sync.config import load_vendors

log = logging.getLogger(__name__)

DOC_MD = """
### Catalog Sync - revert a run

Trigger with the `vendor` and the `run_id` of the vendor DAG run to undo (the run id is on
the run's page and in its report). Every ILS record that run changed gets its pre-image back
(deleted ones are re-created, with a new biblio id); every record it created is deleted,
unless items were attached since (listed as kept). The run's files then count as not loaded.

Running it again is safe: records already reverted are skipped, the rest are compared with
their pre-image before any write.
"""


def revert(vendor: str, run_id: str) -> str:
    """Task body: open one ILS client per connection the run wrote to, and revert."""
    from catalog_sync.changes.revert import revert_run
    from catalog_sync.ils import open_client
    from catalog_sync.ils.client import ILSClient
    from catalog_sync.leases import LeaseManager
    from catalog_sync_airflow.runtime import task_runtime
    from ils.hooks import ILSHook, lease_settings

    if not run_id.strip():
        raise AirflowFailException("give the run_id of the vendor DAG run to revert")
    rt = task_runtime(vendor)
    if not rt.redis_url:
        raise AirflowFailException(
            "catalog_sync_revert writes under Redis record leases, like commit_chunk: set the "
            "Airflow Variable catalog_sync_redis_url (or REDIS_URL)"
        )
    redis_url = rt.redis_url
    state = rt.state()
    connections = {c.ils for c in state.run_changes(run_id, vendor)}
    if not connections:
        log.warning("run %s of vendor %s changed no ILS record: nothing to revert", run_id, vendor)

    async def run() -> str:
        async with AsyncExitStack() as stack:
            clients: dict[str, ILSClient] = {}
            settings = [ILSHook(ils_conn_id=c).get_conn() for c in sorted(connections)]
            for ils in settings:
                clients[ils.name] = await stack.enter_async_context(open_client(ils, redis_url))
            # The same record leases as commit_chunk: a vendor run writing meanwhile waits.
            timings = lease_settings(settings)
            leases = await stack.enter_async_context(LeaseManager.from_url(redis_url, timings))
            report = await revert_run(run_id, vendor, clients, state, leases)
        if report.kept:
            log.warning("%s", report.line())
        return report.line()

    line = asyncio.run(run())
    log.info("%s", line)
    return line


def build_revert_dag() -> DAG:
    vendors = sorted(load_vendors())
    with DAG(
        dag_id="catalog_sync_revert",
        description="Undo one Catalog Sync run: restore pre-images, delete what it created",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["catalog-sync", "revert"],
        doc_md=DOC_MD,
        default_args={"owner": "catalog-ops", "retries": 2, "retry_delay": timedelta(minutes=1)},
        params={
            "vendor": Param(vendors[0] if vendors else "", type="string", enum=vendors),
            "run_id": Param("", type="string", description="Run id of the vendor DAG run"),
        },
    ) as dag:
        revert_task: Any = task(task_id="revert_run")(revert)
        revert_task(vendor="{{ params.vendor }}", run_id="{{ params.run_id }}")
    return dag
