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
SMTP_CONN_ID = "smtp_default"


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
        smtp_conn_id: str = SMTP_CONN_ID,
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
        # Sent by the approval gate itself, which pushed its reasons just before asking.
        reasons = ti.xcom_pull(task_ids=ti.task_id, key="reasons") or []
        return build_notice(self.kind, vendor, run_id, approval_reasons=list(reasons))

    def notify(self, context: Context) -> None:
        message = self.notice(context)
        if message is None or not self.to:
            return
        if not _connection_exists(self.smtp_conn_id, task_side=True):
            # No mail server configured: say so once instead of a callback traceback; the run
            # report and the DAG docs say it too (notice_gaps).
            log.warning("%s: %s notice not sent", no_smtp_message(self.smtp_conn_id), self.kind)
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


def no_smtp_message(conn_id: str = SMTP_CONN_ID) -> str:
    return (
        f"notices are not sent: there is no Airflow Connection {conn_id!r} (add one, or run "
        "`make airflow`, which provisions a local SMTP sink; see the DAG docs)"
    )


def _connection_exists(conn_id: str, *, task_side: bool) -> bool:
    """Whether Airflow can give us the Connection (in a task, or in the API server)."""
    if task_side:
        try:
            BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            return False
        return True
    from airflow.models.connection import Connection

    try:
        Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return False
    return True


def notice_gaps(to: Sequence[str], *, task_side: bool = False) -> list[str]:
    """Operator notes for a run report: a vendor with recipients but no way to mail them."""
    if to and not _connection_exists(SMTP_CONN_ID, task_side=task_side):
        return [f"{len(to)} recipient(s) configured, but {no_smtp_message()}"]
    return []


def notifiers(kind: NoticeKind, to: Sequence[str]) -> list[CatalogSyncNotifier]:
    """Callback list for a DAG or task: empty when the vendor names no recipients."""
    return [CatalogSyncNotifier(kind, to)] if to else []
