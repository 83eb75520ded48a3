"""docker-compose.yaml is a valid Compose file that describes the distributed deployment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from catalog_sync import compose, deploy

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yaml"


def test_compose_file_validates_against_the_compose_spec_schema() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_celery_with_two_workers_and_every_airflow_component() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    commands = {name: str(svc.get("command", "")) for name, svc in services.items()}
    assert {"postgres", "redis", "emulator"} <= set(services)
    for component in ("scheduler", "dag-processor", "api-server", "triggerer"):
        assert component in commands.values(), f"no service runs airflow {component}"
    workers = [
        n for n, svc in services.items() if svc.get("command", [])[:2] == ["celery", "worker"]
    ]
    assert len(workers) == 2
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis")


def test_compose_mounts_include_and_makes_it_importable() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    worker = spec["services"]["airflow-worker-1"]
    assert "./include:/opt/airflow/include" in worker["volumes"]
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text()
    assert "/opt/airflow/include" in dockerfile.split("PYTHONPATH=")[1]


def test_committed_compose_file_is_what_cluster_compose_generates() -> None:
    assert COMPOSE.read_text() == compose.render(), (
        "docker-compose.yaml differs from deploy.py: run `catalog-sync cluster compose --write`"
    )


def test_every_service_has_cpu_and_memory_limits() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name, svc in services.items():
        limits = svc["deploy"]["resources"]["limits"]
        assert limits["cpus"] > 0, name
        assert str(limits["memory"])[-1] in "mg", name


def test_compose_workers_run_the_native_clusters_worker_command_and_settings() -> None:
    """Same function, same values: the native cluster's worker argv and Celery settings."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    native = deploy.airflow_settings(compose.SETTINGS)
    for name in ("airflow-worker-1", "airflow-worker-2"):
        worker = services[name]
        assert worker["command"] == deploy.worker_argv(compose.SETTINGS, f"{name}@%h")[1:]
        env = worker["environment"]
        for key in (
            "AIRFLOW__CELERY__WORKER_CONCURRENCY",
            "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG",
            "AIRFLOW__CELERY__BROKER_URL",
            "AIRFLOW__CELERY__RESULT_BACKEND",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        ):
            assert env[key] == native[key], key
    extra = json.loads(native["AIRFLOW__CELERY__EXTRA_CELERY_CONFIG"])
    assert extra["worker_max_memory_per_child"] == deploy.WORKER_MAX_MEMORY_PER_CHILD_KB
    assert native["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == str(deploy.WORKER_CONCURRENCY)
    assert services["airflow-worker-1"]["deploy"]["resources"]["limits"] == {
        "cpus": deploy.LIMITS["airflow-worker"].cpus,
        "memory": deploy.LIMITS["airflow-worker"].memory,
    }
