"""FOLIO holdings and items for FolioAdapter: the ItemsClient half (catalog_sync.ils.client).

A vendor's item field becomes a FOLIO item under a holdings record of the instance, one
holdings per permanent location (the item's home library, as a FOLIO location code), made when
missing. The pipeline speaks Koha's item property names (pipeline/items.py); itemmap.py maps
them both ways, so an item read back compares with the item wanted by the same names.

The barcode is the key, as on Koha: FOLIO's item barcode index is unique (case-insensitive),
so a second item with one answers 422, and a lost answer to a create is recovered by looking
the barcode up, never by sending it twice. Holdings we make have an id derived from the
instance and the location, so a resent create meets its own first one. Writes happen under the
biblio's holdings lease, checked in Redis before each (FOLIO has no fencing header).

Each call answers one item, but the look-ups and writes of the many records a commit task has
in flight go out together, a CQL retrieve or batch synchronous POST per batch
(ils.folio.itembatch): a new item costs a few hundredths of a request, not four.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from catalog_sync.ils.client import IlsItem
from catalog_sync.ils.errors import (
    ILSBadAnswer,
    ILSConflict,
    ILSError,
    ILSNotFound,
    ILSRejected,
    ILSUnavailable,
    ILSVersionConflict,
)
from catalog_sync.ils.folio.client import FolioClient
from catalog_sync.ils.folio.itembatch import ItemBatches, Pending
from catalog_sync.ils.folio.itemmap import holdings_id, ils_item, item_body
from catalog_sync.ils.folio.records import check_id
from catalog_sync.ils.folio.reference import HOLDINGS_SOURCES
from catalog_sync.ils.folio.refids import ReferenceIds, load_reference_ids
from catalog_sync.ils.folio.session import OkapiSession
from catalog_sync.ils.folio.writes import BACKOFF
from catalog_sync.leases import current_lease

log = logging.getLogger(__name__)
T = TypeVar("T")
HOLDINGS = "/holdings-storage/holdings"
ITEMS = "/item-storage/items"
_ATTEMPTS = 4


class FolioItems:
    """ItemsClient for FolioAdapter, which gives it the session, client, retrying `_call` and
    the item batches (ItemBatches)."""

    session: OkapiSession
    client: FolioClient
    item_batches: ItemBatches
    _gate: asyncio.Semaphore
    _references: ReferenceIds | None = None
    _references_lock: asyncio.Lock | None = None

    if TYPE_CHECKING:

        async def _call(self, what: str, send: Callable[[], Awaitable[T]]) -> T: ...

    async def list_items(self, biblio_id: str, *, correlation_id: str) -> list[IlsItem]:
        check_id(biblio_id)
        batches = self.item_batches
        holdings = await self._holdings_of(biblio_id, correlation_id)
        if not holdings:
            if not await batches.instances_by_id.submit((biblio_id, correlation_id)):
                raise ILSNotFound(f"FOLIO has no instance {biblio_id}")
            return []
        refs = await self._refs(correlation_id)
        by_id = {str(h["id"]): h for h in holdings}
        found = await asyncio.gather(
            *(batches.items_of_holdings.submit((h, correlation_id)) for h in by_id)
        )
        return [ils_item(i, by_id[str(i["holdingsRecordId"])], refs) for f in found for i in f]

    async def find_item(self, barcode: str, *, correlation_id: str) -> IlsItem | None:
        found = await self.item_batches.items_by_barcode.submit((barcode, correlation_id))
        if len(found) > 1:
            raise ILSBadAnswer(f"FOLIO found {len(found)} items with one barcode")
        if not found:
            return None
        holdings = await self._holdings_by_id(str(found[0]["holdingsRecordId"]), correlation_id)
        if holdings is None:
            raise ILSBadAnswer("FOLIO holds an item whose holdings record is gone")
        return ils_item(found[0], holdings, await self._refs(correlation_id))

    async def add_item(
        self, biblio_id: str, properties: Mapping[str, object], *, correlation_id: str
    ) -> IlsItem:
        check_id(biblio_id)
        if not properties.get("external_id"):
            raise ILSRejected("an item without a barcode has no key", reason="item_no_barcode")
        refs = await self._refs(correlation_id)
        holdings = await self._holdings_at(biblio_id, properties, refs, correlation_id)
        body = item_body(properties, refs, str(holdings["id"]), None)
        try:
            # A lost answer is looked up by the barcode before a resend (ItemBatches._create).
            saved = await self.item_batches.new_items.submit(
                Pending(body, current_lease(), correlation_id)
            )
        except (ILSConflict, ILSRejected):
            # Refused (a barcode taken since the plan was made, an item FOLIO will not take):
            # FOLIO has no transaction over holdings and item, and an item needs its holdings
            # first, so a holdings record of ours left with no item goes again. The test is
            # "ours and empty", not "made just now", so a re-run after a kill between the two
            # writes removes it too when its item is refused again.
            await self._drop_if_empty(str(holdings["id"]), correlation_id, quiet=True)
            raise
        return ils_item(saved, holdings, refs)

    async def update_item(
        self,
        biblio_id: str,
        item_id: str,
        properties: Mapping[str, object],
        *,
        correlation_id: str,
    ) -> None:
        check_id(biblio_id)
        check_id(item_id)
        batches = self.item_batches
        refs = await self._refs(correlation_id)
        delay = BACKOFF
        for _ in range(_ATTEMPTS):
            found = await batches.items_by_id.submit((item_id, correlation_id))
            holdings = {str(h["id"]) for h in await self._holdings_of(biblio_id, correlation_id)}
            stored = found[0] if found else None
            if stored is None or str(stored.get("holdingsRecordId")) not in holdings:
                raise ILSNotFound(f"FOLIO has no item {item_id} on instance {biblio_id}")
            target = str(stored["holdingsRecordId"])
            if "home_library_id" in properties:
                target = str(
                    (await self._holdings_at(biblio_id, properties, refs, correlation_id))["id"]
                )
            body = item_body(properties, refs, target, stored)
            if body == {k: v for k, v in stored.items() if k != "metadata"}:
                return  # already so (a resent update whose first answer was lost)
            try:
                # Echoes the `_version` just read: FOLIO's batch has no update-only mode, and
                # an item deleted in FOLIO since this read would be made again (as with
                # instances, ils.folio.writes); the window is one batch's wait.
                await batches.changed_items.submit(Pending(body, current_lease(), correlation_id))
            except ILSVersionConflict:
                # Changed since our read (circulation, staff): read again, keep theirs.
                await asyncio.sleep(delay)
                delay *= 2
                continue
            if target != str(stored["holdingsRecordId"]):
                # Moved to another location: the holdings it left may now be ours and empty.
                await self._drop_if_empty(
                    str(stored["holdingsRecordId"]), correlation_id, quiet=True
                )
            return
        raise ILSUnavailable(f"FOLIO: update item {item_id}: still refused or unanswered")

    async def delete_item(self, item_id: str, *, correlation_id: str) -> None:
        check_id(item_id)
        # Read under the holdings lease, and deleted only as read (id and `_version`), in one
        # CQL delete with the other items of the batch (ils.folio.cqldelete): an item staff
        # or circulation changed in between is kept (ILSConflict), not deleted unseen.
        found = await self.item_batches.items_by_id.submit((item_id, correlation_id))
        if not found:
            raise ILSNotFound(f"FOLIO has no item {item_id}")
        stored = found[0]
        await self.item_batches.gone_items.submit(Pending(stored, current_lease(), correlation_id))
        # Ours and empty: gone with its last item, so the instance can be deleted too.
        await self._drop_if_empty(str(stored["holdingsRecordId"]), correlation_id)

    # -- helpers ---------------------------------------------------------------------------

    async def _refs(self, cid: str) -> ReferenceIds:
        # One load for the many records a chunk has in flight at its start.
        if self._references_lock is None:
            self._references_lock = asyncio.Lock()
        async with self._references_lock:
            if self._references is None:
                self._references = await load_reference_ids(self.session, self._call, cid)
        return self._references

    async def _holdings_of(self, instance_id: str, cid: str) -> list[dict[str, Any]]:
        found = await self.item_batches.holdings_of_instance.submit((instance_id, cid))
        return sorted(found, key=lambda h: str(h.get("hrid", "")))

    async def _holdings_by_id(self, holdings_id: str, cid: str) -> dict[str, Any] | None:
        found = await self.item_batches.holdings_by_id.submit((holdings_id, cid))
        return found[0] if found else None

    async def _holdings_at(
        self, instance_id: str, props: Mapping[str, object], refs: ReferenceIds, cid: str
    ) -> dict[str, Any]:
        """The instance's holdings at the item's home location; made when it has none."""
        if not props.get("home_library_id"):
            raise ILSRejected("a FOLIO item needs a home location", reason="item_no_library")
        location = refs.location_id(str(props["home_library_id"]))
        for holdings in await self._holdings_of(instance_id, cid):
            if holdings.get("permanentLocationId") == location:
                return holdings
        body = {
            "id": holdings_id(instance_id, location),
            "instanceId": instance_id,
            "permanentLocationId": location,
            "sourceId": HOLDINGS_SOURCES["FOLIO"],
        }
        # Our id taken already (a resend whose first try was saved) answers the stored one.
        return await self.item_batches.new_holdings.submit(Pending(body, current_lease(), cid))

    async def _drop_if_empty(self, holdings_id_: str, cid: str, *, quiet: bool = False) -> None:
        """Delete the holdings record if we made it (its id is the one we derive) and it holds
        no item; the library's own holdings are left alone. With `quiet`, a failure to delete
        is logged, not raised: the caller's own answer (a refusal, a move) matters more."""
        holdings = await self._holdings_by_id(holdings_id_, cid)
        if holdings is None or holdings["id"] != holdings_id(
            str(holdings["instanceId"]), str(holdings["permanentLocationId"])
        ):
            return
        if await self.item_batches.items_of_holdings.submit((holdings_id_, cid)):
            return
        try:
            await self.item_batches.gone_holdings.submit(Pending(holdings, current_lease(), cid))
        except ILSError as exc:  # e.g. staff put an item on it in between: FOLIO keeps it
            if not quiet:
                raise
            log.warning("FOLIO: an empty holdings record of ours stays (%s)", exc)
