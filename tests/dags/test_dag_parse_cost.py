"""What every task process pays before its work: parsing the DAG file imports no delivery client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Loaded by fetch alone; in a task's DAG parse, paramiko was over a third of its start-up under
# load (bench/results/2026-12-01-throughput), paid again by every commit_chunk task.
FETCH_ONLY = ("paramiko", "catalog_sync.delivery.sftp", "catalog_sync.delivery.https")
# Needed only to migrate a state store that is behind (bench/results/2026-12-01-startup).
MIGRATION_ONLY = ("alembic", "mako")


def _loaded_after_parse(tmp_path: Path, modules: tuple[str, ...], dag_id: str = "") -> str:
    """Which of `modules` a fresh process holds after importing the vendor DAG file."""
    probe = (
        "import sys, catalog_sync_vendors\n"
        f"print(','.join(m for m in {modules!r} if m in sys.modules))\n"
        "dags = sorted(n for n in vars(catalog_sync_vendors) if n.startswith('catalog_'))\n"
        "print(','.join(dags))\n"
    )
    paths = [REPO / "include", REPO / "plugins", REPO / "dags"]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(str(p) for p in paths),
        CATALOG_SYNC_HOME=str(tmp_path),
    )
    if dag_id:  # what Airflow's task runner sets while a task process parses the file
        env["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = dag_id
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_parsing_the_vendor_dag_file_leaves_the_sftp_and_https_clients_unloaded(
    tmp_path: Path,
) -> None:
    assert _loaded_after_parse(tmp_path, FETCH_ONLY).splitlines()[0] == ""


def test_parsing_the_vendor_dag_file_leaves_alembic_unloaded(tmp_path: Path) -> None:
    assert _loaded_after_parse(tmp_path, MIGRATION_ONLY).splitlines()[0] == ""


def test_a_task_process_builds_only_the_dag_of_its_task(tmp_path: Path) -> None:
    built = _loaded_after_parse(tmp_path, (), dag_id="catalog_sync_demo").splitlines()[1]
    assert built == "catalog_sync_demo"
    every = _loaded_after_parse(tmp_path, ()).splitlines()[1].split(",")
    assert {"catalog_sync_demo", "catalog_sync_demo_folio", "catalog_sync_retention"} <= set(every)
