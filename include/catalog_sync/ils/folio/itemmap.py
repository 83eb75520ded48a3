"""FOLIO items by the pipeline's item property names (Koha's): the mapping both ways.

external_id -> barcode           home_library_id -> the holdings' permanentLocationId
item_type_id -> materialTypeId   holding_library_id -> the item's permanentLocationId
loan_type_id -> permanentLoanTypeId
callnumber -> itemLevelCallNumber   copy_number -> copyNumber
internal_notes -> the first of administrativeNotes
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from catalog_sync.ils.client import IlsItem
from catalog_sync.ils.errors import ILSBadAnswer, ILSRejected
from catalog_sync.ils.folio.refids import ReferenceIds

# Holdings ids we make: uuid5 of the instance and location under this namespace.
_HOLDINGS_NAMESPACE = uuid.UUID("6f1c3f0e-3d0b-5a53-9d7e-2c1a7c7a5b18")
# Item properties a FOLIO item holds, by the pipeline's (Koha's) names.
_SUPPORTED = frozenset(
    {
        "external_id",
        "home_library_id",
        "holding_library_id",
        "item_type_id",
        "loan_type_id",
        "callnumber",
        "copy_number",
        "internal_notes",
    }
)
_PLAIN = {"callnumber": "itemLevelCallNumber", "copy_number": "copyNumber"}


def holdings_id(instance_id: str, location_id: str) -> str:
    """The id of the holdings we make for an instance at a location: the same on every try."""
    return str(uuid.uuid5(_HOLDINGS_NAMESPACE, f"{instance_id}/{location_id}"))


def ils_item(item: Mapping[str, Any], holdings: Mapping[str, Any], refs: ReferenceIds) -> IlsItem:
    """A FOLIO item (and its holdings) as the pipeline names item properties."""
    if not isinstance(item.get("id"), str) or not isinstance(holdings.get("instanceId"), str):
        raise ILSBadAnswer("FOLIO answered something that is not an item of an instance")
    props: dict[str, object] = {}
    values = {
        "external_id": item.get("barcode"),
        "home_library_id": refs.location_code(holdings.get("permanentLocationId")),
        "holding_library_id": refs.location_code(
            item.get("permanentLocationId") or holdings.get("permanentLocationId")
        ),
        "item_type_id": refs.material_type(item.get("materialTypeId")),
        "loan_type_id": refs.loan_type(item.get("permanentLoanTypeId")),
        "callnumber": item.get("itemLevelCallNumber"),
        "copy_number": item.get("copyNumber"),
        "internal_notes": (item.get("administrativeNotes") or [None])[0],
    }
    props.update((k, v) for k, v in values.items() if v is not None)
    return IlsItem(item_id=item["id"], biblio_id=holdings["instanceId"], properties=props)


def item_body(
    props: Mapping[str, object],
    refs: ReferenceIds,
    holdings_record_id: str,
    stored: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """item.json for `props`: what staff set on a stored item (status, notes, ...) is kept."""
    unsupported = sorted(set(props) - _SUPPORTED)
    if unsupported:
        raise ILSRejected(
            f"a FOLIO item has no place for {unsupported}", reason="item_property_unsupported"
        )
    body: dict[str, Any] = dict(stored) if stored else {"id": str(uuid.uuid4())}
    body.pop("metadata", None)
    body["holdingsRecordId"] = holdings_record_id
    body["barcode"] = str(props["external_id"])
    body.setdefault("status", {"name": "Available"})
    for name, field in (
        ("item_type_id", "materialTypeId"),
        ("loan_type_id", "permanentLoanTypeId"),
    ):
        if name not in props and not body.get(field):
            # FOLIO requires both on every item (item.json): the vendor maps or defaults them.
            raise ILSRejected(f"a FOLIO item needs {name}", reason=f"item_no_{name[:-3]}")
    if "item_type_id" in props:
        body["materialTypeId"] = refs.material_type_id(str(props["item_type_id"]))
    if "loan_type_id" in props:
        body["permanentLoanTypeId"] = refs.loan_type_id(str(props["loan_type_id"]))
    if "holding_library_id" in props:
        body["permanentLocationId"] = refs.location_id(str(props["holding_library_id"]))
    for name, field in _PLAIN.items():
        if name in props:
            body[field] = str(props[name])
    if "internal_notes" in props:
        body["administrativeNotes"] = [
            str(props["internal_notes"]),
            *body.get("administrativeNotes", [])[1:],
        ]
    return body
