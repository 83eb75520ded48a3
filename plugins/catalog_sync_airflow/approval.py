"""Approval gate: one task that passes at once within the caps and otherwise waits for a person."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseNotifier, Context, get_current_context

from catalog_sync.approval import ChangeAssessment, assess_changes
from catalog_sync.models import ChunkReport

APPROVE_TASK = "approve_changes"
# Unanswered for this long, the run is rejected (nothing written) rather than left hanging.
RESPONSE_TIMEOUT = timedelta(hours=24)
# What the gate returns (its XCom) when nobody had to be asked.
NOT_NEEDED: dict[str, Any] = {"approval_needed": False, "chosen_options": []}

BODY = """
Run `{run_id}` of **{dag_id}** has staged more change than its vendor allows
without a person looking first. Nothing has been written to the ILS yet.

{summary}

**Approve** to write these changes; **Reject** to stop the run (nothing is written and the
files are not marked loaded, so the next run sees them again). The dry-run param shows the
field-level diffs without writing.
"""


def must_ask(assessment: ChangeAssessment, *, dry_run: bool) -> bool:
    """Whether the gate waits for a person: a dry run never does, since it writes nothing."""
    return assessment.needs_approval and not dry_run


def approved_in_ui() -> bool:
    """Whether this run's gate was answered Approve (False when it never asked)."""
    answer = get_current_context()["ti"].xcom_pull(task_ids=APPROVE_TASK)
    chosen = answer.get("chosen_options", []) if isinstance(answer, dict) else []
    return ApprovalOperator.APPROVE in chosen


def assess(vendor_name: str, chunk_reports: Sequence[dict[str, Any]] | None) -> ChangeAssessment:
    """Weigh the run's staged changes against the vendor's delete cap and change ratio."""
    from catalog_sync.pipeline.deletecap import check_delete_cap
    from catalog_sync_airflow.runtime import task_runtime

    params = get_current_context()["params"]
    rt = task_runtime(vendor_name)
    state = rt.state()
    # Fetched by index: iterating a mapped task's output probes past its end.
    reports: Sequence[dict[str, Any]] = chunk_reports if chunk_reports is not None else []
    chunks = [ChunkReport.model_validate(reports[i]) for i in range(len(reports))]
    deletes = check_delete_cap(chunks, rt.vendor, state)
    return assess_changes(
        creates=sum(c.creates for c in chunks),
        updates=sum(c.updates for c in chunks),
        deletes=deletes.deletes,
        known_records=state.live_records(vendor_name),
        delete_cap=deletes.cap,
        change_ratio_threshold=rt.vendor.change_ratio_threshold,
        deletes_preapproved=bool(params.get("approve_deletes", False)),
    )


class ChangeApprovalGate(ApprovalOperator):
    """Succeeds at once when the run is within its caps; over them, asks in Required actions.

    One task instead of a branch with a skipped approval beside it: a run that needs nobody
    shows one green gate, and only a run over its caps parks in Airflow's awaiting-input state
    (Airflow's HITL machinery). Reject skips everything downstream, so nothing is written.
    """

    template_fields = (*ApprovalOperator.template_fields, "chunk_reports")

    def __init__(self, *, vendor_name: str, chunk_reports: Any, **kwargs: Any) -> None:
        super().__init__(
            subject=f"Catalog Sync {vendor_name}: approve this run's changes?",
            defaults=ApprovalOperator.REJECT,
            response_timeout=RESPONSE_TIMEOUT,
            ignore_downstream_trigger_rules=True,
            **kwargs,
        )
        self.vendor_name = vendor_name
        self.chunk_reports = chunk_reports

    def execute(self, context: Context) -> Any:
        assessment = assess(self.vendor_name, self.chunk_reports)
        ti = context["ti"]
        ti.xcom_push(key="summary", value=assessment.summary())
        ti.xcom_push(key="reasons", value=list(assessment.reasons))
        dry_run = bool(context["params"].get("dry_run", False))
        if not must_ask(assessment, dry_run=dry_run):
            self.log.info(
                "no approval needed (%s): %s",
                "dry run" if assessment.needs_approval else "within the vendor's caps",
                assessment.summary().replace("\n", "; "),
            )
            return dict(NOT_NEEDED)
        self.body = BODY.format(
            run_id=context["run_id"], dag_id=context["dag"].dag_id, summary=assessment.summary()
        )
        self.log.warning("approval needed: %s", "; ".join(assessment.reasons))
        # Writes the request, notifies, and parks the task until someone answers.
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        answer = super().execute_complete(context, event)
        return {**answer, "approval_needed": True}


def add_approval_gate(
    vendor_name: str, staged: Any, notifiers: Sequence[BaseNotifier] = ()
) -> ChangeApprovalGate:
    """The approve_changes gate downstream of the staged chunk reports (wired by its input)."""
    return ChangeApprovalGate(
        task_id=APPROVE_TASK,
        vendor_name=vendor_name,
        chunk_reports=staged,
        notifiers=list(notifiers),
    )
