"""Parse `bflc:marcKey` strings (LoC's MARC-shaped key on agents, subjects and titles)."""

from __future__ import annotations

from typing import NamedTuple

from pymarc import Subfield


class MarcKey(NamedTuple):
    """`1001 $aThomas, Adam R.,$d1988-` -> tag 100, indicators `1 `, subfields a, d."""

    tag: str
    indicators: tuple[str, str]
    subfields: tuple[Subfield, ...]


def parse_marc_key(text: str) -> MarcKey | None:
    """A marcKey as tag, indicators and subfields; None when it is not shaped like one.

    $6 (880 linkage) is dropped: this converter writes no 880 fields.
    """
    text = text.strip()
    dollar = text.find("$")
    if dollar < 3 or not text[:3].isdigit():
        return None
    inds = (text[3:dollar] + "  ")[:2]
    subfields = []
    for part in text[dollar + 1 :].split("$"):
        if len(part) < 2 or part[0] == "6":
            continue
        subfields.append(Subfield(part[0], part[1:]))
    if not subfields:
        return None
    return MarcKey(text[:3], (inds[0], inds[1]), tuple(subfields))
