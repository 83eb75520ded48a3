"""Koha `q` queries the adapter sends, and reading Koha's raw column values back.

Koha's biblioitems columns keep standard numbers raw, as in the record's $a, several joined
by " | " ("0520078438 (pbk.) | 9780520078437"): searches are -like substrings, and every hit is
verified by normalising what Koha returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from catalog_sync.changes.identifiers import isbn10, normalise

# Koha's biblio.timestamp column holds the server's local time. Bounds go out as RFC 3339,
# which Koha's API reads as such, but one not converted to local time, or modest clock skew,
# could hide a record: lower bounds are moved back a day (UTC-12..UTC+14 fit), and the title
# and the stamp do the narrowing.
TIMESTAMP_SLACK = timedelta(hours=24)
# Match index -> Koha column (raw values, several joined by " | ").
_COLUMN = {"isbn": "isbn", "issn": "issn", "lccn": "lc_control_number"}


def _like_patterns(index: str, value: str) -> list[str]:
    """-like patterns that find `value` (normalised) inside Koha's raw column values.

    Raw values keep qualifiers and either ISBN form ("0520078438 (pbk.)"), so each form is
    searched as a substring and every hit is verified by normalising what Koha returns.
    """
    if index == "isbn":
        forms = [value, isbn10(value)]
    elif index == "issn":
        forms = [value, value.replace("-", "")]
    else:  # an LCCN's serial number survives every spacing and hyphenation of the prefix
        forms = [value[-6:]]
    return [f"%{form}%" for form in dict.fromkeys(f for f in forms if f)]


def numbers_query(numbers: Mapping[str, Sequence[str]]) -> list[dict[str, object]]:
    """One Koha `q` for every value of every index: arrays are OR in Koha's query language."""
    query: list[dict[str, object]] = []
    for index, values in numbers.items():
        patterns = [p for v in values for p in _like_patterns(index, v)]
        if patterns:
            query.append({_COLUMN[index]: [{"-like": p} for p in dict.fromkeys(patterns)]})
    return query


def row_numbers(row: Mapping[str, object]) -> dict[str, frozenset[str]]:
    """A listed biblio's standard numbers, normalised from its raw column values."""
    out: dict[str, frozenset[str]] = {}
    for index, column in _COLUMN.items():
        raw = row.get(column)
        parts = str(raw).split(" | ") if raw else []
        out[index] = frozenset(n for n in (normalise(index, p) for p in parts) if n)
    return out


def koha_time(at: datetime) -> str:
    """A bound for Koha's date-time columns in `q`: RFC 3339, as Koha's API writes them."""
    return at.astimezone(UTC).replace(microsecond=0).isoformat()


def title_pattern(title: str | None) -> str | None:
    """A -like prefix of a 245 $a, without trailing ISBD punctuation Koha may keep or not."""
    if not title:
        return None
    core = title.strip().rstrip(" /:;,.=").strip()
    core = core.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{core}%" if core else None
