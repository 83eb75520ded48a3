"""Field-level diffs of real records, protected fields kept from the ILS copy, masked reports."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pymarc
import pytest
from pymarc import Field, Indicators, Record, Subfield

from catalog_sync.changes.protected import TagSet, load_field_rules, merge_protected, numeric_tags
from catalog_sync.changes.recordiff import content_fingerprint, diff_records, masked_changes
from catalog_sync.privacy import Masker, load_policy

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "loc-books-2016-part01-first1000.mrc"
BLANK = Indicators(" ", " ")


@pytest.fixture(scope="module")
def loc_records() -> list[Record]:
    with SAMPLE.open("rb") as fh:
        return [r for _, r in zip(range(20), pymarc.MARCReader(fh, to_unicode=True), strict=False)]


@pytest.fixture
def record(loc_records: list[Record]) -> Record:
    return copy.deepcopy(loc_records[0])


def note(text: str, tag: str = "500") -> Field:
    return Field(tag, BLANK, [Subfield("a", text)])


def test_identical_records_have_no_diff(loc_records: list[Record]) -> None:
    for r in loc_records:
        assert diff_records(r, copy.deepcopy(r)) == []


def test_a_changed_subfield_is_one_change_at_its_tag_and_occurrence(record: Record) -> None:
    changed = copy.deepcopy(record)
    changed["245"]["a"] = "Another title"
    changed.add_ordered_field(note("Second note"))

    changes = diff_records(record, changed)

    assert [(c.tag, c.occurrence, c.kind) for c in changes] == [
        ("245", 0, "changed"),
        ("500", len(record.get_fields("500")), "added"),
    ]


def test_volatile_fields_are_not_differences(record: Record) -> None:
    stamped = copy.deepcopy(record)
    stamped["005"].data = "20261128120000.0"
    rules = load_field_rules()

    assert diff_records(record, stamped, ignore=rules.volatile) == []
    assert diff_records(record, stamped) != []


def test_protected_fields_come_from_the_ils_copy_in_tag_order(record: Record) -> None:
    ils_copy = copy.deepcopy(record)
    ils_copy.add_ordered_field(note("Library copy signed by the author", "590"))
    ils_copy.add_ordered_field(Field("952", BLANK, [Subfield("a", "MAIN")]))
    incoming = copy.deepcopy(record)
    incoming.add_ordered_field(note("Vendor's own local note", "590"))
    incoming["245"]["a"] = "Corrected title"
    protected = load_field_rules().protected

    merged = merge_protected(incoming, ils_copy, protected)

    assert [f["a"] for f in merged.get_fields("590")] == ["Library copy signed by the author"]
    assert merged["952"]["a"] == "MAIN" and merged["245"]["a"] == "Corrected title"
    tags = [f.tag for f in merged.fields]
    assert tags == sorted(tags)
    assert [(c.tag, c.kind) for c in diff_records(ils_copy, merged)] == [("245", "changed")]


def test_a_vendor_list_replaces_the_default_protected_fields() -> None:
    rules = load_field_rules(protected=["590", "9XX"])
    assert "590" in rules.protected and "952" in rules.protected
    assert "591" not in rules.protected and "245" not in rules.protected
    with pytest.raises(ValueError, match="protected field"):
        load_field_rules(protected=["59"])
    assert "987" in TagSet(("9XX",)) and "897" not in TagSet(("9XX",))


def test_a_tagset_of_patterns_seen_before_reuses_their_expansion() -> None:
    # commit builds one per record it fingerprints; expanding 1,000 tags each time was a fifth
    # of a commit task's CPU (bench/results/2026-12-01-throughput).
    numeric_tags.cache_clear()
    first, again = TagSet(("9XX", "005")), TagSet(("9XX", "005"))
    assert numeric_tags.cache_info().hits == 1
    assert "005" in again and "952" in again and "245" not in again
    assert first == again


def test_edits_to_protected_fields_leave_the_content_fingerprint_alone(record: Record) -> None:
    ignore = TagSet(("9XX", "005"))
    edited = copy.deepcopy(record)
    edited.add_ordered_field(Field("952", BLANK, [Subfield("a", "MAIN")]))
    assert content_fingerprint(edited, ignore) == content_fingerprint(record, ignore)
    edited["245"]["a"] = "Cataloguer's edit"
    assert content_fingerprint(edited, ignore) != content_fingerprint(record, ignore)


def test_masked_changes_never_show_pii_and_describe_changed_values(record: Record) -> None:
    masker = Masker(load_policy(), "unit-test-key")
    before = copy.deepcopy(record)
    before.add_ordered_field(Field("541", BLANK, [Subfield("h", "USD 10.00")]))
    after = copy.deepcopy(record)
    after.add_ordered_field(Field("541", BLANK, [Subfield("h", "USD 99.00")]))
    after["245"]["a"] = "Title 2"

    shown = masked_changes(diff_records(before, after), masker)

    text = json.dumps(shown)
    assert "USD 10.00" not in text and "USD 99.00" not in text
    price = next(c for c in shown if c["tag"] == "541")
    assert price["detail"]["values_changed"]["root['subfields'][0][1]"] == {
        "new_value": masker.hash_value("USD 99.00"),
        "old_value": masker.hash_value("USD 10.00"),
    }
    title = next(c for c in shown if c["tag"] == "245")
    assert title["after"]["subfields"][0] == ["a", "Title 2"]
