"""`catalog-sync cluster`: what it says without a Postgres, and with nothing started."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from catalog_sync import deploy
from catalog_sync.cli import main
from catalog_sync.cluster import (
    ClusterError,
    cluster_down,
    cluster_status,
    cluster_up,
    resolve_postgres,
)
from catalog_sync.paths import layout
from catalog_sync.services import free_port


def test_cluster_up_without_a_postgres_url_or_one_answering_says_how_to_give_one() -> None:
    # A loopback port nothing listens on stands in for 127.0.0.1:5432 (the machine's own
    # Postgres is not the test's to probe).
    nobody = ("127.0.0.1", free_port())
    with pytest.raises(ClusterError) as caught:
        resolve_postgres(None, default=nobody)
    message = str(caught.value)
    assert f"nothing answers on 127.0.0.1:{nobody[1]}" in message
    assert "--postgres-url postgresql+psycopg2://" in message
    assert "POSTGRES_URL=" in message


def test_a_given_postgres_url_is_used_as_is() -> None:
    url = "postgresql+psycopg2://u:p@db.example.org/airflow"
    assert resolve_postgres(url, default=("127.0.0.1", free_port())) == url


def test_cluster_status_with_nothing_started_reports_it_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CATALOG_SYNC_HOME", str(tmp_path))
    assert main(["cluster", "status"]) == 1
    out = capsys.readouterr().out
    assert "no cluster components started from this home" in out
    assert "celery workers answering: none" in out


def test_cluster_status_reports_each_component_down_when_its_process_is_gone(
    tmp_path: Path,
) -> None:
    home = layout(tmp_path)
    home.run_dir.mkdir(parents=True)
    # A pid that is certainly not running: a finished child's.
    for name in ("scheduler", "api-server", "worker-w1@h"):
        (home.run_dir / f"airflow-{name}.pid").write_text("999999999 127.0.0.1\n")
    settings = deploy.ClusterSettings(
        postgres_url="postgresql+psycopg2://u@127.0.0.1/airflow",
        redis_url=f"redis://127.0.0.1:{free_port()}",
        api_port=free_port(),
    )
    (home.run_dir / "cluster.json").write_text(
        json.dumps(
            {
                "postgres_url": settings.postgres_url,
                "redis_url": settings.redis_url,
                "api_port": settings.api_port,
            }
        )
    )
    status = cluster_status(home)
    assert status.processes == {"scheduler": False, "api-server": False, "worker-w1@h": False}
    assert not status.up
    assert status.health == {}
    assert status.workers_seen == []
    lines = "\n".join(status.lines())
    assert "scheduler" in lines and "DOWN" in lines


def test_cluster_settings_share_one_broker_and_put_the_state_store_in_its_own_database() -> None:
    s = deploy.ClusterSettings(
        postgres_url="postgresql+psycopg2://airflow:pw@db:5432/airflow",
        redis_url="redis://cache:6379/5",
        api_host="10.0.0.1",
        api_port=9090,
    )
    env = deploy.airflow_settings(s)
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://cache:6379/0"
    assert env["AIRFLOW_VAR_CATALOG_SYNC_REDIS_URL"] == "redis://cache:6379/1"
    assert (
        env["AIRFLOW__CELERY__RESULT_BACKEND"]
        == "db+postgresql+psycopg2://airflow:pw@db:5432/airflow"
    )
    assert env["AIRFLOW_VAR_CATALOG_SYNC_STATE_URL"] == (
        "postgresql+psycopg2://airflow:pw@db:5432/catalog_sync"
    )
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://10.0.0.1:9090/execution/"
    assert env["AIRFLOW__CORE__PARALLELISM"] == str(2 * deploy.WORKER_CONCURRENCY)


def test_secrets_are_made_once_per_home_readable_by_the_owner_only(tmp_path: Path) -> None:
    home = layout(tmp_path)
    s = deploy.ClusterSettings(
        postgres_url="postgresql+psycopg2://u@h/airflow", redis_url="redis://h"
    )
    first, again = deploy.with_secrets(home, s), deploy.with_secrets(home, s)
    assert first.jwt_secret and first.fernet_key
    assert (first.jwt_secret, first.fernet_key) == (again.jwt_secret, again.fernet_key)
    assert (home.root / "airflow" / "jwt.secret").stat().st_mode & 0o777 == 0o600
    given = deploy.with_secrets(home, deploy.ClusterSettings("p", "r", jwt_secret="mine"))
    assert given.jwt_secret == "mine"


def test_a_worker_on_a_host_of_its_own_refuses_to_start_without_the_control_planes_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CATALOG_SYNC_HOME", str(tmp_path))
    argv = ["cluster", "worker", "--redis-url", "redis://127.0.0.1:1",
            "--postgres-url", "postgresql+psycopg2://u@127.0.0.1:1/airflow"]  # fmt: skip
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert "Copy jwt.secret and fernet.key from the control plane" in out
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").glob("airflow-*.pid"))


def test_cluster_up_refuses_to_start_over_a_running_one(tmp_path: Path) -> None:
    home = layout(tmp_path)
    home.run_dir.mkdir(parents=True)
    # This test's own process stands in for a running scheduler.
    (home.run_dir / "airflow-scheduler.pid").write_text(f"{os.getpid()} 127.0.0.1\n")
    s = deploy.ClusterSettings("postgresql+psycopg2://u@127.0.0.1:1/airflow", "redis://h")
    with pytest.raises(ClusterError, match=r"already running .*make cluster-down"):
        cluster_up(home, s)
    assert (home.run_dir / "airflow-scheduler.pid").exists()


def test_a_pid_file_naming_another_process_is_neither_stopped_nor_reported_running(
    tmp_path: Path,
) -> None:
    # The machine restarted and the kernel gave the scheduler's old pid to someone else's
    # process: `cluster down` must not signal it, nor `cluster status` count it as ours.
    home = layout(tmp_path)
    home.run_dir.mkdir(parents=True)
    scheduler = home.run_dir / "airflow-scheduler.pid"
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        scheduler.write_text(f"{stranger.pid} 127.0.0.1\n")
        os.utime(scheduler, (time.time() - 3600, time.time() - 3600))  # before the reboot

        assert cluster_status(home).processes == {"scheduler": False}
        assert cluster_down(home, timeout=1) == []
        assert stranger.poll() is None  # still running: not ours to stop

        # Written just after its process started, as `cluster up` writes it: ours.
        scheduler.write_text(f"{stranger.pid} 127.0.0.1\n")
        assert cluster_status(home).processes == {"scheduler": True}
    finally:
        stranger.kill()
        stranger.wait()
