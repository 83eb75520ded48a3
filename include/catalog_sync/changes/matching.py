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

from catalog_sync.changes.identifiers import record_identifiers
from catalog_sync.ils.client import Candidate, ILSClient

log = logging.getLogger(__name__)

# Records whose numbers one search carries: the q stays far below a proxy's URL limit (8 KB).
BATCH_RECORDS = 40

# Match point -> the identifier index it compares (catalog_sync.changes.identifiers names).
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


def _by_index(wanted: dict[str, list[str]]) -> dict[str, list[str]]:
    return {SEARCHABLE[p]: values for p, values in wanted.items()}


async def prefetch_candidates(
    wanted: dict[str, dict[str, list[str]]], client: ILSClient, *, correlation_id: str
) -> dict[str, list[Candidate]]:
    """The ILS candidates of many records (record key -> its match_numbers), BATCH_RECORDS
    records per search: a chunk's creates cost a search per batch, not one each."""
    keys = [k for k, numbers in wanted.items() if numbers]
    found: dict[str, list[Candidate]] = {k: [] for k in wanted}
    for start in range(0, len(keys), BATCH_RECORDS):
        batch = keys[start : start + BATCH_RECORDS]
        union: dict[str, list[str]] = {}
        for key in batch:
            for index, values in _by_index(wanted[key]).items():
                union.setdefault(index, []).extend(v for v in values if v not in union[index])
        candidates = await client.find_by_numbers(
            union, correlation_id=f"{correlation_id}:{start // BATCH_RECORDS}"
        )
        for key in batch:
            mine = _by_index(wanted[key])
            found[key] = [
                c
                for c in candidates
                if any(c.numbers.get(i, frozenset()) & set(v) for i, v in mine.items())
            ]
    return found


async def find_match(
    record: Record,
    points: Sequence[str],
    client: ILSClient,
    *,
    correlation_id: str,
    taken: Callable[[str], Awaitable[bool]],
    prefetched: list[Candidate] | None = None,
) -> MatchResult:
    """Search the match points (one ILS request, none when `prefetched` holds the candidates
    prefetch_candidates found); the first point that finds anything decides.

    One candidate: that is the record. Several, or a candidate already bound to another
    vendor record (`taken`), is ambiguous: it goes to review, never to a guess. A point the
    record lacks, or that finds nothing, passes to the next.
    """
    wanted = match_numbers(record, points)
    if not wanted:
        return MatchResult(None)
    candidates = (
        prefetched
        if prefetched is not None
        else await client.find_by_numbers(_by_index(wanted), correlation_id=correlation_id)
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
