"""The real pipeline into FOLIO: `airflow dags test catalog_sync_demo_folio` on N BooksAll records.

Unlike bench/folio_initial_load.py (the FolioClient's batch calls alone), this runs the whole
DAG as `make demo ILS=folio` does (fetch, split, process_chunk, approve, commit_chunk through
ILSHook -> FolioAdapter, report), in its own CATALOG_SYNC_HOME under bench/cache, with a
private Redis and a FOLIO emulator. The emulator refuses more than --rate requests/s (429) and
the ils_folio Connection's client gate (shared through Redis) is set to the same rate, so the
commit tasks together must keep under it: the scarce resource of a hosted FOLIO.

The figure beside it: FOLIO Data Import, 250,000 records in 1 h 32 min (45.3 records/s).
Reported: wall time of the DAG run, of the commit tasks, records/s, the run report's requests
per written record, the emulator's counters (429s included) and the machine's load. Example:

    .venv/bin/python bench/folio_pipeline.py --records 20000 --rate 10 \\
        --out bench/results/2026-12-01-folio-pipeline/initial-20k.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from catalog_sync.devstack import (
    FOLIO_CONNECTION,
    FOLIO_VENDOR,
    LocalServices,
    ils_connections,
    import_connections,
    lay_demo_file,
    prepare_airflow,
    provision,
)
from catalog_sync.paths import RuntimeLayout
from catalog_sync.services import free_port, start_emulator, start_redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # tests.production.harness
from corpus import CACHE, full_file, take_records, with_changes
from e2e import _environ, bench_config, fresh_home, run_dag_measured

FOLIO_DAG = "catalog_sync_demo_folio"
CHANGE_EVERY = 20  # the daily run revises 5% of the records
DATA_IMPORT_RECORDS_PER_S = 250_000 / (92 * 60)


def _counters(url: str) -> dict[str, int]:
    return dict(httpx.get(f"{url}/_emulator/counters", timeout=30).json())


def _folio_rate(layout: RuntimeLayout, services: LocalServices, rate: float, conc: int) -> None:
    """The FOLIO Connection with the client gate at `rate` (provision sets none for FOLIO)."""
    connections = ils_connections(services)
    extra = json.loads(connections[FOLIO_CONNECTION]["extra"])
    extra.update(rate_limit=rate, max_concurrency=conc)
    connections[FOLIO_CONNECTION]["extra"] = json.dumps(extra)
    import_connections(layout, {FOLIO_CONNECTION: connections[FOLIO_CONNECTION]})


def _under_scheduler(
    layout: RuntimeLayout, services: LocalServices, timeout: float
) -> dict[str, Any]:
    """One triggered run under the embedded scheduler (LocalExecutor: commit tasks in parallel,
    up to the ILS pool's slots), measured from the API's task instances as bench/production.py
    does: wall from queueing to end, commit_chunk seconds summed and the commits' window."""
    from tests.production.harness import AirflowApi

    from catalog_sync.embedded import embedded_parallelism, start_airflow
    from prodmetrics import _epoch
    from production import PASSWORD, USER, login_file

    stack = start_airflow(layout, free_port(), services, extra_env=login_file(layout))
    try:
        api = AirflowApi(stack.api_url, USER, PASSWORD)
        api.wait_for_dag(FOLIO_DAG)
        api.unpause(FOLIO_DAG)
        run_id = api.trigger(FOLIO_DAG, {"force": True})
        state = api.wait_for_run(FOLIO_DAG, run_id, timeout)
        dag_run = api._call("GET", f"/dags/{FOLIO_DAG}/dagRuns/{run_id}")
        tis = api.task_instances(FOLIO_DAG, run_id)
    finally:
        stack.stop()
    tasks: dict[str, dict[str, float]] = {}
    commits: list[tuple[float, float]] = []
    for ti in tis:
        start, end = _epoch(ti["start_date"]), _epoch(ti["end_date"])
        if not (start and end):
            continue
        entry = tasks.setdefault(ti["task_id"], {"runs": 0, "seconds": 0.0})
        entry["runs"] += 1
        entry["seconds"] = round(entry["seconds"] + end - start, 2)
        if ti["task_id"] == "commit_chunk":
            commits.append((start, end))
    report = layout.reports / FOLIO_VENDOR / "latest" / "report.json"
    body = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else {}
    return {
        "label": "initial",
        "returncode": 0 if state == "success" else 1,
        "state": state,
        "wall_s": round(
            (_epoch(dag_run["end_date"]) or 0.0) - (_epoch(dag_run["queued_at"]) or 0.0), 2
        ),
        "tasks": tasks,
        "commit_window_s": round(max(e for _, e in commits) - min(s for s, _ in commits), 2)
        if commits
        else None,
        "commit_tasks_at_once_max": max(
            sum(1 for s2, e2 in commits if s2 <= s < e2) for s, _ in commits
        )
        if commits
        else 0,
        "parallelism": embedded_parallelism(),
        "report_summary": body.get("summary", {}),
        "requests_per_written_record": body.get("requests_per_written_record", {}),
    }


def _daily_run(
    layout: RuntimeLayout, folio_url: str, source: Path, changed: Path, timeout: float
) -> dict[str, Any]:
    """`dags test` of the file again with every 20th record revised, on the loaded FOLIO."""
    revised = with_changes(source, changed, CHANGE_EVERY)
    lay_demo_file(layout, changed, FOLIO_VENDOR)
    before = _counters(folio_url)
    measure = run_dag_measured(layout, "daily", timeout, FOLIO_DAG, FOLIO_VENDOR)
    measure.counters_before = before
    measure.counters_after = _counters(folio_url)
    summary = measure.summary()
    wall = summary["wall_s"]
    return {
        "revised_records": revised,
        "wall_s": wall,
        "records_per_s_wall": round(_count(source) / wall, 1) if wall else None,
        "run": summary,
    }


def _count(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(block.count(b"\x1d") for block in iter(lambda: fh.read(1 << 22), b""))


def run(
    records: int,
    rate: float,
    chunk: int,
    home: Path,
    timeout: float,
    scheduler: bool = False,
    daily: bool = False,
    note: str = "",
) -> dict[str, Any]:
    mode = "the embedded scheduler (LocalExecutor)" if scheduler else "`airflow dags test`"
    source = take_records(full_file(), records, CACHE / "slices" / f"booksall-{records}.mrc")
    fresh_home(home)
    layout = RuntimeLayout(home.resolve())
    config = bench_config(layout.root, chunk)
    # bench_config sets the Koha demo vendor's chunk size; the FOLIO vendor's is set here.
    vendors = config / "vendors.yaml"
    doc = yaml.safe_load(vendors.read_text(encoding="utf-8"))
    doc["vendors"][FOLIO_VENDOR]["records_per_chunk"] = chunk
    vendors.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    env = {"CATALOG_SYNC_HOME": str(layout.root), "CATALOG_SYNC_CONFIG_DIR": str(config)}
    load_before = os.getloadavg()
    daily_summary: dict[str, Any] | None = None
    with _environ(**env):
        os.environ.pop("REDIS_URL", None)  # a private Redis: others' tests share 6379
        redis = start_redis(layout.run_dir)
        folio = start_emulator(
            layout.run_dir,
            port=free_port(),
            db=layout.root / "emulator-folio.db",
            extra_args=["--flavour", "folio", "--rate-limit", str(rate)],
        )
        try:
            services = LocalServices(redis.url, folio.url, folio.url)
            prepare_airflow(layout)
            provision(layout, services)
            _folio_rate(layout, services, rate, 8)
            lay_demo_file(layout, source, FOLIO_VENDOR)
            before = _counters(folio.url)
            if scheduler:
                summary = _under_scheduler(layout, services, timeout)
                summary["emulator_counters"] = {
                    k: v - before.get(k, 0) for k, v in _counters(folio.url).items()
                }
            else:
                measure = run_dag_measured(layout, "initial", timeout, FOLIO_DAG, FOLIO_VENDOR)
                measure.counters_before = before
                measure.counters_after = _counters(folio.url)
                summary = measure.summary()
            if daily:  # the same file again, 5% changed: bounded by the changed records alone
                changed = CACHE / "slices" / f"booksall-{records}-changed.mrc"
                daily_summary = _daily_run(layout, folio.url, source, changed, timeout)
        finally:
            folio.stop()
            redis.stop()
    commit_s = summary["tasks"].get("commit_chunk", {}).get("seconds", 0.0)
    created = int(summary["report_summary"].get("created", 0))
    wall = summary["wall_s"]
    return {
        "what": f"catalog_sync_demo_folio under {mode}, initial load (all creates)",
        "source": f"{source.name} (first {records} records of BooksAll.2016.part01.utf8)",
        "records": records,
        "records_per_chunk": chunk,
        "rate_limit_rps": rate,
        "wall_s": wall,
        "commit_tasks_s_summed": commit_s,
        "records_per_s_wall": round(created / wall, 1) if wall else None,
        "data_import_records_per_s": round(DATA_IMPORT_RECORDS_PER_S, 1),
        "ratio_to_data_import_wall": round(created / wall / DATA_IMPORT_RECORDS_PER_S, 1)
        if wall
        else None,
        "projected_250k_wall_s_at_this_rate": round(250_000 / (created / wall), 0)
        if created
        else None,
        "run": summary,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "note": note,
        },
        "daily": daily_summary,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=10.0, help="FOLIO requests/s (429 above)")
    ap.add_argument("--records-per-chunk", type=int, default=2000)
    ap.add_argument("--home", type=Path, default=CACHE / "folio-pipeline")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--scheduler",
        action="store_true",
        help="trigger under the embedded scheduler (commit tasks in parallel), not dags test",
    )
    ap.add_argument(
        "--daily", action="store_true", help="then the same file with 5%% changed (dags test)"
    )
    ap.add_argument("--note", default="", help="what else ran on the machine, for the record")
    args = ap.parse_args(argv)
    result = run(
        args.records,
        args.rate,
        args.records_per_chunk,
        args.home,
        args.timeout,
        args.scheduler,
        args.daily,
        args.note,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "run"}, indent=2))
    return 0 if result["run"]["returncode"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
