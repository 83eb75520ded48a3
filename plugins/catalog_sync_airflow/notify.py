"""SMTP notifier for Catalog Sync run events; the message itself is built by catalog_sync."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from airflow.providers.smtp.hooks.smtp import SmtpHook
from airflow.sdk import BaseHook, BaseNotifier, Context
from airflow.sdk.exceptions import AirflowNotFoundException

from catalog_sync.notifications import Notice, NoticeKind, build_notice, run_changed
from catalog_sync.pipeline.report import report_dir

log = logging.getLogger(__name__)

DAG_PREFIX = "catalog_sync_"
REPORT_URL = "/catalog-sync/runs/{dag_id}/{run_id}"
ASSESS_TASK = "assess_changes"


class CatalogSyncNotifier(BaseNotifier):
    """Mail `to` about one kind of run event (changed / failed / needs approval) over SMTP.

    Used as on_success_callback of the report task (changed), on_failure_callback of every
    task (failed) and in the approval operator's notifiers (needs approval)::

        CatalogSyncNotifier(NoticeKind.FAILED, to=["ops@library.example.org"])
    """

    template_fields = ()

    def __init__(
        self,
        kind: NoticeKind | str,
        to: Sequence[str],
        smtp_conn_id: str = "smtp_default",
        from_email: str | None = None,
    ) -> None:
        super().__init__()
        self.kind = NoticeKind(kind)
        self.to = list(to)
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email

    def notice(self, context: Context) -> Notice | None:
        """The message for this event, or None when there is nothing to tell."""
        dag_id = str(context["dag"].dag_id)
        run_id = str(context["run_id"])
        vendor = dag_id.removeprefix(DAG_PREFIX)
        url = REPORT_URL.format(dag_id=dag_id, run_id=run_id)
        ti = context["ti"]
        if self.kind is NoticeKind.CHANGED:
            summary = _run_summary(vendor, run_id)
            if summary is None or not run_changed(summary):
                return None
            return build_notice(self.kind, vendor, run_id, summary=summary, report_url=url)
        if self.kind is NoticeKind.FAILED:
            exc = context.get("exception")
            code = getattr(exc, "reason", None) or (type(exc).__name__ if exc else None)
            index = ti.map_index if ti.map_index is not None else -1
            task = ti.task_id if index < 0 else f"{ti.task_id}[{index}]"
            return build_notice(
                self.kind, vendor, run_id, failed_task=task, failure_code=code, report_url=url
            )
        reasons = ti.xcom_pull(task_ids=ASSESS_TASK, key="reasons") or []
        return build_notice(self.kind, vendor, run_id, approval_reasons=list(reasons))

    def notify(self, context: Context) -> None:
        message = self.notice(context)
        if message is None or not self.to:
            return
        try:
            BaseHook.get_connection(self.smtp_conn_id)
        except AirflowNotFoundException:
            # `make demo` has no mail server: say so once instead of a callback traceback.
            log.warning("no %s connection: %s notice not sent", self.smtp_conn_id, self.kind)
            return
        with SmtpHook(smtp_conn_id=self.smtp_conn_id) as smtp:
            sender = self.from_email or smtp.from_email or "catalog-sync@localhost"
            smtp.send_email_smtp(
                to=self.to,
                subject=message.subject,
                html_content=message.html,
                from_email=sender,
                custom_headers={"X-Catalog-Sync-Event": self.kind.value},
            )
        log.info(
            "sent %s notice for %s to %d recipient(s)", self.kind, context["run_id"], len(self.to)
        )


def _run_summary(vendor: str, run_id: str) -> dict[str, Any] | None:
    """The summary of report.json written by this run's report task (read from run storage)."""
    from catalog_sync.storage import StorageError
    from catalog_sync_airflow.runtime import runtime_storage

    runtime_layout, storage = runtime_storage()
    key = storage.key(report_dir(runtime_layout, vendor, run_id) / "report.json")
    try:
        text = storage.read_text(key)
    except (StorageError, FileNotFoundError):
        return None
    summary: dict[str, Any] = json.loads(text)["summary"]
    return summary


def notifiers(kind: NoticeKind, to: Sequence[str]) -> list[CatalogSyncNotifier]:
    """Callback list for a DAG or task: empty when the vendor names no recipients."""
    return [CatalogSyncNotifier(kind, to)] if to else []
