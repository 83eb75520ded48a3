"""Build one DAG per vendor of include/config/vendors.yaml (config is read, no Airflow state)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable, Param, get_parsing_context, task

from catalog_sync.config import VendorConfig, load_vendors
from catalog_sync.notifications import NoticeKind
from catalog_sync.schedule import cadence_for
from catalog_sync_airflow import tasks
from catalog_sync_airflow.approval import add_approval_gate
from catalog_sync_airflow.notify import SMTP_CONN_ID, notifiers
from catalog_sync_airflow.timetables import ComplianceTimetable

# Mapped tasks show "<file> records 1-2,000" in the UI; the task puts chunk_label in its context.
LABEL = "{{ chunk_label }}"

DOC_MD = """
### Catalog Sync - vendor `{name}`

{description}

**fetch** finds new files in the vendor's delivery (skipping files already loaded unless the
`force` param is set) -> **split** cuts each file into deterministic chunks ->
**process_chunk** (one per chunk) parses, validates and stages each record's change ->
**approve_changes** weighs the staged changes against the delete cap and change-ratio
threshold: within both it succeeds at once; over either it waits for a decision under
*Required actions* (Approve writes, Reject stops the run with nothing written) ->
**check_deletes** refuses deletes over the cap that nobody approved (in the UI or with the
`approve_deletes` param) ->
**commit_chunk** (one per chunk, pool `{pool}`) writes only real changes to the ILS ->
**report** writes the run report (`run summary:` line last; the *Run report* tab shows it,
or which tasks failed and where their logs are).

Re-run a failed chunk by clearing that one mapped `commit_chunk` task: its ledger skips what
was already written, and the report still counts those records as what they were. Owner: {owner}.

**Notices** (failed, changed, needs approval; to: {recipients}) go out by mail through the
Airflow Connection `{smtp_conn_id}`. Without that Connection **no mail is sent**: the task log
warns, and the run report (and the *Run report* tab of a failed run) notes "notices are not
sent". `make airflow` provisions it as a local SMTP sink that keeps each message as a file
under `var/mail/`. For a real mail server, add the Connection (Admin > Connections, type smtp)
or set `AIRFLOW_CONN_SMTP_DEFAULT`, e.g. `smtp://user:password@mail.example.org:587`; under
`make airflow`, set that variable before starting it (the sink's Connection is an environment
variable, which takes precedence over one added in the UI).
"""


def build_vendor_dag(vendor: VendorConfig) -> DAG:
    cadence = cadence_for(vendor)
    schedule = ComplianceTimetable(cadence) if cadence else None
    with DAG(
        dag_id=f"catalog_sync_{vendor.name}",
        description=f"Load {vendor.name} vendor deliveries into the ILS ({vendor.ils_conn_id})",
        schedule=schedule,
        start_date=pendulum.datetime(2026, 1, 1, tz=vendor.timezone),
        catchup=False,
        max_active_runs=1,
        tags=["catalog-sync", f"vendor:{vendor.name}", f"ils:{vendor.ils_conn_id}"],
        doc_md=DOC_MD.format(
            name=vendor.name,
            description=vendor.description.strip(),
            pool=vendor.ils_conn_id,
            owner=vendor.owner,
            recipients=", ".join(vendor.notify_to) or "no recipients configured",
            smtp_conn_id=SMTP_CONN_ID,
        ),
        default_args={
            "owner": vendor.owner,
            "retries": vendor.retry.retries,
            "retry_delay": timedelta(seconds=vendor.retry.delay_seconds),
            "retry_exponential_backoff": vendor.retry.backoff,
            "max_retry_delay": timedelta(seconds=vendor.retry.max_delay_seconds),
            "on_failure_callback": notifiers(NoticeKind.FAILED, vendor.notify_to),
        },
        params={
            "force": Param(
                False,
                type="boolean",
                description="Reload files even if they were loaded before",
            ),
            "dry_run": Param(
                False,
                type="boolean",
                description="Read the ILS and write the full change report (masked field-level "
                "diffs under reports/<vendor>/<run>/diffs/), but write nothing",
            ),
            "approve_deletes": Param(
                False,
                type="boolean",
                description="Apply deletes even when they exceed the vendor's delete cap",
            ),
        },
    ) as dag:
        # Typed Any: the task bodies take plain values, the DAG wires them with XComArgs.
        fetch: Any = task(task_id="fetch")(tasks.fetch)
        split: Any = task(task_id="split")(tasks.split)
        process_chunk: Any = task(task_id="process_chunk", map_index_template=LABEL)(tasks.process)
        commit_chunk: Any = task(
            task_id="commit_chunk",
            pool=vendor.ils_conn_id,
            map_index_template=LABEL,
            # Frees the pool slot of a commit stuck on a hung ILS or Redis; the retry resumes
            # from the ledger.
            execution_timeout=timedelta(minutes=vendor.commit_timeout_minutes),
        )(tasks.commit)
        check_deletes: Any = task(task_id="check_deletes")(tasks.check_deletes)
        report: Any = task(
            task_id="report",
            trigger_rule="none_failed",
            on_success_callback=notifiers(NoticeKind.CHANGED, vendor.notify_to),
        )(tasks.report)

        name = vendor.name
        files = fetch(vendor_name=name)
        chunks = split(vendor_name=name, fetched=files)
        staged = process_chunk.partial(vendor_name=name).expand(chunk=chunks)
        # Over the delete cap or change ratio, the run waits for a decision in the UI here;
        # within them, the gate succeeds at once.
        approval = add_approval_gate(
            name, staged, notifiers(NoticeKind.NEEDS_APPROVAL, vendor.notify_to)
        )
        gate = check_deletes(vendor_name=name, chunk_reports=staged)
        approval >> gate
        committed = commit_chunk.partial(vendor_name=name).expand(report=staged)
        gate >> committed
        report(vendor_name=name, fetched=files, chunk_reports=staged, commit_reports=committed)
    return dag


MAINTENANCE_DOC_MD = """
### Catalog Sync - retention

Every day, removes what each vendor's `retention` periods in vendors.yaml say has expired:
staging change sets and landed copies (`staging`), reject files (`rejects`), run reports,
manifests and audit logs (`manifests`). The ILS and the state store are never touched.
"""


def build_maintenance_dag() -> DAG:
    with DAG(
        dag_id="catalog_sync_retention",
        description="Purge Catalog Sync staging, rejects, reports and audit logs past retention",
        schedule=CronTriggerTimetable("30 5 * * *", timezone="UTC"),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["catalog-sync", "retention"],
        doc_md=MAINTENANCE_DOC_MD,
        default_args={"owner": "catalog-ops", "retries": 2, "retry_delay": timedelta(minutes=5)},
    ) as dag:
        task(task_id="purge_expired")(tasks.purge_expired_data)()
    return dag


def build_vendor_dags() -> dict[str, DAG]:
    """Every vendor's DAG and the retention DAG; in a task process, only that task's DAG.

    A task process parses this file only to find its own DAG (Airflow names it in the parsing
    context), so it builds no other: with many vendors that was most of the parse. Every vendor
    is still validated, so a broken vendors.yaml fails a task as it fails the DAG processor.
    """
    wanted = get_parsing_context().dag_id
    vendors = load_vendors()
    dags = {
        dag_id: build_vendor_dag(v)
        for dag_id, v in ((f"catalog_sync_{v.name}", v) for v in vendors.values())
        if wanted in (None, dag_id)
    }
    if wanted in (None, "catalog_sync_retention"):
        dags["catalog_sync_retention"] = build_maintenance_dag()
    return dags
