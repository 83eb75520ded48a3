"""Match a new vendor record to its ILS copy by the vendor's match points, strongest first.

Our own record-key -> ILS id map (the state store) comes first and needs no ILS call: a
record we loaded before is an update, never a match. Match points then search what Koha can
search: ISBN (020), ISSN (022) and LCCN (010) through `q` on its biblioitems columns, all of
a record's numbers in one request. 001+003 and 035 (OCLC numbers) are not searchable in Koha
(they live only inside the MARC record, docs/koha.md): those points are skipped. FOLIO can
search more: `oclc` (its OCLC / System control number identifiers) and `hrid` (the record's
001 as an instance HRID, as FOLIO's MARC export writes it); a vendor cannot name those two
for a Koha connection (config.py refuses them at load, and an adapter that does not list
their index in its `match_indexes` refuses them here).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from pymarc import Record

from catalog_sync.changes.identifiers import searchable_numbers
from catalog_sync.ils.client import Candidate, ILSClient

log = logging.getLogger(__name__)

# Records whose numbers one search carries when the adapter does not say (`records_per_search`):
# Koha's q is a URL: 40 records' numbers are 4-8 KB of it, and the Koha client splits a search
# further when its URL would pass what Apache in front of Koha accepts (ils.koha_query).
BATCH_RECORDS = 40

# Match point -> the identifier index it compares (catalog_sync.changes.identifiers names).
SEARCHABLE = {"020": "isbn", "022": "issn", "010": "lccn", "oclc": "oclc_number", "hrid": "hrid"}
NOT_SEARCHABLE = frozenset({"001+003", "035"})
# What an adapter searches when it does not say (`match_indexes`): Koha's biblioitems columns.
DEFAULT_INDEXES = frozenset({"isbn", "issn", "lccn"})


class MatchPointUnsupported(ValueError):
    """The vendor names a match point its ILS cannot search: a configuration error that fails
    the task before any write, never a point silently skipped."""


@dataclass(frozen=True)
class MatchResult:
    """The ILS id matched (None: no ILS copy, create one), or why it needs a person."""

    ils_id: str | None
    point: str | None = None
    review_reason: str | None = None


def numbers_for_points(
    numbers: Mapping[str, list[str]], points: Sequence[str]
) -> dict[str, list[str]]:
    """Of a record's searchable_numbers (an index it lacks may be left out), the searchable
    match points it carries, in priority order, with their values."""
    wanted: dict[str, list[str]] = {}
    for point in points:
        index = SEARCHABLE.get(point)
        values = numbers.get(index, []) if index is not None else []
        if values:
            wanted[point] = list(values)
    return wanted


def match_numbers(record: Record, points: Sequence[str]) -> dict[str, list[str]]:
    """The searchable match points the record carries, in priority order, with its values."""
    return numbers_for_points(searchable_numbers(record), points)


def check_searchable(client: object, points: Sequence[str]) -> None:
    """MatchPointUnsupported when `client` cannot search one of the vendor's match points."""
    indexes = getattr(client, "match_indexes", DEFAULT_INDEXES)
    missing = [p for p in points if p in SEARCHABLE and SEARCHABLE[p] not in indexes]
    if missing:
        raise MatchPointUnsupported(
            f"match points {missing} cannot be searched in this ILS "
            f"({getattr(client, 'flavour', type(client).__name__)}); remove them from the vendor"
        )


def _by_index(wanted: dict[str, list[str]]) -> dict[str, list[str]]:
    return {SEARCHABLE[p]: values for p, values in wanted.items()}


def records_per_search(client: object) -> int:
    """Records whose numbers one find_by_numbers call may carry: the adapter's own bound
    (`records_per_search`; FOLIO's search has no URL), BATCH_RECORDS when it states none."""
    bound = getattr(client, "records_per_search", BATCH_RECORDS)
    return bound if isinstance(bound, int) and bound > 0 else BATCH_RECORDS


async def prefetch_candidates(
    wanted: dict[str, dict[str, list[str]]], client: ILSClient, *, correlation_id: str
) -> dict[str, list[Candidate]]:
    """The ILS candidates of many records (record key -> its match_numbers), the adapter's
    records_per_search per search: a chunk's creates cost a search per batch, not one each."""
    check_searchable(client, [p for numbers in wanted.values() for p in numbers])
    keys = [k for k, numbers in wanted.items() if numbers]
    found: dict[str, list[Candidate]] = {k: [] for k in wanted}
    per_search = records_per_search(client)
    for start in range(0, len(keys), per_search):
        batch = keys[start : start + per_search]
        union: dict[str, list[str]] = {}
        for key in batch:
            for index, values in _by_index(wanted[key]).items():
                union.setdefault(index, []).extend(v for v in values if v not in union[index])
        candidates = await client.find_by_numbers(
            union, correlation_id=f"{correlation_id}:{start // per_search}"
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
    check_searchable(client, points)
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
