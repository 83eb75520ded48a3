"""Match a new vendor record to its ILS copy by the vendor's match points, strongest first.

Our own record-key -> ILS id map (the state store) comes first and needs no ILS call: a
record we loaded before is an update, never a match. Match points then search what Koha can
search: ISBN (020), ISSN (022) and LCCN (010) through `q` on its biblioitems columns, all of
a record's numbers in one request. 001+003 and 035 (OCLC numbers) are not searchable in Koha
(they live only inside the MARC record, docs/koha.md): those points are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pymarc import Record

from catalog_sync.identifiers import record_identifiers
from catalog_sync.ils.client import ILSClient

log = logging.getLogger(__name__)

# Match point -> the identifier index it compares (catalog_sync.identifiers names).
SEARCHABLE = {"020": "isbn", "022": "issn", "010": "lccn"}
NOT_SEARCHABLE = frozenset({"001+003", "035"})


@dataclass(frozen=True)
class MatchResult:
    """The ILS id matched (None: no ILS copy, create one), or why it needs a person."""

    ils_id: str | None
    point: str | None = None
    review_reason: str | None = None


def match_numbers(record: Record, points: Sequence[str]) -> dict[str, list[str]]:
    """The searchable match points the record carries, in priority order, with its values."""
    identifiers = record_identifiers(record)
    wanted: dict[str, list[str]] = {}
    for point in points:
        index = SEARCHABLE.get(point)
        if index is not None and identifiers[index]:
            wanted[point] = identifiers[index]
    return wanted


async def find_match(
    record: Record,
    points: Sequence[str],
    client: ILSClient,
    *,
    correlation_id: str,
    taken: Callable[[str], Awaitable[bool]],
) -> MatchResult:
    """Search the match points (one ILS request); the first point that finds anything decides.

    One candidate: that is the record. Several, or a candidate already bound to another
    vendor record (`taken`), is ambiguous: it goes to review, never to a guess. A point the
    record lacks, or that finds nothing, passes to the next.
    """
    wanted = match_numbers(record, points)
    if not wanted:
        return MatchResult(None)
    candidates = await client.find_by_numbers(
        {SEARCHABLE[p]: values for p, values in wanted.items()}, correlation_id=correlation_id
    )
    for point, values in wanted.items():
        index = SEARCHABLE[point]
        found = [c.biblio_id for c in candidates if c.numbers.get(index, frozenset()) & set(values)]
        if not found:
            continue
        if len(found) > 1:
            return MatchResult(None, point, f"ambiguous_match:{point}")
        if await taken(found[0]):
            return MatchResult(None, point, f"match_taken:{point}")
        return MatchResult(found[0], point)
    return MatchResult(None)
