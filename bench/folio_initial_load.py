"""FOLIO initial load through batch upserts, beside FOLIO Data Import's published rate.

Starts the FOLIO emulator with --rate-limit R (requests/s; default 10, a conservative figure for
an API gateway in front of a hosted FOLIO; FOLIO itself sets none), then loads N LoC records as
an initial load, batch by batch, exactly as the FOLIO client does it:
  map MARC -> instance, POST /instance-storage/batch/synchronous?upsert=true (B per request),
  GET the batch back by id (hrid and _version, 50 ids per CQL query),
  POST /source-storage/batch/records (the MARC, linked to each instance).
Wall time runs from the first record read to the last SRS write. Data Import's figure is
250,000 records in 1 h 32 min (5,520 s, 45.3 records/s). Example:

    .venv/bin/python bench/folio_initial_load.py --records 5000 --rate-limit 10
    .venv/bin/python bench/folio_initial_load.py --full --rate-limit 10   # 250,000 records
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pymarc

from catalog_sync.ils.folio.client import FolioClient, UpsertStatus
from catalog_sync.ils.folio.mapping import InstanceMappingError, instance_from_marc
from catalog_sync.ils.folio.session import FolioSettings, OkapiSession
from catalog_sync.services import start_emulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import full_file, quick_file

DATA_IMPORT_RECORDS = 250_000
DATA_IMPORT_SECONDS = 92 * 60


async def load(url: str, source: Path, limit: int, batch: int) -> dict[str, Any]:
    settings = FolioSettings(url, "diku", "catalog", "catalog-demo", timeout=300)
    statuses: Counter[str] = Counter()
    async with OkapiSession(settings) as session:
        client = FolioClient(session, batch_size=batch)
        snapshot = await client.create_snapshot(correlation_id="bench")
        started = time.perf_counter()
        pending: list[tuple[dict[str, Any], pymarc.Record]] = []
        seen = 0
        with source.open("rb") as handle:
            for record in pymarc.MARCReader(handle, to_unicode=True, permissive=True):
                if seen >= limit:
                    break
                seen += 1
                if record is None:
                    statuses["unreadable"] += 1
                    continue
                try:
                    pending.append((instance_from_marc(record), record))
                except InstanceMappingError as exc:
                    statuses[exc.reason] += 1
                if len(pending) == batch:
                    await _flush(client, pending, snapshot, statuses)
                    pending = []
        if pending:
            await _flush(client, pending, snapshot, statuses)
        wall = time.perf_counter() - started
    return {"records": seen, "wall_seconds": round(wall, 2), "outcomes": dict(statuses)}


async def _flush(
    client: FolioClient,
    pending: list[tuple[dict[str, Any], pymarc.Record]],
    snapshot: str,
    statuses: Counter[str],
) -> None:
    outcomes = await client.upsert_instances([i for i, _ in pending], correlation_id="bench")
    statuses.update(o.status.value for o in outcomes)
    applied = {o.record_id for o in outcomes if o.status is UpsertStatus.APPLIED}
    stored = {
        i["id"]: i for i in await client.get_instances(sorted(applied), correlation_id="bench")
    }
    entries = [(stored[i["id"]], marc) for i, marc in pending if i["id"] in stored]
    saved = await client.create_source_records(entries, snapshot, correlation_id="bench")
    statuses["srs_saved"] += sum(1 for o in saved if o.error is None)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--full", action="store_true", help="the 250,000-record LoC file")
    parser.add_argument("--rate-limit", type=float, default=10.0, help="requests/s")
    parser.add_argument("--batch", type=int, default=500, help="records per batch request")
    args = parser.parse_args(argv)
    source = full_file() if args.full else quick_file()
    if source is None:
        print("folio_initial_load: skipped: ../shared/corpus is absent")
        return 0
    limit = DATA_IMPORT_RECORDS if args.full else args.records
    with tempfile.TemporaryDirectory(prefix="folio-bench-") as tmp:
        emulator = start_emulator(
            Path(tmp),
            db=Path(tmp) / "folio.db",
            extra_args=[
                "--flavour",
                "folio",
                "--rate-limit",
                str(args.rate_limit),
                "--max-batch",
                str(args.batch),
            ],
        )
        try:
            result = asyncio.run(load(emulator.url, source, limit, args.batch))
            counters = httpx.get(f"{emulator.url}/_emulator/counters", timeout=30).json()
        finally:
            emulator.stop()
    rate = result["records"] / result["wall_seconds"]
    reference = DATA_IMPORT_RECORDS / DATA_IMPORT_SECONDS
    report = {
        **result,
        "rate_limit_rps": args.rate_limit,
        "batch": args.batch,
        "requests": counters.get("requests", 0),
        "rate_limited_429": counters.get("rate_limited", 0),
        "records_per_second": round(rate, 1),
        "data_import_records_per_second": round(reference, 1),
        "ratio_to_data_import": round(rate / reference, 1),
        "projected_250k_seconds": round(DATA_IMPORT_RECORDS / rate, 1),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
