"""Approval gate: over-cap runs wait for a person (Airflow HITL) and then proceed or stop."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, task

from catalog_sync.approval import assess_changes
from catalog_sync.config import load_vendors
from catalog_sync.models import ChunkRef, ChunkReport
from catalog_sync.notifications import NoticeKind
from catalog_sync_airflow.approval import (
    APPROVE_TASK,
    ChangeApprovalGate,
    add_approval_gate,
    must_ask,
)
from catalog_sync_airflow.notify import CatalogSyncNotifier
from tests.integration.test_notify import TO, Inbox, inbox  # noqa: F401  (SMTP fixture)

DAG_ID = "catalog_sync_demo_gate"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


def test_deletes_over_the_cap_need_approval_unless_approved_up_front() -> None:
    over = {"creates": 0, "updates": 0, "deletes": 30, "known_records": 1000, "delete_cap": 20}

    held = assess_changes(**over, change_ratio_threshold=None)
    preapproved = assess_changes(**over, change_ratio_threshold=None, deletes_preapproved=True)

    assert held.needs_approval
    assert held.reasons == ("delete_cap: 30 deletes over the cap of 20",)
    assert not preapproved.needs_approval


def test_change_ratio_counts_updates_and_deletes_of_known_records_only() -> None:
    common = {"delete_cap": 100, "change_ratio_threshold": 0.5}

    big_update = assess_changes(creates=0, updates=600, deletes=0, known_records=1000, **common)
    many_new = assess_changes(creates=5000, updates=10, deletes=0, known_records=1000, **common)
    first_load = assess_changes(creates=1000, updates=0, deletes=0, known_records=0, **common)

    assert big_update.reasons == ("change_ratio: 60.0% of loaded records change, over 50.0%",)
    assert not many_new.needs_approval
    assert not first_load.needs_approval and first_load.change_ratio is None


def test_a_dry_run_never_waits_for_approval() -> None:
    held = assess_changes(
        creates=0, updates=0, deletes=9, known_records=10, delete_cap=0, change_ratio_threshold=0.1
    )

    assert must_ask(held, dry_run=False)
    assert not must_ask(held, dry_run=True)


def test_vendor_dag_routes_every_commit_through_one_gate_task() -> None:
    from catalog_sync_airflow.factory import build_vendor_dag

    dag = build_vendor_dag(load_vendors()["demo"])
    approve = dag.get_task(APPROVE_TASK)

    assert isinstance(approve, ChangeApprovalGate)
    assert approve.upstream_task_ids == {"process_chunk"}
    assert approve.downstream_task_ids == {"check_deletes"}
    assert approve.ignore_downstream_trigger_rules is True
    assert approve.defaults == [ApprovalOperator.REJECT]
    assert APPROVE_TASK in dag.get_task("commit_chunk").get_flat_relative_ids(upstream=True)
    assert APPROVE_TASK in dag.get_task("report").get_flat_relative_ids(upstream=True)
    # No branch, no skipped twin beside the gate: a run that needs nobody shows no skip.
    assert not any(t.inherits_from_skipmixin for t in dag.tasks if t.task_id != APPROVE_TASK)


def _staged(deletes: int) -> dict[str, Any]:
    ref = ChunkRef(
        chunk_id="c1", vendor="demo", file_name="demo.mrc", file_path="/l/demo.mrc",
        file_sha256="0" * 64, format="iso2709", start=0, end=10, first_record=0,
        record_count=100,
    )  # fmt: skip
    report = ChunkReport(chunk=ref, records_total=100, accepted=100, deletes=deletes, unchanged=70)
    return report.model_dump()


def build_gate_dag(home: Path, deletes: int) -> DAG:
    """The real gate (vendor demo, real state store) between staged changes and a writer."""
    with DAG(
        DAG_ID,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        default_args={"retries": 0},
        params={"dry_run": False, "approve_deletes": False},
    ) as dag:

        @task(task_id="process_chunk")
        def process_chunk() -> list[dict[str, Any]]:
            return [_staged(deletes)]

        @task(task_id="commit_chunk")
        def commit_chunk() -> None:
            (home / "written").write_text("written")

        held = [CatalogSyncNotifier(NoticeKind.NEEDS_APPROVAL, TO)]
        add_approval_gate("demo", process_chunk(), held) >> commit_chunk()
    return dag


DAG_FILE = """# airflow DAG for test_approval (safe-mode parsing wants both words)
import os
from pathlib import Path
from tests.end_to_end.test_approval import build_gate_dag
dag = build_gate_dag(Path(os.environ["GATE_TEST_HOME"]), int(os.environ["GATE_TEST_DELETES"]))
"""


class GateRun:
    """One dag.test() run (main thread: it installs signal handlers) and a person answering
    the gate through Airflow's REST API from another thread."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deletes: int) -> None:
        self.home = tmp_path / "home"
        self.home.mkdir()
        bundle = tmp_path / "bundle"
        bundle.mkdir()
        (bundle / "gate_dag.py").write_text(DAG_FILE)
        bundles = [
            {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}},
            {"name": "gate-test", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(bundle)}},
        ]
        monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
        monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        monkeypatch.setenv("AIRFLOW_VAR_CATALOG_SYNC_HOME", str(self.home))
        monkeypatch.setenv("GATE_TEST_HOME", str(self.home))
        monkeypatch.setenv("GATE_TEST_DELETES", str(deletes))
        self.dag = build_gate_dag(self.home, deletes)
        # Everything both threads touch is imported here first: two threads importing Airflow's
        # models at once deadlock on the import lock.
        import airflow.dag_processing.dagbag
        import airflow.serialization.serialized_objects  # noqa: F401
        from airflow.api_fastapi.app import create_app
        from airflow.models import import_all_models
        from fastapi.testclient import TestClient

        import_all_models()
        self.client = TestClient(create_app())
        self.run_id: str | None = None
        self.answer_status: int | None = None
        self.request_body = ""
        self.written_before_answer: bool | None = None
        self.error: BaseException | None = None

    def task_states(self, run_id: str | None = None) -> dict[str, str | None]:
        """Task states of one run (default: this test's run, once known)."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.execute(
                select(TaskInstance.task_id, TaskInstance.state).where(
                    TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == (run_id or self.run_id)
                )
            ).all()
        return {t: (str(getattr(s, "value", s)) if s is not None else None) for t, s in rows}

    def hitl_requests(self) -> int:
        """Human-in-the-loop requests Airflow holds for this run's tasks."""
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import func, select

        with create_session() as session:
            count = session.scalar(
                select(func.count())
                .select_from(HITLDetail)
                .join(TaskInstance, HITLDetail.ti_id == TaskInstance.id)
                .where(TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == self.run_id)
            )
        return int(count or 0)

    def _waiting_run(self) -> str | None:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        with create_session() as session:
            return session.scalar(
                select(TaskInstance.run_id).where(
                    TaskInstance.dag_id == DAG_ID,
                    TaskInstance.task_id == APPROVE_TASK,
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                )
            )

    def _respond(self, choice: str, timeout: float) -> None:
        try:
            deadline = time.monotonic() + timeout
            while (run_id := self._waiting_run()) is None:
                if time.monotonic() > deadline:
                    raise AssertionError("the gate never asked for a decision")
                time.sleep(0.5)
            self.written_before_answer = (self.home / "written").exists()
            asked = self.client.get(
                f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/"
                f"{APPROVE_TASK}/-1/hitlDetails"
            )
            self.request_body = str(asked.json().get("body", ""))
            response = self.client.patch(
                f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/"
                f"{APPROVE_TASK}/-1/hitlDetails",
                json={"chosen_options": [choice]},
            )
            self.answer_status = response.status_code
        except BaseException as exc:  # re-raised in the test's thread
            self.error = exc

    def run(self, answer: str | None = None, timeout: float = 120) -> Any:
        person = None
        if answer is not None:
            person = threading.Thread(target=self._respond, args=(answer, timeout), daemon=True)
            person.start()
        result = self.dag.test()
        self.run_id = str(result.run_id)
        if person is not None:
            person.join(timeout)
        if self.error is not None:
            raise self.error
        return result


@pytest.mark.slow
@pytest.mark.parametrize(("choice", "written"), [("Approve", True), ("Reject", False)])
def test_over_cap_run_waits_for_a_decision_then_writes_or_stops(
    choice: str,
    written: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    airflow_db: Path,
    inbox: Inbox,  # noqa: F811
) -> None:
    gate = GateRun(tmp_path, monkeypatch, deletes=30)

    run = gate.run(answer=choice)

    mails = inbox.messages()
    assert [m["subject"] for m in mails] == ["[Catalog Sync] demo_gate: run needs approval"]
    assert "delete_cap: 30 deletes over the cap of 2" in inbox.text()

    assert gate.written_before_answer is False  # nothing happens before the decision
    # What the approver reads under Required actions: the run's figures and the rule broken.
    assert "**delete_cap: 30 deletes over the cap of 2**" in gate.request_body
    assert "- creates: 0, updates: 0, deletes: 30" in gate.request_body
    assert gate.answer_status == 200
    states = gate.task_states()
    assert run.state == "success"
    assert states[APPROVE_TASK] == "success"
    assert set(states) == {"process_chunk", APPROVE_TASK, "commit_chunk"}
    assert (gate.home / "written").exists() is written
    assert states["commit_chunk"] == ("success" if written else "skipped")
    assert gate.hitl_requests() == 1


@pytest.mark.slow
def test_run_within_its_caps_goes_straight_through_without_asking(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    airflow_db: Path,
    inbox: Inbox,  # noqa: F811
) -> None:
    gate = GateRun(tmp_path, monkeypatch, deletes=1)

    run = gate.run()

    assert inbox.messages() == []  # nobody is asked

    states = gate.task_states()
    assert run.state == "success"
    # One green gate, nothing skipped, and no request ever written to Required actions.
    assert states == {
        "process_chunk": "success",
        APPROVE_TASK: "success",
        "commit_chunk": "success",
    }
    assert gate.hitl_requests() == 0
    assert (gate.home / "written").exists()
