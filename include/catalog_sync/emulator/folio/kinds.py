"""The three inventory record kinds as RMB serves them, and their JSON-schema checks (422)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog_sync.emulator.folio.errors import UUID_RE, field_error
from catalog_sync.ils.folio.reference import HOLDINGS_SOURCES, INSTANCE_TYPES

# Property names of schemas/instance-storage/instance.json, holdings-storage/holdingsRecord.json
# and item-storage/item.json: all three say "additionalProperties": false.
_INSTANCE_PROPS = frozenset(
    [
        "id",
        "_version",
        "hrid",
        "matchKey",
        "sourceUri",
        "source",
        "title",
        "indexTitle",
        "alternativeTitles",
        "editions",
        "series",
        "identifiers",
        "contributors",
        "subjects",
        "classifications",
        "publication",
        "publicationFrequency",
        "publicationRange",
        "electronicAccess",
        "dates",
        "instanceTypeId",
        "instanceFormatIds",
        "instanceFormats",
        "physicalDescriptions",
        "languages",
        "notes",
        "administrativeNotes",
        "modeOfIssuanceId",
        "catalogedDate",
        "previouslyHeld",
        "staffSuppress",
        "discoverySuppress",
        "deleted",
        "statisticalCodeIds",
        "sourceRecordFormat",
        "statusId",
        "statusUpdatedDate",
        "tags",
        "metadata",
        "holdingsRecords2",
        "natureOfContentTermIds",
    ]
)
_HOLDINGS_PROPS = frozenset(
    [
        "id",
        "_version",
        "sourceId",
        "hrid",
        "holdingsTypeId",
        "formerIds",
        "instanceId",
        "permanentLocationId",
        "temporaryLocationId",
        "effectiveLocationId",
        "electronicAccess",
        "additionalCallNumbers",
        "callNumberTypeId",
        "callNumberPrefix",
        "callNumber",
        "callNumberSuffix",
        "shelvingTitle",
        "acquisitionFormat",
        "acquisitionMethod",
        "receiptStatus",
        "administrativeNotes",
        "notes",
        "illPolicyId",
        "retentionPolicy",
        "digitizationPolicy",
        "holdingsStatements",
        "holdingsStatementsForIndexes",
        "holdingsStatementsForSupplements",
        "copyNumber",
        "numberOfItems",
        "receivingHistory",
        "discoverySuppress",
        "statisticalCodeIds",
        "tags",
        "metadata",
    ]
)
_ITEM_PROPS = frozenset(
    [
        "id",
        "_version",
        "hrid",
        "holdingsRecordId",
        "order",
        "formerIds",
        "discoverySuppress",
        "displaySummary",
        "accessionNumber",
        "barcode",
        "effectiveShelvingOrder",
        "additionalCallNumbers",
        "itemLevelCallNumber",
        "itemLevelCallNumberPrefix",
        "itemLevelCallNumberSuffix",
        "itemLevelCallNumberTypeId",
        "effectiveCallNumberComponents",
        "volume",
        "enumeration",
        "chronology",
        "yearCaption",
        "itemIdentifier",
        "copyNumber",
        "numberOfPieces",
        "descriptionOfPieces",
        "numberOfMissingPieces",
        "missingPieces",
        "missingPiecesDate",
        "itemDamagedStatusId",
        "itemDamagedStatusDate",
        "administrativeNotes",
        "notes",
        "circulationNotes",
        "status",
        "materialTypeId",
        "materialType",
        "permanentLoanTypeId",
        "temporaryLoanTypeId",
        "permanentLocationId",
        "permanentLocation",
        "temporaryLocationId",
        "temporaryLocation",
        "effectiveLocationId",
        "electronicAccess",
        "inTransitDestinationServicePointId",
        "statisticalCodeIds",
        "purchaseOrderLineIdentifier",
        "tags",
        "metadata",
        "holdingsRecord2",
        "lastCheckIn",
    ]
)
# itemStatus.json's name enum (the states a new item can be given).
ITEM_STATUSES = frozenset(
    {
        "Aged to lost",
        "Available",
        "Awaiting pickup",
        "Awaiting delivery",
        "Checked out",
        "Claimed returned",
        "Declared lost",
        "Lost and paid",
        "Long missing",
        "Missing",
        "In process",
        "In process (non-requestable)",
        "In transit",
        "Intellectual item",
        "On order",
        "Order closed",
        "Paged",
        "Restricted",
        "Unavailable",
        "Unknown",
        "Withdrawn",
    }
)


@dataclass(frozen=True)
class Kind:
    """One inventory-storage record kind: its routes, table rows and schema rules."""

    name: str  # table name in the emulator, and the write log's resource
    collection: str  # RMB collection path
    batch: str  # batch synchronous path
    list_key: str  # array property of the collection and batch bodies
    hrid_prefix: str  # FOLIO's default HRID prefixes: in, ho, it
    props: frozenset[str]
    required: tuple[str, ...]
    uuid_props: tuple[str, ...]
    parent: tuple[str, str] | None  # (property, parent kind) checked like a foreign key
    reference: dict[str, frozenset[str]]  # property -> the reference ids it may hold
    # property -> the tenant reference table (refdata.py) its foreign key points at; optional
    # properties are checked only when given, as a NULL foreign key is.
    lookups: tuple[tuple[str, str], ...] = ()


INSTANCE = Kind(
    "instance",
    "/instance-storage/instances",
    "/instance-storage/batch/synchronous",
    "instances",
    "in",
    _INSTANCE_PROPS,
    ("source", "title", "instanceTypeId"),
    ("id", "instanceTypeId", "modeOfIssuanceId", "statusId"),
    None,
    {"instanceTypeId": frozenset(INSTANCE_TYPES.values())},
)
HOLDINGS = Kind(
    "holdings_record",
    "/holdings-storage/holdings",
    "/holdings-storage/batch/synchronous",
    "holdingsRecords",
    "ho",
    _HOLDINGS_PROPS,
    ("sourceId", "instanceId", "permanentLocationId"),
    ("id", "sourceId", "instanceId", "permanentLocationId", "temporaryLocationId"),
    ("instanceId", "instance"),
    {"sourceId": frozenset(HOLDINGS_SOURCES.values())},
    (("permanentLocationId", "location"), ("temporaryLocationId", "location")),
)
ITEM = Kind(
    "item",
    "/item-storage/items",
    "/item-storage/batch/synchronous",
    "items",
    "it",
    _ITEM_PROPS,
    ("materialTypeId", "permanentLoanTypeId", "holdingsRecordId", "status"),
    (
        "id",
        "holdingsRecordId",
        "materialTypeId",
        "permanentLoanTypeId",
        "temporaryLoanTypeId",
        "permanentLocationId",
        "temporaryLocationId",
    ),
    ("holdingsRecordId", "holdings_record"),
    {},
    (
        ("materialTypeId", "material_type"),
        ("permanentLoanTypeId", "loan_type"),
        ("temporaryLoanTypeId", "loan_type"),
        ("permanentLocationId", "location"),
        ("temporaryLocationId", "location"),
    ),
)
KINDS = (INSTANCE, HOLDINGS, ITEM)


def schema_errors(kind: Kind, body: Any) -> list[dict[str, Any]]:
    """What RMB's JSON-schema validation (the `validate` trait) reports for one record."""
    if not isinstance(body, dict):
        return [field_error("must be an object", kind.list_key, body)]
    errors = [
        field_error(f'Unrecognized field "{key}"', key, body[key])
        for key in sorted(set(body) - kind.props)
    ]
    errors += [
        field_error("must not be null", key, None, "javax.validation.constraints.NotNull.message")
        for key in kind.required
        if body.get(key) is None
    ]
    for key in kind.uuid_props:
        value = body.get(key)
        if value is not None and not (isinstance(value, str) and UUID_RE.match(value)):
            errors.append(
                field_error(
                    f'must match "{UUID_RE.pattern}"',
                    key,
                    value,
                    "javax.validation.constraints.Pattern.message",
                )
            )
    version = body.get("_version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        errors.append(field_error("must be an integer", "_version", version))
    for key in ("title", "source", "hrid", "barcode"):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            errors.append(field_error("must be a string", key, body[key]))
    errors += _identifier_errors(body.get("identifiers")) if kind is INSTANCE else []
    if kind is ITEM and body.get("status") is not None:
        status = body["status"]
        if not isinstance(status, dict) or status.get("name") not in ITEM_STATUSES:
            errors.append(field_error("must be a valid item status", "status.name", status))
    return errors


def _identifier_errors(identifiers: Any) -> list[dict[str, Any]]:
    """schemas/common/identifier.json: value and identifierTypeId (a UUID) are required."""
    if identifiers is None:
        return []
    if not isinstance(identifiers, list):
        return [field_error("must be an array", "identifiers", identifiers)]
    errors = []
    for n, entry in enumerate(identifiers):
        if not isinstance(entry, dict) or set(entry) - {
            "value",
            "identifierTypeId",
            "identifierTypeObject",
        }:
            errors.append(field_error("must be an identifier", f"identifiers[{n}]", entry))
            continue
        if not isinstance(entry.get("value"), str):
            errors.append(field_error("must not be null", f"identifiers[{n}].value", None))
        type_id = entry.get("identifierTypeId")
        if not (isinstance(type_id, str) and UUID_RE.match(type_id)):
            errors.append(
                field_error("must be a UUID", f"identifiers[{n}].identifierTypeId", type_id)
            )
    return errors
