"""Content fingerprints and record keys: they decide create / update / unchanged without the ILS."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from pymarc import Leader, Record

from catalog_sync.changes.identifiers import record_identifiers
from catalog_sync.changes.stamp import is_stamp
from catalog_sync.marc.fastprint import fingerprint_record

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


# What the ILS writes into a record on every save (Koha: 005 save time, 999 $c/$d ids).
ILS_MANAGED_TAGS = frozenset({"005", "999"})


def rewrote_001(ils_copy: Record, ils_id: str) -> bool:
    """Whether the ILS put its own id in 001 (Koha's autoControlNumber = biblionumber)."""
    found = ils_copy.get("001")
    return found is not None and (found.data or "").strip() == str(ils_id)


def ils_comparable(record: Record, *, drop_001: bool = False) -> Record:
    """The record without what the ILS manages, for comparing our records with its copies.

    Leaves out 005 and 999, the create stamp (catalog_sync.changes.stamp) and, with `drop_001`, the
    001 the ILS rewrote; leader/09 reads 'a' (UTF-8) on both sides, as Koha sets it on save.
    """
    leader = str(record.leader).ljust(24)
    out = Record(force_utf8=True)
    out.leader = Leader(leader[:9] + "a" + leader[10:])
    out.fields = [
        f
        for f in record.fields
        if f.tag not in ILS_MANAGED_TAGS and not is_stamp(f) and not (drop_001 and f.tag == "001")
    ]
    return out


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
# holds it, so the two kinds of key never collide in the state store.
MATCH_POINT_KEY_SEPARATOR = "="

# Match point -> (catalog_sync.changes.identifiers index, the key's name for it). The names are the
# ones keys were first written with, so a record keyed before keeps its key.
_KEY_POINTS = {
    "035": ("oclc_number", "oclc_number"),
    "oclc": ("oclc_number", "oclc_number"),
    "020": ("isbn", "isbn13"),
    "022": ("issn", "issn"),
    "010": ("lccn", "lccn"),
}


def match_point_key(record: Record, points: Sequence[str]) -> str | None:
    """A key for a record without 001, from the first of the vendor's other match points that
    it carries (`oclc_number=12345`, `isbn13=978...`, `issn=1234-5679`); None if it has none.

    It is our record key (state store, stamp), not an ILS search: a 035 keys a record even
    though Koha cannot search it (catalog_sync.changes.matching).
    """
    identifiers = record_identifiers(record)
    for point in points:
        if point not in _KEY_POINTS:
            continue
        index, name = _KEY_POINTS[point]
        if identifiers[index]:
            return f"{name}{MATCH_POINT_KEY_SEPARATOR}{identifiers[index][0]}"
    return None
