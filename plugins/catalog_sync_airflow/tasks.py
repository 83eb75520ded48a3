"""Thin task bodies: each turns Airflow context into arguments for a pure catalog_sync function."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException

from catalog_sync.audit import (
    audit_context,
    configure_audit_log,
    get_audit_logger,
    remove_audit_log,
)
from catalog_sync.config import load_vendors
from catalog_sync.delivery.errors import (
    DeliveryAuthError,
    DeliveryHostKeyError,
    DeliveryNotFoundError,
)
from catalog_sync.errors import RunInputError
from catalog_sync.gctuning import tune_gc
from catalog_sync.manifest import RunManifest, trigger_from_dag_run
from catalog_sync.marc.errors import CatalogSyncInputError
from catalog_sync.models import ChunkRef, ChunkReport, CommitReport
from catalog_sync.paths import safe_name
from catalog_sync.pipeline.fetch import FetchResult, fetch_to_storage
from catalog_sync.pipeline.report import publish_report, pull_report, write_report
from catalog_sync.pipeline.stored import (
    process_stored_chunk,
    prune_worker_copies,
    split_stored_file,
)
from catalog_sync.retention import purge_expired, purge_stored, vendor_retention_targets
from catalog_sync.storage import LandingIntegrityError
from catalog_sync_airflow.notify import notice_gaps
from catalog_sync_airflow.runtime import (
    REDIS_VARIABLE,
    TaskRuntime,
    pii_masker,
    remote_fetch,
    task_runtime,
)

log = logging.getLogger(__name__)
audit = get_audit_logger("catalog_sync.tasks")

# Airflow refuses to expand more than [core] max_map_length items (default 1024).
MAX_CHUNKS = 1024


def _run_id() -> str:
    return str(get_current_context()["run_id"])


@contextmanager
def _audited(rt: TaskRuntime, **ids: str | None) -> Iterator[None]:
    """Bind run, vendor (and file/chunk) ids to every audit event; also write the audit file."""
    run_id = _run_id()
    path = rt.layout.root / "audit" / rt.vendor.name / f"{safe_name(run_id)}.jsonl"
    if rt.storage.shared:  # one file per task attempt, so no two workers write the same object
        path = path.with_suffix("") / f"{_task_attempt()}.jsonl"
    handler = configure_audit_log(path)
    try:
        with audit_context(run_id=run_id, vendor=rt.vendor.name, **ids):
            yield
    except BaseException:
        remove_audit_log(handler)
        with suppress(Exception):  # the task's own error is the one to report
            _publish_audit(rt, path)
        raise
    remove_audit_log(handler)
    _publish_audit(rt, path)


def _publish_audit(rt: TaskRuntime, path: Path) -> None:
    """Shared storage: this attempt's audit file goes to audit/<vendor>/<run>/ in the storage."""
    if rt.storage.shared and path.is_file():
        rt.storage.publish(path, move=True)


def _task_attempt() -> str:
    ti = get_current_context()["ti"]
    map_index = getattr(ti, "map_index", -1)
    mapped = f".{map_index}" if map_index is not None and map_index >= 0 else ""
    return f"{ti.task_id}{mapped}.try{getattr(ti, 'try_number', 1)}"


def fetch(vendor_name: str) -> dict[str, Any]:
    force = bool(get_current_context()["params"].get("force", False))
    rt = task_runtime(vendor_name)
    with _audited(rt):
        try:
            result = fetch_to_storage(
                rt.vendor, rt.layout, rt.storage, rt.state(), force=force,
                remote=remote_fetch(rt.vendor),
            )  # fmt: skip
        except (RunInputError, CatalogSyncInputError, DeliveryAuthError, DeliveryHostKeyError,
                DeliveryNotFoundError) as exc:  # fmt: skip
            # Bad input or credentials will not get better by retrying: fail now, saying why.
            audit.error("fetch.failed", reason=getattr(exc, "reason", type(exc).__name__))
            raise AirflowFailException(str(exc)) from exc
        for f in result.files:
            audit.info("fetch.file_landed", file=f.name, file_sha256=f.sha256, format=f.format)
        for name in result.empty:
            audit.warning("fetch.file_empty", file=name)
        for name, why in result.refused.items():
            audit.warning("fetch.file_refused", file=repr(name), reason=why)
    if not result.files:
        log.info("no new files for vendor %s", vendor_name)
    return result.model_dump()


def split(vendor_name: str, fetched: dict[str, Any]) -> list[dict[str, Any]]:
    rt = task_runtime(vendor_name)
    chunks: list[ChunkRef] = []
    try:
        for f in FetchResult.model_validate(fetched).files:
            # fetch may have run on another worker: split this worker's verified copy
            chunks += split_stored_file(f, rt.storage, rt.vendor.records_per_chunk, MAX_CHUNKS)
    except (CatalogSyncInputError, LandingIntegrityError) as exc:
        raise AirflowFailException(str(exc)) from exc
    if len(chunks) > MAX_CHUNKS:
        raise AirflowFailException(
            f"{len(chunks)} chunks exceed Airflow's max_map_length ({MAX_CHUNKS}); "
            f"raise records_per_chunk for vendor {vendor_name!r}"
        )
    return [c.model_dump() for c in chunks]


def process(vendor_name: str, chunk: dict[str, Any]) -> dict[str, Any]:
    tune_gc()  # after imports, before the records (bench/README.md: GC tuning)
    ref = ChunkRef.model_validate(chunk)
    get_current_context()["chunk_label"] = ref.label  # type: ignore[typeddict-unknown-key]
    rt = task_runtime(vendor_name)
    masker = pii_masker()
    with _audited(rt, file_sha256=ref.file_sha256, chunk_id=ref.chunk_id):
        try:
            report = process_stored_chunk(
                ref, rt.vendor, rt.layout, rt.storage, rt.state(), _run_id(), masker=masker
            )
        except LandingIntegrityError as exc:
            raise AirflowFailException(str(exc)) from exc
        prune_worker_copies(rt.vendor, rt.layout, rt.storage, datetime.now(UTC))
        report = report.model_copy(update={"masking": masker.counts})
        audit.info(
            "chunk.processed", records=report.records_total, rejected=report.rejected,
            creates=report.creates, updates=report.updates, deletes=report.deletes,
            unchanged=report.unchanged,
        )  # fmt: skip
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
    tune_gc()
    chunk_report = ChunkReport.model_validate(report)
    get_current_context()["chunk_label"] = chunk_report.label  # type: ignore[typeddict-unknown-key]
    # The HTTP stack is loaded by commit tasks only, not each time the DAG file is parsed.
    from catalog_sync.ils import open_client
    from catalog_sync.ils.errors import ILSAuthError
    from catalog_sync.leases import LeaseManager
    from catalog_sync.pipeline.stored import commit_stored_chunk
    from ils.hooks import ILSHook, lease_settings

    rt = task_runtime(vendor_name)
    try:  # read once: the client and the leases on its records follow one Connection
        ils = ILSHook(ils_conn_id=rt.vendor.ils_conn_id).get_conn()
    except ValueError as exc:  # a bad extra (lease_wait < lease_ttl, ...) stays bad on retry
        raise AirflowFailException(f"ILS connection {rt.vendor.ils_conn_id!r}: {exc}") from exc
    if not rt.redis_url:
        raise AirflowFailException(
            "commit_chunk writes only under Redis record leases: set Airflow Variable "
            f"{REDIS_VARIABLE!r} (or REDIS_URL) to the Redis URL"
        )
    redis_url = rt.redis_url
    run_id = _run_id()
    dry_run = _dry_run()

    async def run() -> CommitReport:
        # Redis down: LeaseStoreUnavailable, a plain failure that Airflow retries later.
        # An ILS that batches (FOLIO) widens the records in flight and the leases held itself
        # (commit_changes, pipeline.bounded.client_bounds), so the CLI and benches get it too.
        async with (
            open_client(ils, redis_url) as client,
            LeaseManager.from_url(redis_url, lease_settings([ils])) as lm,
        ):
            return await commit_stored_chunk(
                chunk_report,
                rt.vendor,
                rt.layout,
                rt.storage,
                client,
                rt.state(),
                run_id,
                dry_run=dry_run,
                masker=pii_masker(),
                leases=lm,
            )

    try:
        result = asyncio.run(run())
    except (ILSAuthError, LandingIntegrityError) as exc:
        # Wrong credentials, or a landing file damaged in the storage, do not fix themselves.
        raise AirflowFailException(str(exc)) from exc
    log.info("chunk %s committed: %s", chunk_report.label, result.model_dump())
    return result.model_dump()


def _dry_run() -> bool:
    return bool(get_current_context()["params"].get("dry_run", False))


def check_deletes(vendor_name: str, chunk_reports: Sequence[dict[str, Any]] | None) -> int:
    """Stop before any commit when the run's deletes exceed the vendor's cap, unless approved."""
    from catalog_sync.pipeline.deletecap import check_delete_cap

    rt = task_runtime(vendor_name)
    chunks = [ChunkReport.model_validate(c) for c in _collected(chunk_reports)]
    check = check_delete_cap(chunks, rt.vendor, rt.state())
    from catalog_sync_airflow.approval import approved_in_ui

    approved = bool(get_current_context()["params"].get("approve_deletes", False))
    approved = approved or approved_in_ui()  # answered Approve in the UI's approval gate
    if check.over_cap and not approved and not _dry_run():
        raise AirflowFailException(check.message(vendor_name))
    if check.over_cap:
        log.warning("%s (%s)", check.message(vendor_name), "dry run" if _dry_run() else "approved")
    return check.deletes


def _collected(values: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Outputs of a mapped task, fetched by index (iterating probes past the end and logs a 404)."""
    if values is None:
        return []
    return [values[i] for i in range(len(values))]


def report(
    vendor_name: str,
    fetched: dict[str, Any],
    chunk_reports: Sequence[dict[str, Any]] | None,
    commit_reports: Sequence[dict[str, Any]] | None,
) -> str:
    rt = task_runtime(vendor_name)
    context = get_current_context()
    run_id = _run_id()
    result = FetchResult.model_validate(fetched)
    chunks = [ChunkReport.model_validate(c) for c in _collected(chunk_reports)]
    commits = [CommitReport.model_validate(c) for c in _collected(commit_reports)]
    with _audited(rt):
        notes = notice_gaps(rt.vendor.notify_to, task_side=True)  # e.g. no mail server
        pull_report(rt.storage, rt.layout, vendor_name, run_id)  # an earlier try's, kept
        refused = {n: result.refused_codes.get(n, "refused") for n in result.refused}
        summary, out = write_report(
            rt.layout, vendor_name, run_id, result.files, chunks, commits, notes, refused
        )
        manifest = build_manifest(context, vendor_name, result, chunks, commits)
        manifest.write(out / "manifest.json")
        text = (out / "report.txt").read_text(encoding="utf-8")
        key = publish_report(rt.storage, rt.layout, vendor_name, run_id)
        state = rt.state()
        for f in result.files if not _dry_run() else ():  # a dry run loads nothing
            state.mark_loaded(vendor_name, f.sha256, f.name, run_id)
        audit.info("run.reported", **summary.model_dump())
    log.info("run report written to %s\n%s", rt.storage.location(key), text)
    return summary.line()


def build_manifest(
    context: Any,
    vendor_name: str,
    result: FetchResult,
    chunks: Sequence[ChunkReport],
    commits: Sequence[CommitReport],
) -> RunManifest:
    """The run's audit manifest from what the tasks reported (hashes, counts, masking)."""
    dag_run = context["dag_run"]
    manifest = RunManifest(
        run_id=str(context["run_id"]),
        dag_id=str(dag_run.dag_id),
        vendor=vendor_name,
        trigger=trigger_from_dag_run(
            getattr(dag_run, "run_type", None),
            getattr(dag_run, "triggered_by", None),
            getattr(dag_run, "triggering_user_name", None),
            int(getattr(dag_run, "clear_number", 0) or 0),
        ),
        started_at=getattr(dag_run, "start_date", None) or datetime.now(UTC),
    )
    manifest.add_files(result.files)
    for name in result.empty:
        manifest.count("fetch", "empty_files")
        manifest.add_error("fetch", "empty_file", f"delivery {name} is empty")
    for name, why in result.refused.items():
        manifest.count("fetch", "refused_files")
        manifest.add_error("fetch", "refused_file", f"delivery {name!r} refused: {why}")
    for chunk in chunks:
        manifest.add_chunk_report(chunk)
        manifest.add_masking_counts(chunk.masking)
    for commit_report in commits:
        manifest.add_commit_report(commit_report)
    manifest.finish()
    return manifest


def purge_expired_data() -> dict[str, int]:
    """Remove each vendor's staging, landed copies, rejects, reports and audit logs past due."""
    removed: dict[str, int] = {}
    now = datetime.now(UTC)
    for name, vendor in load_vendors().items():
        rt = task_runtime(name)
        targets = vendor_retention_targets(rt.layout.root, name, vendor.retention)
        # This worker's own copies, then (shared storage) the stored objects every worker reads.
        removed[name] = len(purge_expired(targets, now))
        if rt.storage.shared:
            removed[name] += len(purge_stored(rt.storage, name, vendor.retention, now))
        log.info("vendor %s: %d expired files and folders removed", name, removed[name])
    return removed
