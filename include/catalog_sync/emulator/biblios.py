"""Koha's /biblios routes (Koha/REST/V1/Biblios.pm): add, list, get, update, delete."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from catalog_sync.emulator.koha_http import (
    API,
    INTERNAL_ERROR,
    KohaError,
    KohaRoutes,
    invalid_parameter,
    negotiate,
    openapi_error,
)
from catalog_sync.emulator.query import QueryError, order_clause, parse_sources, where_clause
from catalog_sync.emulator.records import (
    COLUMN_SOURCES,
    JSON,
    MARC_BINARY,
    MARC_IN_JSON,
    MARCXML,
    READ_TYPES,
    TEXT,
    WRITE_TYPES,
    RecordPayloadError,
    biblio_fields,
    media_type,
    read_record,
    render,
    render_collection,
)

# Koha's DelBiblio text, trailing space included.
ITEMS_ATTACHED = (
    "This Biblio has items attached, please delete them first before deleting this biblio "
)


def biblio_json(row: sqlite3.Row) -> dict[str, Any]:
    """Koha::Biblio->to_api: the biblio columns merged with its biblioitem's."""
    stamp = str(row["timestamp"]).replace(" ", "T") + "+00:00"
    return {
        "biblio_id": int(row["biblio_id"]),
        "framework_id": row["framework_id"],
        "creation_date": row["creation_date"],
        "timestamp": stamp,
        "serial": bool(row["serial"]),
        **{column: row[column] for column in COLUMN_SOURCES},
    }


# Koha's list controller tries the Accept header against these in this order, each anchored at
# the header's end (Biblios.pm list): "application/marcxml+xml, application/json" gets JSON.
_LIST_ACCEPT = tuple(
    (media, re.compile(re.escape(media) + r"(;.*)?$"))
    for media in (JSON, MARCXML, MARC_IN_JSON, MARC_BINARY, TEXT)
)


def list_media(accept: str | None) -> str | None:
    """The format a list answers in; None: 406."""
    for media, pattern in _LIST_ACCEPT:
        if accept and pattern.search(accept):
            return media
    # No type named (none, */*): JSON, as the emulator always answered (Koha's regexes would
    # 406 there; our clients always name the type).
    return JSON if negotiate(accept) == JSON else None


def register(app: FastAPI, koha: KohaRoutes) -> None:
    """Add the biblio routes to `app`."""
    store = koha.state.store

    async def record_body(request: Request, accepted: tuple[str, ...]) -> Any:
        content_type = media_type(request.headers.get("content-type"))
        if content_type not in WRITE_TYPES:
            raise KohaError(406, list(accepted))
        try:
            return read_record(await request.body(), content_type)
        except RecordPayloadError as exc:
            # MARC::Record dies inside the controller: Koha's unhandled-exception answer.
            koha.state.counters["unreadable_records"] += 1
            raise KohaError(500, INTERNAL_ERROR) from exc

    @app.post(f"{API}/biblios")
    async def add_biblio(request: Request) -> Response:
        koha.authorize(request, edit=True)
        koha.known_params(request, frozenset())
        confirmed = koha.write_headers(request)
        raw = await request.body()
        record = await record_body(request, WRITE_TYPES)
        if not confirmed:
            duplicate = store.find_duplicate(biblio_fields(record))
            if duplicate is not None:
                raise KohaError(400, {"error": f"Duplicate biblio {duplicate}"})
        framework = request.headers.get("x-framework-id", "")
        koha.admit(request)
        biblio_id = store.add_biblio(
            record,
            framework,
            koha.write_context(request, raw),
            auto_control_number=koha.state.config.auto_control_number,
        )
        location = f"{request.url}/{biblio_id}"
        return JSONResponse({"id": biblio_id}, headers={"Location": location})

    @app.get(f"{API}/biblios")
    async def list_biblios(request: Request) -> Response:
        koha.authorize(request)
        page, per_page = koha.page_args(request, frozenset({"q"}))
        try:
            queries = parse_sources(
                request.query_params.getlist("q"),
                request.headers.get("x-koha-query"),
                await request.body(),
            )
            where, args = where_clause(queries)
            order = order_clause(request.query_params.getlist("_order_by"))
        except QueryError as exc:
            if str(exc) == "Malformed query string":
                raise openapi_error(exc.path, str(exc)) from exc
            raise invalid_parameter(exc.path, str(exc)) from exc
        wanted = list_media(request.headers.get("accept"))
        if wanted is None:
            raise KohaError(406, list(READ_TYPES))
        total = store.count_biblios(where, args)
        limit = total if per_page < 0 else per_page
        rows = store.list_biblios(where, args, order, limit, (page - 1) * max(per_page, 0))
        headers = koha.paginate(request, total, store.count_biblios(), page, per_page)
        if wanted == JSON:
            return JSONResponse([biblio_json(row) for row in rows], headers=headers)
        # A MARC list (print_collection): the page's records, paginated as the JSON one.
        try:
            body = render_collection([bytes(row["marcxml"]) for row in rows], wanted)
        except RecordPayloadError as exc:
            # Koha parses each record's metadata to print it; one that no longer parses (a
            # control character saved from ISO 2709) throws, and the list answers a 500.
            koha.state.counters["unreadable_records"] += 1
            raise KohaError(500, INTERNAL_ERROR) from exc
        return Response(body, media_type=wanted, headers=headers)

    @app.get(f"{API}/biblios/{{biblio_id}}")
    async def get_biblio(request: Request, biblio_id: int) -> Response:
        koha.authorize(request)
        koha.known_params(request, frozenset())
        wanted = negotiate(request.headers.get("accept"))
        if wanted is None:
            raise KohaError(406, list(READ_TYPES))
        row = koha.biblio_or_404(biblio_id)
        if wanted == JSON:
            return JSONResponse(biblio_json(row))
        return Response(render(bytes(row["marcxml"]), wanted), media_type=wanted)

    @app.put(f"{API}/biblios/{{biblio_id}}")
    async def update_biblio(request: Request, biblio_id: int) -> Response:
        koha.authorize(request, edit=True)
        koha.known_params(request, frozenset())
        koha.write_headers(request)
        raw = await request.body()
        koha.biblio_or_404(biblio_id)  # Koha looks the biblio up before the content type
        # The emulator takes MARC only; Koha's PUT also lists JSON among its accepted types.
        record = await record_body(request, (JSON, *WRITE_TYPES))
        koha.admit(request)
        store.update_biblio(biblio_id, record, koha.write_context(request, raw))
        return JSONResponse({"id": biblio_id})

    @app.delete(f"{API}/biblios/{{biblio_id}}")
    async def delete_biblio(request: Request, biblio_id: int) -> Response:
        koha.authorize(request, edit=True)
        koha.known_params(request, frozenset())
        koha.biblio_or_404(biblio_id)
        if store.item_count(biblio_id):
            raise KohaError(409, {"error": ITEMS_ATTACHED})
        koha.admit(request)
        store.delete_biblio(biblio_id, koha.write_context(request, None))
        return Response(status_code=204)
