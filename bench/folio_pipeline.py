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
from corpus import CACHE, full_file, take_records
from e2e import _environ, bench_config, fresh_home, run_dag_measured

FOLIO_DAG = "catalog_sync_demo_folio"
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


def run(records: int, rate: float, chunk: int, home: Path, timeout: float) -> dict[str, Any]:
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
            measure = run_dag_measured(layout, "initial", timeout, FOLIO_DAG, FOLIO_VENDOR)
            measure.counters_before = before
            measure.counters_after = _counters(folio.url)
        finally:
            folio.stop()
            redis.stop()
    summary = measure.summary()
    commit_s = summary["tasks"].get("commit_chunk", {}).get("seconds", 0.0)
    created = int(summary["report_summary"].get("created", 0))
    wall = summary["wall_s"]
    return {
        "what": "catalog_sync_demo_folio under `airflow dags test`, initial load (all creates)",
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
            "note": "shared with 4 other helpers' work during the run",
        },
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
    args = ap.parse_args(argv)
    result = run(args.records, args.rate, args.records_per_chunk, args.home, args.timeout)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "run"}, indent=2))
    return 0 if result["run"]["returncode"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
