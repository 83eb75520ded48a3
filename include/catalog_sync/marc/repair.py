"""Lenient repair of indicators: what a careful loader fixes instead of losing the record.

MarcEdit and Koha's staged import keep a record whose indicator is a stray character (a
non-breaking space, a replacement character, an empty XML attribute) or whose indicator area
holds one byte too many (a MarcEdit `\\` blank placeholder leaked into binary). The repair is
unambiguous there: the bad indicator becomes a blank, the byte after the two indicators is
dropped, and the record is kept with a warning code. What cannot be repaired without guessing
(one indicator character where two belong, data without subfield codes) is still rejected.
"""

from __future__ import annotations

from enum import StrEnum

from catalog_sync.marc.errors import RecordRejected
from catalog_sync.marc.reasons import RecordWarning, RejectReason

# ISO 2709 allows any graphic ASCII character or a blank as an indicator.
_INDICATOR_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F))


class Strictness(StrEnum):
    """A vendor's `marc_strictness`: repair what is unambiguous (default), or reject it."""

    LENIENT = "lenient"
    STRICT = "strict"


def _one(tag: str, name: str, value: str, strictness: Strictness, found: list[str]) -> str:
    if len(value) == 1 and value in _INDICATOR_CHARS:
        return value
    if strictness is Strictness.STRICT or len(value) > 1:
        raise RecordRejected(
            RejectReason.INDICATOR_INVALID,
            f"field {tag}: {name} indicator {value!r} is not allowed",
        )
    found.append(RecordWarning.INDICATOR_BLANKED)
    return " "


def repair_indicators(
    tag: str, head: str, strictness: Strictness
) -> tuple[str, str, tuple[str, ...]]:
    """(ind1, ind2, warnings) from the text before a data field's first subfield delimiter.

    Raises RecordRejected (indicator_invalid) for what strict reading refuses or no repair can
    settle: one indicator character where two belong, or more than one byte too many.
    """
    found: list[str] = []
    if len(head) != 2:
        lenient = strictness is Strictness.LENIENT
        if lenient and len(head) == 3:
            head = head[:2]
            found.append(RecordWarning.INDICATOR_STRAY_BYTE_DROPPED)
        elif lenient and not head.strip():
            # No indicator area at all (or one blank): both positions blank is what it says.
            head = "  "
            found.append(RecordWarning.INDICATOR_BLANKED)
        else:
            raise RecordRejected(
                RejectReason.INDICATOR_INVALID,
                f"field {tag} has {len(head)} indicator characters, not 2",
            )
    ind1 = _one(tag, "first", head[0], strictness, found)
    ind2 = _one(tag, "second", head[1], strictness, found)
    return ind1, ind2, tuple(found)


def repair_xml_indicators(
    tag: str, ind1: str, ind2: str, strictness: Strictness
) -> tuple[str, str, tuple[str, ...]]:
    """(ind1, ind2, warnings) from a MARCXML datafield's ind1/ind2 attributes.

    An empty attribute or one bad character becomes a blank (lenient); a value of several
    characters is rejected, since which of them was meant cannot be known.
    """
    found: list[str] = []
    values = []
    for name, value in (("first", ind1), ("second", ind2)):
        if value == "" and strictness is Strictness.LENIENT:
            found.append(RecordWarning.INDICATOR_BLANKED)
            values.append(" ")
            continue
        values.append(_one(tag, name, value, strictness, found))
    return values[0], values[1], tuple(found)
