"""Commit tasks run in their ILS's pool, and every deployment provisions pools from vendors.yaml."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from airflow.dag_processing.dagbag import DagBag

from catalog_sync.config import load_ils_connections, load_vendors, pool_specs

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return DagBag(dag_folder=str(REPO / "dags"))


def _init_script() -> str:
    spec = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    return "\n".join(spec["services"]["airflow-init"]["command"])


def test_every_vendor_dag_commits_only_inside_its_ils_pool(bag: DagBag) -> None:
    vendors = load_vendors()
    pools = pool_specs()
    checked = 0
    for name, vendor in vendors.items():
        dag = bag.dags[f"catalog_sync_{name}"]
        writers = [t for t in dag.tasks if t.task_id.startswith("commit")]
        assert writers, f"{dag.dag_id} has no commit task"
        for t in writers:
            assert t.pool == vendor.ils_conn_id, f"{dag.dag_id}.{t.task_id} in pool {t.pool}"
            assert t.pool in pools
            assert t.pool_slots == 1
            checked += 1
    assert checked >= len(vendors)


def test_pool_sizes_are_the_configured_safe_concurrency_of_each_ils() -> None:
    pools = pool_specs()
    assert {n: p["slots"] for n, p in pools.items()} == {
        n: c.pool_slots for n, c in load_ils_connections().items()
    }
    assert all(p["include_deferred"] is False for p in pools.values())


def test_compose_init_provisions_pools_from_the_same_config_not_hard_coded_names() -> None:
    script = _init_script()

    assert "pool_specs" in script
    assert "airflow pools import" in script
    for name in pool_specs():
        assert f"pools set {name}" not in script


@pytest.mark.slow
def test_compose_init_pool_command_prints_what_airflow_imports(
    airflow_db: Path, tmp_path: Path
) -> None:
    """The compose file's own `python -c` line, its output imported into a real Airflow DB."""
    line = next(x for x in _init_script().splitlines() if x.strip().startswith("python -c"))
    argv = shlex.split(line.split(">")[0])
    env = dict(os.environ, PYTHONPATH=str(REPO / "include"))
    printed = subprocess.run(
        [sys.executable, *argv[1:]], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(printed) == pool_specs()

    pools_json = tmp_path / "pools.json"
    pools_json.write_text(printed)
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "pools", "import", str(pools_json)], check=True, capture_output=True)
    listed = subprocess.run(
        [airflow, "pools", "list", "-o", "json"], check=True, capture_output=True, text=True
    ).stdout
    rows = json.loads(listed[listed.index("[") :])
    slots = {r["pool"]: int(r["slots"]) for r in rows}
    for name, spec in pool_specs().items():
        assert slots[name] == spec["slots"]
