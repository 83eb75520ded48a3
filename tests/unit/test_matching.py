"""Match points: normalised standard numbers and the ILS searches a record makes, in order."""

from __future__ import annotations

import copy
from pathlib import Path

import pymarc
import pytest
from pymarc import Field, Indicators, Record, Subfield

from catalog_sync.identifiers import isbn13, issn, oclc_number, record_identifiers
from catalog_sync.matching import match_queries

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "loc-books-2016-part01-first1000.mrc"
BLANK = Indicators(" ", " ")


@pytest.fixture(scope="module")
def loc_record() -> Record:
    """A real LoC record (public domain) with 001, 003 and an OCLC number in 035."""
    with SAMPLE.open("rb") as fh:
        for record in pymarc.MARCReader(fh, to_unicode=True):
            if record is not None and record_identifiers(record)["oclc_number"]:
                return record
    raise AssertionError("the sample has a record with an OCLC number")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0-19-852663-6 (pbk.)", "9780198526636"),
        ("9780198526636", "9780198526636"),
        ("978-0-19-852663-6", "9780198526636"),
        ("019852663X", None),  # wrong check digit: never matches another book
        ("0-8044-2957-X", "9780804429573"),
        ("(pbk.)", None),
    ],
)
def test_isbns_compare_as_valid_isbn_13(raw: str, expected: str | None) -> None:
    assert isbn13(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0378-5955", "0378-5955"),
        ("03785955", "0378-5955"),
        ("0378-5956", None),
        ("2434-561x", "2434-561X"),
    ],
)
def test_issns_compare_hyphenated_with_a_verified_check_digit(
    raw: str, expected: str | None
) -> None:
    assert issn(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(OCoLC)ocm00012345", "12345"),
        ("(OCoLC)on1234567890", "1234567890"),
        ("(OCoLC)987", "987"),
        ("(DLC)  2001012345", None),
    ],
)
def test_only_oclc_sourced_035s_are_oclc_numbers(raw: str, expected: str | None) -> None:
    assert oclc_number(raw) == expected


def test_queries_follow_the_configured_priority_and_skip_absent_points(loc_record: Record) -> None:
    record = copy.deepcopy(loc_record)
    record.add_ordered_field(Field("020", BLANK, [Subfield("a", "0-19-852663-6")]))
    number = record["001"].value().strip()
    oclc = record_identifiers(record)["oclc_number"][0]

    queries = match_queries(record, ["035", "001+003", "022", "020"])

    assert queries == [
        ("035", {"oclc_number": oclc}),
        ("001+003", {"control_number": number, "control_number_source": "DLC"}),
        ("020", {"isbn13": "9780198526636"}),
    ]
