"""MARC payloads as Koha takes them: parse the wire formats, map columns, rebuild on save.

Koha keeps the record in biblio_metadata and a few values in biblio/biblioitems columns
(TransformMarcToKoha: raw subfield values, several joined by " | "); only those columns are
searchable through the REST API's `q`. On every save (AddBiblio/ModBiblio) it rebuilds the
record: 999 $c/$d get the biblio and biblioitem numbers, 005 the save time, leader/09 'a'
(UTF-8), and with the autoControlNumber system preference on, 001 becomes the biblio number.
"""

from __future__ import annotations

import io
import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import pymarc

MARCXML = "application/marcxml+xml"
MARC_IN_JSON = "application/marc-in-json"
MARC_BINARY = "application/marc"
JSON = "application/json"
TEXT = "text/plain"

# Koha's controller tries these in this order (regex match on Content-Type).
WRITE_TYPES = (MARCXML, MARC_IN_JSON, MARC_BINARY)
READ_TYPES = (JSON, MARCXML, MARC_IN_JSON, MARC_BINARY, TEXT)

# API column -> (tag, subfield) sources, as Koha's default MARC21 framework maps them
# (marc_subfield_structure.kohafield). Values are kept raw, as Koha keeps them.
COLUMN_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "title": (("245", "a"),),
    "subtitle": (("245", "b"),),
    "medium": (("245", "h"),),
    "part_number": (("245", "n"),),
    "part_name": (("245", "p"),),
    "author": (("100", "a"), ("110", "a"), ("111", "a")),
    "series_title": (("490", "a"),),
    "abstract": (("520", "a"),),
    "notes": (("500", "a"),),
    "isbn": (("020", "a"),),
    "issn": (("022", "a"),),
    "ean": (("024", "a"),),
    "lc_control_number": (("010", "a"),),
    "publisher": (("260", "b"), ("264", "b")),
    "publication_place": (("260", "a"), ("264", "a")),
    "publication_year": (("260", "c"), ("264", "c")),
    "edition_statement": (("250", "a"),),
    "pages": (("300", "a"),),
    "url": (("856", "u"),),
    "item_type": (("942", "c"),),
}
# Columns the database sets, not the record.
MANAGED_COLUMNS = ("biblio_id", "framework_id", "creation_date", "timestamp", "serial")
COLUMNS = tuple(COLUMN_SOURCES) + MANAGED_COLUMNS


class RecordPayloadError(ValueError):
    """The body could not be read as a MARC record of the declared type."""


@dataclass(frozen=True)
class BiblioFields:
    """A record's biblio/biblioitems column values (raw, " | "-joined) and its 001/003."""

    columns: dict[str, str | None]
    control_number: str | None
    control_number_source: str | None


def media_type(header: str | None) -> str:
    """The bare media type of a Content-Type or Accept value, lower-cased."""
    return (header or "").split(";", 1)[0].strip().lower()


def read_record(body: bytes, content_type: str) -> pymarc.Record:
    """The one record a body holds; RecordPayloadError (Koha: an exception, a 500) if none."""
    if content_type == MARCXML:
        return _parse_marcxml(body)
    if content_type == MARC_IN_JSON:
        try:
            records = list(pymarc.JSONReader(body.decode("utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            raise RecordPayloadError(f"not a MARC-in-JSON record: {exc}") from exc
    else:
        try:
            records = [pymarc.Record(data=body, to_unicode=True, force_utf8=True)]
        except (pymarc.exceptions.PymarcException, ValueError) as exc:
            raise RecordPayloadError(f"not an ISO 2709 record: {exc}") from exc
    if len(records) != 1 or records[0] is None:
        raise RecordPayloadError("the body must hold exactly one record")
    record: pymarc.Record = records[0]
    return record


def _parse_marcxml(body: bytes) -> pymarc.Record:
    try:
        records = pymarc.parse_xml_to_array(io.BytesIO(body), strict=False)
    except Exception as exc:  # the SAX parser raises its own exception types for malformed XML
        raise RecordPayloadError(f"not a MARCXML record: {exc}") from exc
    if len(records) != 1 or records[0] is None:
        raise RecordPayloadError("the body must hold exactly one record")
    record: pymarc.Record = records[0]
    if not record.fields:
        raise RecordPayloadError("the record has no fields")
    return record


def rebuild(
    record: pymarc.Record, biblio_id: int, saved_at: datetime, auto_control_number: bool
) -> bytes:
    """The record as Koha saves it (see the module docstring), serialised as MARCXML."""
    leader = list(str(record.leader).ljust(24))
    leader[9] = "a"
    record.leader = pymarc.Leader("".join(leader))
    # _koha_marc_update_bib_ids drops the first 999 (a vendor's data in it included) and adds
    # its own; later 999s stay.
    first_999 = record.get("999")
    if first_999 is not None:
        record.remove_field(first_999)
    record.remove_fields("005")
    stamp = saved_at.strftime("%Y%m%d%H%M%S") + ".0"
    record.add_ordered_field(pymarc.Field(tag="005", data=stamp))
    if auto_control_number:
        record.remove_fields("001")
        record.add_ordered_field(pymarc.Field(tag="001", data=str(biblio_id)))
    record.add_ordered_field(
        pymarc.Field(
            tag="999",
            indicators=pymarc.Indicators(" ", " "),
            subfields=[
                pymarc.Subfield("c", str(biblio_id)),
                pymarc.Subfield("d", str(biblio_id)),
            ],
        )
    )
    return bytes(pymarc.record_to_xml(record, namespace=True))


def render(marcxml: bytes, media: str) -> bytes:
    """The stored (rebuilt) record in a requested MARC format."""
    if media == MARCXML:
        return marcxml
    record = _parse_marcxml(marcxml)
    if media == MARC_IN_JSON:
        return json.dumps(record.as_dict(), ensure_ascii=False).encode("utf-8")
    if media == MARC_BINARY:
        return bytes(record.as_marc())
    return str(record).encode("utf-8")


# MARC::File::XML's header() and footer(), which Koha's print_collection wraps a list in.
_COLLECTION_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<collection\n'
    b'  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"\n'
    b'  xsi:schemaLocation="http://www.loc.gov/MARC21/slim '
    b'http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd"\n'
    b'  xmlns="http://www.loc.gov/MARC21/slim">\n'
)
_COLLECTION_FOOT = b"</collection>\n"


def render_collection(stored: list[bytes], media: str) -> bytes:
    """Stored records as one list answer (Koha::Objects::Record::Collections print_collection).

    MARCXML is one <collection> whose <record>s carry no namespace of their own (they take the
    collection's default one, as MARC::File::XML::record writes them); MiJ a JSON array; ISO
    2709 records joined by a newline; text blocks by a blank line. Each record is the stored,
    rebuilt one, so its biblio number is in its 999 $c.
    """
    if media == MARCXML:
        parts = [
            bytes(pymarc.record_to_xml(_parse_marcxml(xml), namespace=False)) + b"\n"
            for xml in stored
        ]
        return _COLLECTION_HEAD + b"".join(parts) + _COLLECTION_FOOT
    if media == MARC_IN_JSON:
        return b"[" + b",".join(render(xml, media) for xml in stored) + b"]"
    glue = b"\n" if media == MARC_BINARY else b"\n\n"
    return glue.join(render(xml, media) for xml in stored)


def biblio_fields(record: pymarc.Record) -> BiblioFields:
    """The column values Koha would store for `record` (TransformMarcToKoha)."""
    columns: dict[str, str | None] = {}
    for column, sources in COLUMN_SOURCES.items():
        values = [
            str(value)
            for tag, code in sources
            for field in record.get_fields(tag)
            for value in field.get_subfields(code)
        ]
        columns[column] = " | ".join(values) if values else None

    def control(tag: str) -> str | None:
        found = record.get_fields(tag)
        return found[0].data.strip() if found and found[0].data else None

    return BiblioFields(columns, control("001"), control("003"))


def _norm(value: str | None) -> str | None:
    if value is None:
        return None
    folded = unicodedata.normalize("NFKC", value).casefold()
    cleaned = "".join(ch for ch in folded if ch.isalnum() or ch.isspace())
    return " ".join(cleaned.split()) or None


def duplicate_key(fields: BiblioFields) -> tuple[str, str] | None:
    """What C4::Search::FindDuplicate searches: the ISBN (its first value, qualifier cut off)
    if the record has one, else title and author.

    Koha runs that search through its search engine (Zebra or Elasticsearch), so a record
    saved moments ago may not be found yet; the emulator finds it at once (stricter).
    """
    isbn = fields.columns.get("isbn")
    if isbn:
        first = isbn.split(" | ")[0].split("(")[0].strip()
        if first:
            return ("isbn", first)
    title = _norm(fields.columns.get("title"))
    if title is None:
        return None
    return ("title_author", f"{title}|{_norm(fields.columns.get('author')) or ''}")
