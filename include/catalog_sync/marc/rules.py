"""MARC 21 tags, indicators and subfield codes checked against the shipped definitions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from catalog_sync.marc.errors import RecordRejected
from catalog_sync.marc.reasons import RecordWarning, RejectReason

RULES_PATH = Path(__file__).resolve().parents[1] / "data" / "marc21" / "marc21_rules.json"

# ISO 2709 allows any graphic ASCII character as indicator or subfield code; a record with a
# control character, a non-ASCII byte or a missing code there is structurally broken (rejected).
# MARC 21 narrows them to digits, lowercase letters (and blank for indicators); anything else
# that ISO 2709 allows is only flagged, like an undefined code.
_TAG_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_GRAPHIC = frozenset(chr(c) for c in range(0x21, 0x7F))
_INDICATOR_CHARS = _GRAPHIC | {" "}
_CODE_CHARS = _GRAPHIC

# Expected lengths of fixed-length control fields; 008 depends on the format.
_CONTROL_LENGTHS = {"005": 16, "006": 18}
_008_LENGTH = {"bibliographic": 40, "authority": 40, "holdings": 32}


@dataclass(frozen=True, slots=True)
class FieldRule:
    ind1: str
    ind2: str
    subfields: str
    obsolete_ind1: str = ""
    obsolete_ind2: str = ""
    obsolete_subfields: str = ""
    obsolete: bool = False


def format_kind(leader: str) -> str:
    """Which MARC 21 format a record follows, from leader/06."""
    kind = leader[6:7]
    if kind == "z":
        return "authority"
    if kind in ("u", "v", "x", "y"):
        return "holdings"
    return "bibliographic"


@cache
def _rulebook() -> dict[str, dict[str, FieldRule]]:
    raw = json.loads(RULES_PATH.read_text(encoding="utf-8"))["formats"]
    book: dict[str, dict[str, FieldRule]] = {}
    for kind, fields in raw.items():
        book[kind] = {
            tag: FieldRule(
                ind1=body.get("ind1", " "),
                ind2=body.get("ind2", " "),
                subfields=body.get("subfields", ""),
                obsolete_ind1=body.get("obsolete_ind1", ""),
                obsolete_ind2=body.get("obsolete_ind2", ""),
                obsolete_subfields=body.get("obsolete_subfields", ""),
                obsolete=bool(body.get("obsolete", False)),
            )
            for tag, body in fields.items()
        }
    return book


def is_local(tag: str) -> bool:
    """9XX and X9X (09X, 59X, 69X, ...) are for local use; MARC 21 does not define them."""
    return tag[0] == "9" or tag[1] == "9"


def check_tag(tag: str) -> None:
    if len(tag) != 3 or not _TAG_CHARS.issuperset(tag):
        raise RecordRejected(RejectReason.TAG_INVALID, f"tag {tag!r} is not 3 letters or digits")


def check_control_field(kind: str, tag: str, value: str) -> tuple[str, ...]:
    """Length of fixed-length control fields; a wrong length is flagged (ILSs accept them)."""
    expected = _008_LENGTH.get(kind, 40) if tag == "008" else _CONTROL_LENGTHS.get(tag)
    if expected is not None and len(value) != expected:
        return (RecordWarning.CONTROL_FIELD_LENGTH,)
    if tag not in _rulebook()[kind] and not is_local(tag):
        return (RecordWarning.TAG_UNDEFINED,)
    return ()


# Cached on the full key: real files repeat the same few hundred combinations endlessly (an
# exception is not cached, so a bad field raises every time). The cache is the function itself:
# a wrapper around it cost one more call per field.
@lru_cache(maxsize=1 << 16)
def check_data_field(kind: str, tag: str, ind1: str, ind2: str, codes: str) -> tuple[str, ...]:
    """Warnings for one data field; raises RecordRejected for characters MARC 21 never allows."""
    check_tag(tag)
    for name, ind in (("first", ind1), ("second", ind2)):
        if len(ind) != 1 or ind not in _INDICATOR_CHARS:
            raise RecordRejected(
                RejectReason.INDICATOR_INVALID,
                f"field {tag}: {name} indicator {ind!r} is not allowed",
            )
    for code in codes:
        if code not in _CODE_CHARS:
            raise RecordRejected(
                RejectReason.SUBFIELD_CODE_INVALID,
                f"field {tag}: subfield code {code!r} is not allowed",
            )
    if is_local(tag) or tag == "880":
        return ()  # local fields are undefined by design; 880 follows the field it links to
    rule = _rulebook()[kind].get(tag)
    if rule is None:
        return (RecordWarning.TAG_UNDEFINED,)
    if rule.obsolete:
        return (RecordWarning.TAG_OBSOLETE,)
    found: list[str] = []
    for ind, valid, obsolete in (
        (ind1, rule.ind1, rule.obsolete_ind1),
        (ind2, rule.ind2, rule.obsolete_ind2),
    ):
        if ind not in valid:
            found.append(
                RecordWarning.INDICATOR_OBSOLETE
                if ind in obsolete
                else RecordWarning.INDICATOR_UNDEFINED
            )
    for code in codes:
        if code not in rule.subfields:
            found.append(
                RecordWarning.SUBFIELD_OBSOLETE
                if code in rule.obsolete_subfields
                else RecordWarning.SUBFIELD_UNDEFINED
            )
    return tuple(dict.fromkeys(found))


def defines(kind: str, tag: str) -> bool:
    """Whether the MARC 21 format `kind` defines `tag` at all (245 exists only for bib records)."""
    return tag in _rulebook()[kind]


def missing_required(kind: str, required: list[str], present: set[str]) -> list[str]:
    """Entries of `required` the record lacks. "020/022" means either will do.

    A tag that the record's own format does not define is not required of it, so one vendor
    setting (e.g. 001 and 245) serves files that mix bibliographic and authority records.
    """
    return [
        entry
        for entry, applicable in _applicable(kind, tuple(required))
        if not any(t in present for t in applicable)
    ]


@lru_cache(maxsize=256)
def _applicable(kind: str, required: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each required entry with the tags of it that `kind` defines; entries with none left out."""
    out = []
    for entry in required:
        choices = [t for t in entry.split("/") if t]
        applicable = tuple(t for t in choices if defines(kind, t) or is_local(t))
        if applicable:
            out.append((entry, applicable))
    return tuple(out)
