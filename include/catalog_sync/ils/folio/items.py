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
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from catalog_sync.ils.client import IlsItem
from catalog_sync.ils.errors import (
    ILSBadAnswer,
    ILSConflict,
    ILSError,
    ILSNotFound,
    ILSRejected,
    ILSUnavailable,
)
from catalog_sync.ils.folio.client import FolioClient
from catalog_sync.ils.folio.itemmap import holdings_id, ils_item, item_body
from catalog_sync.ils.folio.records import check_id, cql_escape
from catalog_sync.ils.folio.reference import HOLDINGS_SOURCES
from catalog_sync.ils.folio.refids import ReferenceIds, load_reference_ids
from catalog_sync.ils.folio.session import OkapiSession, folio_message
from catalog_sync.ils.koha_items import DUPLICATE_BARCODE
from catalog_sync.leases import current_lease

T = TypeVar("T")
HOLDINGS = "/holdings-storage/holdings"
ITEMS = "/item-storage/items"
_ATTEMPTS = 4
_BACKOFF = 0.2


class FolioItems:
    """ItemsClient for FolioAdapter, which gives it the session, client and retrying `_call`."""

    session: OkapiSession
    client: FolioClient
    _gate: asyncio.Semaphore
    _references: ReferenceIds | None = None
    _references_lock: asyncio.Lock | None = None

    if TYPE_CHECKING:

        async def _call(self, what: str, send: Callable[[], Awaitable[T]]) -> T: ...

    async def list_items(self, biblio_id: str, *, correlation_id: str) -> list[IlsItem]:
        check_id(biblio_id)
        holdings = await self._holdings_of(biblio_id, correlation_id)
        if not holdings:
            found = await self._call(
                f"get instance {biblio_id}",
                lambda: self.client.get_instances([biblio_id], correlation_id=correlation_id),
            )
            if not found:
                raise ILSNotFound(f"FOLIO has no instance {biblio_id}")
            return []
        refs = await self._refs(correlation_id)
        by_id = {str(h["id"]): h for h in holdings}
        clauses = [f'holdingsRecordId=="{h}"' for h in by_id]
        items = await self._retrieve(ITEMS, "items", clauses, correlation_id)
        return [ils_item(i, by_id[str(i["holdingsRecordId"])], refs) for i in items]

    async def find_item(self, barcode: str, *, correlation_id: str) -> IlsItem | None:
        clause = f'barcode=="{cql_escape(barcode)}"'
        found = await self._retrieve(ITEMS, "items", [clause], correlation_id)
        # The index is case-insensitive, as FOLIO's unique barcode index is.
        mine = [i for i in found if str(i.get("barcode", "")).lower() == barcode.lower()]
        if len(mine) > 1:
            raise ILSBadAnswer(f"FOLIO found {len(mine)} items with one barcode")
        if not mine:
            return None
        holdings = await self._get(f"{HOLDINGS}/{mine[0]['holdingsRecordId']}", correlation_id)
        if holdings is None:
            raise ILSBadAnswer("FOLIO holds an item whose holdings record is gone")
        return ils_item(mine[0], holdings, await self._refs(correlation_id))

    async def add_item(
        self, biblio_id: str, properties: Mapping[str, object], *, correlation_id: str
    ) -> IlsItem:
        check_id(biblio_id)
        barcode = str(properties.get("external_id") or "")
        if not barcode:
            raise ILSRejected("an item without a barcode has no key", reason="item_no_barcode")
        refs = await self._refs(correlation_id)
        holdings = await self._holdings_at(biblio_id, properties, refs, correlation_id)
        body = item_body(properties, refs, str(holdings["id"]), None)
        delay = _BACKOFF
        for _ in range(_ATTEMPTS):
            response = await self._send("POST", ITEMS, correlation_id, body)
            if response is not None and response.status_code == 201:
                return ils_item(response.json(), holdings, refs)
            if response is not None and response.status_code < 500:
                await self._refused(response, barcode, correlation_id)
            # No answer, or a 5xx after which FOLIO may have saved it: found by its barcode.
            found = await self.find_item(barcode, correlation_id=correlation_id)
            if found is not None and found.biblio_id == biblio_id:
                return found
            if found is not None:
                raise _duplicate()
            await asyncio.sleep(delay)
            delay *= 2
        raise ILSUnavailable(f"FOLIO: add item to instance {biblio_id}: no answer")

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
        refs = await self._refs(correlation_id)
        delay = _BACKOFF
        for _ in range(_ATTEMPTS):
            stored = await self._get(f"{ITEMS}/{item_id}", correlation_id)
            holdings = {str(h["id"]) for h in await self._holdings_of(biblio_id, correlation_id)}
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
            response = await self._send("PUT", f"{ITEMS}/{item_id}", correlation_id, body)
            if response is not None and response.status_code == 204:
                return
            if response is not None and response.status_code == 404:
                raise ILSNotFound(f"FOLIO has no item {item_id}")
            if (
                response is not None
                and response.status_code not in (409,)
                and (response.status_code < 500)
            ):
                raise ILSRejected(
                    f"FOLIO: update item {item_id}: {folio_message(response)}",
                    status=response.status_code,
                    reason="folio_invalid",
                )
            # 409: changed since our read (circulation, staff): read again, keep theirs.
            await asyncio.sleep(delay)
            delay *= 2
        raise ILSUnavailable(f"FOLIO: update item {item_id}: still refused or unanswered")

    async def delete_item(self, item_id: str, *, correlation_id: str) -> None:
        check_id(item_id)
        stored = await self._get(f"{ITEMS}/{item_id}", correlation_id)
        if stored is None:
            raise ILSNotFound(f"FOLIO has no item {item_id}")
        await self._delete(f"{ITEMS}/{item_id}", correlation_id)
        holdings = await self._get(f"{HOLDINGS}/{stored['holdingsRecordId']}", correlation_id)
        if holdings is None or holdings["id"] != holdings_id(
            str(holdings["instanceId"]), str(holdings["permanentLocationId"])
        ):
            return  # not a holdings record we made: the library's, left alone
        left = await self._retrieve(
            ITEMS, "items", [f'holdingsRecordId=="{holdings["id"]}"'], correlation_id
        )
        if not left:
            # Ours and empty: gone with its last item, so the instance can be deleted too.
            await self._delete(f"{HOLDINGS}/{holdings['id']}", correlation_id)

    # -- helpers ---------------------------------------------------------------------------

    async def _refs(self, cid: str) -> ReferenceIds:
        # One load for the many records a chunk has in flight at its start.
        if self._references_lock is None:
            self._references_lock = asyncio.Lock()
        async with self._references_lock:
            if self._references is None:
                self._references = await load_reference_ids(self.session, self._call, cid)
        return self._references

    async def _send(
        self, method: str, path: str, cid: str, body: object = None
    ) -> httpx.Response | None:
        """One write under the adapter's concurrency bound; None when no answer came."""
        await _lease_check()
        try:
            async with self._gate:
                return await self.session.request(method, path, correlation_id=cid, json=body)
        except (ILSUnavailable, httpx.TransportError):
            return None

    async def _holdings_of(self, instance_id: str, cid: str) -> list[dict[str, Any]]:
        found = await self._retrieve(
            HOLDINGS, "holdingsRecords", [f'instanceId=="{instance_id}"'], cid
        )
        return sorted(found, key=lambda h: str(h.get("hrid", "")))

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

        refusal = ""

        async def send() -> dict[str, Any] | None:
            nonlocal refusal
            await _lease_check()
            response = await self.session.request("POST", HOLDINGS, correlation_id=cid, json=body)
            if response.status_code == 201:
                made: dict[str, Any] = response.json()
                return made
            if response.status_code == 422:
                refusal = folio_message(response)
                return None  # looked up below, outside this call's concurrency slot
            raise ILSError(
                f"FOLIO: create holdings: {folio_message(response)}", status=response.status_code
            )

        made = await self._call("create holdings", send)
        if made is None:
            # Our id already taken: a resend whose first try was saved, or a refusal.
            made = await self._get(f"{HOLDINGS}/{body['id']}", cid)
            if made is None:
                raise ILSRejected(f"FOLIO: create holdings: {refusal}", reason="folio_invalid")
        return made

    async def _refused(self, response: httpx.Response, barcode: str, cid: str) -> None:
        """A create FOLIO refused: a taken barcode is ILSConflict, anything else ILSRejected."""
        if response.status_code == 422 and await self.find_item(barcode, correlation_id=cid):
            raise _duplicate()
        raise ILSRejected(
            f"FOLIO: create item: {folio_message(response)}",
            status=response.status_code,
            reason="folio_invalid",
        )

    async def _retrieve(
        self, path: str, key: str, clauses: list[str], cid: str
    ) -> list[dict[str, Any]]:
        return await self._call(
            f"retrieve {key}",
            lambda: self.client.retrieve_where(path, key, clauses, correlation_id=cid),
        )

    async def _get(self, path: str, cid: str) -> dict[str, Any] | None:
        async def send() -> dict[str, Any] | None:
            response = await self.session.request("GET", path, correlation_id=cid)
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise ILSError(
                    f"FOLIO GET {path}: {folio_message(response)}", status=response.status_code
                )
            try:
                body: dict[str, Any] = response.json()
            except ValueError as exc:
                raise ILSBadAnswer(f"FOLIO GET {path} answered no JSON") from exc
            return body

        return await self._call(f"GET {path}", send)

    async def _delete(self, path: str, cid: str) -> None:
        async def send() -> None:
            await _lease_check()
            response = await self.session.request("DELETE", path, correlation_id=cid)
            if response.status_code in (204, 404):
                return  # 404: gone already (a resend after a lost answer)
            message = f"FOLIO DELETE {path}: {folio_message(response)}"
            if response.status_code < 500:
                raise ILSConflict(message, status=response.status_code)
            raise ILSError(message, status=response.status_code)

        await self._call(f"DELETE {path}", send)


def _duplicate() -> ILSConflict:
    # The barcode stays out of the message: it may be masked as PII outside the ILS payload.
    return ILSConflict("FOLIO: the item's barcode is taken", status=422, reason=DUPLICATE_BARCODE)


async def _lease_check() -> None:
    """Under a lease, check in Redis it is still ours (LeaseLost if not) before a write."""
    lease = current_lease()
    if lease is not None:
        await lease.before_write()
