"""A tenant's locations, material types and loan types: the codes and names a vendor's item
fields carry, as the ids FOLIO's holdings and items hold.

Unlike identifier or instance types (reference.py) these are the library's own records, with
ids that differ from tenant to tenant, so they are read from FOLIO (/locations,
/material-types, /loan-types of mod-inventory-storage), once per client: a few hundred rows
at most, three requests that spare one look-up per item.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from catalog_sync.ils.errors import ILSBadAnswer, ILSError, ILSRejected
from catalog_sync.ils.folio.session import OkapiSession, folio_message

_PAGE = 1000


@dataclass(frozen=True)
class ReferenceIds:
    """Location code, material type name and loan type name -> id, and back."""

    locations: Mapping[str, str]
    material_types: Mapping[str, str]
    loan_types: Mapping[str, str]

    def location_id(self, code: str) -> str:
        return _id_of(self.locations, code, "location with code", "folio_unknown_location")

    def material_type_id(self, name: str) -> str:
        return _id_of(self.material_types, name, "material type", "folio_unknown_material_type")

    def loan_type_id(self, name: str) -> str:
        return _id_of(self.loan_types, name, "loan type", "folio_unknown_loan_type")

    def location_code(self, location_id: object) -> str | None:
        return _name_of(self.locations, location_id)

    def material_type(self, type_id: object) -> str | None:
        return _name_of(self.material_types, type_id)

    def loan_type(self, type_id: object) -> str | None:
        return _name_of(self.loan_types, type_id)


def _id_of(table: Mapping[str, str], key: str, what: str, reason: str) -> str:
    found = table.get(key)
    if found is None:
        # A code or name from the vendor's mapping (never PII): the operator adds it in FOLIO
        # Settings or corrects the mapping; the record fails, the rest of the chunk goes on.
        raise ILSRejected(f"FOLIO has no {what} {key!r}", reason=reason)
    return found


def _name_of(table: Mapping[str, str], record_id: object) -> str | None:
    return next((k for k, v in table.items() if v == record_id), None)


Call = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


async def load_reference_ids(session: OkapiSession, call: Call, cid: str) -> ReferenceIds:
    """The three tables, every page; `call` retries a transient failure (the adapter's _call)."""

    async def table(path: str, key: str, field: str) -> dict[str, str]:
        rows: list[dict[str, Any]] = []
        while True:

            async def send(offset: int = len(rows)) -> list[dict[str, Any]]:
                response = await session.request(
                    "GET",
                    path,
                    correlation_id=cid,
                    params={
                        "query": "cql.allRecords=1",
                        "limit": str(_PAGE),
                        "offset": str(offset),
                    },
                )
                if response.status_code != 200:
                    raise ILSError(
                        f"FOLIO GET {path}: {folio_message(response)}", status=response.status_code
                    )
                try:
                    page: list[dict[str, Any]] = response.json()[key]
                except (ValueError, KeyError) as exc:
                    raise ILSBadAnswer(f"FOLIO GET {path} answered no {key} list") from exc
                return page

            page = await call(f"read {path}", send)
            rows += page
            if len(page) < _PAGE:
                return {str(r[field]): str(r["id"]) for r in rows if r.get(field) and r.get("id")}

    return ReferenceIds(
        locations=await table("/locations", "locations", "code"),
        material_types=await table("/material-types", "mtypes", "name"),
        loan_types=await table("/loan-types", "loantypes", "name"),
    )
