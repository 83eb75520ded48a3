"""MARC payloads as Koha accepts them: parse the three wire formats and pull the indexed fields."""

from __future__ import annotations

import io
import json
import unicodedata
from dataclasses import dataclass

import pymarc

from catalog_sync.identifiers import record_identifiers

MARCXML = "application/marcxml+xml"
MARC_IN_JSON = "application/marc-in-json"
MARC_BINARY = "application/marc"
JSON = "application/json"
TEXT = "text/plain"

# Koha's controller tries these in this order (regex match on Content-Type).
WRITE_TYPES = (MARCXML, MARC_IN_JSON, MARC_BINARY)
READ_TYPES = (JSON, MARCXML, MARC_IN_JSON, MARC_BINARY, TEXT)


# q={...} keys of the biblio list route answered from the identifiers index.
INDEX_NAMES = {"oclc_number": "oclc_number", "isbn": "isbn13", "issn": "issn"}
IDENTIFIER_KEYS = frozenset(INDEX_NAMES.values())


class RecordPayloadError(ValueError):
    """The body could not be read as a MARC record of the declared type."""


@dataclass(frozen=True)
class BiblioFields:
    """What the emulator indexes from a record: duplicate check, lookup and the JSON view."""

    control_number: str | None
    control_number_source: str | None
    title: str | None
    author: str | None
    isbn: str | None
    # Emulator extension: normalised standard numbers (index, value), queryable by index name.
    identifiers: tuple[tuple[str, str], ...] = ()


def media_type(header: str | None) -> str:
    """The bare media type of a Content-Type or Accept value, lower-cased."""
    return (header or "").split(";", 1)[0].strip().lower()


def read_record(body: bytes, content_type: str) -> tuple[bytes, BiblioFields]:
    """The record as MARCXML plus its indexed fields, parsed once.

    MARCXML bodies are kept byte for byte, so reads return exactly what was sent.
    """
    if content_type == MARCXML:
        return body, _fields(_parse_marcxml(body))
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
    return bytes(pymarc.record_to_xml(records[0], namespace=True)), _fields(records[0])


def _parse_marcxml(body: bytes) -> pymarc.Record:
    try:
        records = pymarc.parse_xml_to_array(io.BytesIO(body), strict=False)
    except Exception as exc:  # the SAX parser raises its own exception types for malformed XML
        raise RecordPayloadError(f"not a MARCXML record: {exc}") from exc
    if len(records) != 1 or records[0] is None:
        raise RecordPayloadError("the body must hold exactly one record")
    return records[0]


def render(marcxml: bytes, media: str) -> bytes:
    """The stored record in a requested MARC format (MARCXML is returned as stored)."""
    if media == MARCXML:
        return marcxml
    record = _parse_marcxml(marcxml)
    if media == MARC_IN_JSON:
        return json.dumps(record.as_dict(), ensure_ascii=False).encode("utf-8")
    if media == MARC_BINARY:
        return bytes(record.as_marc())
    return str(record).encode("utf-8")


def _norm(value: str | None) -> str | None:
    if value is None:
        return None
    folded = unicodedata.normalize("NFKC", value).casefold()
    cleaned = "".join(ch for ch in folded if ch.isalnum() or ch.isspace())
    return " ".join(cleaned.split()) or None


def _fields(record: pymarc.Record) -> BiblioFields:

    def control(tag: str) -> str | None:
        found = record.get_fields(tag)
        return found[0].data.strip() if found and found[0].data else None

    def first_subfield(tags: tuple[str, ...], code: str) -> str | None:
        for tag in tags:
            for field in record.get_fields(tag):
                values = field.get_subfields(code)
                if values:
                    return str(values[0]).strip(" /:;,.")
        return None

    isbn = first_subfield(("020",), "a")
    return BiblioFields(
        control_number=control("001"),
        control_number_source=control("003"),
        title=first_subfield(("245",), "a"),
        author=first_subfield(("100", "110", "111"), "a"),
        isbn=isbn.split()[0].replace("-", "") if isbn else None,
        identifiers=tuple(
            (INDEX_NAMES[index], value)
            for index, values in record_identifiers(record).items()
            for value in values
        ),
    )


def duplicate_key(fields: BiblioFields) -> tuple[str, str] | None:
    """Koha's FindDuplicate idea: same ISBN, else same title and author."""
    if fields.isbn:
        return ("isbn", fields.isbn)
    title = _norm(fields.title)
    if title is None:
        return None
    return ("title_author", f"{title}|{_norm(fields.author) or ''}")
