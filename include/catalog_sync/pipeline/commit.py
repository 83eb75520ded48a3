"""commit_chunk: write a chunk's staged changes to the ILS, each acknowledged once in the ledger."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path

from pymarc import record_to_xml

from catalog_sync.config import VendorConfig
from catalog_sync.ils.client import ILSClient
from catalog_sync.ils.errors import ILSConflict, ILSNotFound, ILSRejected
from catalog_sync.marc.prepare import Rejection, prepare_record
from catalog_sync.marc.reader import RawRecord, read_record_at
from catalog_sync.models import ChangeAction, ChunkRef, CommitReport, StagedChange
from catalog_sync.pipeline.process import read_staged
from catalog_sync.state import StateStore, idempotency_key

log = logging.getLogger(__name__)


class StagedRecordChanged(RuntimeError):
    """The landing file no longer holds the record that was staged (it must be immutable)."""


def _payload(ref: ChunkRef, change: StagedChange, vendor: VendorConfig) -> bytes:
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
    xml: bytes = record_to_xml(prepared.record, namespace=True)
    return xml


async def _apply(
    change: StagedChange,
    ref: ChunkRef,
    vendor: VendorConfig,
    client: ILSClient,
    state: StateStore,
    run_id: str,
    control_number: str,
) -> str:
    """Apply one change; returns the outcome name counted in the CommitReport."""
    ils = vendor.ils_conn_id
    key = idempotency_key(ils, change.record_key, change.fingerprint, change.action.value)
    entry = state.ledger_entry(key)
    if entry is not None and entry.status == "applied":
        return "already_applied"
    cid = change.correlation_id
    ils_id = change.ils_id
    ledger = {
        "ils": ils,
        "record_key": change.record_key,
        "fingerprint": change.fingerprint,
        "action": change.action.value,
    }
    state.record_pending(key, run_id=run_id, chunk_id=ref.chunk_id, ils_id=ils_id, **ledger)
    try:
        if change.action is ChangeAction.CREATE:
            # A pending entry means an earlier attempt may have written before it died: look first.
            existing = (
                await client.find_biblio_ids(control_number, correlation_id=cid)
                if entry is not None
                else []
            )
            if existing:
                ils_id = existing[0]
                await client.update_biblio(
                    ils_id, _payload(ref, change, vendor), correlation_id=cid
                )
            else:
                ils_id = await client.create_biblio(
                    _payload(ref, change, vendor), correlation_id=cid
                )
            outcome = "created"
        elif change.action is ChangeAction.UPDATE:
            assert ils_id is not None, "an update is staged only for a record with an ILS id"
            await client.update_biblio(ils_id, _payload(ref, change, vendor), correlation_id=cid)
            outcome = "updated"
        else:
            assert ils_id is not None, "a delete is staged only for a record with an ILS id"
            try:
                await client.delete_biblio(ils_id, correlation_id=cid)
            except ILSNotFound:
                log.info("record %s already absent from the ILS", cid)
            outcome = "deleted"
    except (ILSRejected, ILSConflict) as exc:
        # The ILS refused this record for good; the rest of the chunk goes on.
        state.record_failed(key, f"{type(exc).__name__}: {exc}")
        return f"failed:{getattr(exc, 'reason', type(exc).__name__)}"
    state.record_applied(key, ils_id=ils_id, run_id=run_id, **ledger)
    return outcome


async def commit_changes(
    ref: ChunkRef,
    staging_file: str | Path,
    vendor: VendorConfig,
    client: ILSClient,
    state: StateStore,
    run_id: str,
) -> CommitReport:
    """Write every staged create/update/delete of a chunk, in record-key order.

    The client bounds concurrency and rate; transient ILS failures that outlast its retries
    raise, failing the task so Airflow retries the chunk, and the ledger makes that retry
    skip what was already acknowledged.
    """
    changes = read_staged(staging_file)
    outcomes: Counter[str] = Counter()
    pending = sorted(
        (c for c in changes if c.action is not ChangeAction.UNCHANGED), key=lambda c: c.record_key
    )
    outcomes["unchanged"] = len(changes) - len(pending)

    async def one(change: StagedChange) -> str:
        control_number = change.record_key.rsplit(":", 1)[-1]
        return await _apply(change, ref, vendor, client, state, run_id, control_number)

    results = await asyncio.gather(*(one(c) for c in pending))
    outcomes.update(results)
    failures = {k.split(":", 1)[1]: v for k, v in outcomes.items() if k.startswith("failed:")}
    return CommitReport(
        chunk_id=ref.chunk_id,
        created=outcomes["created"],
        updated=outcomes["updated"],
        deleted=outcomes["deleted"],
        unchanged=outcomes["unchanged"],
        already_applied=outcomes["already_applied"],
        failed=sum(failures.values()),
        failures=failures,
    )
