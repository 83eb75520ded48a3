"""A failed run's "Run report" tab says which tasks failed and where their logs are."""

from __future__ import annotations

import json
import os
import shutil
from html.parser import HTMLParser

import pytest

from catalog_sync.config import load_vendors
from catalog_sync.paths import REPO_ROOT, layout
from catalog_sync.pipeline.report import write_report
from tests.end_to_end.harness import DemoRun

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
DAG_ID = "catalog_sync_demo"


class Rows(HTMLParser):
    """Cells of the page's failed-task table and the links in it."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.links: list[str] = []
        self._in_failed = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self._in_failed = ("id", "failed") in attrs
        if not self._in_failed:
            return
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []
        elif tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_failed_run_page_names_each_failed_chunk_its_try_and_its_log(
    demo: DemoRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    from catalog_sync_airflow.factory import build_vendor_dag

    # Wrong ILS credentials: every commit_chunk fails at once (no retries for auth errors).
    connection = json.loads(os.environ["AIRFLOW_CONN_ILS_DEFAULT"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_ILS_DEFAULT", json.dumps({**connection, "password": "not-the-password"})
    )
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example.org:8080")
    shutil.copy(SAMPLE, demo.inbox / SAMPLE.name)
    run = build_vendor_dag(load_vendors()["demo"]).test(run_conf={"force": True})
    assert run.state == "failed"

    page = TestClient(create_app()).get(f"/catalog-sync/runs/{DAG_ID}/{run.run_id}")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "This run failed: 4 task(s) failed" in page.text
    assert "No run report was written" in page.text
    table = Rows()
    table.feed(page.text)
    rows = sorted(table.rows[1:] if table.rows and not table.rows[0] else table.rows)
    assert [r[:4] for r in rows] == [
        ["commit_chunk", str(i), f"loc-books-2016-part01-first1000.mrc records {a}\u2013{b}", "1"]
        for i, (a, b) in enumerate([("1", "250"), ("251", "500"), ("501", "750"), ("751", "1,000")])
    ]
    run_path = run.run_id.replace(":", "%3A").replace("+", "%2B")
    assert sorted(table.links) == [
        f"http://airflow.example.org:8080/dags/{DAG_ID}/runs/{run_path}/tasks/commit_chunk"
        f"/mapped/{i}?try_number=1"
        for i in range(4)
    ]
    assert "Not run because an upstream task failed: report" in page.text
    # The vendor has recipients but this Airflow has no mail server: the page says so.
    assert "notices are not sent: there is no Airflow Connection &#x27;smtp_default&#x27;" in (
        page.text
    )
    assert "detail" not in page.text  # not the raw JSON error of old

    # A report written before tasks failed (a cleared chunk whose re-run failed) keeps its
    # numbers, and the failed tasks show above them.
    write_report(layout(demo.home), "demo", run.run_id, [], [], [])
    page = TestClient(create_app()).get(f"/catalog-sync/runs/{DAG_ID}/{run.run_id}")
    assert page.status_code == 200
    assert 'id="failed"' in page.text and page.text.count("log of try 1") == 4
    assert "Records through the stages" in page.text


def test_report_tab_of_an_unknown_run_is_a_404(
    demo: DemoRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    # Logged in (the page is behind Airflow's auth), so the answer is about the run itself.
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")

    page = TestClient(create_app()).get(f"/catalog-sync/runs/{DAG_ID}/manual__never-ran")

    assert page.status_code == 404
