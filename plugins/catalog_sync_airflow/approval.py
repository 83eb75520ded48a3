"""Approval gate: a run over its delete cap or change ratio waits for a person in the Airflow UI."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseNotifier, get_current_context, task

from catalog_sync.approval import ChangeAssessment, assess_changes
from catalog_sync.models import ChunkReport

ASSESS_TASK = "assess_changes"
APPROVE_TASK = "approve_changes"
SKIP_TASK = "no_approval_needed"
CLEARED_TASK = "changes_cleared"
# Unanswered for this long, the run is rejected (nothing written) rather than left hanging.
RESPONSE_TIMEOUT = timedelta(hours=24)

BODY = """
Run `{{ run_id }}` of **{{ dag.dag_id }}** has staged more change than its vendor allows
without a person looking first. Nothing has been written to the ILS yet.

{{ ti.xcom_pull(task_ids='assess_changes', key='summary') }}

**Approve** to write these changes; **Reject** to stop the run (nothing is written and the
files are not marked loaded, so the next run sees them again). The dry-run param shows the
field-level diffs without writing.
"""


def route(assessment: ChangeAssessment, *, dry_run: bool) -> str:
    """The branch to follow: a dry run never waits, since it writes nothing."""
    return APPROVE_TASK if assessment.needs_approval and not dry_run else SKIP_TASK


def approved_in_ui() -> bool:
    """Whether this run's approval task was answered Approve (False when it never asked)."""
    answer = get_current_context()["ti"].xcom_pull(task_ids=APPROVE_TASK)
    chosen = answer.get("chosen_options", []) if isinstance(answer, dict) else []
    return ApprovalOperator.APPROVE in chosen


def assess(vendor_name: str, chunk_reports: Sequence[dict[str, Any]] | None) -> str:
    """Branch body: weigh the staged changes, leave the figures for the approver, pick a path."""
    from catalog_sync.pipeline.commit import check_delete_cap
    from catalog_sync_airflow.runtime import task_runtime

    context = get_current_context()
    params = context["params"]
    rt = task_runtime(vendor_name)
    state = rt.state()
    # Fetched by index: iterating a mapped task's output probes past its end.
    reports: Sequence[dict[str, Any]] = chunk_reports if chunk_reports is not None else []
    chunks = [ChunkReport.model_validate(reports[i]) for i in range(len(reports))]
    deletes = check_delete_cap(chunks, rt.vendor, state)
    assessment = assess_changes(
        creates=sum(c.creates for c in chunks),
        updates=sum(c.updates for c in chunks),
        deletes=deletes.deletes,
        known_records=state.live_records(vendor_name),
        delete_cap=deletes.cap,
        change_ratio_threshold=rt.vendor.change_ratio_threshold,
        deletes_preapproved=bool(params.get("approve_deletes", False)),
    )
    ti = context["ti"]
    ti.xcom_push(key="summary", value=assessment.summary())
    ti.xcom_push(key="reasons", value=list(assessment.reasons))
    return route(assessment, dry_run=bool(params.get("dry_run", False)))


def add_approval_gate(
    vendor_name: str, staged: Any, notifiers: Sequence[BaseNotifier] = ()
) -> EmptyOperator:
    """assess_changes -> approve_changes | no_approval_needed -> changes_cleared (returned).

    Reject skips everything downstream of the approval (commit, report), so the run stops
    with nothing written; Approve and "no approval needed" both reach changes_cleared.
    """
    assess_task: Any = task.branch(task_id=ASSESS_TASK)(assess)
    decided = assess_task(vendor_name=vendor_name, chunk_reports=staged)
    approve = ApprovalOperator(
        task_id=APPROVE_TASK,
        subject=f"Catalog Sync {vendor_name}: approve this run's changes?",
        body=BODY,
        defaults=ApprovalOperator.REJECT,
        response_timeout=RESPONSE_TIMEOUT,
        ignore_downstream_trigger_rules=True,
        notifiers=list(notifiers),
    )
    skip = EmptyOperator(task_id=SKIP_TASK)
    cleared = EmptyOperator(task_id=CLEARED_TASK, trigger_rule="none_failed_min_one_success")
    decided >> [approve, skip]
    [approve, skip] >> cleared
    return cleared
