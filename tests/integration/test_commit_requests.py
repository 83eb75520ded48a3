"""Issue 17's requests per record: a chunk's creates share their match searches."""

from __future__ import annotations

import math

import pytest
from tests.integration.test_commit import (  # noqa: F401
    Feed,
    control,
    feed,
    ils,
    sample_records,
)

from catalog_sync.changes.matching import BATCH_RECORDS
from catalog_sync.emulator.control import EmulatorControl

# The Feed harness and its fixtures (ils, control, feed) are test_commit's: imported, not copied.
# ruff: noqa: F811

pytestmark = pytest.mark.timeout(120)


def test_creates_cost_one_post_each_and_one_match_search_per_batch(
    feed: Feed, control: EmulatorControl
) -> None:
    feed.vendor = feed.vendor.model_copy(update={"records_per_chunk": 100})
    records = sample_records(100)  # every LoC record carries an LCCN to match by

    report, _ = feed.load(records)

    counters = control.counters()
    assert report.created == 100
    searches = math.ceil(100 / BATCH_RECORDS)
    assert counters["requests"] == 100 + searches
