"""The commit's batched match searches take a create's numbers from staging, not from the
landing file; staging files written before numbers were staged still match the same way."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from tests.integration import test_commit as base
from tests.integration.test_commit import Feed, post_record, sample_records
from tests.integration.test_commit_outcomes import assert_each_record_counted_once, commit

from catalog_sync.changes.matching import BATCH_RECORDS
from catalog_sync.changes.state import StateStore
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.models import RequestKind

pytestmark = pytest.mark.timeout(120)

# The emulator, its control and the feed of test_commit.py, shared rather than copied.
ils, control, feed = base.ils, base.control, base.feed


def test_the_match_prefetch_does_not_read_the_landing_file_for_staged_numbers(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(5)
    for record in records:  # the ILS holds each book under another 001: found by its LCCN
        copy = base.retitle(record, "ILS copy")
        copy["001"].data = f"local-{record['001'].value().strip()}"
        post_record(feed.ils_url, copy)
    chunks = feed.stage(records, "edited-1")
    # Every record edited after staging (same length: it still parses, its fingerprint differs).
    landing = Path(chunks[0].chunk.file_path)
    data = landing.read_bytes()
    for record in records:
        title = record["245"]["a"].encode()
        assert data.count(title) == 1
        data = data.replace(title, b"X" * len(title))
    landing.write_bytes(data)
    seq = len(control.writes())

    [report] = commit(feed, chunks, "edited-1")

    # The prefetch searched the ILS with the staged numbers: it read no record from the file,
    # where each is now another record (the prefetch of main skipped all five, unsearched).
    assert report.requests.get(RequestKind.CREATE) == {"GET": 1}
    # The per-record step still re-read each one and refused it: nothing written or matched.
    assert report.failures == {"staged_record_changed": 5}
    assert report.matched == 0 and control.writes()[seq:] == []
    assert_each_record_counted_once(chunks, [report])


def without_numbers(staging_path: str) -> None:
    """The staging file as process_chunk wrote it before numbers were staged."""
    path = Path(staging_path)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert all(line["number_sources"] for line in lines)  # every one a create, with numbers
    for line in lines:
        del line["number_sources"]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


@pytest.mark.parametrize("staged", ["with numbers", "older staging, without numbers"])
def test_creates_match_their_ils_copies_in_batched_searches_either_way(
    feed: Feed, control: EmulatorControl, tmp_path: Path, staged: str
) -> None:
    n = 50
    feed.vendor = feed.vendor.model_copy(update={"records_per_chunk": n})
    records = sample_records(n)
    feed.load(records)  # the ILS now holds them
    feed.state = StateStore(f"sqlite:///{tmp_path / 'fresh-state.db'}")  # a second checkout
    [chunk] = feed.stage(records, "fresh-1")
    assert chunk.creates == n
    if staged != "with numbers":
        without_numbers(chunk.staging_path)
    seq = len(control.writes())

    [report] = commit(feed, [chunk], "fresh-1")

    assert (report.matched, report.unchanged, report.failed) == (n, n, 0)
    assert control.writes()[seq:] == []
    # One search per BATCH_RECORDS creates (the prefetch), none of them searched on its own.
    assert report.requests[RequestKind.CREATE] == {"GET": math.ceil(n / BATCH_RECORDS)}
