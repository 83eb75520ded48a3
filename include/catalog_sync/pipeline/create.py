"""Creates exactly once on a real Koha: stamp the record, find a lost create by its stamp.

A create's answer can be lost after Koha saved the record (timeout, 5xx, the worker killed
after the POST). Koha has no idempotency key and cannot search 001/035, so every record we
create carries its ledger idempotency key in a stamp 035 (catalog_sync.stamp). Before creating
a record with a create still pending in the ledger, we look for that stamp through what Koha
offers: `q` on the title and the `timestamp` column since the first intent, then each
candidate's MARCXML. A stamped copy is bound only if no other record key owns it and its 003
is ours (ILSClient.find_created); more than one goes to review.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pymarc import Record

from catalog_sync.pipeline.commit_job import CommitJob, marcxml
from catalog_sync.stamp import stamp_record
from catalog_sync.state import ops


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
    return Recovered(ils_id, this_change=stamp == key)


def stamped_payload(incoming: Record, key: str) -> bytes:
    """The MARCXML to POST: the record with its create stamp (the record itself untouched)."""
    return marcxml(stamp_record(copy.deepcopy(incoming), key))
