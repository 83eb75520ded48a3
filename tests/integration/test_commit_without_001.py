"""Records without 001 reach the ILS matched on the vendor's other match points (issue 15, 6)."""

from __future__ import annotations

import copy

import pytest
from tests.integration import test_commit as harness
from tests.integration.test_commit import Feed, ils_record, post_record, sample_records

from catalog_sync.emulator.control import EmulatorControl

# The commit tests' emulator and feed fixtures, shared rather than copied.
ils = harness.ils
control = harness.control
feed = harness.feed

pytestmark = pytest.mark.timeout(120)


def test_a_record_without_001_updates_its_ils_copy_found_by_its_lccn(
    feed: Feed, control: EmulatorControl
) -> None:
    record = sample_records(1)[0]
    ils_copy = copy.deepcopy(record)
    ils_copy["245"]["a"] = "Older title"
    existing = post_record(feed.ils_url, ils_copy)
    delivered = copy.deepcopy(record)
    delivered.remove_fields("001", "003")
    seq = len(control.writes())

    report, _ = feed.load([delivered])

    assert [(w["method"], w["record_id"]) for w in control.writes()[seq:]] == [("PUT", existing)]
    assert (report.matched, report.updated, report.created) == (1, 1, 0)
    assert ils_record(feed.ils_url, existing)["245"]["a"] == record["245"]["a"]
    # Loaded again, the state store knows it by the same key: no ILS call at all.
    again, _ = feed.load([delivered])
    assert again.unchanged == 1
    assert len(control.writes()) == seq + 1


def test_records_without_001_or_any_match_point_are_rejected_and_the_rest_created(
    feed: Feed, control: EmulatorControl
) -> None:
    # The sample's first three records carry an LCCN (010), a default match point; the third
    # loses it too, so it has none.
    records = sample_records(3)
    for r in records:
        r.remove_fields("001", "003")
    records[2].remove_fields("010")
    chunks = feed.stage(records, "run-stage")
    assert sum(c.accepted for c in chunks) == 2
    assert {k: v for c in chunks for k, v in c.reasons.items()} == {"no_match_point": 1}
    seq = len(control.writes())
    report, _ = feed.load(records)
    assert report.created == 2
    assert [w["method"] for w in control.writes()[seq:]] == ["POST", "POST"]
