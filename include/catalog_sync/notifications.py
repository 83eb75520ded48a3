"""Operator notices (changed, failed, needs approval): counts, ids and codes, never records."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from html import escape
from typing import Any, NamedTuple

from catalog_sync.audit import audit_scrubber

_COUNTS = (
    "records",
    "accepted",
    "rejected",
    "created",
    "updated",
    "deleted",
    "unchanged",
    "failed",
)


class NoticeKind(StrEnum):
    CHANGED = "changed"
    FAILED = "failed"
    NEEDS_APPROVAL = "needs_approval"


class Notice(NamedTuple):
    """One message, as plain text and as HTML."""

    subject: str
    text: str
    html: str


def run_changed(summary: Mapping[str, Any]) -> bool:
    """Whether the run wrote anything to the ILS (the only successful runs worth a message)."""
    return any(int(summary.get(k, 0) or 0) > 0 for k in ("created", "updated", "deleted"))


def _safe(text: str) -> str:
    # Ids and codes only reach here, but a scrub pass costs nothing and guards future callers.
    return audit_scrubber().scrub(text)


def build_notice(
    kind: NoticeKind,
    vendor: str,
    run_id: str,
    *,
    summary: Mapping[str, Any] | None = None,
    failed_task: str | None = None,
    failure_code: str | None = None,
    approval_reasons: list[str] | None = None,
    report_url: str | None = None,
) -> Notice:
    """The notice for one run event; free text from errors is never included, only codes."""
    vendor, run_id = _safe(vendor), _safe(run_id)
    lines: list[str] = []
    if kind is NoticeKind.CHANGED:
        subject = f"[Catalog Sync] {vendor}: run changed ILS records"
        lines.append(f"Run {run_id} of vendor {vendor} wrote changes to the ILS.")
    elif kind is NoticeKind.FAILED:
        subject = f"[Catalog Sync] {vendor}: run FAILED"
        lines.append(f"Run {run_id} of vendor {vendor} failed.")
        if failed_task:
            lines.append(f"Failed task: {_safe(failed_task)}")
        if failure_code:
            lines.append(f"Reason code: {_safe(failure_code)}")
        lines.append("The task log in Airflow has the details; nothing else is in this message.")
    else:
        subject = f"[Catalog Sync] {vendor}: run needs approval"
        lines.append(
            f"Run {run_id} of vendor {vendor} is waiting for a decision in the Airflow UI "
            "(Required actions) before it writes to the ILS."
        )
        for reason in approval_reasons or []:
            lines.append(f"Why: {_safe(reason)}")
    if summary:
        counts = ", ".join(f"{k} {int(summary.get(k, 0) or 0):,}" for k in _COUNTS)
        lines.append(f"Counts: {counts}")
    if report_url:
        lines.append(f"Run report: {_safe(report_url)}")
    text = "\n".join(lines) + "\n"
    html = "".join(f"<p>{escape(line)}</p>" for line in lines)
    return Notice(subject, text, html)
