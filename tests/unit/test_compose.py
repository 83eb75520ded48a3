"""docker-compose.yaml is a valid Compose file that describes the distributed deployment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

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
    workers = [n for n, c in commands.items() if c == "celery worker"]
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
