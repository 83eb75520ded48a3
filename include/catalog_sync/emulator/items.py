"""Koha's item routes the emulator serves: /biblios/{id}/items and /items."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from catalog_sync.emulator.koha_http import API, KohaError, KohaRoutes, not_found, openapi_error

# Koha's definitions/item.yaml (additionalProperties: false): string or null properties, and
# the prices, numbers or null. Only the ones the project sends or Koha's notes name.
STRING_FIELDS = frozenset(
    {
        "external_id",
        "home_library_id",
        "holding_library_id",
        "item_type_id",
        "callnumber",
        "copy_number",
        "public_notes",
        "internal_notes",
        "collection_code",
        "location",
        "enumchron",
        "uri",
    }
)
NUMBER_FIELDS = frozenset({"purchase_price", "replacement_price"})
ITEM_FIELDS = STRING_FIELDS | NUMBER_FIELDS


def _check_types(body: dict[str, Any]) -> None:
    """OpenAPI type validation as Koha's spec plugin does it: 400 naming the property."""
    for name, value in sorted(body.items()):
        if value is None:
            continue
        if name in STRING_FIELDS and not isinstance(value, str):
            raise openapi_error(f"/body/{name}", f"Expected string - got {_json_type(value)}.")
        if name in NUMBER_FIELDS and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise openapi_error(f"/body/{name}", f"Expected number - got {_json_type(value)}.")


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def register(app: FastAPI, koha: KohaRoutes) -> None:
    """Add the item routes to `app`."""
    store = koha.state.store

    async def item_body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError as exc:
            raise openapi_error("/body", "Expected object - got string.") from exc
        if not isinstance(body, dict):
            raise openapi_error("/body", "Expected object - got array.")
        unknown = sorted(set(body) - ITEM_FIELDS - {"item_id", "biblio_id"})
        if unknown:
            raise openapi_error(
                f"/body/{unknown[0]}", "Properties not allowed: " + ", ".join(unknown) + "."
            )
        _check_types(body)
        return {k: v for k, v in body.items() if k in ITEM_FIELDS}

    def item_or_404(item_id: int) -> dict[str, Any]:
        item = store.get_item(item_id)
        if item is None:
            raise not_found("Item")
        return item

    @app.get(f"{API}/biblios/{{biblio_id}}/items")
    async def biblio_items(request: Request, biblio_id: int) -> Response:
        koha.authorize(request)
        page, per_page = koha.page_args(request)
        koha.biblio_or_404(biblio_id)
        total, items = store.list_items(
            biblio_id, None, per_page if per_page >= 0 else -1, (page - 1) * max(per_page, 0)
        )
        return JSONResponse(items, headers=koha.paginate(request, total, total, page, per_page))

    @app.post(f"{API}/biblios/{{biblio_id}}/items")
    async def add_item(request: Request, biblio_id: int) -> Response:
        koha.authorize(request, edit=True)
        raw = await request.body()
        body = await item_body(request)
        koha.biblio_or_404(biblio_id)
        # Stricter than unsure: Koha's items need a home library (items.homebranch), and the
        # holding library defaults to it as Koha::Item->store does.
        if not body.get("home_library_id"):
            raise openapi_error("/body/home_library_id", "Missing property.")
        body.setdefault("holding_library_id", body["home_library_id"])
        barcode = body.get("external_id")
        if barcode and store.barcode_taken(str(barcode)):
            raise KohaError(409, {"error": "Duplicate barcode."})
        koha.admit(request)
        item = store.add_item(biblio_id, body, koha.write_context(request, raw))
        location = f"{request.url}/{item['item_id']}"
        return JSONResponse(item, status_code=201, headers={"Location": location})

    @app.put(f"{API}/biblios/{{biblio_id}}/items/{{item_id}}")
    async def update_item(request: Request, biblio_id: int, item_id: int) -> Response:
        koha.authorize(request, edit=True)
        raw = await request.body()
        body = await item_body(request)
        koha.biblio_or_404(biblio_id)
        held = item_or_404(item_id)
        if held["biblio_id"] != biblio_id:
            raise not_found("Item")
        # set_from_api: the properties sent replace those held; the others stay.
        body = {**{k: v for k, v in held.items() if k in ITEM_FIELDS}, **body}
        barcode = body.get("external_id")
        if barcode and store.barcode_taken(str(barcode), except_item=item_id):
            raise KohaError(409, {"error": "Duplicate barcode."})
        koha.admit(request)
        return JSONResponse(store.update_item(item_id, body, koha.write_context(request, raw)))

    @app.get(f"{API}/items")
    async def list_items(request: Request) -> Response:
        koha.authorize(request)
        page, per_page = koha.page_args(request, frozenset({"external_id"}))
        total, items = store.list_items(
            None,
            request.query_params.get("external_id"),
            per_page if per_page >= 0 else -1,
            (page - 1) * max(per_page, 0),
        )
        return JSONResponse(items, headers=koha.paginate(request, total, total, page, per_page))

    @app.get(f"{API}/items/{{item_id}}")
    async def get_item(request: Request, item_id: int) -> Response:
        koha.authorize(request)
        return JSONResponse(item_or_404(item_id))

    @app.delete(f"{API}/items/{{item_id}}")
    async def delete_item(request: Request, item_id: int) -> Response:
        koha.authorize(request, edit=True)
        item_or_404(item_id)
        koha.admit(request)
        store.delete_item(item_id, koha.write_context(request, None))
        return Response(status_code=204)
