"""process_chunk: parse, validate, normalize and fingerprint one chunk, and stage its changes."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from catalog_sync.audit import correlation_id
from catalog_sync.changes.fingerprint import match_point_key, record_key
from catalog_sync.changes.identifiers import IDENTIFIER_SOURCES, number_sources
from catalog_sync.changes.state import StateStore
from catalog_sync.changes.state.schema import AppliedRecord
from catalog_sync.config import VendorConfig
from catalog_sync.marc.prepare import Rejection, prepare_record
from catalog_sync.marc.reader import iter_chunk
from catalog_sync.marc.rejects import RejectWriter
from catalog_sync.models import ChangeAction, ChunkRef, ChunkReport, StagedChange
from catalog_sync.paths import RuntimeLayout, safe_name
from catalog_sync.pipeline.rebaseline import (
    Rebaseline,
    is_outdated,
    same_as_stored,
    store_current,
)
from catalog_sync.privacy import Masker, PiiPolicy, load_policy

# Staging lines are written this many at a time: one write call per block, not per record.
STAGING_BLOCK = 512


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


class _Accepted(NamedTuple):
    """What process_chunk keeps of an accepted record until the chunk's one state lookup."""

    record_key: str
    fingerprint: str
    offset: int
    length: int
    deleted: bool
    # The raw values its searchable numbers come from (identifiers.number_sources; None:
    # deleted, or the policy masks one of their fields): staged for a create only, whose
    # action the chunk's state lookup decides after all are read. Raw, because normalising
    # every record's numbers here cost ~7 us a record, wasted on the unchanged majority.
    numbers: dict[str, list[str]] | None


def stages_numbers(policy: PiiPolicy) -> bool:
    """Whether a create's searchable numbers may rest in staging: only when the PII policy
    leaves every field they come from in plain text (no rule on it, no scrubber scanning it).
    The policy can mask 020 $a for a site that wants it so; its creates then stage none and the
    commit reads them from the landing file, as it did before numbers were staged."""
    return not any(
        policy.rule_for(tag, code) is not None or policy.scrubbed_tag(tag)
        for tag, code, _ in IDENTIFIER_SOURCES
    )


def staging_line(
    accepted: _Accepted, action: ChangeAction, prev: AppliedRecord | None, correlation: str
) -> str:
    """One StagedChange as JSON, keys in the model's order (read back by read_staged)."""
    return json.dumps(
        {
            "record_key": accepted.record_key,
            "action": action.value,
            "fingerprint": accepted.fingerprint,
            "offset": accepted.offset,
            "length": accepted.length,
            "correlation_id": correlation,
            "ils_id": prev.ils_id if prev else None,
            "previous_fingerprint": prev.fingerprint if prev else None,
            "number_sources": accepted.numbers if action is ChangeAction.CREATE else None,
        },
        separators=(",", ":"),
    )


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
    staged: list[_Accepted] = []
    total = 0
    stage_file = staging_path(layout, vendor.name, run_id, ref.chunk_id)
    reject_file = rejects_path(layout, vendor.name, run_id, ref.chunk_id)
    reject_file.parent.mkdir(parents=True, exist_ok=True)
    mask = (lambda data: masker.mask_raw(data, ref.format)) if masker else None
    # The commit uses a create's numbers for its batched match searches: staged here, where
    # the record is already prepared, instead of read and prepared again at commit.
    with_numbers = stages_numbers(masker.policy if masker else load_policy())
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
            fingerprint = result.fingerprint()
            numbers = number_sources(result.record) if with_numbers and not result.deleted else None
            staged.append(
                _Accepted(key, fingerprint, raw.offset, len(raw.data), result.deleted, numbers)
            )

    # The action is decided once per chunk, against one state lookup for all its records.
    previous = state.applied(vendor.ils_conn_id, (a.record_key for a in staged))
    counts: Counter[ChangeAction] = Counter()
    rebaselines: list[Rebaseline] = []
    stage_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage_file.with_suffix(".partial")
    with tmp.open("w", encoding="utf-8") as out:
        lines: list[str] = []
        for entry in staged:
            prev = previous.get(entry.record_key)
            stored = prev.fingerprint if prev else None
            if (
                prev is not None
                and stored is not None
                and not entry.deleted
                and not prev.deleted
                and is_outdated(stored)
                and same_as_stored(ref, entry.offset, entry.length, vendor, stored)
            ):
                rebaselines.append(Rebaseline(entry.record_key, stored, entry.fingerprint))
                stored = entry.fingerprint
            action = decide(entry.deleted, entry.fingerprint, stored, bool(prev and prev.deleted))
            counts[action] += 1
            correlation = correlation_id(ref.vendor, ref.file_sha256, ref.chunk_id, entry.offset)
            lines.append(staging_line(entry, action, prev, correlation))
            if len(lines) >= STAGING_BLOCK:
                out.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            out.write("\n".join(lines) + "\n")
    os.replace(tmp, stage_file)
    if rebaselines:
        state.run(store_current(vendor.ils_conn_id, rebaselines))

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
