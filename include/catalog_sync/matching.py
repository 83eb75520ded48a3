"""Match a new vendor record to its ILS copy by the vendor's match points, strongest first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pymarc import Record

from catalog_sync.identifiers import record_identifiers
from catalog_sync.ils.client import ILSClient

# Match point -> the ILS index it searches (catalog_sync.identifiers names).
_INDEX = {"035": "oclc_number", "020": "isbn", "022": "issn"}
_QUERY_KEY = {"oclc_number": "oclc_number", "isbn": "isbn13", "issn": "issn"}


@dataclass(frozen=True)
class MatchResult:
    """The ILS id matched (None: no ILS copy, create one), or why it needs a person."""

    ils_id: str | None
    point: str | None = None
    review_reason: str | None = None


def _control(record: Record, tag: str) -> str:
    found = record.get(tag)
    return (found.data or "").strip() if found is not None and found.is_control_field() else ""


def match_queries(record: Record, points: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """The ILS searches for a record, one per identifier it carries, in priority order."""
    queries: list[tuple[str, dict[str, str]]] = []
    identifiers = record_identifiers(record)
    for point in points:
        if point == "001+003":
            number = _control(record, "001")
            if number:
                query = {"control_number": number}
                source = _control(record, "003")
                if source:
                    query["control_number_source"] = source
                queries.append((point, query))
            continue
        index = _INDEX[point]
        for value in identifiers[index]:
            queries.append((point, {_QUERY_KEY[index]: value}))
    return queries


async def find_match(
    record: Record,
    points: Sequence[str],
    client: ILSClient,
    *,
    correlation_id: str,
    taken: Callable[[str], Awaitable[bool]],
) -> MatchResult:
    """Search the match points in order; the first point that finds anything decides.

    One candidate: that is the record. Several, or a candidate already bound to another
    vendor record (`taken`), is ambiguous: it goes to review, never to a guess. A point the
    record lacks, or that finds nothing, passes to the next.
    """
    for point, query in match_queries(record, points):
        found = await client.find_biblio_ids_by(query, correlation_id=correlation_id)
        if not found:
            continue
        if len(found) > 1:
            return MatchResult(None, point, f"ambiguous_match:{point}")
        if await taken(found[0]):
            return MatchResult(None, point, f"match_taken:{point}")
        return MatchResult(found[0], point)
    return MatchResult(None)
