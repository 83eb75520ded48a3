"""The FOLIO adapter's pure parts: MARCXML in and out, instance bodies, identifiers held."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

import pymarc
import pymarc.exceptions

from catalog_sync.changes.identifiers import isbn_forms, normalise
from catalog_sync.ils.client import Candidate
from catalog_sync.ils.errors import ILSBadAnswer, ILSRejected
from catalog_sync.ils.folio.mapping import InstanceMappingError, instance_from_marc
from catalog_sync.ils.folio.reference import IDENTIFIER_TYPES

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-")
# Our match indexes -> the FOLIO identifier types holding them (FOLIO's default MARC rules).
# An OCLC number is an "OCLC" identifier under today's rules and a "System control number"
# (value "(OCoLC)...") under older ones and in migrated data: both are searched.
INDEX_TYPES: dict[str, tuple[str, ...]] = {
    "isbn": ("ISBN",),
    "issn": ("ISSN",),
    "lccn": ("LCCN",),
    "oclc_number": ("OCLC", "System control number"),
}
HRID = "hrid"  # the instance's own HRID (a 001 of a record FOLIO exported)
MATCH_INDEXES = frozenset({*INDEX_TYPES, HRID})
_OCLC_DIGITS = re.compile(r"^(?:ocm|ocn|on)?0*(\d+)$", re.IGNORECASE)


def check_id(biblio_id: str) -> None:
    """FOLIO ids are UUIDs; anything else is refused before it reaches a URL or a query."""
    if not _UUID.match(biblio_id) or len(biblio_id) != 36:
        raise ILSRejected(f"not a FOLIO instance id: {biblio_id!r}", reason="bad_biblio_id")


def parse_marcxml(marcxml: bytes) -> pymarc.Record:
    plain = _plain_record(marcxml)
    if plain is not None:
        return plain
    records = pymarc.parse_xml_to_array(io.BytesIO(marcxml), strict=False)
    if len(records) != 1 or records[0] is None:
        raise ILSRejected("not one readable MARCXML record", reason="bad_marcxml")
    record: pymarc.Record = records[0]
    return record


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _plain_record(marcxml: bytes) -> pymarc.Record | None:
    """The record pymarc's parser would build, through ElementTree's C parser: for the MARCXML
    the pipeline writes (one record of leader, control and data fields). Anything else is None,
    for pymarc's own parser to read or refuse. pymarc's SAX handler parsed each create's payload
    again in Python, a tenth of a commit task's CPU on a FOLIO initial load."""
    try:
        root = ET.fromstring(marcxml)
    except ET.ParseError:
        return None
    if _local(root.tag) == "collection" and len(root) == 1:
        root = root[0]
    if _local(root.tag) != "record":
        return None
    record = pymarc.Record()
    try:
        for element in root:
            name = _local(element.tag)
            if len(element) and name != "datafield":
                return None
            if name == "leader":
                record.leader = pymarc.Leader(element.text or "")
            elif name == "controlfield":
                field = pymarc.Field(element.attrib["tag"])
                field.data = element.text or ""
                record.add_field(field)
            elif name == "datafield":
                indicators = pymarc.Indicators(
                    element.attrib.get("ind1", " "), element.attrib.get("ind2", " ")
                )
                field = pymarc.Field(element.attrib["tag"], indicators)
                for sub in element:
                    if _local(sub.tag) != "subfield" or len(sub):
                        return None
                    if sub.attrib["code"]:
                        field.add_subfield(sub.attrib["code"], sub.text or "")
                record.add_field(field)
            else:
                return None
    except (KeyError, pymarc.exceptions.PymarcException):
        return None
    return record


def instance_of(record: pymarc.Record, instance_id: str | None) -> dict[str, Any]:
    try:
        return instance_from_marc(record, instance_id)
    except InstanceMappingError as exc:
        raise ILSRejected(str(exc), reason=exc.reason) from exc


def srs_marcxml(source: dict[str, Any]) -> bytes:
    """The SRS record's parsed MARC (MARC-in-JSON) as MARCXML, for diffing.

    ILSBadAnswer when it holds no MARC we can read (no content, not JSON, not MARC-in-JSON):
    that record fails alone with ils_bad_answer, as an unreadable Koha copy does, instead of an
    error no caller expects failing the whole task. The message names the record, never its
    content (which may carry masked fields).
    """
    where = f"SRS record {source.get('id') if isinstance(source, dict) else '?'}"
    try:
        content = source.get("parsedRecord", {}).get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        record = next(iter(pymarc.JSONReader(text)), None)
        if record is not None:
            xml: bytes = pymarc.record_to_xml(record, namespace=True)
            return xml
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        pymarc.exceptions.PymarcException,
    ) as exc:
        problem = type(exc).__name__
        raise ILSBadAnswer(f"{where} holds MARC that cannot be read ({problem})") from exc
    raise ILSBadAnswer(f"{where} holds no readable MARC")


def held_numbers(instance: dict[str, Any]) -> dict[str, set[str]]:
    """The instance's identifiers (and HRID) normalised as our match indexes compare them."""
    by_type = {IDENTIFIER_TYPES[n]: (i, n) for i, names in INDEX_TYPES.items() for n in names}
    held: dict[str, set[str]] = {HRID: {str(instance["hrid"])}} if instance.get("hrid") else {}
    for entry in instance.get("identifiers", []):
        index, name = by_type.get(str(entry.get("identifierTypeId")), ("", ""))
        if not index:
            continue
        # A catalogued "0198526636 (pbk.)" holds its number in the first word.
        words = str(entry.get("value", "")).split()
        value = normalise(index, " ".join(words) if index == "lccn" else (words or [""])[0])
        if value is None and name == "OCLC":
            # An "OCLC" identifier may hold the bare number ("ocm00012345", "12345"); a
            # System control number is an OCLC number only with its (OCoLC) prefix.
            bare = _OCLC_DIGITS.match("".join(words))
            value = bare.group(1) if bare else None
        if value:
            held.setdefault(index, set()).add(value)
    return held


def search_terms(index: str, value: str) -> list[str]:
    """The forms FOLIO may hold `value` in, each a full-text term of the `identifiers` index."""
    if index == "isbn":  # FOLIO holds the ISBN as catalogued: 10 or 13, hyphenated or not
        forms = isbn_forms(value)
    elif index == "oclc_number":
        # OCLC's own prefixes and padding (ocm + 8 digits, ocn + 9, on + 10 or more): a
        # full-text match needs the whole word, so each form is a term of its own.
        forms = [value, f"ocm{value.zfill(8)}", f"ocn{value.zfill(9)}", f"on{value}"]
        forms.append(value.zfill(8))
    else:
        forms = [value]
    return list(dict.fromkeys(forms))


def match_clauses(numbers: Mapping[str, Iterable[str]]) -> list[str]:
    """One CQL clause per value and form over instance storage, to be OR-ed in one query."""
    clauses: list[str] = []
    for index, values in numbers.items():
        for value in values:
            if index == HRID:
                clauses.append(f'hrid=="{cql_escape(value)}"')
                continue
            for name in INDEX_TYPES.get(index, ()):
                type_id = IDENTIFIER_TYPES[name]
                clauses += [
                    f'identifiers =/@identifierTypeId={type_id} "{cql_escape(term)}"'
                    for term in search_terms(index, value)
                ]
    return list(dict.fromkeys(clauses))


def verified_candidates(
    instances: Iterable[dict[str, Any]], numbers: Mapping[str, Iterable[str]]
) -> list[Candidate]:
    """The instances that really hold one of `numbers`, lowest HRID first: a full-text hit on
    one word of a longer value is no match, FOLIO's values decide."""
    wanted = {i: set(v) for i, v in numbers.items()}
    found: dict[str, tuple[str, Candidate]] = {}
    for instance in instances:
        held = held_numbers(instance)
        matched = {i: frozenset(held.get(i, set()) & v) for i, v in wanted.items()}
        if any(matched.values()):
            instance_id = str(instance["id"])
            found[instance_id] = (str(instance.get("hrid", "")), Candidate(instance_id, matched))
    return [c for _, c in sorted(found.values(), key=lambda pair: pair[0])]


def cql_escape(value: str) -> str:
    """CQL quoted-string escaping; `*`, `?` and `^` are masking characters and are escaped too."""
    return "".join("\\" + c if c in '"\\*?^' else c for c in value)
