"""Content fingerprints and record keys: they decide create / update / unchanged without the ILS."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from pymarc import Record

from catalog_sync.marc.fastprint import fingerprint_record
from catalog_sync.matching import match_queries

# Leader positions that depend on serialisation, not content: record length and base address.
_LEADER_VOLATILE = (slice(0, 5), slice(12, 17))


def canonical_leader(leader: str) -> str:
    chars = list(str(leader).ljust(24))
    for part in _LEADER_VOLATILE:
        for i in range(part.start, part.stop):
            chars[i] = "0"
    return "".join(chars)


def record_fingerprint(record: Record) -> str:
    """The current content fingerprint (version 2: catalog_sync.marc.fastprint)."""
    return fingerprint_record(record)


def record_fingerprint_v1(record: Record) -> str:
    """Version 1, kept to recognise stored values (catalog_sync.pipeline.rebaseline): sha256 of
    the record's content in field order, independent of ISO 2709 vs MARCXML."""
    fields: list[object] = []
    for f in record.fields:
        if f.is_control_field():
            fields.append([f.tag, f.data])
        else:
            fields.append(
                [f.tag, f.indicator1, f.indicator2, [[s.code, s.value] for s in f.subfields]]
            )
    body = json.dumps(
        [canonical_leader(str(record.leader)), fields], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def record_key(record: Record, key_fields: Sequence[str]) -> str | None:
    """The vendor's record key from control fields (003 + 001 -> 'DLC:12345'); None without 001.

    The last configured field is the identifier proper; the ones before it qualify it
    (an agency code), and are left out when absent.
    """
    values: list[str] = []
    for tag in key_fields:
        found = record.get(tag)
        value = (found.data if found is not None and found.is_control_field() else "") or ""
        values.append(value.strip())
    if not values or not values[-1]:
        return None
    return ":".join(v for v in values if v)


# The separator of a key made from a match point: `isbn13=9780198526636`. A 003:001 key never
# holds it, so revert can tell the two apart (catalog_sync.revert).
MATCH_POINT_KEY_SEPARATOR = "="


def match_point_key(record: Record, points: Sequence[str]) -> str | None:
    """A key for a record without 001, from the first of the vendor's other match points that
    it carries (`oclc_number=12345`, `isbn13=978...`, `issn=1234-5679`); None if it has none.

    The key is the ILS query itself, so a revert finds what a create made with it.
    """
    for _point, query in match_queries(record, [p for p in points if p != "001+003"]):
        [(name, value)] = query.items()
        return f"{name}{MATCH_POINT_KEY_SEPARATOR}{value}"
    return None
