"""Every staged record of a commit lands in exactly one outcome (issue 14, items 7, 9 and 10)."""

from __future__ import annotations

import asyncio
import copy
import sqlite3
from pathlib import Path

import httpx
import pytest
from tests.integration import test_commit as base
from tests.integration.test_commit import (
    PASSWORD,
    USER,
    Feed,
    id_of,
    post_record,
    retitle,
    sample_records,
)

from catalog_sync.changes.state import StateStore, idempotency_key
from catalog_sync.changes.state.engine import Contention, StateStoreContended
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSSettings, open_client
from catalog_sync.models import ChunkReport, CommitReport
from catalog_sync.pipeline.commit import StateStoreFailed, commit_changes
from catalog_sync.pipeline.process import read_staged

pytestmark = pytest.mark.timeout(120)

# The emulator, its control and the feed of test_commit.py, shared rather than copied.
ils, control, feed = base.ils, base.control, base.feed

OUTCOMES = ("created", "updated", "deleted", "unchanged", "failed", "held")


def commit(feed: Feed, chunks: list[ChunkReport], run_id: str) -> list[CommitReport]:
    async def run() -> list[CommitReport]:
        settings = ILSSettings(
            name="ils_test", base_url=feed.ils_url, username=USER, password=PASSWORD
        )
        async with open_client(settings) as client:
            return [
                await commit_changes(
                    c.chunk,
                    c.staging_path,
                    feed.vendor,
                    client,
                    feed.state,
                    run_id,
                    diff_file=feed.home / "diffs" / run_id / f"{c.chunk_id}.jsonl",
                )
                for c in chunks
            ]

    return asyncio.run(run())


def assert_each_record_counted_once(chunks: list[ChunkReport], commits: list[CommitReport]) -> None:
    for chunk, report in zip(chunks, commits, strict=True):
        assert sum(getattr(report, k) for k in OUTCOMES) == chunk.accepted, report


def test_records_matched_to_the_ils_copy_with_nothing_to_send_count_as_unchanged(
    feed: Feed, control: EmulatorControl, tmp_path: Path
) -> None:
    records = sample_records(20)
    feed.load(records)  # the ILS now holds them
    seq = len(control.writes())
    feed.state = StateStore(f"sqlite:///{tmp_path / 'fresh-state.db'}")  # a second checkout

    chunks = feed.stage(records, "fresh-1")
    assert sum(c.creates for c in chunks) == 20
    commits = commit(feed, chunks, "fresh-1")

    assert control.writes()[seq:] == []
    assert sum(c.unchanged for c in commits) == 20
    assert sum(c.matched for c in commits) == 20 and sum(c.no_change for c in commits) == 20
    assert_each_record_counted_once(chunks, commits)


def test_records_held_for_review_and_already_applied_are_counted_once(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(12)
    feed.load(records[:10])
    # Two ILS copies of records[10]'s book: its create is held for review.
    for n in (1, 2):
        twin = retitle(records[10], f"Twin {n}")
        twin["001"].data = f"local-{n}"
        post_record(feed.ils_url, twin)
    changed = [retitle(r, "New title") if i < 3 else r for i, r in enumerate(records)]
    chunks = feed.stage(changed, "mixed-1")

    first = commit(feed, chunks, "mixed-1")
    again = commit(feed, chunks, "mixed-1")  # a retry finds every write acknowledged

    assert sum(c.held for c in first) == 1 and sum(c.updated for c in first) == 3
    assert sum(c.created for c in first) == 1
    assert_each_record_counted_once(chunks, first)
    assert sum(c.already_applied for c in again) == 4
    assert [(c.created, c.updated, c.unchanged) for c in again] == [
        (c.created, c.updated, c.unchanged) for c in first
    ]
    assert_each_record_counted_once(chunks, again)


def test_a_landing_file_edited_after_staging_has_the_edited_record_refused(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(5)
    chunks = feed.stage(records, "edited-1")
    landing = Path(chunks[0].chunk.file_path)
    title = records[2]["245"]["a"].encode()
    data = landing.read_bytes()
    assert data.count(title) == 1
    landing.write_bytes(data.replace(title, b"X" * len(title)))  # same length: still parses

    commits = commit(feed, chunks, "edited-1")

    assert sum(c.created for c in commits) == 4
    assert sum(c.failed for c in commits) == 1
    assert commits[0].failures == {"staged_record_changed": 1}
    stored = {b["control_number"] for b in control.biblios()}
    assert records[2]["001"].value().strip() not in stored
    assert_each_record_counted_once(chunks, commits)


def test_an_ils_copy_the_client_cannot_read_is_held_and_the_other_records_are_written(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(3)
    feed.load(records)
    # A control character in a field: the ILS keeps it (ISO 2709) and serves MARCXML that no
    # XML parser reads.
    unreadable = retitle(records[1], "Title with \x0b a control character")
    httpx.put(
        f"{feed.ils_url}/api/v1/biblios/{id_of(control, records[1])}",
        content=unreadable.as_marc(),
        headers={"Content-Type": "application/marc"},
        auth=(USER, PASSWORD),
        timeout=10,
    ).raise_for_status()
    seq = len(control.writes())
    chunks = feed.stage([retitle(r, "Vendor's new title") for r in records], "unreadable-1")

    commits = commit(feed, chunks, "unreadable-1")

    assert sum(c.updated for c in commits) == 2
    assert [c.reviews for c in commits if c.held] == [{"ils_record_unreadable": 1}]
    assert len(control.writes()[seq:]) == 2
    assert_each_record_counted_once(chunks, commits)


def test_a_locked_state_store_fails_the_chunk_naming_it_and_writes_nothing(
    feed: Feed, control: EmulatorControl, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    feed.state = StateStore(url, contention=Contention(busy_timeout_ms=50, attempts=2))
    chunks = feed.stage(sample_records(3), "locked-1")
    seq = len(control.writes())
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock throughout
    try:
        with pytest.raises(StateStoreContended, match="stayed locked"):
            commit(feed, chunks, "locked-1")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert control.writes()[seq:] == []


def test_a_staged_delete_whose_record_was_edited_back_is_not_deleted(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(3)
    feed.load(records)
    gone = copy.deepcopy(records[0])
    gone.leader.record_status = "d"
    chunks = feed.stage([gone, *records[1:]], "undeleted-1")
    assert sum(c.deletes for c in chunks) == 1
    landing = Path(chunks[0].chunk.file_path)
    data = bytearray(landing.read_bytes())
    assert data[5:6] == b"d"  # the first record's leader/05
    data[5:6] = b"c"
    landing.write_bytes(bytes(data))

    commits = commit(feed, chunks, "undeleted-1")

    assert [c.failures for c in commits if c.failed] == [{"staged_record_changed": 1}]
    assert sum(c.deleted for c in commits) == 0
    assert records[0]["001"].value().strip() in {b["control_number"] for b in control.biblios()}
    assert_each_record_counted_once(chunks, commits)


def ledger_statuses(feed: Feed, chunks: list[ChunkReport]) -> dict[str, str]:
    """Each staged change's ledger status, by record key ("" when it has no entry)."""
    statuses = {}
    for chunk in chunks:
        for c in read_staged(chunk.staging_path):
            key = idempotency_key(
                feed.vendor.ils_conn_id, c.record_key, c.fingerprint, c.action.value,
                c.previous_fingerprint,
            )  # fmt: skip
            entry = feed.state.ledger_entry(key)
            statuses[c.record_key] = entry.status if entry is not None else ""
    return statuses


def test_a_record_problem_leaves_the_writes_in_flight_to_finish_and_be_acknowledged(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(10)
    chunks = feed.stage(records, "in-flight-1")
    landing = Path(chunks[0].chunk.file_path)
    title = records[0]["245"]["a"].encode()
    landing.write_bytes(landing.read_bytes().replace(title, b"X" * len(title), 1))
    # Every ILS answer slow: the other records' writes are in flight (the client sends up to
    # 8 at once) when the edited record is refused, before it sends anything.
    control.set_faults(slow_rate=1.0, slow_seconds=0.2)

    commits = commit(feed, chunks, "in-flight-1")

    assert [c.failures for c in commits] == [{"staged_record_changed": 1}]
    assert sum(c.created for c in commits) == 9
    assert set(control.creates_per_control_number().values()) == {1}
    statuses = ledger_statuses(feed, chunks)
    assert sorted(statuses.values()) == ["applied"] * 9 + ["failed"]
    assert_each_record_counted_once(chunks, commits)


def test_a_state_store_failing_mid_chunk_fails_it_naming_the_cause_after_the_rest_finish(
    feed: Feed, control: EmulatorControl, tmp_path: Path
) -> None:
    records = sample_records(10)
    chunks = feed.stage(records, "store-fails-1")
    staged = sorted(read_staged(chunks[0].staging_path), key=lambda c: c.record_key)
    first = staged[0].record_key  # committed first: its acknowledgement fails mid-chunk
    # The real SQLite file refuses that one acknowledgement, as a full or failing disk would.
    db = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    db.execute(
        "CREATE TRIGGER disk_full BEFORE UPDATE OF status ON commit_ledger "
        f"WHEN NEW.status = 'applied' AND NEW.record_key = '{first}' "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    control.set_faults(slow_rate=1.0, slow_seconds=0.2)

    with pytest.raises(StateStoreFailed) as failed:
        commit(feed, chunks, "store-fails-1")

    assert str(failed.value).startswith(
        "the state store failed (IntegrityError: database or disk is full)"
    )
    statuses = ledger_statuses(feed, chunks)
    assert statuses.pop(first) == "pending"  # written, not acknowledged: the retry decides
    assert set(statuses.values()) == {"applied"}  # the writes in flight finished and count
    assert len(control.writes()) == 10

    db.execute("DROP TRIGGER disk_full")
    db.close()
    control.clear_faults()
    retried = commit(feed, chunks, "store-fails-1")

    assert sum(c.already_applied for c in retried) == 9
    # The unacknowledged create is found by its stamp and counted as the create it was (the
    # nine acknowledged ones as already applied within `created`), not as a match.
    assert (retried[0].created, retried[0].matched, retried[0].unchanged) == (10, 0, 0)
    assert set(control.creates_per_control_number().values()) == {1}
    assert len(control.writes()) == 10  # the retry wrote nothing twice
    assert_each_record_counted_once(chunks, retried)
