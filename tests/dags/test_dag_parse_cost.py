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


def test_parsing_the_vendor_dag_file_leaves_the_sftp_and_https_clients_unloaded(
    tmp_path: Path,
) -> None:
    probe = (
        "import sys, catalog_sync_vendors\n"
        f"print(','.join(m for m in {FETCH_ONLY!r} if m in sys.modules))\n"
    )
    paths = [REPO / "include", REPO / "plugins", REPO / "dags"]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(str(p) for p in paths),
        CATALOG_SYNC_HOME=str(tmp_path),
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""
