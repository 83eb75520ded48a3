"""The distributed mode run natively: CeleryExecutor on Postgres with two Celery workers.

Everything is the test's own: a Postgres (initdb in a temporary folder), a Redis and the ILS
emulator on free loopback ports, the control plane in one CATALOG_SYNC_HOME and each worker in
a home of its own. The workers share only Postgres, Redis and the run storage, here a
directory given as storage_url (the netns test puts it on a server of its own).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from celery import Celery

from catalog_sync import deploy
from catalog_sync.cluster import (
    cluster_status,
    ensure_databases,
    start_control_plane,
    start_worker,
    stop_worker,
)
from catalog_sync.devstack import DEMO_DAG, SAMPLE_FILE, LocalServices, lay_demo_file
from catalog_sync.embedded import AirflowStack
from catalog_sync.paths import layout, safe_name
from catalog_sync.services import free_port, session_pids
from tests.production import conftest
from tests.production.conftest import PASSWORD, SAMPLE_RECORDS, USER
from tests.production.harness import (
    AirflowApi,
    Services,
    assert_each_record_written_once,
    intervals,
    peak_overlap,
)
from tests.production.postgres import start_postgres

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

WORKERS = ("w1@catalog-sync-test", "w2@catalog-sync-test")


@pytest.fixture
def postgres() -> Iterator[str]:
    server = start_postgres()
    try:
        yield server.url
    finally:
        server.remove()


def _worker_conf(broker_url: str) -> dict[str, dict[str, object]]:
    """What each running worker's Celery app is configured with (celery inspect conf)."""
    app = Celery(broker=broker_url)
    try:
        return dict(app.control.inspect(timeout=10).conf(with_defaults=False) or {})
    finally:
        app.close()


def _wait_for_workers(broker_url: str, names: tuple[str, ...], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    conf: dict[str, dict[str, object]] = {}
    while time.monotonic() < deadline:
        conf = _worker_conf(broker_url)
        if set(names) <= set(conf):
            return conf
        time.sleep(2)
    raise AssertionError(f"workers {names} not answering after {timeout:.0f} s: {sorted(conf)}")


def test_two_celery_workers_with_their_own_homes_run_the_demo_and_write_each_record_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres: str
) -> None:
    monkeypatch.setenv("CATALOG_SYNC_CONFIG_DIR", str(conftest.test_config(tmp_path / "config")))
    for name in ("REDIS_URL", "CATALOG_SYNC_STATE_URL", "CATALOG_SYNC_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    metadata_url = postgres.rsplit("/", 1)[0] + "/airflow"
    shared = layout(tmp_path / "shared")
    lay_demo_file(shared, SAMPLE_FILE)  # inbox/demo/ of the run storage
    control = layout(tmp_path / "control")
    (control.root / "airflow").mkdir(parents=True)
    # SimpleAuthManager keeps its users' passwords here; a known one lets the test log in.
    (control.root / "airflow" / "simple_auth_manager_passwords.json.generated").write_text(
        json.dumps({USER: PASSWORD})
    )
    services = Services.start(tmp_path / "services")
    stack: AirflowStack | None = None
    workers = []
    try:
        settings = deploy.with_secrets(
            control,
            deploy.ClusterSettings(
                postgres_url=metadata_url,
                redis_url=services.redis.url,
                api_port=free_port(),
                storage_url=f"file://{shared.root}",
            ),
        )
        ensure_databases(settings.postgres_url, settings.effective_state_url)
        extra = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin"}
        stack = start_control_plane(
            control,
            settings,
            services=LocalServices(services.redis.url, services.emulator.url),
            extra_env=extra,
        )
        for n, hostname in enumerate(WORKERS, 1):
            # One host, two log servers: each its own port (distinct hosts use the same one).
            own = replace(settings, worker_log_port=free_port())
            workers.append(start_worker(layout(tmp_path / f"worker{n}"), own, hostname))
        broker = deploy.redis_db(settings.redis_url, 0)
        conf = _wait_for_workers(broker, WORKERS)
        for hostname in WORKERS:
            # The settings really reached each worker's Celery app.
            assert conf[hostname]["worker_max_memory_per_child"] == (
                deploy.WORKER_MAX_MEMORY_PER_CHILD_KB
            )
            assert conf[hostname]["worker_concurrency"] == deploy.WORKER_CONCURRENCY

        status = cluster_status(control)
        assert status.processes == {name: True for name in status.processes}
        assert set(status.processes) == {"api-server", "scheduler", "dag-processor", "triggerer"}
        assert set(status.health.values()) == {"healthy"}
        assert set(WORKERS) <= set(status.workers_seen)

        api = AirflowApi(stack.api_url, USER, PASSWORD)
        api.wait_for_dag(DEMO_DAG)
        api.unpause(DEMO_DAG)
        started = time.monotonic()
        run_id = api.trigger(DEMO_DAG, {"force": True})
        state = api.wait_for_run(DEMO_DAG, run_id, timeout=900)
        wall = time.monotonic() - started
        tis = api.task_instances(DEMO_DAG, run_id)
        assert state == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis]
        committed = intervals(tis, "commit_chunk")
        # Reports are in the run storage, under the run's own folder.
        report = shared.reports / "demo" / safe_name(run_id) / "report.json"
        summary = json.loads(report.read_text())["summary"]
        assert (summary["records"], summary["created"], summary["failed"]) == (
            SAMPLE_RECORDS,
            SAMPLE_RECORDS,
            0,
        )
        assert_each_record_written_once(services.ils, SAMPLE_RECORDS)
        # Both workers took tasks: each one's log shows tasks it received and finished.
        for n, hostname in enumerate(WORKERS, 1):
            log = tmp_path / f"worker{n}/airflow/logs/components/worker-{hostname}.log"
            assert "succeeded" in log.read_text(errors="replace"), f"{hostname} ran no task"
        # Stopping a worker ends every process it started, task processes included.
        for proc in workers:
            stop_worker(proc)
            assert session_pids(proc.pid) == []
        print(
            f"\ncluster run wall time {wall:.0f} s, {len(committed)} chunks, "
            f"commit_chunk peak {peak_overlap(committed)}"
        )
    finally:
        for proc in workers:
            stop_worker(proc)
        if stack is not None:
            stack.stop()
        services.stop()
