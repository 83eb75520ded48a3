"""SRS batch routes: create records, fetch parsed records by instance id, update parsed records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from catalog_sync.emulator.folio.errors import FolioError, field_error, plain, unprocessable
from catalog_sync.emulator.folio.inventory import json_body, write_context
from catalog_sync.emulator.folio.srs import RECORD_TYPES, prepare, record_errors

if TYPE_CHECKING:
    from catalog_sync.emulator.folio.app import Okapi
    from catalog_sync.emulator.folio.state import FolioState

_FETCH_KEYS = frozenset({"conditions", "data", "recordType", "includeDeleted"})


def _collection(body: Any) -> list[Any]:
    """recordCollection.json's shape, else RMB's 422."""
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("records"), list)
        or set(body) - {"records", "totalRecords"}
    ):
        raise unprocessable([field_error("must be a recordCollection", "records", None)])
    records: list[Any] = body["records"]
    return records


def _in_ranges(tag: str, ranges: list[dict[str, str]]) -> bool:
    return not ranges or any(r["from"] <= tag <= r["to"] for r in ranges)


def register_srs_batch(app: FastAPI, state: FolioState, okapi: Okapi) -> None:
    store = state.store

    def limit(records: list[Any]) -> None:
        if len(records) > state.config.max_batch:
            raise plain(413, "Payload Too Large")

    @app.post("/source-storage/batch/records")
    async def batch_records(request: Request) -> Response:
        okapi.authorize(request, "source-storage.records.post")
        raw, body = await json_body(request)
        candidates = _collection(body)
        limit(candidates)
        saved: list[dict[str, Any]] = []
        messages: list[str] = []
        # Not all or nothing: each record is saved or named in errorMessages. Checks come
        # first, so the records that pass are written in one transaction.
        for n, candidate in enumerate(candidates):
            errors = record_errors(candidate)
            if errors:
                messages.append(f"records[{n}]: " + "; ".join(e["message"] for e in errors))
                continue
            try:
                stored = store.get_record(str(candidate.get("id", "")))
                saved.append(prepare(store, candidate, stored))
            except FolioError as exc:
                messages.append(f"records[{n}]: {_text(exc)}")
        ctx = write_context(request, raw)
        with store.transaction():
            for record in saved:
                store.put_record(record, ctx, 201)
        result = {"records": saved, "errorMessages": messages, "totalRecords": len(saved)}
        return JSONResponse(result, status_code=201)

    @app.post("/source-storage/batch/parsed-records/fetch")
    async def fetch(request: Request) -> Response:
        okapi.authorize(request, "source-storage.records.fetch.collection.post")
        _, body = await json_body(request)
        conditions = body.get("conditions") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or set(body) - _FETCH_KEYS
            or not isinstance(conditions, dict)
            or not isinstance(conditions.get("ids"), list)
            or body.get("recordType") not in RECORD_TYPES
        ):
            raise unprocessable([field_error("must be a fetch request", "conditions", None)])
        id_type = conditions.get("idType", "RECORD")
        if id_type not in ("INSTANCE", "RECORD"):
            raise plain(400, f"Unsupported idType {id_type}")
        ranges = body.get("data") or []
        column = "instance_id" if id_type == "INSTANCE" else "id"
        found = store.records_by(column, [str(i) for i in conditions["ids"]])
        records = []
        for record in found:
            if record.get("state") != "ACTUAL" and not body.get("includeDeleted"):
                continue
            content = dict(record["parsedRecord"]["content"])
            content["fields"] = [
                f for f in content.get("fields", []) if _in_ranges(next(iter(f)), ranges)
            ]
            records.append(
                {
                    "id": record["id"],
                    "externalIdsHolder": record.get("externalIdsHolder", {}),
                    "recordType": record["recordType"],
                    "recordState": record.get("state", "ACTUAL"),
                    "parsedRecord": {"id": record["id"], "content": content},
                }
            )
        return JSONResponse({"records": records, "totalRecords": len(records)})

    @app.put("/source-storage/batch/parsed-records")
    async def update_parsed(request: Request) -> Response:
        okapi.authorize(request, "source-storage.parsed-records.batch.put")
        raw, body = await json_body(request)
        candidates = _collection(body)
        limit(candidates)
        updated: list[dict[str, Any]] = []
        parsed: list[dict[str, Any]] = []
        messages: list[str] = []
        for n, candidate in enumerate(candidates):
            errors = record_errors(candidate)
            stored = store.get_record(str(candidate.get("id"))) if not errors else None
            if errors or stored is None or not isinstance(candidate.get("parsedRecord"), dict):
                why = "; ".join(e["message"] for e in errors) or "record not found"
                messages.append(f"records[{n}]: {why}")
                continue
            record = {**stored, "parsedRecord": {**candidate["parsedRecord"], "id": stored["id"]}}
            updated.append(prepare(store, record, stored))
            parsed.append(updated[-1]["parsedRecord"])
        ctx = write_context(request, raw)
        with store.transaction():
            for record in updated:
                store.put_record(record, ctx, 200)
        return JSONResponse(
            {"parsedRecords": parsed, "errorMessages": messages, "totalRecords": len(parsed)}
        )


def _text(exc: FolioError) -> str:
    return exc.body if isinstance(exc.body, str) else str(exc.body["errors"][0]["message"])
