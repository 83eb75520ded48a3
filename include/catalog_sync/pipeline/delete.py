"""A vendor's deleted record: its ILS copy deleted, unless items are attached (then review,
or, with the vendor's `items.delete_with_items`, the items deleted first)."""

from __future__ import annotations

import logging
from typing import Any

from catalog_sync.ils.client import ItemsClient
from catalog_sync.ils.errors import ILSConflict, ILSNotFound
from catalog_sync.ils.requestcount import request_kind
from catalog_sync.models import RequestKind, StagedChange
from catalog_sync.pipeline.commit_job import CommitJob, incoming_record, parse_ils_record
from catalog_sync.pipeline.outcomes import Outcome, Result

log = logging.getLogger(__name__)


async def _delete_with_items(job: CommitJob, ils_id: str, cid: str) -> str | None:
    """With `delete_with_items: true`, delete the biblio's items (under its holdings lease,
    held by the record's lease keys) and then the biblio; the review reason when it stays."""
    client = job.client
    if not job.vendor.items.delete_with_items or not isinstance(client, ItemsClient):
        return "items_attached"
    try:
        with request_kind(RequestKind.ITEM):
            for item in await client.list_items(ils_id, correlation_id=cid):
                await client.delete_item(item.item_id, correlation_id=cid)
                job.items["deleted"] += 1
        await client.delete_biblio(ils_id, correlation_id=cid)
    except ILSNotFound:
        log.info("record %s already absent from the ILS", cid)
    except ILSConflict:
        # An item Koha will not delete (on loan, on hold): a person decides.
        return "items_not_deletable"
    return None


async def delete_change(
    change: StagedChange, job: CommitJob, close: Any, acknowledge: Any, intent: Any
) -> Outcome:
    """Delete the ILS copy of a record the vendor deleted; one with items goes to review."""
    ils_id = change.ils_id
    assert ils_id is not None, "a delete is staged only for a record with an ILS id"
    cid = change.correlation_id
    incoming_record(job.ref, change, job.vendor)  # still the deleted record that was staged?
    raw_copy = await job.client.get_biblio(ils_id, correlation_id=cid)
    if raw_copy is None:
        await acknowledge(ils_id, None, "already absent from the ILS")
        return Outcome(Result.DELETED)
    ils_copy = parse_ils_record(raw_copy)
    if job.dry_run:
        # Whether items are attached shows only when the ILS refuses the delete.
        job.note_diff(change, "deleted", ils_copy, None)
        return Outcome(Result.DELETED)
    await intent("delete", ils_id, raw_copy)
    try:
        await job.client.delete_biblio(ils_id, correlation_id=cid)
    except ILSNotFound:
        log.info("record %s already absent from the ILS", cid)
    except ILSConflict:
        # Items are attached: a catalogue record with holdings is never deleted by a feed,
        # unless the vendor's config says its items go with it.
        reason = await _delete_with_items(job, ils_id, cid)
        if reason is not None:
            await close("review", reason)
            job.note_review(change, reason)
            return Outcome.review(reason)
    job.note_diff(change, "deleted", ils_copy, None)
    await acknowledge(ils_id, None, f"deleted biblio {ils_id}")
    return Outcome(Result.DELETED)
