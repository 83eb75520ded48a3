"""process_chunk: parse, validate, normalize and fingerprint one chunk, and stage its changes."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from catalog_sync.audit import correlation_id
from catalog_sync.changes.fingerprint import match_point_key, record_fingerprint, record_key
from catalog_sync.changes.state import StateStore
from catalog_sync.config import VendorConfig
from catalog_sync.marc.prepare import Rejection, prepare_record
from catalog_sync.marc.reader import iter_chunk
from catalog_sync.marc.rejects import RejectWriter
from catalog_sync.models import ChangeAction, ChunkRef, ChunkReport, StagedChange
from catalog_sync.paths import RuntimeLayout, safe_name
from catalog_sync.privacy import Masker


def staging_path(layout: RuntimeLayout, vendor: str, run_id: str, chunk_id: str) -> Path:
    return layout.staging / vendor / safe_name(run_id) / f"{chunk_id}.jsonl"


def rejects_path(layout: RuntimeLayout, vendor: str, run_id: str, chunk_id: str) -> Path:
    return layout.rejects / vendor / safe_name(run_id) / f"{chunk_id}.rej"


def decide(
    deleted: bool, fingerprint: str, previous_fingerprint: str | None, previously_deleted: bool
) -> ChangeAction:
    """create / update / delete / unchanged, from fingerprints alone (no ILS call)."""
    if deleted:
        known = previous_fingerprint is not None and not previously_deleted
        return ChangeAction.DELETE if known else ChangeAction.UNCHANGED
    if previous_fingerprint is None or previously_deleted:
        return ChangeAction.CREATE
    if previous_fingerprint == fingerprint:
        return ChangeAction.UNCHANGED
    return ChangeAction.UPDATE


def process_chunk(
    ref: ChunkRef,
    vendor: VendorConfig,
    layout: RuntimeLayout,
    state: StateStore,
    run_id: str,
    masker: Masker | None = None,
) -> ChunkReport:
    """Stage every record of the chunk; a bad record is rejected with a reason and the rest go on.

    Redoing this task is harmless: it rewrites the same staging and reject files. Rejected
    records are written as received but masked by `masker` (PII never rests in reject files).
    """
    reasons: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    staged: list[tuple[StagedChange, bool]] = []
    total = 0
    stage_file = staging_path(layout, vendor.name, run_id, ref.chunk_id)
    reject_file = rejects_path(layout, vendor.name, run_id, ref.chunk_id)
    reject_file.parent.mkdir(parents=True, exist_ok=True)
    mask = (lambda data: masker.mask_raw(data, ref.format)) if masker else None
    with RejectWriter(reject_file, chunk_id=ref.chunk_id, mask=mask) as rejects:
        for raw in iter_chunk(ref):
            total += 1
            result = prepare_record(raw, ref.format, vendor)
            if isinstance(result, Rejection):
                reasons[result.reason] += 1
                rejects.add(raw, result)
                continue
            warnings.update(result.warnings)
            key = record_key(result.record, vendor.record_key) or match_point_key(
                result.record, vendor.match_points
            )
            if key is None:
                rejection = Rejection(
                    "missing_record_key", "no record key and no match point", None
                )
                reasons[rejection.reason] += 1
                rejects.add(raw, rejection)
                continue
            change = StagedChange(
                record_key=key,
                action=ChangeAction.UNCHANGED,  # decided below, once per chunk against the state
                fingerprint=record_fingerprint(result.record),
                offset=raw.offset,
                length=len(raw.data),
                correlation_id=correlation_id(
                    ref.vendor, ref.file_sha256, ref.chunk_id, raw.offset
                ),
            )
            staged.append((change, result.deleted))

    previous = state.applied(vendor.ils_conn_id, (c.record_key for c, _ in staged))
    counts: Counter[ChangeAction] = Counter()
    stage_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage_file.with_suffix(".partial")
    with tmp.open("w", encoding="utf-8") as out:
        for change, deleted in staged:
            prev = previous.get(change.record_key)
            action = decide(
                deleted,
                change.fingerprint,
                prev.fingerprint if prev else None,
                prev.deleted if prev else False,
            )
            counts[action] += 1
            decided = change.model_copy(
                update={
                    "action": action,
                    "ils_id": prev.ils_id if prev else None,
                    "previous_fingerprint": prev.fingerprint if prev else None,
                }
            )
            out.write(json.dumps(decided.model_dump(mode="json"), separators=(",", ":")) + "\n")
    os.replace(tmp, stage_file)

    accepted = len(staged)
    return ChunkReport(
        chunk=ref,
        records_total=total,
        accepted=accepted,
        rejected=total - accepted,
        reasons=dict(reasons),
        warnings=dict(warnings),
        creates=counts[ChangeAction.CREATE],
        updates=counts[ChangeAction.UPDATE],
        deletes=counts[ChangeAction.DELETE],
        unchanged=counts[ChangeAction.UNCHANGED],
        staging_path=str(stage_file),
        rejects_path=str(reject_file),
    )


def read_staged(path: str | Path) -> list[StagedChange]:
    with Path(path).open(encoding="utf-8") as fh:
        return [StagedChange.model_validate_json(line) for line in fh if line.strip()]
