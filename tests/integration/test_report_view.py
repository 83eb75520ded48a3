"""Run report page: mounted in the API server, linked per run, read in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from catalog_sync.models import ChunkRef, ChunkReport, CommitReport, LandingFile
from catalog_sync.paths import layout
from catalog_sync.pipeline.report import write_report
from catalog_sync.services import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_ID = "scheduled__2026-11-30T07:00:00+00:00"
FILE = "demo_20261130.mrc"
SHA = "ab" * 32


def _chunk(i: int, per: int) -> ChunkRef:
    return ChunkRef(
        chunk_id=f"c{i:019d}", vendor="demo", file_name=FILE, file_path=f"/landing/{SHA}/{FILE}",
        file_sha256=SHA, format="iso2709", start=i * 1000, end=(i + 1) * 1000,
        first_record=i * per, record_count=per,
    )  # fmt: skip


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A runtime folder holding one run's report, written by the report stage's own writer."""
    root = tmp_path / "home"
    per = 250
    chunks = [
        ChunkReport(chunk=_chunk(0, per), records_total=250, accepted=247, rejected=3,
                    reasons={"leader_invalid": 2, "field_001_missing": 1},
                    warnings={"nfc_normalized": 12}, creates=40, updates=7, unchanged=200),
        ChunkReport(chunk=_chunk(1, per), records_total=250, accepted=250, creates=5,
                    updates=30, deletes=2, unchanged=213),
    ]  # fmt: skip
    commits = [
        CommitReport(chunk_id=chunks[0].chunk_id, created=40, updated=6, failed=1,
                     failures={"ils_rejected": 1}, unchanged=200, drifted=2),
        CommitReport(chunk_id=chunks[1].chunk_id, created=5, updated=30, deleted=2,
                     unchanged=213),
    ]  # fmt: skip
    landed = LandingFile(
        vendor="demo", name=FILE, path=f"/landing/{SHA}/{FILE}", sha256=SHA, size=391_000,
        format="iso2709",
    )  # fmt: skip
    write_report(layout(root), "demo", RUN_ID, [landed], chunks, commits)
    monkeypatch.setenv("AIRFLOW_VAR_CATALOG_SYNC_HOME", str(root))
    return root


READER, READER_PASSWORD = "reader", "test-only-reader-password"


@pytest.fixture
def reader(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A viewer of Airflow's SimpleAuthManager with a known password (the test's own home)."""
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", f"{READER}:viewer")
    passwords = airflow_db / "simple_auth_manager_passwords.json.generated"
    passwords.write_text(json.dumps({READER: READER_PASSWORD}))
    return airflow_db


@pytest.fixture
def api_server(home: Path, reader: Path, tmp_path: Path) -> Iterator[str]:
    """`airflow api-server` in its own process on a free port, with the plugin loaded."""
    port = free_port()
    log = (tmp_path / "api-server.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "airflow"), "api-server", "--port", str(port),
         "--host", "127.0.0.1", "--workers", "1"],
        env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a cold start imports all of Airflow on 2 cores
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "api-server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("airflow api-server did not answer /api/v2/monitor/health in 180 s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def report_server(home: Path) -> Iterator[str]:
    """The plugin's FastAPI app on a real loopback port, outside Airflow: the page alone.

    Who may read it is Airflow's auth manager's call, tested through a real API server below;
    here that dependency is lifted so the page renders without Airflow's metadata DB.
    """
    from catalog_sync_airflow.report_view import create_report_app, read_dag_run

    port = free_port()
    app = create_report_app()
    app.dependency_overrides[read_dag_run] = lambda: None
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "report server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium not installed (apt-get install chromium)"
)


@needs_chromium
def test_run_report_page_renders_in_chromium_with_counts_reasons_and_charts(
    report_server: str, tmp_path: Path
) -> None:
    url = f"{report_server}/runs/catalog_sync_demo/{RUN_ID}"
    screenshot = tmp_path / "run-report.png"

    shot = chromium(tmp_path, "--window-size=1000,2200", f"--screenshot={screenshot}", url)
    dom = chromium(tmp_path, "--dump-dom", url)

    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # a rendered page, not a blank one
    keep = Path("/tmp/catalog-sync-run-report.png")
    shutil.copyfile(screenshot, keep)  # for a human to look at after the run
    page = dom.stdout
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Catalog Sync run report" in page
    assert RUN_ID in page
    assert "records 251\u2013500" in page  # chunk labels as the Airflow UI shows them
    assert "leader_invalid" in page and "field_001_missing" in page
    assert "ils_rejected" in page
    assert "2 record(s) had been edited in the ILS" in page
    assert page.count('<svg class="chart"') >= 4
    assert "changes written" in page and ">83<" in page  # 45 created + 36 updated + 2 deleted
    assert "/landing/" not in page  # no server paths in a page people share


def test_report_page_is_mounted_in_airflows_api_server_and_linked_from_each_run(
    home: Path, reader: Path
) -> None:
    from airflow import plugins_manager
    from airflow.api_fastapi.app import create_app

    info = plugins_manager.get_plugin_info(attrs_to_dump=["external_views", "fastapi_apps"])
    ours = next(p for p in info if p["name"] == "catalog_sync")
    views = [v for v in ours["external_views"] if v["name"] == "Run report"]
    client = TestClient(create_app())
    token = client.post("/auth/token", json={"username": READER, "password": READER_PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    response = client.get(f"/catalog-sync/runs/catalog_sync_demo/{RUN_ID}", headers=headers)

    assert views and views[0]["destination"] == "dag_run"
    assert views[0]["href"] == "/catalog-sync/runs/{DAG_ID}/{RUN_ID}"
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert FILE in response.text


@pytest.mark.parametrize(
    ("dag_id", "run_id"),
    [
        ("catalog_sync_demo", "manual__never-ran"),
        ("catalog_sync_unknown", RUN_ID),
        ("other_dag", RUN_ID),
        ("catalog_sync_demo", "..%2F..%2Fetc"),
    ],
)
def test_report_page_answers_404_for_anything_but_a_written_vendor_run(
    report_server: str, dag_id: str, run_id: str
) -> None:
    response = httpx.get(f"{report_server}/runs/{dag_id}/{run_id}", timeout=10)

    assert response.status_code == 404


def test_report_page_needs_an_airflow_login_with_read_access_to_the_dag(api_server: str) -> None:
    page = f"{api_server}/catalog-sync/runs/catalog_sync_demo/{RUN_ID}"
    token = httpx.post(
        f"{api_server}/auth/token",
        json={"username": READER, "password": READER_PASSWORD},
        timeout=30,
    ).json()["access_token"]

    anonymous = httpx.get(page, timeout=30)
    forged = httpx.get(page, headers={"Authorization": "Bearer not-a-token"}, timeout=30)
    described = [
        httpx.get(f"{api_server}/catalog-sync/{path}", timeout=30).status_code
        for path in ("docs", "redoc", "openapi.json")
    ]
    by_header = httpx.get(page, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    by_cookie = httpx.get(page, cookies={"_token": token}, timeout=30)  # the UI's session

    assert httpx.get(f"{api_server}/api/v2/dags", timeout=30).status_code == 401
    assert anonymous.status_code == 401 and FILE not in anonymous.text
    assert forged.status_code in (401, 403) and FILE not in forged.text
    assert all(status in (401, 404) for status in described), described
    assert by_header.status_code == 200 and FILE in by_header.text
    assert by_cookie.status_code == 200 and FILE in by_cookie.text
