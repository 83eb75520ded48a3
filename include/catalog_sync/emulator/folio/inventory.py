"""Inventory storage routes: instances, holdings and items, one by one and in sync batches."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from catalog_sync.emulator.folio.cql import CQLError, compile_cql
from catalog_sync.emulator.folio.errors import (
    FolioError,
    field_error,
    not_found,
    plain,
    unprocessable,
    version_conflict,
)
from catalog_sync.emulator.folio.kinds import HOLDINGS, INSTANCE, ITEM, KINDS, Kind, schema_errors
from catalog_sync.emulator.folio.store import WriteContext
from catalog_sync.emulator.store import sha256_hex

if TYPE_CHECKING:
    from catalog_sync.emulator.folio.app import Okapi
    from catalog_sync.emulator.folio.state import FolioState


# The batch routes' permissions, as mod-inventory-storage's ModuleDescriptor names them (they
# appear in the 403 for a missing token). Each kind also has a `synchronous-unsafe` route there.
_BATCH_PERMISSIONS = {
    INSTANCE.name: ("instances.batch.synchronous.post", "instances.batch-unsafe.post"),
    HOLDINGS.name: ("holdings.batch.post", "holdings.batch-unsafe.post"),
    ITEM.name: ("items.batch.post", "items.batch-unsafe.post"),
}


def write_context(request: Request, payload: bytes | None) -> WriteContext:
    return WriteContext(
        request.method,
        request.url.path,
        request.headers.get("x-okapi-request-id") or request.headers.get("x-request-id"),
        sha256_hex(payload) if payload is not None else None,
    )


def page(request: Request) -> tuple[int, int]:
    """offset and limit of raml-util traits/pageable.raml (defaults 0 and 10, minimum 0)."""
    values = []
    for name, default in (("offset", 0), ("limit", 10)):
        raw = request.query_params.get(name, str(default))
        try:
            value = int(raw)
        except ValueError as exc:
            raise plain(
                400,
                f"'{name}' parameter is incorrect. parameter value {{{raw}}} is not valid: "
                "must be an integer",
            ) from exc
        if value < 0:
            raise plain(
                400,
                f"'{name}' parameter is incorrect. parameter value {{{raw}}} is not valid: "
                "must be greater than or equal to 0",
            )
        values.append(value)
    return values[0], values[1]


async def json_body(request: Request) -> tuple[bytes, Any]:
    raw = await request.body()
    try:
        return raw, json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        # RMB answers unparseable JSON with 400 text/plain naming where it broke.
        raise plain(400, f"Json content error {exc}") from exc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Inventory:
    """Create and update rules shared by the single-record and the batch routes."""

    def __init__(self, state: FolioState) -> None:
        self.state = state
        self.store = state.store

    def check_schema(self, kind: Kind, body: Any, prefix: str = "") -> None:
        errors = schema_errors(kind, body)
        for error in errors:
            for parameter in error["parameters"]:
                parameter["key"] = prefix + parameter["key"]
        if errors:
            raise unprocessable(errors)

    def save(
        self, kind: Kind, body: dict[str, Any], *, update: bool | None, ctx: WriteContext
    ) -> dict[str, Any]:
        """Apply one record: update=True must exist, False must not, None (upsert) either way.

        Raises FolioError with RMB's status; the caller's transaction rolls the batch back.
        """
        record = dict(body)
        record_id = str(record.setdefault("id", str(uuid.uuid4())))
        stored = self.store.get(kind, record_id)
        if stored is None and update is True:
            raise not_found()
        if stored is not None and update is False:
            raise unprocessable(
                [
                    field_error(
                        f"id value already exists in table {kind.name}: {record_id}",
                        "id",
                        record_id,
                    )
                ]
            )
        self._check_references(kind, record)
        now = _now()
        if stored is None:
            # RMB's insert trigger sets _version to 1 whatever the client sent.
            record["_version"] = 1
            if not record.get("hrid"):
                record["hrid"] = self.store.next_hrid(kind)
            record["metadata"] = {"createdDate": now, "updatedDate": now}
        else:
            if record.get("_version") != stored["_version"]:
                raise version_conflict(
                    record_id, stored["_version"], record.get("_version", "null")
                )
            record["_version"] = stored["_version"] + 1
            if not record.get("hrid"):
                record["hrid"] = stored["hrid"]
            elif record["hrid"] != stored["hrid"]:
                raise plain(
                    400,
                    f"The hrid field cannot be changed: new={record['hrid']}, old={stored['hrid']}",
                )
            record["metadata"] = {**stored.get("metadata", {}), "updatedDate": now}
        owner = self.store.hrid_owner(kind, record["hrid"])
        if owner is not None and owner != record_id:
            raise unprocessable(
                [
                    field_error(
                        f"hrid value already exists in table {kind.name}: {record['hrid']}",
                        "hrid",
                        record["hrid"],
                    )
                ]
            )
        if kind is ITEM and record.get("barcode"):
            # schema.json: a unique index on lower(barcode) (caseSensitive false).
            holder = self.store.barcode_owner(record["barcode"])
            if holder is not None and holder != record_id:
                raise unprocessable(
                    [
                        field_error(
                            f"Barcode must be unique, {record['barcode']} is already assigned to "
                            "another item",
                            "barcode",
                            record["barcode"],
                        )
                    ]
                )
        self.store.put(kind, record, ctx, 204 if stored else 201)
        return record

    def _check_references(self, kind: Kind, record: dict[str, Any]) -> None:
        """schema.json's foreign keys, with RMB's message for a violated one."""
        for prop, allowed in kind.reference.items():
            if record.get(prop) not in allowed:
                raise unprocessable([_fk_error(kind, prop, record.get(prop))])
        for prop, table in kind.lookups:
            value = record.get(prop)
            if value is not None and not self.state.reference.exists(table, value):
                raise unprocessable([_fk_error(kind, prop, value, table)])
        if kind.parent is not None:
            prop, parent_name = kind.parent
            parent = next(k for k in KINDS if k.name == parent_name)
            if self.store.get(parent, str(record.get(prop))) is None:
                raise unprocessable([_fk_error(kind, prop, record.get(prop), parent_name)])


def _fk_error(kind: Kind, prop: str, value: object, target: str | None = None) -> dict[str, Any]:
    target = target or prop.removesuffix("Id")
    return field_error(
        f"Cannot set {kind.name}.{prop.lower()} = {value} because it does not exist in "
        f"{target}.id.",
        prop,
        value,
    )


def _child_of(kind: Kind) -> Kind | None:
    return next((k for k in KINDS if k.parent and k.parent[1] == kind.name), None)


def _still_referenced(kind: Kind, record_id: str, child: Kind) -> FolioError:
    return plain(
        400,
        f"Cannot delete {kind.name}.id = {record_id} because id is still referenced "
        f"from table {child.name}.",
    )


def register_inventory(app: FastAPI, state: FolioState, okapi: Okapi) -> None:
    inventory = Inventory(state)
    for kind in KINDS:
        _register_kind(app, kind, inventory, okapi)


def _register_kind(app: FastAPI, kind: Kind, inventory: Inventory, okapi: Okapi) -> None:
    store = inventory.store
    perm = f"inventory-storage.{kind.list_key}"

    async def create(request: Request) -> Response:
        okapi.authorize(request, f"{perm}.item.post")
        raw, body = await json_body(request)
        inventory.check_schema(kind, body)
        with store.transaction():
            record = inventory.save(kind, body, update=False, ctx=write_context(request, raw))
        location = f"{kind.collection}/{record['id']}"
        return JSONResponse(record, status_code=201, headers={"Location": location})

    def found(query: str | None, offset: int, limit: int) -> Response:
        try:
            where = compile_cql(kind.name, query) if query else None
        except CQLError as exc:
            raise plain(400, f"CQL parse error: {exc} in query {query}") from exc
        total, records = store.search(kind, where, limit, offset)
        return JSONResponse({kind.list_key: records, "totalRecords": total})

    async def search(request: Request) -> Response:
        okapi.authorize(request, f"{perm}.collection.get")
        offset, limit = page(request)
        return found(request.query_params.get("query"), offset, limit)

    async def retrieve(request: Request) -> Response:
        """The same search with the CQL in the body (retrieveEntitiesDto.json): no URL limit."""
        okapi.authorize(request, f"{perm}.retrieve.collection.post")
        _, body = await json_body(request)
        if not isinstance(body, dict):
            raise unprocessable([field_error("must be an object", "retrieveEntitiesDto", body)])
        offset, limit = body.get("offset", 0), body.get("limit", 10)
        errors = [
            field_error("must be greater than or equal to 0", name, value)
            for name, value in (("offset", offset), ("limit", limit))
            if not isinstance(value, int) or isinstance(value, bool) or value < 0
        ]
        query = body.get("query")
        if query is not None and not isinstance(query, str):
            errors.append(field_error("must be a string", "query", query))
        if errors:
            raise unprocessable(errors)
        return found(query, offset, limit)

    async def get_one(request: Request, record_id: str) -> Response:
        okapi.authorize(request, f"{perm}.item.get")
        record = store.get(kind, record_id)
        if record is None:
            raise not_found()
        return JSONResponse(record)

    async def put_one(request: Request, record_id: str) -> Response:
        okapi.authorize(request, f"{perm}.item.put")
        raw, body = await json_body(request)
        inventory.check_schema(kind, body)
        if body.setdefault("id", record_id) != record_id:
            raise plain(400, "Illegal operation: id field cannot be changed")
        with store.transaction():
            inventory.save(kind, body, update=True, ctx=write_context(request, raw))
        return Response(status_code=204)

    async def delete_one(request: Request, record_id: str) -> Response:
        okapi.authorize(request, f"{perm}.item.delete")
        if store.get(kind, record_id) is None:
            raise not_found()
        child = _child_of(kind)
        if child is not None and store.children(child, record_id):
            raise _still_referenced(kind, record_id, child)
        with store.transaction():
            store.delete(kind, record_id, write_context(request, None))
        return Response(status_code=204)

    async def delete_where(request: Request) -> Response:
        """item-storage.raml / holdings-storage.raml `DELETE <collection>?query=<CQL>`: the
        records the CQL selects, all or none; 204 even when it selects none. No query, or CQL
        this emulator cannot run, is a 400 and deletes nothing (never a silent wider or
        narrower delete); so is a selected holdings record an item still references (the
        foreign key fails the one SQL DELETE FOLIO runs for the query)."""
        okapi.authorize(request, f"{perm}.collection.delete")
        query = request.query_params.get("query", "")
        if not query.strip():
            raise plain(400, "query parameter is empty")
        try:
            where = compile_cql(kind.name, query)
        except CQLError as exc:
            raise plain(400, f"CQL parse error: {exc} in query {query}") from exc
        ctx = write_context(request, None)
        child = _child_of(kind)
        with store.transaction():
            for record_id in store.matching_ids(kind, where):
                if child is not None and store.children(child, record_id):
                    raise _still_referenced(kind, record_id, child)
                store.delete(kind, record_id, ctx)
        return Response(status_code=204)

    safe_permission, unsafe_permission = (
        f"inventory-storage.{p}" for p in _BATCH_PERMISSIONS[kind.name]
    )

    async def batch_records(request: Request, permission: str) -> tuple[bytes, list[Any]]:
        """The records of a batch body (holdingsRecords_post.json & co.), schema-checked."""
        okapi.authorize(request, permission)
        raw, body = await json_body(request)
        if (
            not isinstance(body, dict)
            or set(body) != {kind.list_key}
            or not isinstance(body[kind.list_key], list)
        ):
            raise unprocessable(
                [field_error("must be an object with one array property", kind.list_key, None)]
            )
        records: list[Any] = body[kind.list_key]
        for n, record in enumerate(records):
            inventory.check_schema(kind, record, f"{kind.list_key}[{n}].")
        return raw, records

    async def batch(request: Request) -> Response:
        upsert = request.query_params.get("upsert", "false")
        if upsert not in ("true", "false"):
            raise plain(
                400, f"'upsert' parameter is incorrect. parameter value {{{upsert}}} is not valid"
            )
        raw, records = await batch_records(request, safe_permission)
        if len(records) > inventory.state.config.max_batch:
            raise plain(413, "Payload Too Large")
        ctx = write_context(request, raw)
        # All or nothing (*-sync.raml): the first failing record rolls the whole batch back,
        # the records before it included; nothing of a refused batch is stored or logged.
        with store.transaction():
            for record in records:
                inventory.save(kind, record, update=None if upsert == "true" else False, ctx=ctx)
        return Response(status_code=201)

    async def batch_unsafe(request: Request) -> Response:
        """*-sync-unsafe.raml: FOLIO refuses it (413) unless DB_ALLOW_SUPPRESS_OPTIMISTIC_LOCKING
        is set, which no production FOLIO sets and this emulator never does: a client that
        relied on skipping `_version` would pass here and lose staff edits on a real FOLIO."""
        await batch_records(request, unsafe_permission)
        raise plain(
            413,
            "DB_ALLOW_SUPPRESS_OPTIMISTIC_LOCKING environment variable doesn't allow to disable "
            "optimistic locking",
        )

    app.add_api_route(kind.collection, create, methods=["POST"])
    app.add_api_route(kind.collection, search, methods=["GET"])
    if kind in (ITEM, HOLDINGS):  # the CQL deletes the adapter sends
        app.add_api_route(kind.collection, delete_where, methods=["DELETE"])
    app.add_api_route(f"{kind.collection}/retrieve", retrieve, methods=["POST"])
    app.add_api_route(f"{kind.collection}/{{record_id}}", get_one, methods=["GET"])
    app.add_api_route(f"{kind.collection}/{{record_id}}", put_one, methods=["PUT"])
    app.add_api_route(f"{kind.collection}/{{record_id}}", delete_one, methods=["DELETE"])
    app.add_api_route(kind.batch, batch, methods=["POST"])
    app.add_api_route(f"{kind.batch}-unsafe", batch_unsafe, methods=["POST"])


__all__ = ["FolioError", "Inventory", "json_body", "page", "register_inventory", "write_context"]
