"""commit_chunk: write a chunk's real changes to the ILS, each acknowledged once in the ledger."""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from pathlib import Path

from catalog_sync.changes.fingerprint import ils_comparable, rewrote_001
from catalog_sync.changes.matching import find_match
from catalog_sync.changes.protected import load_field_rules, merge_protected
from catalog_sync.changes.recordiff import diff_records
from catalog_sync.changes.state import StateCalls, StateStore, idempotency_key, ops
from catalog_sync.config import VendorConfig
from catalog_sync.ils.client import ILSClient
from catalog_sync.ils.errors import (
    ILSAmbiguousCreate,
    ILSBadAnswer,
    ILSConflict,
    ILSRejected,
    ILSVersionConflict,
)
from catalog_sync.ils.requestcount import counting, request_kind, switch_request_kind
from catalog_sync.leases import (
    LeaseManager,
    UnleasedRecords,
    current_lease,
    holdings_scope,
)
from catalog_sync.models import ChangeAction, ChunkRef, CommitReport, RequestKind, StagedChange
from catalog_sync.pipeline.bounded import client_bounds
from catalog_sync.pipeline.commit_job import (
    CommitJob,
    incoming_record,
    marcxml,
    parse_ils_record,
    write_diffs,
)
from catalog_sync.pipeline.copies import apply_all
from catalog_sync.pipeline.create import prefetch_matches, recover_lost_create, stamped_payload
from catalog_sync.pipeline.delete import delete_change
from catalog_sync.pipeline.items import (
    KOHA_ITEM_TAG,
    ItemPlan,
    ItemProblem,
    apply_items,
    plan_items,
    split_items,
)
from catalog_sync.pipeline.outcomes import (
    NO_CHANGE_ACK,
    IlsRecordUnreadable,
    Note,
    Outcome,
    PayloadNotXml,
    Result,
    StagedRecordChanged,
    tally,
)
from catalog_sync.pipeline.process import read_staged
from catalog_sync.privacy import Masker, load_policy

log = logging.getLogger(__name__)


# What a record acknowledged in the ledger counts as when a later try finds it there.
_APPLIED_AS = {
    ChangeAction.CREATE: Result.CREATED,
    ChangeAction.UPDATE: Result.UPDATED,
    ChangeAction.DELETE: Result.DELETED,
    ChangeAction.UNCHANGED: Result.UNCHANGED,
}


async def _apply(change: StagedChange, job: CommitJob, prefetched: bytes | None = None) -> Outcome:
    """Apply one change, its ILS requests counted as its kind of work (items apart);
    `prefetched`: its ILS copy, read in a batch under its lease (pipeline/copies.py)."""
    with request_kind(RequestKind(change.action.value)):
        return await _apply_change(change, job, prefetched)


async def _apply_change(change: StagedChange, job: CommitJob, prefetched: bytes | None) -> Outcome:
    """Apply one change; returns the outcome counted in the CommitReport."""
    ils = job.ils
    key = idempotency_key(
        ils, change.record_key, change.fingerprint, change.action.value, change.previous_fingerprint
    )
    entry = await job.state.run(ops.ledger_entry(key))
    if entry is not None and entry.status == "applied":
        # Written by an earlier try: still counted as what it was, so a re-run chunk's report
        # adds up to the same totals as the first (the key holds the ledger's action).
        was = Result.NO_CHANGE if entry.ack == NO_CHANGE_ACK else _APPLIED_AS[change.action]
        return Outcome(was, note=Note.ALREADY_APPLIED)
    cid = change.correlation_id
    ledger = {
        "ils": ils,
        "record_key": change.record_key,
        "fingerprint": change.fingerprint,
        "action": change.action.value,
    }
    # Read before this try's own pending entry exists: creates an earlier try left pending.
    lost = None
    if change.action is ChangeAction.CREATE and not job.dry_run:
        lost = await job.state.run(ops.lost_creates(ils, change.record_key))
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
            return await delete_change(change, job, close, acknowledge, intent)
        # Item fields never travel in the bib payload: they become the biblio's items.
        incoming, items = split_items(
            incoming_record(job.ref, change, job.vendor), job.vendor.items
        )
        ils_id = change.ils_id

        async def write_items(biblio_id: str | None, plan: ItemPlan | None = None) -> None:
            # Before the record's acknowledgement: a try that dies in between re-plans from
            # the ILS's items (by barcode) and creates none twice.
            if job.dry_run or biblio_id is None or not items:
                return
            plan = plan or await plan_items(job.client, biblio_id, items, correlation_id=cid)
            job.items.update(
                await apply_items(job.client, ils, biblio_id, plan, correlation_id=cid)
            )

        matched = False
        if lost is not None:
            found = await recover_lost_create(job, lost, key, incoming, cid, taken)
            if found.ambiguous:
                await close("review", "ambiguous_create")
                job.note_review(change, "ambiguous_create")
                return Outcome.review("ambiguous_create")
            if found.this_change:
                # An earlier try created it and died before the acknowledgement.
                await write_items(found.ils_id)
                job.note_diff(change, "created", None, incoming)
                ack = f"created biblio {found.ils_id} (found by its stamp)"
                await acknowledge(found.ils_id, job.ils_fingerprint(incoming), ack)
                return Outcome(Result.CREATED)
            ils_id = found.ils_id  # a create of older content: brought up to date below
        if change.action is ChangeAction.CREATE and ils_id is None:
            match = await find_match(
                incoming,
                job.vendor.match_points,
                job.client,
                correlation_id=cid,
                taken=taken,
                prefetched=job.candidates.get(change.record_key),
            )
            if match.review_reason is not None:
                await close("review", match.review_reason)
                job.note_review(change, match.review_reason)
                return Outcome.review(match.review_reason)
            if match.ils_id is None:
                # Read before any write: a barcode of another biblio fails the record unwritten.
                plan = await plan_items(job.client, None, items, correlation_id=cid)
                if not job.dry_run:
                    await intent("create", None, None)
                    ils_id = await job.client.create_biblio(
                        stamped_payload(incoming, key), correlation_id=cid
                    )
                    await write_items(ils_id, plan)
                job.note_diff(change, "created", None, incoming)
                await acknowledge(ils_id, job.ils_fingerprint(incoming), f"created biblio {ils_id}")
                return Outcome(Result.CREATED)
            ils_id, matched = match.ils_id, True
            lease = current_lease()
            if lease is not None:
                # Matched another feed's record (other record key): hold its holdings too.
                await lease.extend([holdings_scope(ils, ils_id)])
        assert ils_id is not None, "an update is staged only for a record with an ILS id"
        # A matched (or recovered older) create is an update from here: read, diff, PUT.
        switch_request_kind(RequestKind.UPDATE)
        if prefetched is not None and ils_id == change.ils_id:
            raw_copy: bytes | None = prefetched
        else:
            raw_copy = await job.client.get_biblio(ils_id, correlation_id=cid)
        if raw_copy is None:
            await close("review", "ils_record_missing")
            job.note_review(change, "ils_record_missing")
            return Outcome.review("ils_record_missing")
        held_copy = parse_ils_record(raw_copy)
        # A Koha read may embed the biblio's items as 952: they are items, not bib content.
        held_copy.remove_fields(KOHA_ITEM_TAG)
        item_plan = await plan_items(job.client, ils_id, items, correlation_id=cid)
        # Compared without what Koha rebuilds on save (005, 999, our stamp, and 001 when
        # autoControlNumber gave it the biblio number): never byte for byte.
        rewritten = rewrote_001(held_copy, ils_id)
        ils_copy = ils_comparable(held_copy, drop_001=rewritten)
        merged = merge_protected(incoming, ils_copy, job.rules.protected)
        if rewritten:
            merged.remove_fields("001")
            merged.add_ordered_field(held_copy["001"])
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
            if job.vendor.drift_policy == "skip":
                return Outcome(Result.DRIFT_SKIPPED)
            return Outcome.review(reason)
        note = Note.DRIFTED if drifted else (Note.MATCHED if matched else None)
        sent = ils_comparable(merged, drop_001=rewritten)
        if not diff_records(ils_copy, sent, ignore=job.rules.volatile):
            # Changed in the file but already so in the ILS (a matched copy, a retried
            # write, or only protected fields differed): nothing to send. Its items may be new.
            await write_items(ils_id, item_plan)
            await acknowledge(ils_id, job.ils_fingerprint(merged), NO_CHANGE_ACK)
            return Outcome(Result.NO_CHANGE, note=note)
        if not job.dry_run:
            await intent("update", ils_id, raw_copy)
            await job.client.update_biblio(ils_id, marcxml(merged), correlation_id=cid)
        await write_items(ils_id, item_plan)
        job.note_diff(change, "updated", ils_copy, merged)
        await acknowledge(ils_id, job.ils_fingerprint(merged), f"updated biblio {ils_id}")
        return Outcome(Result.UPDATED, note=note)
    except ILSAmbiguousCreate as exc:
        # Several ILS records carry this create's stamp: a person picks the one to keep.
        await close("review", str(exc))
        job.note_review(change, exc.reason)
        return Outcome.review(exc.reason)
    except ILSVersionConflict as exc:
        # Changed in the ILS between our read and our write (optimistic locking): drift. The
        # write did not happen; overlay cannot be honoured blindly, so it waits for a person.
        skip = job.vendor.drift_policy == "skip"
        await close("skipped" if skip else "review", exc.reason)
        if not skip:
            job.note_review(change, exc.reason)
            return Outcome.review(exc.reason)
        return Outcome(Result.DRIFT_SKIPPED)
    except (ILSRejected, ILSConflict, ILSBadAnswer) as exc:
        # The ILS refused this record for good; the rest of the chunk goes on.
        await close("failed", f"{type(exc).__name__}: {exc}")
        return Outcome.failed(getattr(exc, "reason", type(exc).__name__))
    except IlsRecordUnreadable as exc:
        # The ILS copy needs a person (a retry reads the same copy): held, the rest goes on.
        await close("review", str(exc))
        job.note_review(change, exc.reason)
        return Outcome.review(exc.reason)
    except ItemProblem as exc:
        # Found before any write of the record (a barcode of another biblio found by a race
        # after the biblio's own write leaves that write unacknowledged for the next run).
        await close("failed", str(exc))
        return Outcome.failed(exc.reason)
    except (StagedRecordChanged, PayloadNotXml) as exc:
        # Not the record that was staged and approved, or not one any ILS can read: never
        # written. Its state row stays as it was, so the next delivery of the record is
        # decided afresh; nothing is lost.
        log.error("record %s not written: %s", change.correlation_id, exc)
        await close("failed", str(exc))
        return Outcome.failed(exc.reason)


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
    # Every request the ILS client sends for this chunk, counted by kind for the report.
    with counting() as requests:
        # Every state-store step runs off the event loop: a wait for a locked database must
        # not hold up requests in flight or the lease renewals running beside them.
        async with StateCalls(state) as calls:
            job = CommitJob(
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
            creates = [c for c in pending if c.action is ChangeAction.CREATE]
            with request_kind(RequestKind.CREATE):
                await prefetch_matches(creates, job)
            with client_bounds(client, leases):
                results = await apply_all(
                    pending, job, leases, lambda change, prefetched: _apply(change, job, prefetched)
                )
    unleased = Counter(r.reason for r in results if r.result is Result.LEASE)
    if unleased:
        raise UnleasedRecords(
            f"chunk {ref.chunk_id}: {sum(unleased.values())} record(s) not written, their lease "
            f"was lost or busy ({dict(unleased)}); they stay pending and the retry writes them"
        )
    if diff_file is not None:
        write_diffs(diff_file, job.diffs)
    return tally(
        ref.chunk_id,
        len(changes) - len(pending),
        results,
        dry_run=dry_run,
        diff_path=str(diff_file) if diff_file is not None else "",
        items=job.items,
        requests=requests.as_report(),
    )
