"""A state store filled by fingerprint version 1, then loads with version 2: records that did not
change cost no ILS request at all, and their stored fingerprints move to version 2 on the way."""

from __future__ import annotations

import copy

import pytest
from pymarc import Record
from sqlalchemy import select, update
from tests.integration import test_commit as harness
from tests.integration.test_commit import Feed, retitle, sample_records

from catalog_sync.changes.fingerprint import record_fingerprint_v1
from catalog_sync.changes.state.schema import catalog_records
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.marc.fastprint import fingerprint_version
from catalog_sync.marc.prepare import PreparedRecord, prepare_record
from catalog_sync.marc.reader import RawRecord

# The commit tests' emulator and feed fixtures, shared rather than copied.
ils = harness.ils
control = harness.control
feed = harness.feed

pytestmark = pytest.mark.timeout(120)


def stored_fingerprints(feed: Feed) -> dict[str, str]:
    c = catalog_records.c
    with feed.state.engine.begin() as conn:
        return {str(k): str(fp) for k, fp in conn.execute(select(c.record_key, c.fingerprint))}


def downgrade_to_version_1(feed: Feed, records: list[Record]) -> None:
    """Leave the state store as the previous release did: same rows, version-1 fingerprints
    of the records as process_chunk prepared them from the delivered bytes."""
    c = catalog_records.c
    with feed.state.engine.begin() as conn:
        for record in records:
            prepared = prepare_record(RawRecord(0, record.as_marc(), 0), "iso2709", feed.vendor)
            assert isinstance(prepared, PreparedRecord)
            key = f"DLC:{prepared.control_number}"
            result = conn.execute(
                update(catalog_records)
                .where(c.record_key == key)
                .values(fingerprint=record_fingerprint_v1(prepared.record))
            )
            assert result.rowcount == 1


def test_a_store_filled_by_version_1_is_read_as_unchanged_without_an_ils_request(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(20)
    first, _ = feed.load(records)
    assert first.created == 20
    downgrade_to_version_1(feed, records)
    assert {fingerprint_version(fp) for fp in stored_fingerprints(feed).values()} == {1}
    writes, requests = len(control.writes()), control.counters()["requests"]

    changed = copy.deepcopy(records)
    changed[5] = retitle(records[5], "A new title")
    report, _ = feed.load(changed)

    assert (report.unchanged, report.updated, report.no_change) == (19, 1, 0)
    assert [w["method"] for w in control.writes()[writes:]] == ["PUT"]
    # The one update: a read of the ILS copy and the write; the 19 others cost nothing.
    assert control.counters()["requests"] - requests <= 3
    assert {fingerprint_version(fp) for fp in stored_fingerprints(feed).values()} == {2}

    # From now on every record is compared on version 2 alone.
    again = feed.stage(changed, "run-after")
    assert sum(c.unchanged for c in again) == 20
    assert len(control.writes()) == writes + 1
