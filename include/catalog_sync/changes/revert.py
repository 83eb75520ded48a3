"""Revert a run: put back every ILS record it changed and delete every record it created."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pymarc import Record

from catalog_sync.changes.fingerprint import ils_comparable
from catalog_sync.changes.protected import FieldRules, TagSet, load_field_rules
from catalog_sync.changes.recordiff import content_fingerprint
from catalog_sync.changes.stamp import stamp_record
from catalog_sync.changes.state import RunChange, StateCalls, StateStore, idempotency_key, ops
from catalog_sync.ils.client import ILSClient
from catalog_sync.ils.errors import ILSConflict, ILSFencedOff, ILSNotFound
from catalog_sync.leases import (
    LeaseLost,
    LeaseManager,
    LeaseTimeout,
    holdings_scope,
    record_scope,
)
from catalog_sync.pipeline.commit_job import marcxml, parse_ils_record
from catalog_sync.pipeline.outcomes import IlsRecordUnreadable

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


def _parse(marcxml: bytes) -> Record | None:
    try:
        return parse_ils_record(marcxml)
    except IlsRecordUnreadable:
        return None


def content_of(marcxml: bytes, rules: FieldRules) -> str | None:
    """A record's content as revert compares it: without what the ILS rebuilds on save (005,
    999, stamp, 001) and without volatile fields; None when unreadable."""
    record = _parse(marcxml)
    if record is None:
        return None
    return content_fingerprint(ils_comparable(record, drop_001=True), rules.volatile)


def _revert_stamp(change: RunChange) -> str:
    """The stamp of revert's re-create of one record: the same for every try of that revert."""
    return idempotency_key(change.ils, change.record_key, change.run_id, "revert")


def _since(change: RunChange) -> datetime:
    return change.created_at or datetime.now(UTC) - timedelta(days=1)


async def _find_copy(client: ILSClient, change: RunChange, cid: str) -> str | None:
    """The copy an earlier try of this revert re-created (found by its stamp), if any."""
    assert change.pre_image is not None
    record = _parse(change.pre_image)
    title = record.get("245") if record is not None else None
    found = await client.find_created(
        [_revert_stamp(change)],
        title=title.get("a") if title is not None else None,
        source=_source(change.record_key),
        since=_since(change),
        correlation_id=cid,
    )
    # A half-made copy (FOLIO: no MARC yet) is not adopted: re-creating finishes it.
    whole = [b for b in found if await client.get_biblio(b, correlation_id=cid) is not None]
    return min(whole, key=_id_order) if whole else None


def _id_order(ils_id: str) -> tuple[int, str]:
    """ILS ids in a stable order, the oldest first where the ILS numbers them (Koha's
    biblionumber); FOLIO's UUIDs carry no order, so there it is only deterministic."""
    return (len(ils_id), ils_id) if ils_id.isdigit() else (1 << 30, ils_id)


def _source(record_key: str) -> str | None:
    """'DLC:123' -> 'DLC' (record_key's own layout: 003 qualifies 001)."""
    return record_key.rpartition(":")[0] or None


async def _restore(
    client: ILSClient, state: StateCalls, change: RunChange, rules: FieldRules, cid: str
) -> tuple[str, str | None]:
    """Put the pre-image back; returns (outcome, ILS id it now has).

    Compared by content, never bytes: the ILS rebuilds every record it saves. A copy that is
    neither the pre-image nor what the run left there was changed since: it is kept.
    """
    assert change.pre_image is not None, "an update or delete keeps its pre-image"
    current = await client.get_biblio(change.ils_id, correlation_id=cid) if change.ils_id else None
    if current is not None and change.ils_id is not None:
        now = content_of(current, rules)
        if now is not None and now == content_of(change.pre_image, rules):
            return "already", change.ils_id
        if change.action != "delete" and await _changed_since(state, change, current, rules):
            return "kept:changed_since", change.ils_id
        await client.update_biblio(change.ils_id, change.pre_image, correlation_id=cid)
        return "restored", change.ils_id
    found = await _find_copy(client, change, cid)
    if found is not None:
        return "already", found
    # Deleted by the run (or since): Koha gives a re-created record a new biblio id.
    record = _parse(change.pre_image)
    if record is None:
        return "kept:pre_image_unreadable", None
    payload = marcxml(stamp_record(ils_comparable(record), _revert_stamp(change)))
    new_id = await client.create_biblio(payload, correlation_id=cid)
    return "recreated", new_id


async def _changed_since(
    state: StateCalls, change: RunChange, current: bytes, rules: FieldRules
) -> bool:
    """The ILS copy is not what the run wrote (per the state store): edited after the run."""
    applied = (await state.run(ops.applied(change.ils, [change.record_key]))).get(change.record_key)
    if applied is None or applied.ils_fingerprint is None:
        return False
    record = _parse(current)
    if record is None:
        return True
    ignore = TagSet(rules.protected.patterns + rules.volatile.patterns)
    return content_fingerprint(ils_comparable(record, drop_001=True), ignore) != (
        applied.ils_fingerprint
    )


async def _undo_create(
    client: ILSClient, state: StateCalls, change: RunChange, cid: str
) -> tuple[str, str | None]:
    ils_id = change.ils_id
    if ils_id is not None:
        # A later run's delete, reverted since, re-created the record under a new ILS id (on
        # Koha and FOLIO alike): the record key's current copy is the one to delete.
        now = (await state.run(ops.applied(change.ils, [change.record_key]))).get(change.record_key)
        if now is not None and not now.deleted and now.ils_id is not None:
            ils_id = now.ils_id
    if ils_id is None:
        # The run died between the create and its acknowledgement: find what it made by the
        # stamp it carries (the ledger keeps the create's idempotency key).
        stamps = await state.run(ops.create_stamps(change.run_id, change.ils, change.record_key))
        found = await client.find_created(
            stamps,
            title=None,
            source=_source(change.record_key),
            since=_since(change),
            correlation_id=cid,
        )
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


def _field_rules(vendor: str) -> FieldRules:
    """The vendor's protected and volatile fields, as its commits compared them."""
    try:
        from catalog_sync.config import load_vendors

        protected = load_vendors()[vendor].protected_fields
    except Exception:  # a vendor no longer configured: the default lists
        protected = None
    return load_field_rules(protected=protected)


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
    rules = _field_rules(vendor)

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
            outcome, ils_id = await _restore(client, state, change, rules, cid)
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
