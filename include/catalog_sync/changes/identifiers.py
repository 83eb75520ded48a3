"""Standard numbers as match points compare them: OCLC numbers, ISBN-13, ISSN, LCCN."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pymarc import Record

_OCLC_PREFIX = re.compile(r"^\(OCoLC\)\s*(?:ocm|ocn|on)?\s*0*(\d+)", re.IGNORECASE)
_ISBN_CHARS = re.compile(r"[0-9Xx][0-9Xx\- ]{8,16}")
_ISSN = re.compile(r"\b(\d{4})-?(\d{3}[\dXx])\b")


def oclc_number(value: str) -> str | None:
    """`(OCoLC)ocm00012345` -> `12345`; other 035 sources (`(DLC)...`) are not OCLC numbers."""
    found = _OCLC_PREFIX.match(value.strip())
    return found.group(1) if found else None


def isbn13(value: str) -> str | None:
    """An 020 $a as ISBN-13 digits (`0-19-852663-6 (pbk.)` -> `9780198526636`); None if invalid.

    ISBN-10s become ISBN-13s so the two forms of one book match; check digits are verified,
    so a typo'd number never matches a different book.
    """
    found = _ISBN_CHARS.search(value)
    if not found:
        return None
    digits = found.group(0).replace("-", "").replace(" ", "").upper()
    if len(digits) == 10 and digits[:9].isdigit():
        total = sum((10 - i) * int(d) for i, d in enumerate(digits[:9]))
        check = (11 - total % 11) % 11
        if digits[9] != ("X" if check == 10 else str(check)):
            return None
        digits = "978" + digits[:9]
        return digits + _isbn13_check(digits)
    if len(digits) == 13 and digits.isdigit():
        return digits if _isbn13_check(digits[:12]) == digits[12] else None
    return None


def _isbn13_check(first12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def issn(value: str) -> str | None:
    """An 022 $a as `NNNN-NNNC` (check digit verified, X upper case)."""
    found = _ISSN.search(value)
    if not found:
        return None
    digits = (found.group(1) + found.group(2)).upper()
    total = sum((8 - i) * int(d) for i, d in enumerate(digits[:7]))
    check = (11 - total % 11) % 11
    if digits[7] != ("X" if check == 10 else str(check)):
        return None
    return f"{digits[:4]}-{digits[4:]}"


def isbn10(isbn13_digits: str) -> str | None:
    """The ISBN-10 form of a 978 ISBN-13 (`9780198526636` -> `0198526636`); None for 979."""
    if not isbn13_digits.startswith("978"):
        return None
    core = isbn13_digits[3:12]
    check = (11 - sum((10 - i) * int(d) for i, d in enumerate(core)) % 11) % 11
    return core + ("X" if check == 10 else str(check))


def hyphenated_isbn(digits: str) -> str | None:
    """An ISBN (10 or 13 digits) hyphenated as the ISBN agency's ranges place the hyphens
    (`9780520078437` -> `978-0-520-07843-7`), as catalogues often keep it; None where the
    ranges do not place every hyphen (an unassigned range: no one catalogues that form)."""
    from stdnum import isbn as isbn_agency  # on first use: 17 ms a task process need not pay

    try:
        text = str(isbn_agency.format(digits, convert=False))
    except ValueError:  # stdnum's ValidationError: not an ISBN it can read
        return None
    return text if text.count("-") == (4 if len(digits) == 13 else 3) else None


def isbn_forms(isbn13_digits: str) -> list[str]:
    """Every form a catalogue may hold a normalised ISBN-13 in: 13 and 10 digits (978 only),
    each bare and hyphenated."""
    bare = [isbn13_digits, isbn10(isbn13_digits)]
    forms = [f for f in bare if f] + [hyphenated_isbn(f) for f in bare if f]
    return list(dict.fromkeys(f for f in forms if f))


def lccn(value: str) -> str | None:
    """An 010 $a normalised as the Library of Congress says (`n 78-890351` -> `n78890351`,
    `   00001525 ` -> `00001525`): blanks out, a `/` suffix cut, a hyphen's serial padded to 6."""
    text = "".join(value.split()).split("/", 1)[0]
    if "-" in text:
        prefix, _, serial = text.partition("-")
        if not serial.isdigit() or len(serial) > 6:
            return None
        text = prefix + serial.zfill(6)
    return text if text and any(c.isdigit() for c in text) else None


_NORMALISE = {"oclc_number": oclc_number, "isbn": isbn13, "issn": issn, "lccn": lccn}


def normalise(index: str, value: str) -> str | None:
    """One value of `index` (oclc_number, isbn, issn, lccn) as match points compare it."""
    return _NORMALISE[index](value)


# Where record_identifiers reads each index: (tag, subfield code, index). Named once so that
# what staging may hold can be checked against the PII policy (pipeline/process.py).
IDENTIFIER_SOURCES = (
    ("035", "a", "oclc_number"),
    ("020", "a", "isbn"),
    ("022", "a", "issn"),
    ("010", "a", "lccn"),
)


def record_identifiers(record: Record) -> dict[str, list[str]]:
    """Every normalised standard number of a record, by index name, in field order."""
    numbers = searchable_numbers(record)
    del numbers["hrid"]
    return numbers


_CODE_OF_TAG = {tag: code for tag, code, _ in IDENTIFIER_SOURCES}


def number_sources(record: Record) -> dict[str, list[str]]:
    """The raw values searchable_numbers reads, by tag: each source tag's $a as catalogued and
    the first 001's data. One pass over the fields and no normalising: process_chunk stages
    this for every record, and only the few that turn out to be creates are normalised
    (numbers_from_sources), at commit."""
    out: dict[str, list[str]] = {}
    for field in record.fields:
        tag = field.tag
        code = _CODE_OF_TAG.get(tag)
        if code is not None:
            values = field.get_subfields(code)
            if values:
                out.setdefault(tag, []).extend(str(v) for v in values)
        elif tag == "001" and "001" not in out:  # record.get("001"): the first one decides
            out["001"] = [(field.data or "") if field.is_control_field() else ""]
    return out


def numbers_from_sources(sources: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """searchable_numbers from number_sources' raw values (staged, or read from a record)."""
    out: dict[str, list[str]] = {"oclc_number": [], "isbn": [], "issn": [], "lccn": []}
    for tag, _code, index in IDENTIFIER_SOURCES:
        normalise = _NORMALISE[index]
        for value in sources.get(tag, ()):
            norm = normalise(value)
            if norm and norm not in out[index]:
                out[index].append(norm)
    hrid = (list(sources.get("001", ())) or [""])[0].strip()
    out["hrid"] = [hrid] if hrid else []
    return out


def searchable_numbers(record: Record) -> dict[str, list[str]]:
    """Every number a match point can search, by index name: the record's standard numbers
    (as record_identifiers gives them) and its 001 as `hrid` (FOLIO's instance HRID), whatever
    the vendor's match points (catalog_sync.changes.matching picks theirs)."""
    return numbers_from_sources(number_sources(record))
