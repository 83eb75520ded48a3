"""FOLIO item and holdings deletes in batches: one `DELETE <collection>?query=<CQL>` per
URL-sized share of a batch (item-storage.raml, holdings-storage.raml), where each record went
in a request of its own before.

Each record is selected by its id *and* the `_version` it was read with under the holdings
lease: `(_version==/number 2 and id==(a or b)) or ...`. FOLIO's DELETE by id ignores
`_version` (optimistic locking guards updates only), so the one-by-one delete this replaces
removed an item whatever staff or circulation did to it between our read and the delete.
Now an item changed since is left alone and its caller gets ILSConflict (the record goes to
review, as a Koha item on loan does): only the copy we read is deleted, never a changed one.
FOLIO answers a CQL delete 204 without saying what it removed, so one retrieve of the
batch's ids afterwards tells which items survived. A holdings record (ours, found empty) is
deleted the same way; one that an item got in the meantime fails the share as a whole (the
foreign key), and its records are then deleted one per request, so only that one stays.

A CQL delete is repeatable (a resend after a lost answer selects nothing more, and never
anything we did not select), so a batch left unanswered is sent again as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from catalog_sync.ils.errors import (
    ILSAuthError,
    ILSBadAnswer,
    ILSConflict,
    ILSError,
    ILSUnavailable,
)
from catalog_sync.ils.folio.records import cql_escape
from catalog_sync.ils.folio.session import folio_message
from catalog_sync.ils.folio.writes import BACKOFF, transient

if TYPE_CHECKING:
    from catalog_sync.ils.folio.itembatch import ItemBatches, Pending

log = logging.getLogger(__name__)

ITEMS = "/item-storage/items"
HOLDINGS = "/holdings-storage/holdings"
# Bytes of URL-encoded CQL per delete: Okapi's HTTP server (Vert.x) refuses a request line
# over 4,096 bytes, and method, path and protocol take under 100 of them. About 80 ids fit.
QUERY_BYTES = 3500
ITEM_CHANGED = "item_changed"


def delete_cql(items: Sequence[Mapping[str, Any]]) -> str:
    """CQL selecting exactly these items as read: id and `_version`, ids grouped by version
    (a chunk's items mostly share one), so each item costs little more than its id."""
    by_version: dict[object, list[str]] = {}
    for item in items:
        by_version.setdefault(item.get("_version"), []).append(f'"{cql_escape(str(item["id"]))}"')
    parts = []
    for version, ids in by_version.items():
        listed = f"id==({' or '.join(ids)})"
        if isinstance(version, int) and not isinstance(version, bool):
            parts.append(f"(_version==/number {version} and {listed})")
        else:  # a FOLIO without optimistic locking: by id, as the one-by-one delete was
            parts.append(f"({listed})")
    return " or ".join(parts)


def delete_shares(items: Sequence[Mapping[str, Any]], budget: int = QUERY_BYTES) -> list[range]:
    """`items` cut into consecutive shares whose delete_cql stays within `budget` bytes once
    URL-encoded; an item too long alone still gets a share of its own."""
    shares: list[range] = []
    start = 0
    while start < len(items):
        end = start + 1
        while end < len(items) and _encoded(items[start : end + 1]) <= budget:
            end += 1
        shares.append(range(start, end))
        start = end
    return shares


def _encoded(items: Sequence[Mapping[str, Any]]) -> int:
    return len(quote(delete_cql(items), safe=""))


async def delete_items(batches: ItemBatches, wanted: list[Pending]) -> list[BaseException | None]:
    """Delete each item as read (Pending.body: id, `_version`); each caller answered None
    (gone), ILSConflict (changed in FOLIO since read: kept) or why its request failed."""
    answers: list[BaseException | None] = [None] * len(wanted)
    cid = wanted[0].cid
    sent: list[int] = []
    for share in delete_shares([p.body for p in wanted]):
        sent += await _send(batches, ITEMS, wanted, list(share), answers, cid)
    if not sent:
        return answers
    ids = [wanted[n].id for n in sent]
    left = {str(i["id"]): i for i in await batches.retrieve(ITEMS, "items", "id", ids, cid)}
    for n in sent:
        held = left.get(wanted[n].id)
        if held is None:
            continue
        if held.get("_version") != wanted[n].body.get("_version"):
            answers[n] = ILSConflict(
                "FOLIO: the item changed since it was read; left for a person to decide",
                status=409,
                reason=ITEM_CHANGED,
            )
        else:
            answers[n] = ILSBadAnswer("FOLIO kept an item its CQL delete selected")
    return answers


async def delete_holdings(
    batches: ItemBatches, wanted: list[Pending]
) -> list[BaseException | None]:
    """Delete each holdings record as read (id, `_version`); each caller answered None, or
    ILSConflict when FOLIO keeps it because an item now references it."""
    answers: list[BaseException | None] = [None] * len(wanted)
    cid = wanted[0].cid
    for share in delete_shares([p.body for p in wanted]):
        ids = list(share)
        await _send(batches, HOLDINGS, wanted, ids, answers, cid)
        refused = [n for n in ids if _referenced(answers[n])]
        if refused and len(ids) > 1:
            # One referenced record fails the share's single SQL DELETE: each alone, so
            # only the ones still referenced stay.
            for n in refused:
                answers[n] = None
            await asyncio.gather(
                *(_send(batches, HOLDINGS, wanted, [n], answers, cid) for n in refused)
            )
        for n in ids:
            if _referenced(answers[n]):
                answers[n] = ILSConflict(str(answers[n]), status=400)
    return answers


def _referenced(answer: BaseException | None) -> bool:
    return type(answer) is ILSError and answer.status == 400 and "still referenced" in str(answer)


async def _send(
    batches: ItemBatches,
    path: str,
    wanted: list[Pending],
    share: list[int],
    answers: list[BaseException | None],
    cid: str,
) -> list[int]:
    """One share's delete, resent while unanswered; the records it was sent for (the others'
    answers say why not: lease lost, FOLIO's refusal, no answer)."""
    delay = BACKOFF
    for attempt in range(1, batches.max_attempts + 1):
        # Leases checked in Redis just before each request: a lost one is not sent.
        share = await batches.leased(wanted, share, answers)
        if not share:
            return []
        query = delete_cql([wanted[n].body for n in share])
        try:
            async with batches.gate:
                response = await batches.client.session.request(
                    "DELETE", path, correlation_id=cid, params={"query": query}
                )
            if response.status_code == 204:
                return share
            raise ILSError(
                f"FOLIO DELETE {path}: {response.status_code} {folio_message(response)}",
                status=response.status_code,
            )
        except ILSAuthError:
            raise
        except (ILSError, httpx.TransportError) as exc:
            if not transient(exc) or attempt == batches.max_attempts:
                for n in share:
                    answers[n] = (
                        ILSUnavailable(f"{batches.label}: DELETE {path}: {exc}")
                        if transient(exc)
                        else exc
                    )
                return []
            log.warning("%s: CQL delete at %s failed (%s), resending", batches.label, path, exc)
            await asyncio.sleep(delay)
            delay *= 2
    return []
