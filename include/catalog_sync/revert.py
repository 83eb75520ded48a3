"""Revert a run: put back every ILS record it changed and delete every record it created."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

from catalog_sync.fingerprint import MATCH_POINT_KEY_SEPARATOR
from catalog_sync.ils.client import ILSClient
from catalog_sync.ils.errors import ILSConflict, ILSFencedOff, ILSNotFound
from catalog_sync.ils.koha import control_number_of
from catalog_sync.leases import (
    LeaseLost,
    LeaseManager,
    LeaseTimeout,
    holdings_scope,
    record_scope,
)
from catalog_sync.state import RunChange, StateCalls, StateStore, ops

log = logging.getLogger(__name__)


@dataclass
class RevertReport:
    """What a revert did; `kept` names records left as they are, with the reason."""

    run_id: str
    vendor: str
    restored: int = 0
    deleted: int = 0
    recreated: int = 0
    already: int = 0
    kept: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        kept = ", ".join(f"{k}={v}" for k, v in sorted(self.kept.items())) or "none"
        return (
            f"revert {self.vendor} {self.run_id}: restored={self.restored} "
            f"deleted={self.deleted} recreated={self.recreated} "
            f"already_reverted={self.already} kept: {kept}"
        )


def _query_for(record_key: str) -> dict[str, str]:
    """'DLC:123' -> control number 123 from source DLC (record_key's own layout);
    'isbn13=978...' (a record without 001, keyed by a match point) -> that ILS query."""
    name, separator, value = record_key.partition(MATCH_POINT_KEY_SEPARATOR)
    if separator and ":" not in name and name.isidentifier():
        return {name: value}
    source, _, number = record_key.rpartition(":")
    query = {"control_number": number}
    if source:
        query["control_number_source"] = source
    return query


async def _find_copy(client: ILSClient, marcxml: bytes, cid: str) -> str | None:
    """An ILS record holding exactly `marcxml` (a revert that died after re-creating it)."""
    number = control_number_of(marcxml)
    if number is None:
        return None
    for biblio in await client.find_biblio_ids_by({"control_number": number}, correlation_id=cid):
        if await client.get_biblio(biblio, correlation_id=cid) == marcxml:
            return biblio
    return None


async def _restore(client: ILSClient, change: RunChange, cid: str) -> tuple[str, str | None]:
    """Put the pre-image back; returns (outcome, ILS id it now has)."""
    assert change.pre_image is not None, "an update or delete keeps its pre-image"
    current = await client.get_biblio(change.ils_id, correlation_id=cid) if change.ils_id else None
    if current == change.pre_image:
        return "already", change.ils_id
    if current is not None and change.ils_id is not None:
        await client.update_biblio(change.ils_id, change.pre_image, correlation_id=cid)
        return "restored", change.ils_id
    found = await _find_copy(client, change.pre_image, cid)
    if found is not None:
        return "already", found
    # Deleted by the run (or since): Koha gives a re-created record a new biblio id.
    new_id = await client.create_biblio(change.pre_image, correlation_id=cid)
    return "recreated", new_id


async def _undo_create(
    client: ILSClient, state: StateCalls, change: RunChange, cid: str
) -> tuple[str, str | None]:
    ils_id = change.ils_id
    if ils_id is None:
        # The run died between the create and its acknowledgement: find what it made.
        found = await client.find_biblio_ids_by(_query_for(change.record_key), correlation_id=cid)
        owners = {b: await state.run(ops.owner_of(change.ils, b)) for b in found}
        mine = [b for b, owner in owners.items() if owner in (None, change.record_key)]
        if len(mine) > 1:
            return "kept:ambiguous", None
        if not mine:
            return "already", None
        ils_id = mine[0]
    try:
        await client.delete_biblio(ils_id, correlation_id=cid)
    except ILSNotFound:
        return "already", None
    except ILSConflict:
        return "kept:items_attached", ils_id
    return "deleted", None


async def revert_run(
    run_id: str,
    vendor: str,
    clients: dict[str, ILSClient],
    state: StateStore,
    leases: LeaseManager | None = None,
) -> RevertReport:
    """Undo what `run_id` of `vendor` wrote, per ILS (`clients` by ILS connection id).

    Safe to re-run: each record is compared with its pre-image before any write, a record
    done is marked reverted, and one found re-created by an earlier attempt is adopted.
    With `leases`, each record is reverted under the same record and holdings leases as a
    commit takes, so a vendor run writing the record meanwhile waits; a record whose lease
    stays busy is kept (`lease_busy`) for the next revert.
    """
    async with StateCalls(state) as calls:
        return await _revert(run_id, vendor, clients, calls, leases)


async def _revert(
    run_id: str,
    vendor: str,
    clients: dict[str, ILSClient],
    state: StateCalls,
    leases: LeaseManager | None,
) -> RevertReport:
    """revert_run's work, with every state-store step run off the event loop."""
    report = RevertReport(run_id, vendor)
    changes = await state.run(ops.changes_of_run(run_id, vendor))

    async def one(change: RunChange) -> None:
        if change.status == "reverted":
            report.already += 1
            return
        if leases is None:
            await undo(change)
            return
        keys = [record_scope(change.ils, change.record_key)]
        keys += [holdings_scope(change.ils, change.ils_id)] if change.ils_id else []
        try:
            async with leases.hold(keys):
                await undo(change)
        except (LeaseLost, LeaseTimeout, ILSFencedOff) as exc:
            log.warning("revert %s: %s kept, lease busy: %s", run_id, change.record_key, exc)
            report.kept["lease_busy"] += 1

    async def undo(change: RunChange) -> None:
        client = clients[change.ils]
        cid = f"revert:{vendor}:{change.record_key}"
        if change.action == "create":
            outcome, ils_id = await _undo_create(client, state, change, cid)
        else:
            outcome, ils_id = await _restore(client, change, cid)
        if outcome.startswith("kept:"):
            report.kept[outcome.split(":", 1)[1]] += 1
            log.warning("revert %s: %s left as it is (%s)", run_id, change.record_key, outcome)
            return
        restored = ils_id if change.action != "create" else change.prev_ils_id
        await state.run(ops.record_reverted(change, restored))
        if outcome == "restored":
            report.restored += 1
        elif outcome == "recreated":
            report.recreated += 1
        elif outcome == "deleted":
            report.deleted += 1
        else:
            report.already += 1

    await asyncio.gather(*(one(c) for c in changes))
    if not report.kept:
        await state.run(ops.forget_run_files(run_id, vendor))
    return report
