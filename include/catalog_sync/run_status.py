"""The page of a run that has no report (failed or still running): what failed, and its logs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import NamedTuple

# Task states in which a task stopped the run, as Airflow names them.
FAILED_STATES = frozenset({"failed", "upstream_failed"})


class TaskAttempt(NamedTuple):
    """One task instance of a run, as Airflow's metadata holds it (its latest try)."""

    task_id: str
    map_index: int
    label: str | None
    try_number: int
    state: str | None
    ended: datetime | None
    log_url: str
    log_api: str

    @property
    def shown_as(self) -> str:
        """The task as the Grid shows it: `commit_chunk [file records 1-250]` or `[2]`."""
        if self.map_index < 0:
            return self.task_id
        return f"{self.task_id} [{self.label or self.map_index}]"


def _cell(text: str) -> str:
    return f"<td>{escape(text)}</td>"


def failed_tasks_section(tasks: Sequence[TaskAttempt], *, always: bool = False) -> str:
    """The failed tasks with their try and log links ("" when none failed, unless `always`)."""
    failed = [t for t in tasks if t.state == "failed"]
    blocked = [t for t in tasks if t.state == "upstream_failed"]
    if not failed and not blocked and not always:
        return ""
    rows = "".join(
        "<tr>"
        + _cell(t.task_id)
        + _cell("" if t.map_index < 0 else str(t.map_index))
        + _cell(t.label or "")
        + f'<td class="n">{t.try_number}</td>'
        + _cell(f"{t.ended:%Y-%m-%d %H:%M:%S}" if t.ended else "")
        + f'<td><a href="{escape(t.log_url, quote=True)}">log of try {t.try_number}</a>'
        f"<br><code>{escape(t.log_api)}</code></td></tr>"
        for t in failed
    )
    table = (
        "<table><thead><tr><th>task</th><th>map index</th><th>chunk</th><th>try</th>"
        f"<th>ended</th><th>log</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else "<p class='empty'>No task has failed.</p>"
    )
    blocked_line = (
        "<p>Not run because an upstream task failed: "
        + escape(", ".join(t.shown_as for t in blocked))
        + "</p>"
        if blocked
        else ""
    )
    return (
        f'<section id="failed"><h2>Failed tasks</h2>{table}{blocked_line}'
        "<p>Each log link opens the task's log in the Airflow UI (the <code>/api/v2</code> path "
        "under it serves the same log to scripts). Fix the cause, then clear the failed task: "
        "a cleared <code>commit_chunk</code> skips what its ledger says was already written.</p>"
        "</section>"
    )


def render_run_status(
    dag_id: str,
    run_id: str,
    run_state: str | None,
    tasks: Sequence[TaskAttempt],
    notes: Sequence[str] = (),
) -> str:
    """HTML for a run whose report was never written; values are escaped."""
    failed = [t for t in tasks if t.state == "failed"]
    blocked = [t for t in tasks if t.state == "upstream_failed"]
    if failed or run_state == "failed":
        headline = (
            f"This run failed: {len(failed)} task(s) failed"
            + (f", {len(blocked)} did not run because of them" if blocked else "")
            + ". No run report was written."
        )
        status = "failures"
    else:
        headline = f"This run is {run_state}: the report task writes the run report when it ends."
        status = "no-changes"
    states = Counter(t.state or "not started" for t in tasks)
    state_line = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(states.items()))
    note_items = "".join(f"<li>{escape(n)}</li>" for n in notes)
    body = (
        f"<header><h1>Catalog Sync run report</h1><p>DAG <b>{escape(dag_id)}</b> &middot; run "
        f'<code id="run-id">{escape(run_id)}</code> &middot; state '
        f'<b id="run-state">{escape(run_state or "unknown")}</b></p>'
        f'<p class="status {status}" id="summary"><b>{escape(headline)}</b></p></header>'
        + failed_tasks_section(tasks, always=True)
        + f"<section id='tasks'><h2>All tasks</h2><p>{escape(state_line)}</p></section>"
        + (f"<section id='notes'><h2>Notes</h2><ul>{note_items}</ul></section>" if notes else "")
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Run {escape(run_id)} of {escape(dag_id)}</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>"
    )


CSS = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1a202c;max-width:980px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;border-bottom:1px solid #cbd5e0;"
    "padding-bottom:4px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}"
    "td,th{border:1px solid #e2e8f0;padding:3px 8px;text-align:left;vertical-align:top}"
    "td.n{text-align:right}.empty{color:#718096;font-style:italic}"
    ".status{padding:6px 10px;border-radius:4px;display:inline-block}"
    ".status.failures{background:#fff5f5}.status.no-changes{background:#f7fafc}"
)
