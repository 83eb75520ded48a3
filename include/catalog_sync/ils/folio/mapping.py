"""A vendor MARC bib record as a FOLIO inventory instance (minimal, after FOLIO's default rules)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pymarc

from catalog_sync.ils.folio.reference import IDENTIFIER_TYPES, INSTANCE_TYPE_CODES, INSTANCE_TYPES

# (tag, subfield) -> FOLIO identifier type name, as FOLIO's default MARC-to-instance rules map them.
_IDENTIFIER_FIELDS: dict[tuple[str, str], str] = {
    ("010", "a"): "LCCN",
    ("010", "z"): "Canceled LCCN",
    ("020", "a"): "ISBN",
    ("020", "z"): "Invalid ISBN",
    ("022", "a"): "ISSN",
    ("022", "z"): "Invalid ISSN",
    ("022", "l"): "Linking ISSN",
}
_TITLE_SUBFIELDS = ("a", "b", "f", "g", "k", "n", "p", "s")
_OCLC_PREFIX = re.compile(r"^\((OCoLC|OCLC)\)", re.IGNORECASE)


class InstanceMappingError(ValueError):
    """A record FOLIO cannot hold as an instance; `reason` is the reject reason code."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def instance_from_marc(record: pymarc.Record, instance_id: str | None = None) -> dict[str, Any]:
    """The instance.json body for `record`: title, identifiers, instance type, source MARC."""
    title = _title(record)
    if not title:
        # instance.json requires a title; FOLIO's own import would fail the record the same way.
        raise InstanceMappingError("record has no 245 title to give the instance", "no_title")
    return {
        "id": instance_id or str(uuid.uuid4()),
        "source": "MARC",
        "title": title,
        "instanceTypeId": _instance_type(record),
        "identifiers": identifiers(record),
    }


def identifiers(record: pymarc.Record) -> list[dict[str, str]]:
    """010/020/022/035 values with FOLIO's identifier-type UUIDs, in field order, no repeats."""
    found: list[dict[str, str]] = []
    for field in record.get_fields("010", "020", "022", "035"):
        for code, value in ((s.code, s.value.strip()) for s in field.subfields):
            if not value:
                continue
            if field.tag == "035":
                if code != "a":
                    continue
                name = "OCLC" if _OCLC_PREFIX.match(value) else "System control number"
            else:
                name = _IDENTIFIER_FIELDS.get((field.tag, code), "")
                if not name:
                    continue
            entry = {"identifierTypeId": IDENTIFIER_TYPES[name], "value": value}
            if entry not in found:
                found.append(entry)
    return found


def _title(record: pymarc.Record) -> str:
    fields = record.get_fields("245")
    if not fields:
        return ""
    field = fields[0]
    parts = [s.value.strip() for s in field.subfields if s.code in _TITLE_SUBFIELDS]
    # ISBD punctuation that ends the title statement (" /" before the responsibility).
    return re.sub(r"\s*[/:;,=]\s*$", "", " ".join(p for p in parts if p)).strip()


def _instance_type(record: pymarc.Record) -> str:
    """336 $b (RDA content code), else 336 $a (its name), else "unspecified" as FOLIO does."""
    for field in record.get_fields("336"):
        for code in field.get_subfields("b"):
            name = INSTANCE_TYPE_CODES.get(code.strip())
            if name:
                return INSTANCE_TYPES[name]
        for term in field.get_subfields("a"):
            if term.strip() in INSTANCE_TYPES:
                return INSTANCE_TYPES[term.strip()]
    return INSTANCE_TYPES["unspecified"]
