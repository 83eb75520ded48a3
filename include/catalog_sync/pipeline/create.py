"""Creates exactly once on a real Koha: stamp the record, find a lost create by its stamp.

A create's answer can be lost after Koha saved the record (timeout, 5xx, the worker killed after
the POST). Koha has no idempotency key and cannot search 001/035, so every record we create
carries its ledger idempotency key in a stamp 035 (catalog_sync.changes.stamp). Before creating
a record with a create still pending in the ledger, we look for that stamp through what Koha
offers: `q` on the title and the `timestamp` column since the first intent, then each
candidate's MARCXML. A stamped copy is bound only if no other record key owns it and its 003 is
ours (ILSClient.find_created); more than one goes to review.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pymarc import Record

from catalog_sync.changes.identifiers import numbers_from_sources
from catalog_sync.changes.matching import (
    match_numbers,
    numbers_for_points,
    prefetch_candidates,
)
from catalog_sync.changes.stamp import stamp_record
from catalog_sync.changes.state import ops
from catalog_sync.marc.shallow import sharing_fields
from catalog_sync.models import StagedChange
from catalog_sync.pipeline.commit_job import CommitJob, incoming_record, marcxml
from catalog_sync.pipeline.outcomes import StagedRecordChanged


@dataclass(frozen=True)
class Recovered:
    """What a look for lost creates found: the ILS id, whether it holds this very change."""

    ils_id: str | None
    this_change: bool = False
    ambiguous: bool = False


async def recover_lost_create(
    job: CommitJob,
    lost: ops.LostCreates,
    key: str,
    incoming: Record,
    cid: str,
    taken: Callable[[str], Awaitable[bool]],
) -> Recovered:
    """The ILS copy an earlier, unacknowledged create of this record made (`lost`: the
    ledger's pending creates of it, ops.lost_creates), if any."""
    title, source = incoming.get("245"), incoming.get("003")
    found = await job.client.find_created(
        lost.stamps,
        title=title.get("a") if title is not None else None,
        source=(source.data or "").strip() or None if source is not None else None,
        since=lost.since,
        correlation_id=cid,
    )
    mine = {ils_id: stamp for ils_id, stamp in found.items() if not await taken(ils_id)}
    if len(mine) > 1:
        return Recovered(None, ambiguous=True)
    if not mine:
        return Recovered(None)
    [(ils_id, stamp)] = mine.items()
    if stamp == key and await job.client.get_biblio(ils_id, correlation_id=cid) is None:
        # This very create, half-made (FOLIO: an instance without its MARC): the create of
        # the same stamp finishes it (ILSClient.find_created). Done here, before matching
        # could take the half-made record for another ILS copy of this one.
        payload = stamped_payload(incoming, key)
        return Recovered(await job.client.create_biblio(payload, correlation_id=cid), True)
    return Recovered(ils_id, this_change=stamp == key)


async def prefetch_matches(creates: Sequence[StagedChange], job: CommitJob) -> None:
    """Find the match candidates of every create in a few batched searches (job.candidates).

    A create's numbers are the ones process_chunk staged, filtered by the vendor's match
    points as they are now. Only a create staged without them (a staging file written before
    they were staged, or a PII policy that masks a field they come from) is read once more from
    the landing file for them; one that no longer reads as staged is left to its own commit
    step, which re-reads every record and reports it. Candidates found for a record edited
    since staging are never used: that step refuses the record before matching.
    """
    wanted: dict[str, dict[str, list[str]]] = {}
    for change in creates:
        if change.number_sources is not None:
            numbers = numbers_from_sources(change.number_sources)
            wanted[change.record_key] = numbers_for_points(numbers, job.vendor.match_points)
            continue
        try:
            record = incoming_record(job.ref, change, job.vendor)
        except StagedRecordChanged:
            continue
        wanted[change.record_key] = match_numbers(record, job.vendor.match_points)
    if wanted:
        job.candidates = await prefetch_candidates(
            wanted, job.client, correlation_id=f"match:{job.ref.chunk_id}"
        )


def stamped_payload(incoming: Record, key: str) -> bytes:
    """The MARCXML to POST: the record with its create stamp (the record itself untouched)."""
    return marcxml(stamp_record(sharing_fields(incoming), key))
