"""Run notices over real SMTP (aiosmtpd on loopback) from real Airflow task callbacks, no PII."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pendulum
import pytest
from aiosmtpd.controller import Controller
from airflow.sdk import DAG, task
from tests.privacy_canaries import plant_canaries

from catalog_sync.models import ChunkRef, ChunkReport, CommitReport
from catalog_sync.notifications import NoticeKind, build_notice, run_changed
from catalog_sync.paths import layout
from catalog_sync.pipeline.report import write_report
from catalog_sync.services import free_port
from catalog_sync_airflow.notify import CatalogSyncNotifier, no_smtp_message

pytestmark = pytest.mark.slow

TO = ["catalog-ops@library.example.org"]
DAG_ID = "catalog_sync_demo_notices"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(bytes(envelope.content))
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(r, policy=policy.default) for r in self.raw]  # type: ignore[misc]

    def text(self) -> str:
        """Headers and decoded bodies of every message, for canary searches."""
        parts = []
        for m in self.messages():
            parts.append(str(m))
            for part in m.walk():
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    parts.append(payload.decode("utf-8", "replace"))
        return "\n".join(parts)


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    connection = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 10, "retry_limit": 1},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(connection))
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def canary_values() -> list[str]:
    """Patron barcodes, e-mails and prices planted in a real record (tests/privacy_canaries)."""
    import pymarc

    sample = Path(__file__).resolve().parents[2] / "samples"
    path = next(sample.glob("*.mrc"))
    with path.open("rb") as fh:
        records = [r for _, r in zip(range(3), pymarc.MARCReader(fh), strict=False) if r]
    _, canaries = plant_canaries(records)
    return canaries.all


def _write_changed_report(home: Path, run_id: str) -> None:
    ref = ChunkRef(
        chunk_id="c1", vendor="demo", file_name="demo.mrc", file_path="/l/demo.mrc",
        file_sha256="0" * 64, format="iso2709", start=0, end=10, first_record=0, record_count=3,
    )  # fmt: skip
    chunk = ChunkReport(chunk=ref, records_total=3, accepted=3, creates=2, updates=1)
    write_report(layout(home), "demo_notices", run_id, [], [chunk], [
        CommitReport(chunk_id="c1", created=2, updated=1)
    ])  # fmt: skip


def build_notice_dag(home: Path, canaries: list[str]) -> DAG:
    """Tasks named like a vendor DAG's: `report` writes a changed run report, the other fails."""
    failed = CatalogSyncNotifier(NoticeKind.FAILED, TO)
    changed = CatalogSyncNotifier(NoticeKind.CHANGED, TO)
    with DAG(
        DAG_ID,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        default_args={"retries": 0, "retry_delay": timedelta(seconds=1)},
    ) as dag:

        @task(task_id="report", on_success_callback=[changed])
        def report() -> None:
            from airflow.sdk import get_current_context

            _write_changed_report(home, str(get_current_context()["run_id"]))

        @task(task_id="commit_chunk", on_failure_callback=[failed])
        def commit_chunk() -> None:
            # An error that quotes a record: its text must never reach a mailbox.
            raise ValueError(f"ILS refused record with 876 $p {' '.join(canaries)}")

        report()
        commit_chunk()
    return dag


# Safe-mode parsing skips files that do not mention both "airflow" and "dag".
DAG_FILE = """# airflow DAG for test_notify
import json, os
from pathlib import Path
from tests.integration.test_notify import build_notice_dag
home, canaries = os.environ["NOTICE_TEST_HOME"], os.environ["NOTICE_TEST_CANARIES"]
dag = build_notice_dag(Path(home), json.loads(canaries))
"""


def run_dag(tmp_path: Path, canaries: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """dag.test() runs only DAGs it finds in a bundle: lay the DAG in one of its own."""
    home = tmp_path / "home"
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "notice_dag.py").write_text(DAG_FILE)
    bundles = [
        {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}},
        {"name": "notice-test", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(bundle)}},
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    monkeypatch.setenv("AIRFLOW_VAR_CATALOG_SYNC_HOME", str(home))
    monkeypatch.setenv("NOTICE_TEST_HOME", str(home))
    monkeypatch.setenv("NOTICE_TEST_CANARIES", json.dumps(canaries))
    return build_notice_dag(home, canaries).test()


def test_a_changed_run_and_a_failed_task_each_mail_operators_without_pii(
    inbox: Inbox,
    canary_values: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    airflow_db: Path,
) -> None:
    run = run_dag(tmp_path, canary_values, monkeypatch)

    assert run.state == "failed"
    subjects = sorted(m["subject"] for m in inbox.messages())
    assert subjects == [
        "[Catalog Sync] demo_notices: run FAILED",
        "[Catalog Sync] demo_notices: run changed ILS records",
    ]
    events = sorted(m["X-Catalog-Sync-Event"] for m in inbox.messages())
    assert events == ["changed", "failed"]
    assert all(m["to"] == TO[0] for m in inbox.messages())
    text = inbox.text()
    assert "Failed task: commit_chunk" in text
    assert "Reason code: ValueError" in text
    assert "created 2, updated 1" in text
    assert [c for c in canary_values if c in text] == []


def test_only_runs_that_wrote_to_the_ils_count_as_changed() -> None:
    assert not run_changed({"records": 5, "unchanged": 5, "created": 0})
    assert run_changed({"deleted": 1})


def test_free_text_in_an_approval_notice_loses_barcodes_and_emails(
    canary_values: list[str],
) -> None:
    scrubbable = [c for c in canary_values if c.isdigit() or "@" in c]
    notice = build_notice(
        NoticeKind.NEEDS_APPROVAL,
        "demo",
        "scheduled__2026-11-30",
        approval_reasons=[f"delete_cap: 40 deletes over cap 20 ({' '.join(scrubbable)})"],
    )

    assert notice.subject == "[Catalog Sync] demo: run needs approval"
    assert "Required actions" in notice.text
    assert "delete_cap: 40 deletes over cap 20" in notice.text
    assert len(scrubbable) >= 2
    assert [c for c in scrubbable if c in notice.text + notice.html] == []


def test_without_a_mail_connection_notices_are_skipped_with_one_warning(
    canary_values: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    airflow_db: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)

    run = run_dag(tmp_path, canary_values, monkeypatch)

    assert run.state == "failed"  # the task's own failure, not the notifier's
    warnings = [r.getMessage() for r in caplog.records if r.name == "catalog_sync_airflow.notify"]
    missing = no_smtp_message("smtp_default")
    assert sorted(warnings) == [
        f"{missing}: changed notice not sent",
        f"{missing}: failed notice not sent",
    ]
    assert "there is no Airflow Connection 'smtp_default'" in missing
