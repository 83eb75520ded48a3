"""Koha's item routes for KohaAdapter: /biblios/{id}/items, /biblios/{id}/items/{item_id}, /items.

Koha's biblio API never turns 952 fields into items (AddBiblio saves the record only): items
are created one by one with POST /biblios/{id}/items and replaced with PUT
/biblios/{id}/items/{item_id} (docs/koha.md). The barcode (`external_id`) is the key: Koha
answers 409 "Duplicate barcode." to a second item with the same one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from catalog_sync.ils.client import IlsItem
from catalog_sync.ils.errors import ILSBadAnswer, ILSConflict, ILSRejected
from catalog_sync.ils.transport import ILSTransport, RetryableFailure
from catalog_sync.leases import current_lease

API = "/api/v1"
JSON = "application/json"
_PAGE_SIZE = 100
# A biblio with more items than this is a serial run, not a shelf-ready delivery: refused.
_MAX_PAGES = 50
DUPLICATE_BARCODE = "duplicate_barcode"


class KohaItems:
    """The ItemsClient half of KohaAdapter (catalog_sync.ils.client.ItemsClient)."""

    transport: ILSTransport

    async def list_items(self, biblio_id: str, *, correlation_id: str) -> list[IlsItem]:
        path = f"{API}/biblios/{biblio_path(biblio_id)}/items"
        return await self._item_pages(path, {}, correlation_id)

    async def find_item(self, barcode: str, *, correlation_id: str) -> IlsItem | None:
        found = await self._item_pages(f"{API}/items", {"external_id": barcode}, correlation_id)
        # Koha's external_id filter is an exact match; checked again all the same.
        mine = [i for i in found if i.barcode == barcode]
        if len(mine) > 1:
            raise ILSBadAnswer(
                f"{self.transport.label}: GET {API}/items found {len(mine)} items with one barcode"
            )
        return mine[0] if mine else None

    async def add_item(
        self, biblio_id: str, properties: Mapping[str, object], *, correlation_id: str
    ) -> IlsItem:
        path = f"{API}/biblios/{biblio_path(biblio_id)}/items"
        barcode = str(properties.get("external_id") or "")
        if not barcode:
            raise ILSRejected("an item without a barcode has no key", reason="item_no_barcode")

        async def send(attempt: int) -> IlsItem:
            try:
                response = await self.transport.exchange(
                    "POST",
                    path,
                    correlation_id=correlation_id,
                    attempt=attempt,
                    content=json.dumps(dict(properties)).encode(),
                    headers=await write_headers({"Content-Type": JSON}),
                    expect=(201,),
                )
            except ILSConflict as exc:
                exc.reason = DUPLICATE_BARCODE
                raise
            try:
                return item_of(read_json(response, self.transport.label, f"POST {path}"))
            except ILSBadAnswer as exc:
                # Koha may have saved it: found by its barcode, never resent blindly.
                raise RetryableFailure(
                    f"POST {path}: {exc}",
                    status=response.status_code,
                    retry_after=None,
                    maybe_applied=True,
                ) from exc

        async def recover() -> IlsItem | None:
            found = await self.find_item(barcode, correlation_id=correlation_id)
            if found is not None and found.biblio_id == str(biblio_id):
                return found
            return None  # not saved (or another biblio's: the resend's 409 says so)

        return await self.transport.call(
            send, what=f"add item to biblio {biblio_id}", idempotent=False, recover=recover
        )

    async def update_item(
        self,
        biblio_id: str,
        item_id: str,
        properties: Mapping[str, object],
        *,
        correlation_id: str,
    ) -> None:
        path = f"{API}/biblios/{biblio_path(biblio_id)}/items/{biblio_path(item_id)}"

        async def send(attempt: int) -> None:
            await self.transport.exchange(
                "PUT",
                path,
                correlation_id=correlation_id,
                attempt=attempt,
                content=json.dumps(dict(properties)).encode(),
                headers=await write_headers({"Content-Type": JSON}),
            )

        await self.transport.call(send, what=f"update item {item_id}", idempotent=True)

    async def delete_item(self, item_id: str, *, correlation_id: str) -> None:
        path = f"{API}/items/{biblio_path(item_id)}"

        async def send(attempt: int) -> bool:
            await self.transport.exchange(
                "DELETE",
                path,
                correlation_id=correlation_id,
                attempt=attempt,
                headers=await write_headers({}),
                expect=(204,),
            )
            return True

        async def recover() -> bool | None:
            # A dropped answer to a DELETE that went through: the item is already gone.
            return True if not await self._item_exists(item_id, correlation_id) else None

        await self.transport.call(
            send, what=f"delete item {item_id}", idempotent=False, recover=recover
        )

    async def _item_exists(self, item_id: str, correlation_id: str) -> bool:
        async def send(attempt: int) -> bool:
            response = await self.transport.exchange(
                "GET",
                f"{API}/items/{biblio_path(item_id)}",
                correlation_id=correlation_id,
                attempt=attempt,
                headers={"Accept": JSON},
                expect=(200, 404),
            )
            return response.status_code == 200

        return await self.transport.call(send, what=f"get item {item_id}", idempotent=True)

    async def _item_pages(
        self, path: str, query: Mapping[str, str], correlation_id: str
    ) -> list[IlsItem]:
        items: list[IlsItem] = []
        for page in range(1, _MAX_PAGES + 1):
            params: dict[str, str | int] = {**query, "_page": page, "_per_page": _PAGE_SIZE}

            async def send(attempt: int, params: dict[str, str | int] = params) -> httpx.Response:
                return await self.transport.exchange(
                    "GET",
                    path,
                    correlation_id=correlation_id,
                    attempt=attempt,
                    params=params,
                    headers={"Accept": JSON},
                )

            response = await self.transport.call(send, what=f"list {path}", idempotent=True)
            body = read_json(response, self.transport.label, f"GET {path}")
            if not isinstance(body, list):
                raise ILSBadAnswer(f"{self.transport.label}: GET {path} did not answer a list")
            items += [item_of(row) for row in body]
            if "next" not in response.links:
                return items
        raise ILSBadAnswer(
            f"{self.transport.label}: GET {path} has more than {_MAX_PAGES * _PAGE_SIZE} items"
        )


def item_of(body: object) -> IlsItem:
    """Koha's item JSON as an IlsItem; anything else is not Koha's answer."""
    if (
        not isinstance(body, dict)
        or not str(body.get("item_id", "")).isdigit()
        or not str(body.get("biblio_id", "")).isdigit()
    ):
        raise ILSBadAnswer("the ILS answered something that is not an item")
    props = {k: v for k, v in body.items() if k not in ("item_id", "biblio_id")}
    return IlsItem(item_id=str(body["item_id"]), biblio_id=str(body["biblio_id"]), properties=props)


async def write_headers(headers: dict[str, str]) -> dict[str, str]:
    """A write's headers; under a record lease (catalog_sync.leases) it is checked in Redis
    first (LeaseLost if another holder took over) and carries the fencing tokens.

    The emulator refuses a token older than one it has seen (409, ILSFencedOff). A real Koha
    ignores the header: there the Redis check just before each attempt is the only guard,
    which narrows the window of a paused holder to one request's flight but cannot close it.
    """
    lease = current_lease()
    if lease is None:
        return headers
    return {**headers, **await lease.before_write()}


def read_json(response: httpx.Response, label: str, what: str) -> object:
    """The JSON body Koha answers with; an HTML page from a proxy or an empty body is no
    answer from Koha: ILSBadAnswer names the ILS and the request."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = response.headers.get("content-type", "no content type")
        raise ILSBadAnswer(
            f"{label}: {what} answered {response.status_code} with a body that is not JSON "
            f"({kind}, {len(response.content)} bytes)"
        ) from exc


def biblio_path(biblio_id: str) -> str:
    """Koha biblio and item ids are integers; anything else is refused before it reaches a URL."""
    if not str(biblio_id).isdigit():
        raise ILSRejected(f"not a Koha id: {biblio_id!r}", reason="bad_biblio_id")
    return str(int(biblio_id))
