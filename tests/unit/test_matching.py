"""Match points: normalised standard numbers and the ILS searches a record makes, in order."""

from __future__ import annotations

import copy
from pathlib import Path

import pymarc
import pytest
from pymarc import Field, Indicators, Record, Subfield

from catalog_sync.changes.identifiers import (
    hyphenated_isbn,
    isbn10,
    isbn13,
    isbn_forms,
    issn,
    lccn,
    oclc_number,
    record_identifiers,
)
from catalog_sync.changes.matching import match_numbers
from catalog_sync.ils.koha_query import numbers_query, row_numbers, title_pattern

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


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("   00001525 ", "00001525"),
        ("n 78-890351", "n78890351"),
        ("n78-89035", "n78089035"),
        ("   2001012345 //r85", "2001012345"),
        ("(pbk.)", None),
    ],
)
def test_lccns_normalise_as_the_library_of_congress_says(raw: str, expected: str | None) -> None:
    assert lccn(raw) == expected


def test_isbn_13s_of_the_978_range_have_an_isbn_10_form() -> None:
    assert isbn10("9780198526636") == "0198526636"
    assert isbn10("9780804429573") == "080442957X"
    assert isbn10("9791234567896") is None


def test_isbns_are_hyphenated_where_the_agency_ranges_place_every_hyphen() -> None:
    assert hyphenated_isbn("9780198526636") == "978-0-19-852663-6"
    assert hyphenated_isbn("080442957X") == "0-8044-2957-X"
    assert hyphenated_isbn("9791032300824") == "979-10-323-0082-4"
    # 978-699: no registration group there, so no form anyone catalogues
    assert hyphenated_isbn("9786999999995") is None
    assert isbn_forms("9786999999995") == ["9786999999995", "6999999996"]


def test_numbers_are_searched_where_koha_keeps_them_and_only_those(loc_record: Record) -> None:
    record = copy.deepcopy(loc_record)
    record.add_ordered_field(Field("020", BLANK, [Subfield("a", "0-19-852663-6")]))

    wanted = match_numbers(record, ["035", "001+003", "010", "022", "020"])

    # 035 and 001+003 are not columns Koha can search: skipped, not guessed.
    assert list(wanted) == ["010", "020"]
    assert wanted["020"] == ["9780198526636"]
    assert numbers_query({"isbn": wanted["020"], "lccn": wanted["010"]}) == [
        {
            "isbn": [
                {"-like": "%9780198526636%"},
                {"-like": "%0198526636%"},
                # as catalogued with the agency's hyphens ("0-19-852663-6" above)
                {"-like": "%978-0-19-852663-6%"},
                {"-like": "%0-19-852663-6%"},
            ]
        },
        {"lc_control_number": [{"-like": f"%{wanted['010'][0][-6:]}%"}]},
    ]


def test_koha_raw_column_values_are_verified_after_the_like_search() -> None:
    row = {
        "isbn": "0780363590 (softbound edition) | 9780780363601",
        "issn": None,
        "lc_control_number": "   00001525 ",
    }

    numbers = row_numbers(row)

    assert numbers["isbn"] == {"9780780363595", "9780780363601"}
    assert numbers["lccn"] == {"00001525"}
    assert numbers["issn"] == frozenset()
    assert row_numbers({"isbn": "97807803635951"})["isbn"] == frozenset()  # not an ISBN


def test_a_title_is_searched_as_a_prefix_without_isbd_punctuation() -> None:
    assert title_pattern("IGARSS 2000 :") == "IGARSS 2000%"
    assert title_pattern("100% cotton_ /") == "100\\% cotton\\_%"
    assert title_pattern(None) is None


def test_koha_cannot_search_hrid_or_oclc_points() -> None:
    from catalog_sync.changes.matching import MatchPointUnsupported, check_searchable

    class Koha:  # an adapter that names no match_indexes searches Koha's columns
        flavour = "koha"

    check_searchable(Koha(), ["020", "022", "010", "035", "001+003"])
    with pytest.raises(MatchPointUnsupported, match="oclc"):
        check_searchable(Koha(), ["020", "oclc"])
