"""Source record storage routes: snapshots, MARC records linked to instances, source records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from catalog_sync.emulator.folio.errors import (
    UUID_RE,
    field_error,
    not_found,
    plain,
    unprocessable,
)
from catalog_sync.emulator.folio.inventory import json_body, page, write_context

if TYPE_CHECKING:
    from catalog_sync.emulator.folio.app import Okapi
    from catalog_sync.emulator.folio.state import FolioState
    from catalog_sync.emulator.folio.store import FolioStore

# data-import-raml-storage schemas/dto/record.json and the schemas it references.
_RECORD_PROPS = frozenset(
    [
        "id",
        "snapshotId",
        "matchedId",
        "generation",
        "recordType",
        "rawRecord",
        "parsedRecord",
        "errorRecord",
        "deleted",
        "order",
        "externalIdsHolder",
        "additionalInfo",
        "state",
        "leaderRecordStatus",
        "metadata",
    ]
)
_HOLDER_PROPS = frozenset(
    ["instanceId", "instanceHrid", "holdingsId", "holdingsHrid", "authorityId", "authorityHrid"]
)
RECORD_TYPES = frozenset({"MARC_BIB", "MARC_AUTHORITY", "MARC_HOLDING", "EDIFACT"})
_STATES = frozenset({"ACTUAL", "OLD", "DRAFT", "DELETED"})
# schemas/common/status.json
SNAPSHOT_STATUSES = frozenset(
    [
        "PARENT",
        "NEW",
        "FILE_UPLOADED",
        "PARSING_IN_PROGRESS",
        "PARSING_FINISHED",
        "PROCESSING_IN_PROGRESS",
        "PROCESSING_FINISHED",
        "COMMIT_IN_PROGRESS",
        "COMMITTED",
        "ERROR",
        "DISCARDED",
        "CANCELLED",
    ]
)
# /source-storage/source-records query parameters -> srs_records columns.
_SOURCE_FILTERS = {
    "recordId": "id",
    "snapshotId": "snapshot_id",
    "instanceId": "instance_id",
    "instanceHrid": "instance_hrid",
    "externalId": "instance_id",
    "externalHrid": "instance_hrid",
}


def record_errors(body: Any) -> list[dict[str, Any]]:
    """What the `validate` trait reports for a record.json body."""
    if not isinstance(body, dict):
        return [field_error("must be an object", "record", body)]
    errors = [
        field_error(f'Unrecognized field "{key}"', key, body[key])
        for key in sorted(set(body) - _RECORD_PROPS)
    ]
    errors += [
        field_error("must not be null", key, None, "javax.validation.constraints.NotNull.message")
        for key in ("snapshotId", "matchedId", "recordType", "rawRecord")
        if body.get(key) is None
    ]
    for key in ("id", "snapshotId", "matchedId"):
        if body.get(key) is not None and not UUID_RE.match(str(body[key])):
            errors.append(field_error("must be a UUID", key, body[key]))
    if body.get("recordType") is not None and body["recordType"] not in RECORD_TYPES:
        errors.append(field_error("must be a record type", "recordType", body["recordType"]))
    if body.get("state", "ACTUAL") not in _STATES:
        errors.append(field_error("must be a state", "state", body["state"]))
    for part in ("rawRecord", "parsedRecord"):
        value = body.get(part)
        if value is not None and (not isinstance(value, dict) or "content" not in value):
            errors.append(field_error("must not be null", f"{part}.content", None))
    raw = body.get("rawRecord")
    if isinstance(raw, dict) and not isinstance(raw.get("content"), str):
        errors.append(field_error("must be a string", "rawRecord.content", raw.get("content")))
    holder = body.get("externalIdsHolder")
    if holder is not None:
        if not isinstance(holder, dict) or set(holder) - _HOLDER_PROPS:
            errors.append(field_error("must be an externalIdsHolder", "externalIdsHolder", holder))
        elif holder.get("instanceId") is not None and not UUID_RE.match(str(holder["instanceId"])):
            errors.append(field_error("must be a UUID", "externalIdsHolder.instanceId", holder))
    return errors


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def source_record(record: dict[str, Any]) -> dict[str, Any]:
    """sourceRecord.json: the record as /source-storage/source-records answers it."""
    keys = (
        "snapshotId",
        "recordType",
        "parsedRecord",
        "deleted",
        "generation",
        "order",
        "externalIdsHolder",
        "additionalInfo",
        "metadata",
    )
    return {"recordId": record["id"], **{k: record[k] for k in keys if k in record}}


def prepare(
    store: FolioStore, body: dict[str, Any], stored: dict[str, Any] | None
) -> dict[str, Any]:
    """Server-set parts: ids of the raw and parsed parts, generation, state, metadata."""
    record = dict(body)
    record_id = str(record.setdefault("id", str(uuid.uuid4())))
    if store.get_snapshot(str(record["snapshotId"])) is None:
        raise unprocessable(
            [
                field_error(
                    f"Snapshot with id '{record['snapshotId']}' was not found",
                    "snapshotId",
                    record["snapshotId"],
                )
            ]
        )
    for part in ("rawRecord", "parsedRecord"):
        if isinstance(record.get(part), dict):
            record[part] = {**record[part], "id": record_id}
    record.setdefault("generation", 0)
    record.setdefault("state", "ACTUAL")
    record["deleted"] = record["state"] == "DELETED"
    now = _now()
    created = stored["metadata"]["createdDate"] if stored else now
    record["metadata"] = {"createdDate": created, "updatedDate": now}
    return record


def register_srs(app: FastAPI, state: FolioState, okapi: Okapi) -> None:
    store = state.store

    @app.post("/source-storage/snapshots")
    async def create_snapshot(request: Request) -> Response:
        okapi.authorize(request, "source-storage.snapshots.post")
        raw, body = await json_body(request)
        errors = []
        if not isinstance(body, dict) or set(body) - {
            "jobExecutionId",
            "status",
            "processingStartedDate",
        }:
            errors.append(field_error("must be a snapshot", "snapshot", None))
        elif not UUID_RE.match(str(body.get("jobExecutionId"))):
            errors.append(
                field_error("must be a UUID", "jobExecutionId", body.get("jobExecutionId"))
            )
        elif body.get("status") not in SNAPSHOT_STATUSES:
            errors.append(field_error("must be a status", "status", body.get("status")))
        if errors:
            raise unprocessable(errors)
        snapshot = {**body, "metadata": {"createdDate": _now(), "updatedDate": _now()}}
        with store.transaction():
            store.put_snapshot(snapshot, write_context(request, raw), 201)
        location = f"/source-storage/snapshots/{body['jobExecutionId']}"
        return JSONResponse(snapshot, status_code=201, headers={"Location": location})

    @app.get("/source-storage/snapshots")
    async def list_snapshots(request: Request) -> Response:
        okapi.authorize(request, "source-storage.snapshots.collection.get")
        offset, limit = page(request)
        total, snapshots = store.list_snapshots(limit, offset)
        return JSONResponse({"snapshots": snapshots, "totalRecords": total})

    @app.get("/source-storage/snapshots/{snapshot_id}")
    async def get_snapshot(request: Request, snapshot_id: str) -> Response:
        okapi.authorize(request, "source-storage.snapshots.get")
        snapshot = store.get_snapshot(snapshot_id)
        if snapshot is None:
            raise not_found()
        return JSONResponse(snapshot)

    @app.post("/source-storage/records")
    async def create_record(request: Request) -> Response:
        okapi.authorize(request, "source-storage.records.post")
        raw, body = await json_body(request)
        if errors := record_errors(body):
            raise unprocessable(errors)
        if body.get("id") and store.get_record(str(body["id"])) is not None:
            raise unprocessable([field_error("id value already exists", "id", body["id"])])
        with store.transaction():
            record = prepare(store, body, None)
            store.put_record(record, write_context(request, raw), 201)
        location = f"/source-storage/records/{record['id']}"
        return JSONResponse(record, status_code=201, headers={"Location": location})

    @app.get("/source-storage/records")
    async def list_records(request: Request) -> Response:
        okapi.authorize(request, "source-storage.records.collection.get")
        offset, limit = page(request)
        filters = {}
        if "snapshotId" in request.query_params:
            filters["snapshot_id"] = request.query_params["snapshotId"]
        if "state" in request.query_params:
            filters["state"] = request.query_params["state"]
        total, records = store.find_records(filters, limit, offset)
        return JSONResponse({"records": records, "totalRecords": total})

    @app.get("/source-storage/records/{record_id}")
    async def get_record(request: Request, record_id: str) -> Response:
        okapi.authorize(request, "source-storage.records.get")
        record = store.get_record(record_id)
        if record is None:
            raise not_found()
        return JSONResponse(record)

    @app.get("/source-storage/records/{record_id}/formatted")
    async def formatted(request: Request, record_id: str) -> Response:
        okapi.authorize(request, "source-storage.records.formatted.get")
        id_type = request.query_params.get("idType", "RECORD")
        if id_type == "RECORD":
            record = store.get_record(record_id)
        elif id_type == "INSTANCE":
            _, found = store.find_records({"instance_id": record_id, "state": "ACTUAL"}, 1, 0)
            record = found[0] if found else None
        else:
            raise plain(400, f"Unsupported idType {id_type}")
        if record is None:
            raise plain(404, f"Record with id '{record_id}' was not found")
        return JSONResponse(record)

    @app.put("/source-storage/records/{record_id}")
    async def update_record(request: Request, record_id: str) -> Response:
        okapi.authorize(request, "source-storage.records.put")
        raw, body = await json_body(request)
        if errors := record_errors(body):
            raise unprocessable(errors)
        stored = store.get_record(record_id)
        if stored is None:
            raise not_found()
        if body.setdefault("id", record_id) != record_id:
            raise plain(400, "Record id in the body does not match the path")
        with store.transaction():
            record = prepare(store, body, stored)
            store.put_record(record, write_context(request, raw), 200)
        return JSONResponse(record)

    @app.delete("/source-storage/records/{record_id}")
    async def delete_record(request: Request, record_id: str) -> Response:
        okapi.authorize(request, "source-storage.records.delete")
        stored = store.get_record(record_id)
        if stored is None:
            raise not_found()
        # SRS keeps a deleted record, marked so (state DELETED), rather than dropping the row.
        with store.transaction():
            store.put_record(
                {**stored, "state": "DELETED", "deleted": True}, write_context(request, None), 204
            )
        return Response(status_code=204)

    @app.get("/source-storage/source-records")
    async def source_records(request: Request) -> Response:
        okapi.authorize(request, "source-storage.source-records.collection.get")
        offset, limit = page(request)
        filters = {
            column: request.query_params[name]
            for name, column in _SOURCE_FILTERS.items()
            if name in request.query_params
        }
        # deleted=false (the default) keeps to ACTUAL records.
        if request.query_params.get("deleted", "false") != "true":
            filters["state"] = "ACTUAL"
        total, records = store.find_records(filters, limit, offset)
        return JSONResponse(
            {"sourceRecords": [source_record(r) for r in records], "totalRecords": total}
        )
