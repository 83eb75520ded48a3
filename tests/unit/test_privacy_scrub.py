"""Scrubbing telemetry text: PII shapes go, catalogue numbers and timestamps stay."""

from __future__ import annotations

import pytest

from catalog_sync.privacy import Scrubber, load_policy


@pytest.fixture
def scrubber() -> Scrubber:
    return Scrubber.from_policy(load_policy())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe@example.org now", "mail [email] now"),
        ("From: A.N.Other+lib@mail.example.ac.uk.", "From: [email]."),
        ("card 21234000123456 at desk", "card [patron-barcode] at desk"),
        ("card 21234000123456.", "card [patron-barcode]."),
        ("call (212) 555-0147 today", "call [phone] today"),
        ("call 212-555-0147 or 212.555.0147", "call [phone] or [phone]"),
        ("ring +44 20 7946 0958, ext 2", "ring [phone], ext 2"),
    ],
)
def test_pii_shapes_are_replaced(scrubber: Scrubber, text: str, expected: str) -> None:
    assert scrubber.scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ISBN 978-0-306-40615-7 and 0-8389-0726-X",
        "LCCN 75012345, (OCoLC)1234567890, ocm12345678",
        "005 20160120123456.0",
        "logical_date 2026-11-28T16:35:37+00:00 took 12.5 s",
        "item barcode 36105232488283 price 28.70 GBP",
        "records=10000 accepted=9,998 Connor, Ralph, 1860-1937.",
        "chunk 3f2a9c1d0b4e5f6a7b8c records 2,001\u20134,000",
    ],
)
def test_catalogue_numbers_dates_and_counts_are_left_alone(scrubber: Scrubber, text: str) -> None:
    assert scrubber.scrub(text) is text
    assert scrubber.counts == {}


def test_replacements_are_counted_per_scrubber(scrubber: Scrubber) -> None:
    scrubber.scrub("a@b.example.org, c@d.example.org, 21234000123456")
    assert scrubber.counts == {"scrub:email": 2, "scrub:patron-barcode": 1}


def test_prefilters_never_hide_a_match(scrubber: Scrubber) -> None:
    # Each default scrubber's prefilter must hit wherever its pattern matches.
    for text in [
        "x@y.example",
        "21234000123456",
        "(212) 555-0147",
        "+1 212 555 0147",
        "+44 20 7946 0958",
    ]:
        assert scrubber.may_match(text), text


def test_bytes_outside_a_match_survive_any_encoding(scrubber: Scrubber) -> None:
    marc8 = b"\x1b(3Caf\xe2e\x1b(B note: write to jane@example.org \xff"
    assert scrubber.scrub_bytes(marc8) == b"\x1b(3Caf\xe2e\x1b(B note: write to [email] \xff"
    assert scrubber.scrub_bytes(b"nothing here \xff") == b"nothing here \xff"


def test_nested_payloads_are_scrubbed_in_keys_and_values(scrubber: Scrubber) -> None:
    payload = {"note": ["card 21234000123456"], "jane@example.org": {"n": 3}}
    assert scrubber.scrub_value(payload) == {
        "note": ["card [patron-barcode]"],
        "[email]": {"n": 3},
    }
