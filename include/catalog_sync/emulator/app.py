"""The emulator's HTTP API: Koha's /api/v1 routes we use, plus /_emulator/ control and audit."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog_sync.emulator.faultgate import ASGIApp, FaultGate
from catalog_sync.emulator.faults import FaultProfile
from catalog_sync.emulator.records import (
    IDENTIFIER_KEYS,
    JSON,
    MARCXML,
    READ_TYPES,
    WRITE_TYPES,
    BiblioFields,
    RecordPayloadError,
    media_type,
    read_record,
    render,
)
from catalog_sync.emulator.state import EmulatorConfig, EmulatorState
from catalog_sync.emulator.store import WriteContext

API = "/api/v1"
# Sent by catalog_sync's Koha adapter inside a record lease: "scope=token, scope=token".
FENCE_HEADER = "x-catalog-sync-fence"
# Koha's DelBiblio text, trailing space included.
ITEMS_ATTACHED = (
    "This Biblio has items attached, please delete them first before deleting this biblio "
)
ITEM_FIELDS = frozenset(
    {
        "external_id",
        "home_library_id",
        "holding_library_id",
        "item_type_id",
        "callnumber",
        "copy_number",
        "public_notes",
        "collection_code",
        "location",
        "enumchron",
        "uri",
    }
)
LIST_PARAMS = frozenset({"_page", "_per_page", "_match", "_order_by", "q"})
QUERYABLE = frozenset(
    {"biblio_id", "control_number", "control_number_source", "title", "author", "isbn"}
    | IDENTIFIER_KEYS
)


class KohaError(Exception):
    """An answer with Koha's status and body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _openapi_error(status: int, path: str, message: str) -> KohaError:
    """Mojolicious::Plugin::OpenAPI's validation error shape."""
    return KohaError(status, {"errors": [{"message": message, "path": path}], "status": status})


def build_app(config: EmulatorConfig) -> ASGIApp:
    """The ASGI app to serve: fault gate in front of the Koha routes."""
    state = EmulatorState(config)
    return FaultGate(create_api(state), state)


def create_api(state: EmulatorState) -> FastAPI:
    store = state.store

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()  # a clean stop checkpoints the WAL into the database file

    app = FastAPI(
        title="Catalog Sync ILS emulator (Koha REST API subset)",
        openapi_url=None,
        lifespan=lifespan,
    )

    @app.exception_handler(KohaError)
    async def koha_error(request: Request, exc: KohaError) -> Response:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "Not Found." if exc.status_code == 404 else str(exc.detail)
        body = {
            "errors": [{"message": message, "path": request.url.path}],
            "status": exc.status_code,
        }
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> Response:
        body = {
            "error": "Something went wrong, check Koha logs for details.",
            "error_code": "internal_server_error",
        }
        return JSONResponse(body, status_code=500)

    def authorize(request: Request, edit: bool = False) -> None:
        principal = state.authenticate(request.headers.get("authorization"))
        if principal is None:
            state.counters["auth_failures"] += 1
            raise KohaError(401, {"error": "Authentication failure."})
        if edit and not principal.can_edit:
            state.counters["auth_failures"] += 1
            body = {
                "error": "Authorization failure. Missing required permission(s).",
                "required_permissions": {"editcatalogue": "edit_catalogue"},
            }
            raise KohaError(403, body)

    def write_context(request: Request, payload: bytes | None) -> WriteContext:
        return WriteContext(
            request.method, request.url.path, request.headers.get("x-request-id"), payload
        )

    def admit(request: Request) -> None:
        """Refuse a write fenced by a lease token older than one already seen (emulator only:
        Koha has no such check). Called just before the store write, with no await between,
        so no other request can slip in between the check and the write."""
        header = request.headers.get(FENCE_HEADER)
        if not header:
            return
        try:
            fences = {
                scope.strip(): int(token)
                for scope, _, token in (part.rpartition("=") for part in header.split(","))
            }
        except ValueError as exc:
            raise _openapi_error(400, f"/header/{FENCE_HEADER}", "Expected scope=integer.") from exc
        stale = store.admit_fences(fences)
        if stale is not None:
            state.counters["fenced_writes"] += 1
            body = {
                "error": f"Stale fencing token for {stale}: a later lease holder has written.",
                "error_code": "stale_fence",
            }
            raise KohaError(409, body)

    def biblio_or_404(biblio_id: int) -> sqlite3.Row:
        row = store.get_biblio(biblio_id)
        if row is None:
            raise KohaError(
                404, {"error": "Bibliographic record not found", "error_code": "not_found"}
            )
        return row

    async def record_body(
        request: Request, accepted: tuple[str, ...]
    ) -> tuple[bytes, BiblioFields]:
        content_type = media_type(request.headers.get("content-type"))
        if content_type not in WRITE_TYPES:
            raise KohaError(406, list(accepted))
        try:
            return read_record(await request.body(), content_type)
        except RecordPayloadError as exc:
            raise KohaError(400, {"error": str(exc), "error_code": "invalid_record"}) from exc

    def page_args(request: Request) -> tuple[int, int]:
        koha_request_id = request.headers.get("x-koha-request-id")
        if koha_request_id is not None and not koha_request_id.strip().isdigit():
            # The list routes declare this header as an integer (OpenAPI validation).
            raise _openapi_error(400, "/x-koha-request-id", "Expected integer - got string.")
        for name in request.query_params:
            if name not in LIST_PARAMS and name not in ("external_id",):
                raise _openapi_error(400, f"/query/{name}", "Malformed query string")
        try:
            page = int(request.query_params.get("_page", "1"))
            per_page = int(request.query_params.get("_per_page", str(state.config.page_size)))
        except ValueError as exc:
            raise _openapi_error(400, "/query/_page", "Expected integer - got string.") from exc
        return max(page, 1), per_page

    def paginate(request: Request, total: int, page: int, per_page: int) -> dict[str, str]:
        """X-Total-Count and RFC 5988 Link, as Koha's Pagination plugin sets them."""
        headers = {"X-Total-Count": str(total), "X-Base-Total-Count": str(total)}
        if "x-koha-request-id" in request.headers:
            headers["x-koha-request-id"] = request.headers["x-koha-request-id"]
        if per_page < 0:
            return headers
        last = max(1, -(-total // per_page)) if per_page else 1
        base = str(request.url.remove_query_params(["_page", "_per_page"]))
        sep = "&" if "?" in base else "?"

        def link(target: int, rel: str) -> str:
            return (
                f'<{base}{sep}{urlencode({"_page": target, "_per_page": per_page})}>; rel="{rel}"'
            )

        links = []
        if page > 1:
            links.append(link(page - 1, "prev"))
        if page < last:
            links.append(link(page + 1, "next"))
        links += [link(1, "first"), link(last, "last")]
        headers["Link"] = ", ".join(links)
        return headers

    def biblio_json(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "biblio_id": int(row["biblio_id"]),
            "title": row["title"],
            "author": row["author"],
            "isbn": row["isbn"],
            "framework_id": row["framework_id"],
            "creation_date": row["created_at"][:10],
            "timestamp": row["updated_at"],
            # Emulator extension: Koha keeps 001/003 only inside the MARC record.
            "control_number": row["control_number"],
            "control_number_source": row["control_number_source"],
        }

    # -- OAuth2 ------------------------------------------------------------------------------

    @app.post(f"{API}/oauth/token")
    async def oauth_token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
        if form.get("grant_type") != "client_credentials":
            raise KohaError(400, {"error": "Unimplemented grant type"})
        token = state.issue_token(form.get("client_id", ""), form.get("client_secret", ""))
        if token is None:
            state.counters["auth_failures"] += 1
            raise KohaError(403, {"error": "unauthorized_client"})
        body = {"access_token": token, "token_type": "Bearer", "expires_in": state.config.token_ttl}
        return JSONResponse(body)

    # -- biblios -----------------------------------------------------------------------------

    @app.post(f"{API}/biblios")
    async def add_biblio(request: Request) -> Response:
        authorize(request, edit=True)
        raw = await request.body()
        marcxml, fields = await record_body(request, WRITE_TYPES)
        confirmed = request.headers.get("x-confirm-not-duplicate", "0").strip() not in ("", "0")
        if not confirmed:
            duplicate = store.find_duplicate(fields)
            if duplicate is not None:
                raise KohaError(400, {"error": f"Duplicate biblio {duplicate}"})
        framework = request.headers.get("x-framework-id", "")
        admit(request)
        biblio_id = store.add_biblio(marcxml, fields, framework, write_context(request, raw))
        location = f"{request.url}/{biblio_id}"
        return JSONResponse({"id": biblio_id}, headers={"Location": location})

    @app.get(f"{API}/biblios")
    async def list_biblios(request: Request) -> Response:
        authorize(request)
        page, per_page = page_args(request)
        filters: dict[str, str] = {}
        if "q" in request.query_params:
            try:
                query = json.loads(request.query_params["q"])
            except json.JSONDecodeError as exc:
                raise _openapi_error(400, "/query/q", "Malformed query string") from exc
            if not isinstance(query, dict) or not set(query) <= QUERYABLE:
                raise KohaError(
                    400,
                    {
                        "error": "Invalid parameter value",
                        "error_code": "invalid_parameter_value",
                        "path": "/query/q",
                    },
                )
            # 001 often carries padding (LoC: '   00000002 '); match on the trimmed value.
            filters = {str(k): str(v).strip() for k, v in query.items()}
        total = store.count_biblios(filters)
        limit = total if per_page < 0 else per_page
        rows = store.list_biblios(filters, limit, (page - 1) * max(per_page, 0))
        return JSONResponse(
            [biblio_json(row) for row in rows], headers=paginate(request, total, page, per_page)
        )

    @app.get(f"{API}/biblios/{{biblio_id}}")
    async def get_biblio(request: Request, biblio_id: int) -> Response:
        authorize(request)
        wanted = _negotiate(request.headers.get("accept"))
        if wanted is None:
            raise KohaError(406, list(READ_TYPES))
        row = biblio_or_404(biblio_id)
        if wanted == JSON:
            return JSONResponse(biblio_json(row))
        return Response(render(bytes(row["marcxml"]), wanted), media_type=wanted)

    @app.put(f"{API}/biblios/{{biblio_id}}")
    async def update_biblio(request: Request, biblio_id: int) -> Response:
        authorize(request, edit=True)
        raw = await request.body()
        # The emulator takes MARC only; Koha's PUT also lists JSON among its accepted types.
        marcxml, fields = await record_body(request, (JSON, *WRITE_TYPES))
        biblio_or_404(biblio_id)
        admit(request)
        store.update_biblio(biblio_id, marcxml, fields, write_context(request, raw))
        return JSONResponse({"id": biblio_id})

    @app.delete(f"{API}/biblios/{{biblio_id}}")
    async def delete_biblio(request: Request, biblio_id: int) -> Response:
        authorize(request, edit=True)
        biblio_or_404(biblio_id)
        if store.item_count(biblio_id):
            raise KohaError(409, {"error": ITEMS_ATTACHED})
        admit(request)
        store.delete_biblio(biblio_id, write_context(request, None))
        return Response(status_code=204)

    # -- items -------------------------------------------------------------------------------

    async def item_body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError as exc:
            raise _openapi_error(400, "/body", "Expected object - got string.") from exc
        if not isinstance(body, dict):
            raise _openapi_error(400, "/body", "Expected object - got array.")
        unknown = sorted(set(body) - ITEM_FIELDS - {"item_id", "biblio_id"})
        if unknown:
            raise _openapi_error(
                400, f"/body/{unknown[0]}", "Properties not allowed: " + ", ".join(unknown) + "."
            )
        return {k: v for k, v in body.items() if k in ITEM_FIELDS}

    def item_or_404(item_id: int) -> dict[str, Any]:
        item = store.get_item(item_id)
        if item is None:
            raise KohaError(404, {"error": "Item not found", "error_code": "not_found"})
        return item

    @app.get(f"{API}/biblios/{{biblio_id}}/items")
    async def biblio_items(request: Request, biblio_id: int) -> Response:
        authorize(request)
        page, per_page = page_args(request)
        biblio_or_404(biblio_id)
        total, items = store.list_items(
            biblio_id, None, per_page if per_page >= 0 else -1, (page - 1) * max(per_page, 0)
        )
        return JSONResponse(items, headers=paginate(request, total, page, per_page))

    @app.post(f"{API}/biblios/{{biblio_id}}/items")
    async def add_item(request: Request, biblio_id: int) -> Response:
        authorize(request, edit=True)
        raw = await request.body()
        body = await item_body(request)
        biblio_or_404(biblio_id)
        barcode = body.get("external_id")
        if barcode and store.barcode_taken(str(barcode)):
            raise KohaError(409, {"error": "Duplicate barcode."})
        admit(request)
        item = store.add_item(biblio_id, body, write_context(request, raw))
        location = f"{request.url}/{item['item_id']}"
        return JSONResponse(item, status_code=201, headers={"Location": location})

    @app.put(f"{API}/biblios/{{biblio_id}}/items/{{item_id}}")
    async def update_item(request: Request, biblio_id: int, item_id: int) -> Response:
        authorize(request, edit=True)
        raw = await request.body()
        body = await item_body(request)
        biblio_or_404(biblio_id)
        if item_or_404(item_id)["biblio_id"] != biblio_id:
            raise KohaError(404, {"error": "Item not found", "error_code": "not_found"})
        barcode = body.get("external_id")
        if barcode and store.barcode_taken(str(barcode), except_item=item_id):
            raise KohaError(409, {"error": "Duplicate barcode."})
        admit(request)
        return JSONResponse(store.update_item(item_id, body, write_context(request, raw)))

    @app.get(f"{API}/items")
    async def list_items(request: Request) -> Response:
        authorize(request)
        page, per_page = page_args(request)
        total, items = store.list_items(
            None,
            request.query_params.get("external_id"),
            per_page if per_page >= 0 else -1,
            (page - 1) * max(per_page, 0),
        )
        return JSONResponse(items, headers=paginate(request, total, page, per_page))

    @app.get(f"{API}/items/{{item_id}}")
    async def get_item(request: Request, item_id: int) -> Response:
        authorize(request)
        return JSONResponse(item_or_404(item_id))

    @app.delete(f"{API}/items/{{item_id}}")
    async def delete_item(request: Request, item_id: int) -> Response:
        authorize(request, edit=True)
        item_or_404(item_id)
        admit(request)
        store.delete_item(item_id, write_context(request, None))
        return Response(status_code=204)

    # -- emulator control and audit (never rate-limited or faulted) ---------------------------

    @app.get("/_emulator/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_emulator/identity")
    async def identity() -> dict[str, Any]:
        # Who started this process (devstack's service record): its token and its pid.
        return {"identity": state.config.identity, "pid": os.getpid()}

    def counters() -> dict[str, int]:
        result = dict(state.counters)
        result["writes"] = sum(store.write_counts().values())
        return result

    @app.get("/_emulator/writes")
    async def writes(since: int = 0) -> dict[str, Any]:
        return {
            "writes": store.writes(since),
            "counters": counters(),
            "by_kind": store.write_counts(),
        }

    @app.get("/_emulator/counters")
    async def get_counters() -> dict[str, int]:
        return counters()

    @app.get("/_emulator/biblios")
    async def biblios() -> dict[str, Any]:
        rows = store.holdings_summary()
        return {"count": len(rows), "biblios": rows}

    @app.get("/_emulator/faults")
    async def get_faults() -> dict[str, Any]:
        return fault_status()

    def fault_status() -> dict[str, Any]:
        bucket = state.bucket
        return {
            "profile": state.faults.profile.model_dump(),
            "down_remaining": round(state.faults.down_remaining, 3),
            "rate_limit": bucket.rate if bucket else None,
            "burst": bucket.capacity if bucket else None,
        }

    @app.post("/_emulator/faults")
    async def set_faults(request: Request) -> dict[str, Any]:
        """Replace the fault profile; `rate_limit`/`burst` keys (null = off) change the bucket."""
        body = json.loads(await request.body() or b"{}")
        if "rate_limit" in body or "burst" in body:
            state.set_rate_limit(body.pop("rate_limit", None), body.pop("burst", None))
        try:
            state.faults.apply(FaultProfile.model_validate(body))
        except ValidationError as exc:
            raise KohaError(400, {"error": str(exc)}) from exc
        return fault_status()

    @app.delete("/_emulator/faults")
    async def clear_faults() -> dict[str, Any]:
        state.faults.apply(FaultProfile())
        state.set_rate_limit(state.config.rate_limit, state.config.burst)
        return fault_status()

    @app.post("/_emulator/tokens/expire")
    async def expire_tokens() -> dict[str, int]:
        return {"expired": state.expire_tokens()}

    @app.post("/_emulator/reset")
    async def reset() -> dict[str, str]:
        store.reset()
        state.counters.clear()
        return {"status": "reset"}

    return app


def _negotiate(accept: str | None) -> str | None:
    """First acceptable media type in the Accept header's order; JSON when anything goes."""
    if not accept:
        return JSON
    for part in accept.split(","):
        wanted = media_type(part)
        if wanted in READ_TYPES:
            return wanted
        if wanted in ("*/*", "application/*"):
            return JSON
    return None


__all__ = ["MARCXML", "KohaError", "build_app", "create_api"]
