"""Thin task bodies: each turns Airflow context into arguments for a pure catalog_sync function."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException

from catalog_sync.errors import RunInputError
from catalog_sync.marc.errors import CatalogSyncInputError
from catalog_sync.marc.split import split_file
from catalog_sync.models import ChunkRef, ChunkReport, CommitReport, LandingFile
from catalog_sync.pipeline.fetch import fetch_deliveries
from catalog_sync.pipeline.process import process_chunk
from catalog_sync.pipeline.report import write_report
from catalog_sync_airflow.runtime import task_runtime

log = logging.getLogger(__name__)

# Airflow refuses to expand more than [core] max_map_length items (default 1024).
MAX_CHUNKS = 1024


def _run_id() -> str:
    return str(get_current_context()["run_id"])


def fetch(vendor_name: str) -> list[dict[str, Any]]:
    force = bool(get_current_context()["params"].get("force", False))
    rt = task_runtime(vendor_name)
    try:
        files = fetch_deliveries(rt.vendor, rt.layout, rt.state(), force=force)
    except (RunInputError, CatalogSyncInputError) as exc:
        # Bad input will not get better by retrying: fail now, with the operator's message.
        raise AirflowFailException(str(exc)) from exc
    if not files:
        log.info("no new files for vendor %s", vendor_name)
    return [f.model_dump() for f in files]


def split(vendor_name: str, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rt = task_runtime(vendor_name)
    chunks: list[ChunkRef] = []
    try:
        for f in files:
            chunks += split_file(
                LandingFile.model_validate(f), rt.vendor.records_per_chunk, MAX_CHUNKS
            )
    except CatalogSyncInputError as exc:
        raise AirflowFailException(str(exc)) from exc
    if len(chunks) > MAX_CHUNKS:
        raise AirflowFailException(
            f"{len(chunks)} chunks exceed Airflow's max_map_length ({MAX_CHUNKS}); "
            f"raise records_per_chunk for vendor {vendor_name!r}"
        )
    return [c.model_dump() for c in chunks]


def process(vendor_name: str, chunk: dict[str, Any]) -> dict[str, Any]:
    ref = ChunkRef.model_validate(chunk)
    get_current_context()["chunk_label"] = ref.label  # type: ignore[typeddict-unknown-key]
    rt = task_runtime(vendor_name)
    report = process_chunk(ref, rt.vendor, rt.layout, rt.state(), _run_id())
    log.info(
        "chunk %s: %d records, %d rejected, %d create, %d update, %d delete, %d unchanged",
        ref.label,
        report.records_total,
        report.rejected,
        report.creates,
        report.updates,
        report.deletes,
        report.unchanged,
    )
    return report.model_dump()


def commit(vendor_name: str, report: dict[str, Any]) -> dict[str, Any]:
    chunk_report = ChunkReport.model_validate(report)
    get_current_context()["chunk_label"] = chunk_report.label  # type: ignore[typeddict-unknown-key]
    # The HTTP stack is loaded by commit tasks only, not each time the DAG file is parsed.
    from catalog_sync.pipeline.commit import commit_changes
    from ils.hooks import ILSHook

    rt = task_runtime(vendor_name)
    hook = ILSHook(ils_conn_id=rt.vendor.ils_conn_id)

    async def run() -> CommitReport:
        async with hook.client(rt.redis_url) as client:
            return await commit_changes(
                chunk_report.chunk,
                chunk_report.staging_path,
                rt.vendor,
                client,
                rt.state(),
                _run_id(),
            )

    result = asyncio.run(run())
    log.info("chunk %s committed: %s", chunk_report.label, result.model_dump())
    return result.model_dump()


def _collected(values: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Outputs of a mapped task, fetched by index (iterating probes past the end and logs a 404)."""
    if values is None:
        return []
    return [values[i] for i in range(len(values))]


def report(
    vendor_name: str,
    files: list[dict[str, Any]],
    chunk_reports: Sequence[dict[str, Any]] | None,
    commit_reports: Sequence[dict[str, Any]] | None,
) -> str:
    rt = task_runtime(vendor_name)
    run_id = _run_id()
    landed = [LandingFile.model_validate(f) for f in files]
    summary, out = write_report(
        rt.layout,
        vendor_name,
        run_id,
        landed,
        [ChunkReport.model_validate(c) for c in _collected(chunk_reports)],
        [CommitReport.model_validate(c) for c in _collected(commit_reports)],
    )
    state = rt.state()
    for f in landed:
        state.mark_loaded(vendor_name, f.sha256, f.name, run_id)
    log.info("run report written to %s\n%s", out, (out / "report.txt").read_text())
    return summary.line()
