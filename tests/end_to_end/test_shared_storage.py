"""catalog_sync_demo with its run storage on a real SFTP server: every run file lives there."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pymarc
import pytest
from fastapi.testclient import TestClient

from catalog_sync.paths import REPO_ROOT, safe_name
from catalog_sync.pipeline.report import latest_report_key
from tests.end_to_end.harness import DemoRun
from tests.privacy_canaries import find_canaries, plant_canaries
from tests.sftp_storage import CONN_ID, SftpStore, deliver

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"


def test_a_demo_run_on_sftp_storage_keeps_its_files_there_and_the_report_page_reads_them(
    demo: DemoRun,
    sftp_store: SftpStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CATALOG_SYNC_STORAGE_URL", sftp_store.url)
    monkeypatch.setenv("AIRFLOW_VAR_CATALOG_SYNC_STORAGE_CONN_ID", CONN_ID)
    with SAMPLE.open("rb") as fh:
        originals = list(itertools.islice(pymarc.MARCReader(fh, to_unicode=True), 40))
    broken, broken_canaries = plant_canaries(originals[:2], prefix="QZREJECT")
    for record in broken:
        record.remove_fields("245")  # rejected: masked into the reject file
    loaded, canaries = plant_canaries(originals[2:])
    deliver(sftp_store, broken + loaded, "canaries.mrc")  # the inbox is in the shared storage

    run = demo.run()
    out, err = capfd.readouterr()

    assert run.state == "success"
    run_dir = f"demo/{safe_name(run.run_id)}"
    key = latest_report_key(sftp_store.worker(tmp_path / "reader"), "demo")
    assert key == f"reports/{run_dir}"
    summary = json.loads((sftp_store.root / key / "report.json").read_text())["summary"]
    assert (summary["records"], summary["rejected"], summary["created"]) == (40, 2, 38)
    (landed,) = sftp_store.stored("landing")
    assert landed.startswith("landing/demo/") and landed.endswith("/canaries.mrc")
    (staged,) = sftp_store.stored("staging")
    assert staged.startswith(f"staging/{run_dir}/")
    assert [Path(k).suffix for k in sftp_store.stored("rejects")] == [".rej", ".jsonl"]
    reports = {Path(k).name for k in sftp_store.stored(f"reports/{run_dir}")}
    assert {"report.json", "report.txt", "manifest.json"} <= reports
    assert len(sftp_store.stored(f"reports/{run_dir}/diffs")) == 1
    audited = {Path(k).name.split(".")[0] for k in sftp_store.stored(f"audit/{run_dir}")}
    assert {"fetch", "process_chunk", "report"} <= audited
    # The worker kept no run output of its own, only its verified copy of the landing file.
    left = [p for p in demo.home.rglob("*") if p.is_file() and "inbox" not in p.parts]
    state_db = [p for p in left if p.name.startswith("state.db")]  # the SQLite state store
    assert [p.relative_to(demo.home).as_posix() for p in left if p not in state_db] == [landed]

    # The report page (API server: no disk shared with workers) reads the stored report.
    # The page alone: who may read it is the auth manager's call (tests/integration/
    # test_report_view.py), lifted here.
    from catalog_sync_airflow.report_view import create_report_app, read_dag_run

    app = create_report_app()
    app.dependency_overrides[read_dag_run] = lambda: None
    page = TestClient(app).get(f"/runs/catalog_sync_demo/{run.run_id}")
    assert page.status_code == 200 and "canaries.mrc" in page.text

    # No PII in anything the run left, in the storage or on the worker (deliveries aside).
    stored_left = [p for p in sftp_store.root.iterdir() if p.name not in ("inbox", "landing")]
    local_left = [p for p in demo.home.iterdir() if p.name not in ("inbox", "landing")]
    task_output = tmp_path / "task-output.txt"
    task_output.write_text(out + err)
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    scanned = [*stored_left, *local_left, airflow_home, task_output]
    assert find_canaries(scanned, canaries + broken_canaries) == []
    emulator_files = list(demo.emulator_db.parent.glob(demo.emulator_db.name + "*"))
    received = {value for _, value in find_canaries(emulator_files, canaries.ils_values)}
    assert received == set(canaries.ils_values)
