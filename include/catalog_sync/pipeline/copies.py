"""A chunk's changes applied under their leases; updates in groups whose ILS copies are read
in one request once the whole group's leases are held (ILSClient.get_biblios).

Read-diff-write stays guarded: a group's copies are read only after every lease of the group
is held, and the group's records are applied while those leases last, so no other leased
writer can come between a copy and the write that was diffed against it. A copy the batch did
not return (or a batch the ILS refused) is read alone, as before: the batch only saves requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from catalog_sync.changes.state import ops
from catalog_sync.ils.errors import ILSBadAnswer, ILSFencedOff, ILSRejected
from catalog_sync.ils.requestcount import request_kind
from catalog_sync.leases import (
    Lease,
    LeaseLost,
    LeaseManager,
    LeaseTimeout,
    branch_scope,
    holdings_scope,
    record_scope,
)
from catalog_sync.models import ChangeAction, RequestKind, StagedChange
from catalog_sync.pipeline.bounded import each_bounded
from catalog_sync.pipeline.commit_job import CommitJob
from catalog_sync.pipeline.outcomes import Outcome

log = logging.getLogger(__name__)

# Updates whose copies are read in one request: 1 + 1/40 requests per updated record, and a
# group's leases (record and holdings, 80 keys) are still taken in well under a second.
GROUP_SIZE = 40
# Groups worked on at once: while one waits for its writes, the next takes its leases and
# reads its copies; more would only hold leases while their records queue for the ILS.
GROUPS_IN_FLIGHT = 2

# Applies one change, with its ILS copy when a batch read it (None: read it alone).
ApplyOne = Callable[[StagedChange, bytes | None], Awaitable[Outcome]]


def lease_keys(ils: str, change: StagedChange) -> list[str]:
    """The record's lease and, once it has an ILS id, its holdings' (items hang off the biblio)."""
    keys = [record_scope(ils, change.record_key)]
    if change.ils_id is not None:
        keys.append(holdings_scope(ils, change.ils_id))
    return keys


def group_updates(
    pending: Sequence[StagedChange], size: int = GROUP_SIZE
) -> tuple[list[list[StagedChange]], list[StagedChange]]:
    """(groups of updates, the other changes). A group never holds two records of one key or
    one ILS id: under one lease they would race each other's read-diff-write, so a second one
    is applied alone, under its own lease, after the first releases it."""
    groups: list[list[StagedChange]] = []
    alone: list[StagedChange] = []
    current: list[StagedChange] = []
    seen: set[str] = set()
    for change in pending:
        if change.action is not ChangeAction.UPDATE or change.ils_id is None:
            alone.append(change)
            continue
        names = {f"key:{change.record_key}", f"ils:{change.ils_id}"}
        if names & seen:
            alone.append(change)
            continue
        current.append(change)
        seen |= names
        if len(current) == size:
            groups.append(current)
            current, seen = [], set()
    if current:
        groups.append(current)
    return groups, alone


async def read_copies(
    job: CommitJob, group: Sequence[StagedChange], label: str
) -> dict[str, bytes]:
    """The group's ILS copies by ILS id, in one request where the ILS allows (counted as update
    work); {} when the ILS refused the batch or answered it badly: each is then read alone."""
    ids = [c.ils_id for c in group if c.ils_id is not None]
    try:
        with request_kind(RequestKind.UPDATE):
            return await job.client.get_biblios(ids, correlation_id=label)
    except (ILSBadAnswer, ILSRejected) as exc:
        log.warning(
            "batched read %s of %d ILS copies failed, each is read alone: %s", label, len(ids), exc
        )
        return {}


async def _refresh_applied(job: CommitJob, keys: list[str]) -> None:
    # Read again under the lease: another run may have just written these records.
    now = await job.state.run(ops.applied(job.ils, keys))
    for key in keys:
        fresh = now.get(key)
        if fresh is None:
            job.applied.pop(key, None)
        else:
            job.applied[key] = fresh


def _unleased(change: StagedChange, exc: LeaseLost | LeaseTimeout | ILSFencedOff) -> Outcome:
    # ILSFencedOff: the ILS saw a later holder's token; our write did not happen.
    log.error("record %s not written, left for the retry: %s", change.correlation_id, exc)
    return Outcome.lease(exc.reason)


async def _guarded(
    change: StagedChange,
    job: CommitJob,
    leases: LeaseManager,
    within: Lease | None,
    apply: ApplyOne,
) -> Outcome:
    """One change under its own lease: no other writer between our read, diff and write.

    A lease lost or still busy leaves the record un-acknowledged (Result.LEASE): it is
    never written unguarded, and commit_changes fails the chunk so its retry writes it.
    """
    try:
        async with leases.hold(lease_keys(job.ils, change), within=within):
            await _refresh_applied(job, [change.record_key])
            return await apply(change, None)
    except (LeaseLost, LeaseTimeout, ILSFencedOff) as exc:
        return _unleased(change, exc)


async def _group(
    index: int,
    group: list[StagedChange],
    job: CommitJob,
    leases: LeaseManager | None,
    within: Lease | None,
    apply: ApplyOne,
) -> list[Outcome]:
    """A group of updates: every lease held (one wait, in the global order), then one read of
    their copies, then each applied with its own copy. A lease lost fails only the records
    not yet written (each finds it lost at its write check)."""
    label = f"copies:{job.ref.chunk_id}:{index}"

    async def one(change: StagedChange, copies: dict[str, bytes], lease: Lease | None) -> Outcome:
        try:
            if lease is None:
                return await apply(change, copies.get(str(change.ils_id)))
            # Its writes fenced by its own keys: one record's header, not the group's 80 keys.
            with lease.narrowed(lease_keys(job.ils, change)):
                return await apply(change, copies.get(str(change.ils_id)))
        except (LeaseLost, ILSFencedOff) as exc:
            return _unleased(change, exc)

    if leases is None:
        copies = await read_copies(job, group, label)
        return await each_bounded(group, lambda c: one(c, copies, None))
    keys = [k for c in group for k in lease_keys(job.ils, c)]
    try:
        async with leases.hold(keys, within=within) as lease:
            await _refresh_applied(job, [c.record_key for c in group])
            copies = await read_copies(job, group, label)
            return await each_bounded(group, lambda c: one(c, copies, lease))
    except (LeaseLost, LeaseTimeout) as exc:
        return [_unleased(c, exc) for c in group]


async def apply_all(
    pending: Sequence[StagedChange], job: CommitJob, leases: LeaseManager | None, apply: ApplyOne
) -> list[Outcome]:
    """Every pending change applied (leased when `leases`), updates in groups; outcomes in no
    particular order. Infrastructure failures raise after the records in flight finish."""
    groups, alone = group_updates(pending)

    async def run(within: Lease | None) -> list[Outcome]:
        gate = asyncio.Semaphore(GROUPS_IN_FLIGHT)

        async def grouped(index: int, group: list[StagedChange]) -> list[Outcome]:
            async with gate:
                return await _group(index, group, job, leases, within, apply)

        if leases is None:
            single = each_bounded(alone, lambda c: apply(c, None))
        else:
            single = each_bounded(alone, lambda c: _guarded(c, job, leases, within, apply))
        parts = await asyncio.gather(
            single, *(grouped(i, g) for i, g in enumerate(groups)), return_exceptions=True
        )
        for part in parts:
            if isinstance(part, BaseException):
                raise part
        return [o for part in parts if isinstance(part, list) for o in part]

    if leases is None or job.vendor.lease_branch is None:
        return await run(None)
    branch = branch_scope(job.ils, job.vendor.lease_branch)
    async with leases.hold([branch], counted=False) as outer:
        return await run(outer)
