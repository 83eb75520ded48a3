"""The stages on shared run storage: inputs resolved to verified local copies, outputs published.

Each function runs one stage on this worker exactly as the one-machine code does, so any
worker can run any stage of a run: XCom payloads name files by run storage key, never by a
path on another worker's disk (catalog_sync.storage).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from catalog_sync.changes.state import StateStore
from catalog_sync.config import VendorConfig
from catalog_sync.marc.rejects import index_path_for
from catalog_sync.marc.split import split_file
from catalog_sync.models import ChunkRef, ChunkReport, CommitReport, LandingFile
from catalog_sync.paths import RuntimeLayout
from catalog_sync.pipeline.process import process_chunk
from catalog_sync.pipeline.report import report_dir
from catalog_sync.privacy import Masker
from catalog_sync.retention import purge
from catalog_sync.storage import SharedStorage

if TYPE_CHECKING:  # the HTTP stack loads in commit tasks only, not where DAG files are parsed
    from catalog_sync.ils.client import ILSClient
    from catalog_sync.leases import LeaseManager


def local_chunk(ref: ChunkRef, storage: SharedStorage) -> ChunkRef:
    """`ref` pointing at this worker's verified copy of its landing file."""
    local = storage.landing_copy(ref.file_path, ref.verify_sha256)
    return ref.model_copy(update={"file_path": str(local)})


def prune_worker_copies(
    vendor: VendorConfig, layout: RuntimeLayout, storage: SharedStorage, now: datetime
) -> list[Path]:
    """Shared storage: drop this worker's landing copies older than the vendor's staging period.

    Every worker caches the landing files it reads, and the retention DAG runs on one worker
    only, so each worker trims its own cache as it processes chunks. Unshared, the landing
    folder is the storage itself and only the retention DAG purges it.
    """
    if not storage.shared:
        return []
    return purge(layout.landing / vendor.name, vendor.retention.staging, now)


def split_stored_file(
    landing: LandingFile, storage: SharedStorage, records_per_chunk: int, max_chunks: int
) -> list[ChunkRef]:
    """split_file on this worker's copy of a landed file; the refs name it by storage key."""
    local = storage.landing_copy(landing.path, landing.verify_sha256)
    refs = split_file(
        landing.model_copy(update={"path": str(local)}), records_per_chunk, max_chunks
    )
    return [r.model_copy(update={"file_path": landing.path}) for r in refs]


def process_stored_chunk(
    ref: ChunkRef,
    vendor: VendorConfig,
    layout: RuntimeLayout,
    storage: SharedStorage,
    state: StateStore,
    run_id: str,
    masker: Masker | None = None,
) -> ChunkReport:
    """process_chunk on a verified local copy; staging and reject files published by key.

    Shared storage keeps no local copy of the outputs here: the commit may run anywhere.
    """
    report = process_chunk(local_chunk(ref, storage), vendor, layout, state, run_id, masker)
    rejects = Path(report.rejects_path)
    for path in (rejects, index_path_for(rejects)):
        if path.is_file():
            storage.publish(path, move=True)
        else:  # no rejects now: drop what an earlier attempt (on any worker) left
            storage.remove(storage.key(path))
    return report.model_copy(
        update={
            "chunk": ref,
            "staging_path": storage.publish(report.staging_path, move=True),
            "rejects_path": storage.key(rejects),
        }
    )


async def commit_stored_chunk(
    report: ChunkReport,
    vendor: VendorConfig,
    layout: RuntimeLayout,
    storage: SharedStorage,
    client: ILSClient,
    state: StateStore,
    run_id: str,
    *,
    dry_run: bool = False,
    masker: Masker | None = None,
    leases: LeaseManager | None = None,
) -> CommitReport:
    """commit_changes from local copies of the landing file and staged changes; diffs published.

    The report's diff_path is the diffs' storage key, or empty when there were none.
    Copies are resolved before any ILS call (landing_copy may raise LandingIntegrityError).
    """
    from catalog_sync.pipeline.commit import commit_changes
    from catalog_sync.pipeline.commit_job import diff_path

    # Storage calls block (SFTP round trips): off the event loop, like the state store's.
    ref = await asyncio.to_thread(local_chunk, report.chunk, storage)
    staged = await asyncio.to_thread(storage.fetch, report.staging_path)
    diffs = diff_path(report_dir(layout, vendor.name, run_id), ref.chunk_id)
    try:
        result = await commit_changes(
            ref, staged, vendor, client, state, run_id,
            dry_run=dry_run, masker=masker, diff_file=diffs, leases=leases,
        )  # fmt: skip
    finally:
        if storage.shared:
            staged.unlink(missing_ok=True)
    return result.model_copy(
        update={"diff_path": await asyncio.to_thread(_publish_diffs, diffs, storage)}
    )


def _publish_diffs(diffs: Path, storage: SharedStorage) -> str:
    """The diffs' storage key, or "" when the commit wrote none (an empty file is not named)."""
    if diffs.is_file() and diffs.stat().st_size > 0:
        return storage.publish(diffs, move=True)
    if storage.shared:
        diffs.unlink(missing_ok=True)
    return ""
