"""Koha `q` queries the adapter sends, and reading Koha's answers back (raw column values,
MARCXML collections).

Koha's biblioitems columns keep standard numbers raw, as in the record's $a, several joined
by " | " ("0520078438 (pbk.) | 9780520078437"): searches are -like substrings, and every hit is
verified by normalising what Koha returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from lxml import etree  # type: ignore[import-untyped]

from catalog_sync.changes.identifiers import isbn_forms, normalise

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
    if index == "isbn":  # raw values may be hyphenated: "978-0-520-07843-7 (pbk.)"
        forms = isbn_forms(value)
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


# Koha's packages serve the API behind Apache, whose LimitRequestLine (8190 bytes by default)
# bounds the request line: a longer `q` is answered 414 before Koha sees it. A search's
# request target is kept under this, leaving room for the method, the protocol and a path
# prefix in front of /api/v1.
MAX_SEARCH_TARGET = 7_680
Numbers = dict[str, list[str]]


def search_target(path: str, query: object, page: int, per_page: int) -> str:
    """The request target of one search page, as the client sends it (what the limit counts)."""
    params = {"q": json.dumps(query), "_page": page, "_per_page": per_page}
    return f"{path}?{urlencode(params)}"


def halves(numbers: Mapping[str, Sequence[str]]) -> tuple[Numbers, Numbers]:
    """The (index, value) pairs of `numbers` in two parts of (nearly) equal size."""
    pairs = [(index, value) for index, values in numbers.items() for value in values]
    middle = len(pairs) // 2
    return _grouped(pairs[:middle]), _grouped(pairs[middle:])


def _grouped(pairs: Sequence[tuple[str, str]]) -> Numbers:
    out: Numbers = {}
    for index, value in pairs:
        out.setdefault(index, []).append(value)
    return out


def split_to_fit(
    numbers: Mapping[str, Sequence[str]], fits: Callable[[Numbers], bool]
) -> list[Numbers]:
    """`numbers` halved until each part's query fits (a single number always goes alone)."""
    whole = _grouped([(i, v) for i, values in numbers.items() for v in values])
    todo, parts = [whole], []
    while todo:
        part = todo.pop()
        if sum(map(len, part.values())) <= 1 or fits(part):
            parts.append(part)
        else:
            first, second = halves(part)
            todo += [second, first]
    return parts


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


MARC_NS = "http://www.loc.gov/MARC21/slim"
# What the ILS answers is not trusted: no entities, no network.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
_BIBLIO_NUMBER = etree.XPath(
    "m:datafield[@tag='999']/m:subfield[@code='c']/text()", namespaces={"m": MARC_NS}
)


def ids_query(biblio_ids: Sequence[str]) -> str:
    """One `q` for these biblios: an array is OR in Koha's query language."""
    return json.dumps({"biblio_id": [int(i) for i in biblio_ids]}, separators=(",", ":"))


def collection_records(body: bytes) -> dict[str, bytes]:
    """Each record of a Koha MARCXML list answer (print_collection) by its biblio number,
    as a MARCXML record of its own (what GET /biblios/{id} answers, but for whitespace).

    Koha writes the biblio number into 999 $c on every save (MARC21). A record without
    exactly one number there (a vendor's own 999 $c kept beside Koha's), or whose number
    another record of the answer also carries, is left out: its caller reads it alone.
    ValueError when the body is no MARCXML collection.
    """
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from exc
    if root.tag != f"{{{MARC_NS}}}collection":
        raise ValueError(f"not a MARCXML collection ({root.tag!r})")
    found: dict[str, bytes] = {}
    repeated: set[str] = set()
    for record in root.iterchildren(f"{{{MARC_NS}}}record"):
        numbers = {str(n).strip() for n in _BIBLIO_NUMBER(record)}
        if len(numbers) != 1 or not next(iter(numbers)).isdigit():
            continue
        biblio_id = str(int(numbers.pop()))
        if biblio_id in found:
            repeated.add(biblio_id)
        found[biblio_id] = etree.tostring(
            record, encoding="UTF-8", xml_declaration=True, with_tail=False
        )
    return {k: v for k, v in found.items() if k not in repeated}
