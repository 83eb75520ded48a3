"""Audit events in Airflow's task log: structured fields under Airflow's own logging setup."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# A task process as Airflow's task runner sets it up: its structlog configuration writing JSON
# lines (what the supervisor stores and the UI's log view renders) to the given stream.
TASK = """
import io, logging, sys
from pathlib import Path
from airflow.sdk.log import configure_logging
from structlog.contextvars import bind_contextvars

out = io.BytesIO()
configure_logging(json_output=True, output=out, sending_to_supervisor=True)
bind_contextvars(ti_id="0199-ti", try_number=1)  # what the task runner binds
from catalog_sync.audit import (
    audit_context, configure_audit_log, get_audit_logger, remove_audit_log,
)

handler = configure_audit_log(Path(sys.argv[1]))
audit = get_audit_logger("catalog_sync.tasks")
with audit_context(run_id="manual__2026-11-30", vendor="demo", chunk_id="c0ffee"):
    audit.info("chunk.processed", records=250, rejected=3, note="mail ann@example.org")
    logging.getLogger("catalog_sync_airflow.tasks").info("chunk %s: %d records", "c0ffee", 250)
audit.info("run.outside")
remove_audit_log(handler)
sys.stdout.write(out.getvalue().decode())
"""


def test_audit_events_show_as_structured_fields_in_airflows_task_log(tmp_path: Path) -> None:
    audit_file = tmp_path / "audit.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", TASK, str(audit_file)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    task_log = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    by_event = {e["event"]: e for e in task_log}

    processed = by_event["chunk.processed"]
    assert processed["level"] == "info" and processed["timestamp"]
    assert processed["logger"] == "catalog_sync.audit.catalog_sync.tasks"
    assert (processed["run_id"], processed["vendor"], processed["chunk_id"]) == (
        "manual__2026-11-30", "demo", "c0ffee",
    )  # fmt: skip
    assert (processed["records"], processed["rejected"]) == (250, 3)
    assert processed["note"] == "mail [email]"  # the scrubber ran as a processor
    assert "ann@example.org" not in done.stdout
    # The ids are structlog contextvars: Airflow's plain log lines of the task carry them too.
    plain = by_event["chunk c0ffee: 250 records"]
    assert (plain["run_id"], plain["chunk_id"], plain["ti_id"]) == (
        "manual__2026-11-30", "c0ffee", "0199-ti",
    )  # fmt: skip
    assert "run_id" not in by_event["run.outside"]

    # The audit file keeps its keys: no Airflow ids (ti_id, try_number), no `timestamp`.
    events = [json.loads(line) for line in audit_file.read_text().splitlines()]
    assert [list(e) for e in events] == [
        ["ts", "level", "event", "logger", "run_id", "vendor", "chunk_id", "records",
         "rejected", "note"],
        ["ts", "level", "event", "logger"],
    ]  # fmt: skip
    assert events[0]["note"] == "mail [email]"
