"""Our share of an Airflow task process's start-up, as the LocalExecutor starts one.

A LocalExecutor worker is forked from the scheduler and forks each task process in turn (Linux),
so the task process already holds Airflow's own imports. This probe imports what such a worker
holds, then forks children that each do what a commit_chunk task does of ours before its first
ILS request: parse the vendor DAG file (with Airflow's parsing context naming the task's DAG),
import the commit stack, load vendors.yaml and the PII policy, open the state store. It prints
each stage's median seconds. What is Airflow's (its task runner, the execution API round trips
for Variables and Connections) and the ILS's is left out: see results/2026-12-01-startup.

    .venv/bin/python bench/task_startup.py --runs 7      # PYTHONPATH as the Makefile sets it
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PARENT_HOLDS = (
    "airflow.executors.local_executor",
    "airflow.jobs.scheduler_job_runner",
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.dag_processing.dagbag",
)
STAGES = ("dag parse", "+ commit imports", "+ vendors, PII policy, state store")


def _child(state_url: str, dag_id: str) -> tuple[float, ...]:
    """One task process's stages, cumulative seconds from its start."""
    os.environ["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = dag_id  # as Airflow's task runner sets it
    start = time.perf_counter()
    import catalog_sync_vendors  # noqa: F401

    parsed = time.perf_counter() - start
    import catalog_sync.ils.koha  # noqa: F401
    from catalog_sync.leases import LeaseManager  # noqa: F401
    from catalog_sync.pipeline.stored import commit_stored_chunk  # noqa: F401
    from ils.hooks import ILSHook  # noqa: F401

    imported = time.perf_counter() - start
    from catalog_sync.changes.state import StateStore
    from catalog_sync.config import load_vendors
    from catalog_sync.privacy import Masker, load_policy

    load_vendors()
    Masker(load_policy(), b"k" * 32)
    StateStore(state_url).close()
    return parsed, imported, time.perf_counter() - start


def _fork(state_url: str, dag_id: str) -> tuple[float, ...]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the task process: never returns into the parent's loop
        code = 1
        try:
            os.close(read)
            os.write(write, " ".join(map(str, _child(state_url, dag_id))).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise SystemExit(f"the task process failed (status {status}); its error is above")
    return tuple(float(x) for x in text.split())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--dag-id", default="catalog_sync_demo")
    args = ap.parse_args(argv)
    # What a LocalExecutor worker already holds when it forks a task process, and the DagBag
    # that the task runner imports before it parses our file: Airflow's, not ours.
    for module in PARENT_HOLDS:
        importlib.import_module(module)

    with tempfile.TemporaryDirectory() as tmp:
        state_url = f"sqlite:///{Path(tmp) / 'state.db'}"
        _fork(state_url, args.dag_id)  # migrates the new store: every later open finds it at head
        rows = [_fork(state_url, args.dag_id) for _ in range(args.runs)]
    load = os.getloadavg()[0]
    for i, name in enumerate(STAGES):
        values = [row[i] for row in rows]
        runs = " ".join(f"{v:.2f}" for v in values)
        print(f"{name:36s} median {statistics.median(values):.3f} s  ({runs})")
    print(f"runs {args.runs}, load average {load:.2f}, python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
