"""Tenant reference data an item needs: locations, material types and loan types.

mod-inventory-storage serves them at /locations (location.raml), /material-types
(material-type.raml) and /loan-types (loan-type.raml), searchable by CQL and pageable; the
holdings and item tables point at them through foreign keys (schema.json), so an unknown id is
RMB's 422. Unlike identifier and instance types they are the library's own, so the emulator
starts with a small sample named as FOLIO's reference environment names them (diku), and a
test adds what its delivery needs through /_emulator/reference.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from catalog_sync.emulator.folio.errors import not_found, plain
from catalog_sync.emulator.folio.inventory import page

if TYPE_CHECKING:
    from catalog_sync.emulator.folio.app import Okapi
    from catalog_sync.emulator.folio.state import FolioState


@dataclass(frozen=True)
class RefTable:
    """One reference table: its RMB table name (the foreign keys' target), route and list key."""

    name: str
    path: str
    list_key: str
    permission: str


LOCATION = RefTable("location", "/locations", "locations", "inventory-storage.locations")
MATERIAL_TYPE = RefTable(
    "material_type", "/material-types", "mtypes", "inventory-storage.material-types"
)
LOAN_TYPE = RefTable("loan_type", "/loan-types", "loantypes", "inventory-storage.loan-types")
TABLES = (LOCATION, MATERIAL_TYPE, LOAN_TYPE)

# Sample ids a test may name directly (a client resolves codes and names instead).
MAIN_LIBRARY = "fcd64ce1-6995-48f0-840e-89ffa2288371"
BOOK = "1a54b431-2e4f-452d-9cae-9cee66c9a892"
CAN_CIRCULATE = "2b94c631-fca9-4892-a730-03ee529ffe27"

# The location units every sample location hangs off (location.json requires all three).
_UNITS = {
    "institutionId": "40ee00ca-a518-4b49-be01-0638d0a4ac57",
    "campusId": "62cf76b7-cca5-4d33-9217-edf42ce1a848",
    "libraryId": "5d78803e-ca04-4b4a-aeae-2c63b924518b",
    "primaryServicePoint": "3a40852d-49fd-4df2-a1f9-6e2641a6e91f",
    "servicePointIds": ["3a40852d-49fd-4df2-a1f9-6e2641a6e91f"],
    "isActive": True,
}


def _seed() -> dict[str, dict[str, dict[str, Any]]]:
    locations = [
        (MAIN_LIBRARY, "Main Library", "KU/CC/DI/M"),
        ("53cf956f-c1df-410b-8bea-27f712cca7c0", "Annex", "KU/CC/DI/A"),
        ("b241764c-1466-4e1d-a028-1a3684a5da87", "Popular Reading Collection", "KU/CC/DI/P"),
    ]
    mtypes = [
        (BOOK, "book"),
        ("5ee11d91-f7e8-481d-b079-65d708582ccc", "dvd"),
        ("dd0bf600-dbd9-44ab-9ff2-e2a61a6539f1", "sound recording"),
    ]
    loantypes = [
        (CAN_CIRCULATE, "Can circulate"),
        ("e8b311a6-3b21-43f2-a269-dd9310cb2d0e", "Course reserves"),
        ("2e48e713-17f3-4c13-a9f8-23845bb210a4", "Reading room"),
    ]
    return {
        LOCATION.name: {
            i: {"id": i, "name": n, "code": c, "discoveryDisplayName": n, **_UNITS}
            for i, n, c in locations
        },
        MATERIAL_TYPE.name: {i: {"id": i, "name": n, "source": "folio"} for i, n in mtypes},
        LOAN_TYPE.name: {i: {"id": i, "name": n} for i, n in loantypes},
    }


class ReferenceData:
    """The three tables by id; only touched from the emulator's event loop."""

    def __init__(self) -> None:
        self.tables = _seed()

    def reset(self) -> None:
        self.tables = _seed()

    def exists(self, table: str, record_id: object) -> bool:
        return isinstance(record_id, str) and record_id in self.tables[table]

    def add(self, table: RefTable, record: dict[str, Any]) -> dict[str, Any]:
        """A record named as the route's schema names it; its id made when it has none.
        Names (and location codes) are unique, as schema.json's unique indexes make them."""
        body = dict(record)
        if table is LOCATION:
            body = {**_UNITS, "discoveryDisplayName": body.get("name"), **body}
        body.setdefault("id", str(uuid.uuid4()))
        for key in ("name", "code") if table is LOCATION else ("name",):
            if not isinstance(body.get(key), str) or not body[key]:
                raise ValueError(f"a {table.name} needs a {key}")
            if any(r[key] == body[key] for r in self.tables[table.name].values()):
                raise ValueError(f"{key} value already exists in table {table.name}: {body[key]}")
        self.tables[table.name][body["id"]] = body
        return body


# cql.allRecords=1, or `index=="value"` on id / code / name: what a client resolving a code sends.
_EQUALS = re.compile(r'^\s*(id|code|name)\s*==?\s*"((?:[^"\\]|\\.)*)"\s*$')


def _select(table: RefTable, rows: list[dict[str, Any]], query: str | None) -> list[dict[str, Any]]:
    if query is None or query.strip() == "cql.allRecords=1":
        return rows
    found = _EQUALS.match(query)
    if found is None or (found.group(1) == "code" and table is not LOCATION):
        raise plain(400, f"CQL parse error: unsupported query {query}")
    value = re.sub(r"\\(.)", r"\1", found.group(2))
    return [r for r in rows if r.get(found.group(1)) == value]


def register_refdata(app: FastAPI, state: FolioState, okapi: Okapi) -> None:
    for table in TABLES:
        _register_table(app, table, state, okapi)


def _register_table(app: FastAPI, table: RefTable, state: FolioState, okapi: Okapi) -> None:
    # A closure per table: FastAPI would read a default argument as a request parameter.
    async def search(request: Request) -> Response:
        okapi.authorize(request, f"{table.permission}.collection.get")
        offset, limit = page(request)
        rows = list(state.reference.tables[table.name].values())
        rows = _select(table, rows, request.query_params.get("query"))
        body = {table.list_key: rows[offset : offset + limit], "totalRecords": len(rows)}
        return JSONResponse(body)

    async def get_one(request: Request, record_id: str) -> Response:
        okapi.authorize(request, f"{table.permission}.item.get")
        record = state.reference.tables[table.name].get(record_id)
        if record is None:
            raise not_found()
        return JSONResponse(record)

    app.add_api_route(table.path, search, methods=["GET"])
    app.add_api_route(f"{table.path}/{{record_id}}", get_one, methods=["GET"])
