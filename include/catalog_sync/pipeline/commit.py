"""commit_chunk: write a chunk's real changes to the ILS, each acknowledged once in the ledger."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import os
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymarc
from pymarc import Record, record_to_xml

from catalog_sync.config import VendorConfig
from catalog_sync.ils.client import ILSClient
from catalog_sync.ils.errors import ILSConflict, ILSFencedOff, ILSNotFound, ILSRejected
from catalog_sync.leases import (
    Lease,
    LeaseLost,
    LeaseManager,
    LeaseTimeout,
    UnleasedRecords,
    branch_scope,
    current_lease,
    holdings_scope,
    record_scope,
)
from catalog_sync.marc.prepare import Rejection, prepare_record
from catalog_sync.marc.reader import RawRecord, read_record_at
from catalog_sync.matching import find_match
from catalog_sync.models import ChangeAction, ChunkRef, ChunkReport, CommitReport, StagedChange
from catalog_sync.pipeline.process import read_staged
from catalog_sync.privacy import Masker, load_policy
from catalog_sync.protected import FieldRules, TagSet, load_field_rules, merge_protected
from catalog_sync.recordiff import content_fingerprint, diff_records, masked_changes
from catalog_sync.state import AppliedRecord, StateCalls, StateStore, idempotency_key, ops

log = logging.getLogger(__name__)


class StagedRecordChanged(RuntimeError):
    """The landing file no longer holds the record that was staged (it must be immutable)."""


class IlsRecordUnreadable(RuntimeError):
    """The ILS returned a record that is not MARCXML we can read."""


def _incoming(ref: ChunkRef, change: StagedChange, vendor: VendorConfig) -> Record:
    """Re-read the record from the landing file: ILS-bound values never rest in staging."""
    raw = RawRecord(
        offset=change.offset,
        data=read_record_at(ref.file_path, change.offset, change.length),
        ordinal=-1,
    )
    prepared = prepare_record(raw, ref.format, vendor)
    if isinstance(prepared, Rejection):
        raise StagedRecordChanged(
            f"record at byte {change.offset} of {ref.file_name} no longer prepares: "
            f"{prepared.reason}"
        )
    return prepared.record


def _xml(record: Record) -> bytes:
    xml: bytes = record_to_xml(record, namespace=True)
    return xml


def parse_ils_record(marcxml: bytes) -> Record:
    records = pymarc.parse_xml_to_array(io.BytesIO(marcxml), strict=False)
    if len(records) != 1 or records[0] is None:
        raise IlsRecordUnreadable("the ILS answered with no readable MARCXML record")
    record: Record = records[0]
    return record


@dataclass
class _Commit:
    """What every record of one chunk's commit shares."""

    ref: ChunkRef
    vendor: VendorConfig
    client: ILSClient
    state: StateCalls
    run_id: str
    rules: FieldRules
    masker: Masker
    applied: dict[str, AppliedRecord]
    dry_run: bool
    diffs: list[dict[str, Any]]

    @property
    def ils(self) -> str:
        return self.vendor.ils_conn_id

    def ils_fingerprint(self, record: Record) -> str:
        # Protected and volatile fields are the ILS's own business: editing them is not drift.
        ignore = TagSet(self.rules.protected.patterns + self.rules.volatile.patterns)
        return content_fingerprint(record, ignore)

    def note_diff(
        self, change: StagedChange, outcome: str, before: Record | None, after: Record | None
    ) -> None:
        fields = diff_records(before, after, ignore=self.rules.volatile)
        self.diffs.append(
            {
                "record_key": change.record_key,
                "correlation_id": change.correlation_id,
                "action": change.action.value,
                "outcome": outcome,
                "fields": masked_changes(fields, self.masker),
            }
        )

    def note_review(self, change: StagedChange, reason: str) -> None:
        """A record a person must look at: listed in the change report with its reason."""
        self.diffs.append(
            {
                "record_key": change.record_key,
                "correlation_id": change.correlation_id,
                "action": change.action.value,
                "outcome": f"review:{reason}",
                "fields": [],
            }
        )


# What a record acknowledged in the ledger counts as when a later try finds it there.
_APPLIED_AS = {
    ChangeAction.CREATE: "created",
    ChangeAction.UPDATE: "updated",
    ChangeAction.DELETE: "deleted",
    ChangeAction.UNCHANGED: "unchanged",
}


async def _apply(change: StagedChange, job: _Commit) -> str:
    """Apply one change; returns the outcome counted in the CommitReport ("review:<reason>"...)."""
    ils = job.ils
    key = idempotency_key(
        ils, change.record_key, change.fingerprint, change.action.value, change.previous_fingerprint
    )
    entry = await job.state.run(ops.ledger_entry(key))
    if entry is not None and entry.status == "applied":
        # Written by an earlier try: still counted as what it was, so a re-run chunk's report
        # adds up to the same totals as the first (the key holds the ledger's action).
        return f"already_applied:{_APPLIED_AS[change.action]}"
    cid = change.correlation_id
    ledger = {
        "ils": ils,
        "record_key": change.record_key,
        "fingerprint": change.fingerprint,
        "action": change.action.value,
    }
    if not job.dry_run:
        await job.state.run(
            ops.record_pending(
                key, run_id=job.run_id, chunk_id=job.ref.chunk_id, ils_id=change.ils_id, **ledger
            )
        )

    # Each step is awaited until committed: the write waits for its intent, the count for its
    # acknowledgement, even when StateCalls commits it together with other records' steps.
    async def close(status: str, detail: str) -> None:
        if not job.dry_run:
            await job.state.run(ops.record_failed(key, detail, status=status))

    async def acknowledge(ils_id: str | None, ils_fp: str | None, ack: str) -> None:
        if not job.dry_run:
            await job.state.run(
                ops.record_applied(
                    key,
                    ils_id=ils_id,
                    run_id=job.run_id,
                    vendor=job.vendor.name,
                    ils_fingerprint=ils_fp,
                    ack=ack,
                    **ledger,
                )
            )

    async def intent(action: str, ils_id: str | None, pre_image: bytes | None) -> None:
        await job.state.run(
            ops.record_intent(
                run_id=job.run_id,
                ils=ils,
                vendor=job.vendor.name,
                record_key=change.record_key,
                action=action,
                ils_id=ils_id,
                pre_image=pre_image,
            )
        )

    async def taken(found: str) -> bool:
        return await job.state.run(ops.owner_of(ils, found)) not in (None, change.record_key)

    try:
        if change.action is ChangeAction.DELETE:
            return await _delete(change, job, close, acknowledge, intent)
        incoming = _incoming(job.ref, change, job.vendor)
        ils_id = change.ils_id
        matched = False
        if change.action is ChangeAction.CREATE:
            match = await find_match(
                incoming,
                job.vendor.match_points,
                job.client,
                correlation_id=cid,
                taken=taken,
            )
            if match.review_reason is not None:
                await close("review", match.review_reason)
                job.note_review(change, match.review_reason)
                return f"review:{match.review_reason}"
            if match.ils_id is None:
                if not job.dry_run:
                    await intent("create", None, None)
                    ils_id = await job.client.create_biblio(_xml(incoming), correlation_id=cid)
                job.note_diff(change, "created", None, incoming)
                await acknowledge(ils_id, job.ils_fingerprint(incoming), f"created biblio {ils_id}")
                return "created"
            ils_id, matched = match.ils_id, True
            lease = current_lease()
            if lease is not None:
                # Matched another feed's record (other record key): hold its holdings too.
                await lease.extend([holdings_scope(ils, ils_id)])
        assert ils_id is not None, "an update is staged only for a record with an ILS id"
        raw_copy = await job.client.get_biblio(ils_id, correlation_id=cid)
        if raw_copy is None:
            await close("review", "ils_record_missing")
            job.note_review(change, "ils_record_missing")
            return "review:ils_record_missing"
        ils_copy = parse_ils_record(raw_copy)
        merged = merge_protected(incoming, ils_copy, job.rules.protected)
        drifted = False
        previous = job.applied.get(change.record_key)
        if not matched and previous is not None and previous.ils_fingerprint is not None:
            held = job.ils_fingerprint(ils_copy)
            # Holding exactly what we are about to write is no drift: an earlier attempt of
            # this change wrote it and died before its acknowledgement.
            drifted = held != previous.ils_fingerprint and held != job.ils_fingerprint(merged)
        if drifted and job.vendor.drift_policy != "overlay":
            reason = "drift"
            await close("skipped" if job.vendor.drift_policy == "skip" else "review", reason)
            job.note_diff(change, f"drift_{job.vendor.drift_policy}", ils_copy, incoming)
            return "drift_skipped" if job.vendor.drift_policy == "skip" else f"review:{reason}"
        if not diff_records(ils_copy, merged, ignore=job.rules.volatile):
            # Changed in the file but already so in the ILS (a matched copy, a retried
            # write, or only protected fields differed): nothing to send.
            await acknowledge(ils_id, job.ils_fingerprint(merged), "unchanged in the ILS")
            return (
                "drifted:no_change"
                if drifted
                else ("matched:no_change" if matched else "no_change")
            )
        if not job.dry_run:
            await intent("update", ils_id, raw_copy)
            await job.client.update_biblio(ils_id, _xml(merged), correlation_id=cid)
        job.note_diff(change, "updated", ils_copy, merged)
        await acknowledge(ils_id, job.ils_fingerprint(merged), f"updated biblio {ils_id}")
        prefix = "drifted:" if drifted else ("matched:" if matched else "")
        return f"{prefix}updated"
    except (ILSRejected, ILSConflict) as exc:
        # The ILS refused this record for good; the rest of the chunk goes on.
        await close("failed", f"{type(exc).__name__}: {exc}")
        return f"failed:{getattr(exc, 'reason', type(exc).__name__)}"


async def _delete(
    change: StagedChange, job: _Commit, close: Any, acknowledge: Any, intent: Any
) -> str:
    ils_id = change.ils_id
    assert ils_id is not None, "a delete is staged only for a record with an ILS id"
    cid = change.correlation_id
    raw_copy = await job.client.get_biblio(ils_id, correlation_id=cid)
    if raw_copy is None:
        await acknowledge(ils_id, None, "already absent from the ILS")
        return "deleted"
    ils_copy = parse_ils_record(raw_copy)
    if job.dry_run:
        # Whether items are attached shows only when the ILS refuses the delete.
        job.note_diff(change, "deleted", ils_copy, None)
        return "deleted"
    await intent("delete", ils_id, raw_copy)
    try:
        await job.client.delete_biblio(ils_id, correlation_id=cid)
    except ILSNotFound:
        log.info("record %s already absent from the ILS", cid)
    except ILSConflict:
        # Items are attached: a catalogue record with holdings is never deleted by a feed.
        await close("review", "items_attached")
        job.note_review(change, "items_attached")
        return "review:items_attached"
    job.note_diff(change, "deleted", ils_copy, None)
    await acknowledge(ils_id, None, f"deleted biblio {ils_id}")
    return "deleted"


def lease_keys(ils: str, change: StagedChange) -> list[str]:
    """The record's lease and, once it has an ILS id, its holdings' (items hang off the biblio)."""
    keys = [record_scope(ils, change.record_key)]
    if change.ils_id is not None:
        keys.append(holdings_scope(ils, change.ils_id))
    return keys


async def _guarded(
    change: StagedChange, job: _Commit, leases: LeaseManager, within: Lease | None
) -> str:
    """_apply under the record's lease: no other writer between our read, diff and write.

    A lease lost or still busy leaves the record un-acknowledged ("lease:<reason>"): it is
    never written unguarded, and commit_changes fails the chunk so its retry writes it.
    """
    try:
        async with leases.hold(lease_keys(job.ils, change), within=within):
            # Read again under the lease: another run may have just written this record.
            now = await job.state.run(ops.applied(job.ils, [change.record_key]))
            fresh = now.get(change.record_key)
            if fresh is None:
                job.applied.pop(change.record_key, None)
            else:
                job.applied[change.record_key] = fresh
            return await _apply(change, job)
    except (LeaseLost, LeaseTimeout, ILSFencedOff) as exc:
        # ILSFencedOff: the ILS saw a later holder's token; our write did not happen.
        log.error("record %s not written, left for the retry: %s", change.correlation_id, exc)
        return f"lease:{exc.reason}"


# Records being worked on at once. The ILS client bounds requests by itself; this bounds the
# memory of records read and parsed ahead of it, which otherwise grows with the chunk size
# on an initial load (bench/README.md: +42 MB for 2,000 creates).
MAX_RECORDS_IN_FLIGHT = 64


async def _each_bounded(
    pending: Sequence[StagedChange], run: Callable[[StagedChange], Awaitable[str]]
) -> list[str]:
    gate = asyncio.Semaphore(MAX_RECORDS_IN_FLIGHT)

    async def one(change: StagedChange) -> str:
        async with gate:
            return await run(change)

    return list(await asyncio.gather(*(one(c) for c in pending)))


async def _apply_all(
    pending: Sequence[StagedChange], job: _Commit, leases: LeaseManager | None
) -> list[str]:
    if leases is None:
        return await _each_bounded(pending, lambda c: _apply(c, job))
    if job.vendor.lease_branch is None:
        return await _each_bounded(pending, lambda c: _guarded(c, job, leases, None))
    branch = branch_scope(job.ils, job.vendor.lease_branch)
    async with leases.hold([branch], counted=False) as outer:
        return await _each_bounded(pending, lambda c: _guarded(c, job, leases, outer))


def diff_path(report_dir: Path, chunk_id: str) -> Path:
    return report_dir / "diffs" / f"{chunk_id}.jsonl"


async def commit_changes(
    ref: ChunkRef,
    staging_file: str | Path,
    vendor: VendorConfig,
    client: ILSClient,
    state: StateStore,
    run_id: str,
    *,
    dry_run: bool = False,
    masker: Masker | None = None,
    diff_file: Path | None = None,
    leases: LeaseManager | None = None,
) -> CommitReport:
    """Write every staged create/update/delete of a chunk, in record-key order.

    Each create is matched first (match points); each update reads the ILS copy, keeps its
    protected fields, checks it for drift and is sent only when a field really differs.
    `dry_run` reads the ILS but writes nothing, not even the state store. Field-level diffs,
    masked by `masker` (a throwaway key when None), go to `diff_file` as JSON lines.

    The client bounds concurrency and rate; transient ILS failures that outlast its retries
    raise, failing the task so Airflow retries the chunk, and the ledger makes that retry
    skip what was already acknowledged.

    With `leases`, each record is read, diffed and written under its Redis lease (plus the
    vendor's branch lease, if configured). Records whose lease was lost or stayed busy are not
    written; the others are, and then UnleasedRecords fails the chunk for Airflow to retry.
    Redis being down raises LeaseStoreUnavailable: nothing is written without a lease.
    """
    changes = read_staged(staging_file)
    pending = sorted(
        (c for c in changes if c.action is not ChangeAction.UNCHANGED), key=lambda c: c.record_key
    )
    # Every state-store step runs off the event loop: a wait for a locked database must not
    # hold up requests in flight or the lease renewals running beside them.
    async with StateCalls(state) as calls:
        job = _Commit(
            ref=ref,
            vendor=vendor,
            client=client,
            state=calls,
            run_id=run_id,
            rules=load_field_rules(protected=vendor.protected_fields),
            masker=masker or Masker(load_policy(), secrets.token_bytes(32)),
            applied=await calls.run(
                ops.applied(vendor.ils_conn_id, [c.record_key for c in pending])
            ),
            dry_run=dry_run,
            diffs=[],
        )
        results = await _apply_all(pending, job, leases)
    unleased = Counter(r.partition(":")[2] for r in results if r.startswith("lease:"))
    if unleased:
        raise UnleasedRecords(
            f"chunk {ref.chunk_id}: {sum(unleased.values())} record(s) not written, their lease "
            f"was lost or busy ({dict(unleased)}); they stay pending and the retry writes them"
        )
    outcomes: Counter[str] = Counter()
    outcomes["unchanged"] = len(changes) - len(pending)
    failures: Counter[str] = Counter()
    reviews: Counter[str] = Counter()
    for result in results:
        kind, _, rest = result.partition(":")
        if kind == "failed":
            failures[rest] += 1
        elif kind == "review":
            reviews[rest] += 1
        elif kind in ("matched", "drifted", "already_applied"):
            outcomes[kind] += 1
            outcomes[rest] += 1
        else:
            outcomes[kind] += 1
    if diff_file is not None:
        _write_diffs(diff_file, job.diffs)
    return CommitReport(
        chunk_id=ref.chunk_id,
        created=outcomes["created"],
        updated=outcomes["updated"],
        deleted=outcomes["deleted"],
        unchanged=outcomes["unchanged"] + outcomes["drift_skipped"],
        already_applied=outcomes["already_applied"],
        failed=sum(failures.values()),
        failures=dict(failures),
        matched=outcomes["matched"],
        no_change=outcomes["no_change"],
        drifted=outcomes["drifted"] + outcomes["drift_skipped"] + reviews["drift"],
        review=sum(reviews.values()),
        reviews=dict(reviews),
        dry_run=dry_run,
        diff_path=str(diff_file) if diff_file is not None else "",
    )


def _write_diffs(path: Path, diffs: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    with tmp.open("w", encoding="utf-8") as out:
        for entry in sorted(diffs, key=lambda d: str(d["record_key"])):
            out.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
    os.replace(tmp, path)


@dataclass(frozen=True)
class DeleteCheck:
    """A run's deletes against the vendor's cap: over it, the run stops before committing."""

    deletes: int
    base: int
    cap: int

    @property
    def over_cap(self) -> bool:
        return self.deletes > self.cap

    def message(self, vendor: str) -> str:
        return (
            f"needs approval: this run would delete {self.deletes} record(s) of vendor "
            f"{vendor!r}, over its cap of {self.cap} ({self.base} records loaded); nothing was "
            "written. Check the delivery, then trigger the run again with param "
            "approve_deletes=true to apply the deletes."
        )


def check_delete_cap(
    chunks: Sequence[ChunkReport], vendor: VendorConfig, state: StateStore
) -> DeleteCheck:
    """Deletes staged by the run vs delete_cap_ratio of the vendor's records in the ILS."""
    deletes = sum(c.deletes for c in chunks)
    base = state.live_records(vendor.name) or sum(c.accepted for c in chunks)
    return DeleteCheck(deletes, base, math.floor(base * vendor.delete_cap_ratio))
