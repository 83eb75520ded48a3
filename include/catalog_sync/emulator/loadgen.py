"""Drive an ILS through the real client from several processes, as mapped commit tasks would."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pymarc

from catalog_sync.changes.stamp import stamp_record
from catalog_sync.ils import ILSError, ILSSettings, open_client
from catalog_sync.ils.requestlog import LOGGER_NAME


@dataclass
class WriterResult:
    """What one writer process did (plain data, so it crosses the process boundary)."""

    created: dict[str, str] = field(default_factory=dict)  # correlation id -> biblio id
    failures: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    loop_lag_ms: list[float] = field(default_factory=list)
    concurrency_cuts: int = 0


def marcxml_records(path: Path, limit: int) -> list[bytes]:
    """The first `limit` records of an ISO 2709 file, each as one MARCXML document carrying a
    create stamp (catalog_sync.changes.stamp), so a create whose answer is lost is found again."""
    records: list[bytes] = []
    with path.open("rb") as handle:
        reader = pymarc.MARCReader(handle, to_unicode=True, force_utf8=True, permissive=True)
        for record in reader:
            if record is None or not record.get_fields("001"):
                continue
            stamp_record(record, f"loadgen:{path.name}:{len(records)}")
            records.append(bytes(pymarc.record_to_xml(record, namespace=True)))
            if len(records) >= limit:
                break
    return records


async def _probe_loop_lag(samples: list[float], period: float = 0.01) -> None:
    """How late the event loop wakes a 10 ms sleeper: the lag other coroutines cause."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(period)
        samples.append(max(0.0, (loop.time() - start - period) * 1000))


async def write_records(
    settings: ILSSettings, redis_url: str | None, records: list[tuple[str, bytes]]
) -> WriterResult:
    """Create every record concurrently through one client; the client bounds concurrency."""
    result = WriterResult()
    started = time.perf_counter()
    async with open_client(settings, redis_url) as ils:
        # Probed while committing; opening the client (TLS context, pools) is not counted.
        probe = asyncio.create_task(_probe_loop_lag(result.loop_lag_ms))

        async def create(correlation_id: str, marcxml: bytes) -> None:
            try:
                result.created[correlation_id] = await ils.create_biblio(
                    marcxml, correlation_id=correlation_id
                )
            except ILSError as exc:
                result.failures[exc.reason] += 1

        await asyncio.gather(*(create(cid, xml) for cid, xml in records))
        transport = getattr(ils, "transport", None)  # adapters built on ILSTransport
        if transport is not None:
            result.concurrency_cuts = transport.concurrency.decreases
    result.elapsed = time.perf_counter() - started
    probe.cancel()
    return result


def _writer(
    settings_json: str, redis_url: str | None, records: list[tuple[str, bytes]], log_level: int
) -> WriterResult:
    logging.getLogger(LOGGER_NAME).setLevel(log_level)
    settings = ILSSettings.model_validate_json(settings_json)
    return asyncio.run(write_records(settings, redis_url, records))


def _slices(records: list[tuple[str, bytes]], parts: int) -> Iterator[list[tuple[str, bytes]]]:
    for index in range(parts):
        yield records[index::parts]


def run_writers(
    settings: ILSSettings,
    redis_url: str | None,
    records: list[tuple[str, bytes]],
    processes: int,
    log_level: int = logging.WARNING,
) -> list[WriterResult]:
    """Split the records over `processes` worker processes writing at the same time."""
    context = multiprocessing.get_context("spawn")
    payload = settings.model_dump_json()
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        futures = [
            pool.submit(_writer, payload, redis_url, part, log_level)
            for part in _slices(records, processes)
        ]
        return [future.result(timeout=600) for future in futures]


def lag_summary(results: list[WriterResult]) -> dict[str, float]:
    """p50/p99/max event-loop lag over all writers, in milliseconds."""
    samples = sorted(s for r in results for s in r.loop_lag_ms)
    if not samples:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return {"p50": statistics.median(samples), "p99": p99, "max": samples[-1]}
