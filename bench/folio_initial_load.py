"""FOLIO initial load and daily run through batch requests, beside FOLIO Data Import's rate.

Starts the FOLIO emulator with --rate-limit R (requests/s; default 10, a conservative figure for
an API gateway in front of a hosted FOLIO; FOLIO itself sets none), then:

initial load of N LoC records, batch by batch, as the FOLIO client does it:
  map MARC -> instance, POST /instance-storage/batch/synchronous?upsert=true (B per request),
  POST /instance-storage/instances/retrieve (the batch back: FOLIO's hrid and _version),
  POST /source-storage/batch/records (the MARC, linked to each instance);
daily run (--daily): the same file with every 20th record revised (bench/corpus.with_changes).
  Changes are found locally (a digest per 001, as the pipeline's state store keeps them); only
  the changed records reach FOLIO: matched by LCCN (retrieve, B values per query), upserted with
  the _version read, their SRS records fetched and updated in batches.
Wall time runs from the first record read to the last write. Data Import's published figure is
250,000 records in 1 h 32 min (5,520 s, 45.3 records/s). Example:

    .venv/bin/python bench/folio_initial_load.py --records 5000 --daily
    .venv/bin/python bench/folio_initial_load.py --full --daily     # 250,000 records
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pymarc

from catalog_sync.ils.folio.client import FolioClient, UpsertStatus
from catalog_sync.ils.folio.mapping import InstanceMappingError, instance_from_marc
from catalog_sync.ils.folio.reference import IDENTIFIER_TYPES
from catalog_sync.ils.folio.session import FolioSettings, OkapiSession
from catalog_sync.services import start_emulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import CACHE, full_file, quick_file, take_records, with_changes

DATA_IMPORT_RECORDS = 250_000
DATA_IMPORT_SECONDS = 92 * 60
CID = "bench-folio"
Entry = tuple[dict[str, Any], pymarc.Record]


def _records(path: Path) -> Iterator[tuple[bytes, pymarc.Record | None]]:
    with path.open("rb") as handle:
        reader = pymarc.MARCReader(handle, to_unicode=True, permissive=True)
        for record in reader:
            yield bytes(reader.current_chunk or b""), record


def _key(record: pymarc.Record) -> str:
    return record["001"].data.strip() if record["001"] else ""


def _lccn(record: pymarc.Record) -> str | None:
    field = record["010"]
    return field["a"].strip() if field and field["a"] else None


async def initial_load(
    client: FolioClient, source: Path, statuses: Counter[str], digests: dict[str, str]
) -> None:
    snapshot = await client.create_snapshot(correlation_id=CID)
    pending: list[Entry] = []
    for raw, record in _records(source):
        statuses["records"] += 1
        if record is None:
            statuses["unreadable"] += 1
            continue
        digests[_key(record)] = hashlib.sha256(raw).hexdigest()
        try:
            pending.append((instance_from_marc(record), record))
        except InstanceMappingError as exc:
            statuses[exc.reason] += 1
        if len(pending) == client.batch_size:
            await _load_batch(client, pending, snapshot, statuses)
            pending = []
    if pending:
        await _load_batch(client, pending, snapshot, statuses)


async def _load_batch(
    client: FolioClient, pending: list[Entry], snapshot: str, statuses: Counter[str]
) -> None:
    outcomes = await client.upsert_instances([i for i, _ in pending], correlation_id=CID)
    statuses.update(o.status.value for o in outcomes)
    applied = [o.record_id for o in outcomes if o.status is UpsertStatus.APPLIED]
    stored = {i["id"]: i for i in await client.get_instances(applied, correlation_id=CID)}
    entries = [(stored[i["id"]], marc) for i, marc in pending if i["id"] in stored]
    saved = await client.create_source_records(entries, snapshot, correlation_id=CID)
    statuses["srs_saved"] += sum(1 for o in saved if o.error is None)


async def daily(
    client: FolioClient, source: Path, statuses: Counter[str], digests: dict[str, str]
) -> None:
    snapshot = await client.create_snapshot(correlation_id=CID)
    changed: list[pymarc.Record] = []
    for raw, record in _records(source):
        statuses["records"] += 1
        if record is None or digests.get(_key(record)) == hashlib.sha256(raw).hexdigest():
            continue  # unchanged: no ILS call at all
        changed.append(record)
        if len(changed) == client.batch_size:
            await _update_batch(client, changed, snapshot, statuses)
            changed = []
    if changed:
        await _update_batch(client, changed, snapshot, statuses)


async def _update_batch(
    client: FolioClient, changed: list[pymarc.Record], snapshot: str, statuses: Counter[str]
) -> None:
    statuses["changed"] += len(changed)
    lccns = {lccn: r for r in changed if (lccn := _lccn(r))}
    found = await client.find_instances_by_identifier("LCCN", list(lccns), correlation_id=CID)
    matched: dict[str, Entry] = {}
    for stored in found:
        for identifier in stored["identifiers"]:
            value = identifier["value"]
            if identifier["identifierTypeId"] == IDENTIFIER_TYPES["LCCN"] and value in lccns:
                matched.setdefault(value, (stored, lccns[value]))
    statuses["unmatched"] += len(changed) - len(matched)
    updates = [
        {
            **instance_from_marc(marc, stored["id"]),
            "_version": stored["_version"],
            "hrid": stored["hrid"],
        }
        for stored, marc in matched.values()
    ]
    outcomes = await client.upsert_instances(updates, correlation_id=CID)
    statuses.update(f"update_{o.status.value}" for o in outcomes)
    applied = {o.record_id for o in outcomes if o.status is UpsertStatus.APPLIED}
    entries = [(s, m) for s, m in matched.values() if s["id"] in applied]
    saved = await client.save_source_records(entries, snapshot, correlation_id=CID)
    statuses["srs_updated"] += sum(1 for o in saved if o.error is None)


async def measure(url: str, batch: int, source: Path, changed: Path | None) -> dict[str, Any]:
    settings = FolioSettings(url, "diku", "catalog", "catalog-demo", timeout=300)
    control = f"{url}/_emulator/counters"
    digests: dict[str, str] = {}
    report: dict[str, Any] = {}
    async with OkapiSession(settings) as session:
        client = FolioClient(session, batch_size=batch)
        runs = [("initial", initial_load, source)]
        if changed is not None:
            runs.append(("daily", daily, changed))
        for name, run, path in runs:
            statuses: Counter[str] = Counter()
            before = httpx.get(control, timeout=30).json()
            started = time.perf_counter()
            await run(client, path, statuses, digests)
            wall = time.perf_counter() - started
            after = httpx.get(control, timeout=30).json()
            rate = statuses["records"] / wall
            report[name] = {
                "wall_seconds": round(wall, 2),
                "outcomes": dict(statuses),
                "requests": after["requests"] - before.get("requests", 0),
                "rate_limited_429": after.get("rate_limited", 0) - before.get("rate_limited", 0),
                "records_per_second": round(rate, 1),
                "ratio_to_data_import": round(
                    rate / (DATA_IMPORT_RECORDS / DATA_IMPORT_SECONDS), 1
                ),
            }
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=5000, help="first N of the quick file")
    parser.add_argument("--full", action="store_true", help="the 250,000-record LoC file")
    parser.add_argument("--daily", action="store_true", help="then the 5%%-changed file")
    parser.add_argument("--rate-limit", type=float, default=10.0, help="requests/s")
    parser.add_argument("--batch", type=int, default=500, help="records per batch request")
    args = parser.parse_args(argv)
    if args.full:
        source = full_file()
    else:
        quick = quick_file()
        if quick is None:
            print("folio_initial_load: skipped: ../shared/corpus is absent")
            return 0
        source = take_records(quick, args.records, CACHE / "slices" / f"loc-{args.records}.mrc")
    changed = None
    if args.daily:
        changed = CACHE / "slices" / f"{source.stem}.changed5pct.mrc"
        if not changed.is_file():
            with_changes(source, changed)
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
            report = asyncio.run(measure(emulator.url, args.batch, source, changed))
        finally:
            emulator.stop()
    report.update(
        source=source.name,
        rate_limit_rps=args.rate_limit,
        batch=args.batch,
        data_import_records_per_second=round(DATA_IMPORT_RECORDS / DATA_IMPORT_SECONDS, 1),
    )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
