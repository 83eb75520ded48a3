"""The create stamp: a 035 that carries a create's idempotency key into the ILS record.

A create whose answer was lost (timeout, 5xx, the worker killed after the POST) is found again
by this stamp, never by guessing: Koha keeps 035 in every MARC21 framework (also through the
cataloguing editor), and "(CatalogSync)" is no MARC organisation code, so the field can never
be a vendor's. It is ILS-side bookkeeping: fingerprints and diffs leave it out
(fingerprint.ils_comparable), and an update that rewrites the record may drop it, which is
harmless once the create is acknowledged in the ledger.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pymarc import Field, Indicators, Record, Subfield

STAMP_TAG = "035"
STAMP_SOURCE = "(CatalogSync)"


def is_stamp(field: Field) -> bool:
    return field.tag == STAMP_TAG and any(
        str(v).startswith(STAMP_SOURCE) for v in field.get_subfields("a")
    )


def stamp_record(record: Record, key: str) -> Record:
    """`record` with one stamp 035 carrying `key` (an earlier stamp replaced); changed in place."""
    for field in [f for f in record.get_fields(STAMP_TAG) if is_stamp(f)]:
        record.remove_field(field)
    record.add_ordered_field(
        Field(
            tag=STAMP_TAG,
            indicators=Indicators(" ", " "),
            subfields=[Subfield("a", STAMP_SOURCE + key)],
        )
    )
    return record


def record_stamp(record: Record) -> str | None:
    for field in record.get_fields(STAMP_TAG):
        for value in field.get_subfields("a"):
            if str(value).startswith(STAMP_SOURCE):
                return str(value)[len(STAMP_SOURCE) :].strip()
    return None


def _elements(marcxml: bytes) -> list[ET.Element]:
    try:
        return list(ET.fromstring(marcxml).iter())
    except ET.ParseError:
        return []


def _local(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def marcxml_subfields(marcxml: bytes, tag: str, code: str) -> list[str]:
    """Every `tag` $`code` value of a MARCXML record, in order (cheap: no pymarc parse)."""
    out: list[str] = []
    for element in _elements(marcxml):
        if _local(element) == "datafield" and element.get("tag") == tag:
            out += [
                sub.text or ""
                for sub in element
                if _local(sub) == "subfield" and sub.get("code") == code
            ]
    return out


def marcxml_control(marcxml: bytes, tag: str) -> str | None:
    """A control field's value, trimmed; None when absent or unreadable."""
    for element in _elements(marcxml):
        if _local(element) == "controlfield" and element.get("tag") == tag:
            return (element.text or "").strip() or None
    return None


def marcxml_stamp(marcxml: bytes) -> str | None:
    for value in marcxml_subfields(marcxml, STAMP_TAG, "a"):
        if value.startswith(STAMP_SOURCE):
            return value[len(STAMP_SOURCE) :].strip()
    return None
