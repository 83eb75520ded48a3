"""A vendor's deleted record: its ILS copy deleted, unless items are attached (then review)."""

from __future__ import annotations

import logging
from typing import Any

from catalog_sync.ils.errors import ILSConflict, ILSNotFound
from catalog_sync.models import StagedChange
from catalog_sync.pipeline.commit_job import CommitJob, incoming_record, parse_ils_record

log = logging.getLogger(__name__)


async def delete_change(
    change: StagedChange, job: CommitJob, close: Any, acknowledge: Any, intent: Any
) -> str:
    """Delete the ILS copy of a record the vendor deleted; one with items goes to review."""
    ils_id = change.ils_id
    assert ils_id is not None, "a delete is staged only for a record with an ILS id"
    cid = change.correlation_id
    incoming_record(job.ref, change, job.vendor)  # still the deleted record that was staged?
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
