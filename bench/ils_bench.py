"""ILS commit throughput as a share of the emulator's rate limit, and event-loop lag in writers.

Starts a private Redis (unless REDIS_URL is set) and the emulator with --rate-limit R, then
creates real LoC records from P worker processes that share one Redis token bucket, as mapped
commit tasks do. Throughput is read from the emulator's write log (first to last write), so
process start-up is not counted. Example:

    .venv/bin/python bench/ils_bench.py --rate 200 --records 2000 --processes 4
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import httpx

from catalog_sync.emulator.loadgen import lag_summary, marcxml_records, run_writers
from catalog_sync.ils import ILSSettings
from catalog_sync.services import start_emulator, start_redis

REPO_ROOT = Path(__file__).resolve().parents[1]
LOC_FILE = "corpus/loc-marc-open-access/BooksAll.2016.part01.utf8.first5000.mrc"


def shared_dir() -> Path:
    return Path(os.environ.get("CATALOG_SYNC_SHARED", REPO_ROOT.parent / "shared"))


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=200.0, help="emulator rate limit, req/s")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8, help="max_concurrency per process")
    parser.add_argument("--faults", default="none", help="emulator --faults profile")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args(argv)

    source = shared_dir() / LOC_FILE
    if not source.exists():
        print(f"ils_bench: {source} not found (set CATALOG_SYNC_SHARED)", file=sys.stderr)
        return 2
    records = marcxml_records(source, args.records)
    work = [(f"bench-{i}", xml) for i, xml in enumerate(records)]

    with tempfile.TemporaryDirectory(prefix="ils-bench-") as tmp:
        workdir = Path(tmp)
        redis = None if os.environ.get("REDIS_URL") else start_redis(workdir / "redis")
        redis_url = os.environ.get("REDIS_URL") or (redis.url if redis else "")
        emulator = start_emulator(
            workdir, db=workdir / "koha.db",
            extra_args=["--rate-limit", str(args.rate), "--faults", args.faults],
        )  # fmt: skip
        try:
            settings = ILSSettings(
                name="ils_bench",
                base_url=emulator.url,
                username="catalog",
                password="catalog-demo",
                rate_limit=args.rate,
                max_concurrency=args.concurrency,
            )
            results = run_writers(
                settings, redis_url, work, processes=args.processes, log_level=logging.ERROR
            )
            log = httpx.get(f"{emulator.url}/_emulator/writes", timeout=30).json()
        finally:
            emulator.stop()
            if redis is not None:
                redis.stop()

    stamps = sorted(_stamp(w["at"]) for w in log["writes"])
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    throughput = (len(stamps) - 1) / span if span else 0.0
    counters = log["counters"]
    lag = lag_summary(results)
    report = {
        "rate_limit": args.rate,
        "records": len(records),
        "processes": args.processes,
        "max_concurrency": args.concurrency,
        "faults": args.faults,
        "writes": len(stamps),
        "failed": sum(sum(r.failures.values()) for r in results),
        "throughput_per_s": round(throughput, 1),
        "share_of_rate_limit": round(throughput / args.rate, 3),
        "requests": counters.get("requests", 0),
        "rate_limited_429": counters.get("rate_limited", 0),
        "share_429": round(
            counters.get("rate_limited", 0) / max(1, counters.get("requests", 1)), 4
        ),
        "concurrency_cuts": sum(r.concurrency_cuts for r in results),
        "loop_lag_ms_p50": round(lag["p50"], 2),
        "loop_lag_ms_p99": round(lag["p99"], 2),
        "loop_lag_ms_max": round(lag["max"], 2),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
