"""The FOLIO adapter's pure parts: MARCXML in and out, instance bodies, identifiers held."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pymarc

from catalog_sync.changes.identifiers import normalise
from catalog_sync.ils.errors import ILSError, ILSRejected
from catalog_sync.ils.folio.mapping import InstanceMappingError, instance_from_marc
from catalog_sync.ils.folio.reference import IDENTIFIER_TYPES

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-")
# Our match indexes -> the FOLIO identifier types holding them (FOLIO's default MARC rules).
INDEX_TYPES = {"isbn": "ISBN", "issn": "ISSN", "lccn": "LCCN"}


def check_id(biblio_id: str) -> None:
    """FOLIO ids are UUIDs; anything else is refused before it reaches a URL or a query."""
    if not _UUID.match(biblio_id) or len(biblio_id) != 36:
        raise ILSRejected(f"not a FOLIO instance id: {biblio_id!r}", reason="bad_biblio_id")


def parse_marcxml(marcxml: bytes) -> pymarc.Record:
    records = pymarc.parse_xml_to_array(io.BytesIO(marcxml), strict=False)
    if len(records) != 1 or records[0] is None:
        raise ILSRejected("not one readable MARCXML record", reason="bad_marcxml")
    record: pymarc.Record = records[0]
    return record


def instance_of(record: pymarc.Record, instance_id: str | None) -> dict[str, Any]:
    try:
        return instance_from_marc(record, instance_id)
    except InstanceMappingError as exc:
        raise ILSRejected(str(exc), reason=exc.reason) from exc


def srs_marcxml(source: dict[str, Any]) -> bytes:
    """The SRS record's parsed MARC (MARC-in-JSON) as MARCXML, for diffing."""
    content = source.get("parsedRecord", {}).get("content")
    text = content if isinstance(content, str) else json.dumps(content)
    record = next(iter(pymarc.JSONReader(text)), None)
    if record is None:
        raise ILSError(f"SRS record {source.get('id')} holds no readable MARC")
    xml: bytes = pymarc.record_to_xml(record, namespace=True)
    return xml


def held_numbers(instance: dict[str, Any]) -> dict[str, set[str]]:
    """The instance's identifiers normalised as our match indexes compare them."""
    by_type = {IDENTIFIER_TYPES[name]: index for index, name in INDEX_TYPES.items()}
    held: dict[str, set[str]] = {}
    for entry in instance.get("identifiers", []):
        index = by_type.get(str(entry.get("identifierTypeId")))
        if index is None:
            continue
        # A catalogued "0198526636 (pbk.)" holds its number in the first word.
        words = str(entry.get("value", "")).split()
        value = normalise(index, " ".join(words) if index == "lccn" else (words or [""])[0])
        if value:
            held.setdefault(index, set()).add(value)
    return held
