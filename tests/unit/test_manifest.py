"""The run manifest: totals from real chunk/commit reports, trigger, masking counts, no PII."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymarc import MARCReader
from tests.privacy_canaries import find_canaries, plant_canaries

from catalog_sync.manifest import (
    RunManifest,
    TriggerKind,
    read_manifest,
    trigger_from_dag_run,
    write_manifest,
)
from catalog_sync.models import ChunkRef, ChunkReport, CommitReport, LandingFile, chunk_id_for
from catalog_sync.privacy import Masker, load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "privacy"
VENDOR_FILE = FIXTURES / "vendor_shelfready_priced_9xx.mrc"


def landing_file() -> LandingFile:
    data = VENDOR_FILE.read_bytes()
    return LandingFile(
        vendor="demo",
        name=VENDOR_FILE.name,
        path=str(VENDOR_FILE),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        format="iso2709",
    )


def chunk(f: LandingFile, start: int, end: int, first: int, count: int) -> ChunkRef:
    return ChunkRef(
        chunk_id=chunk_id_for(f.sha256, start, end),
        vendor="demo",
        file_name=f.name,
        file_path=f.path,
        file_sha256=f.sha256,
        format="iso2709",
        start=start,
        end=end,
        first_record=first,
        record_count=count,
    )


@pytest.fixture
def manifest() -> RunManifest:
    f = landing_file()
    m = RunManifest(
        run_id="scheduled__2026-11-28T07:00:00+00:00",
        dag_id="catalog_sync_demo",
        vendor="demo",
        trigger=trigger_from_dag_run("scheduled", "timetable"),
    )
    m.add_files([f])
    first, second = chunk(f, 0, 4000, 0, 2), chunk(f, 4000, f.size, 2, 1)
    m.add_chunk_report(
        ChunkReport(
            chunk=first,
            records_total=2,
            accepted=1,
            rejected=1,
            reasons={"missing_245": 1},
            creates=1,
        )
    )
    m.add_chunk_report(
        ChunkReport(
            chunk=second, records_total=1, accepted=1, updates=1, warnings={"marc8_converted": 1}
        )
    )
    m.add_commit_report(CommitReport(chunk_id=first.chunk_id, created=1))
    m.add_commit_report(
        CommitReport(chunk_id=second.chunk_id, failed=1, failures={"ils_409_conflict": 1})
    )
    return m


def test_counts_add_up_per_stage_and_outcome(manifest: RunManifest) -> None:
    assert manifest.stages["fetch"] == {"files": 1}
    assert manifest.stages["process"] == {"records": 3, "accepted": 2, "rejected": 1}
    assert manifest.stages["decide"] == {"create": 1, "update": 1, "delete": 0, "unchanged": 0}
    assert manifest.stages["commit"]["created"] == 1 and manifest.stages["commit"]["failed"] == 1
    assert manifest.reject_reasons == {"missing_245": 1}
    assert manifest.warnings == {"marc8_converted": 1}
    assert manifest.ils_writes.failures == {"ils_409_conflict": 1}
    assert manifest.unaccounted() == 0
    assert manifest.summary().line() == (
        "run summary: records=3 accepted=2 rejected=1 created=1 updated=0 deleted=0 "
        "unchanged=0 failed=1 held=0"
    )
    assert len(manifest.chunks) == 2


def test_written_manifest_round_trips_and_holds_the_file_hash(
    manifest: RunManifest, tmp_path: Path
) -> None:
    manifest.add_drift("(DLC)  75012345", ["245", "650", "650"])
    manifest.finish(at=datetime(2026, 11, 28, 7, 5, tzinfo=UTC))
    path = write_manifest(manifest, tmp_path / "reports" / "demo" / "run" / "manifest.json")

    body = json.loads(path.read_text(encoding="utf-8"))
    assert body["files"][0]["sha256"] == hashlib.sha256(VENDOR_FILE.read_bytes()).hexdigest()
    assert body["trigger"] == {
        "kind": "schedule",
        "by": "scheduler",
        "run_type": "scheduled",
        "triggered_by": "timetable",
        "clear_number": 0,
    }
    assert body["status"] == "failed"  # one ILS write failed
    assert body["drift"]["fields"] == {"245": 1, "650": 2}
    assert read_manifest(path) == manifest
    assert [p.name for p in path.parent.iterdir()] == ["manifest.json"]


def test_masking_counts_and_error_messages_leave_no_canary(
    manifest: RunManifest, tmp_path: Path
) -> None:
    with VENDOR_FILE.open("rb") as fh:
        records = [r for r in MARCReader(fh, to_unicode=True) if r is not None]
    planted, canaries = plant_canaries(records)
    for _ in range(2):  # two chunks' maskers, summed
        masker = Masker(load_policy(), secrets.token_bytes(32))
        for record in planted:
            masker.mask_record(record)
        manifest.add_masking_counts(masker.counts)
    barcode = canaries.by_rule["scrub:patron-barcode"][0]
    email = canaries.by_rule["scrub:email"][0]
    manifest.add_error("commit", "ils_400_bad_request", f"borrower {barcode} <{email}> unknown")

    path = write_manifest(manifest, tmp_path / "manifest.json")

    assert find_canaries([tmp_path], canaries) == []
    body = json.loads(path.read_text(encoding="utf-8"))
    assert body["masking"]["vendor-order-price"] == 2 * len(canaries.by_rule["vendor-order-price"])
    assert body["masking"]["scrub:email"] == 2 * len(canaries.by_rule["scrub:email"])
    assert body["errors"][0]["message"] == "borrower [patron-barcode] <[email]> unknown"


@pytest.mark.parametrize(
    ("run_type", "triggered_by", "user", "clears", "kind", "by"),
    [
        ("scheduled", "timetable", None, 0, TriggerKind.SCHEDULE, "scheduler"),
        ("manual", "ui", "jdoe", 0, TriggerKind.MANUAL, "jdoe"),
        ("manual", "rest_api", None, 0, TriggerKind.MANUAL, None),
        ("scheduled", "timetable", "ops-lead", 2, TriggerKind.CLEAR, "ops-lead"),
        ("asset_triggered", "asset", None, 0, TriggerKind.ASSET, None),
        ("backfill", "backfill", "admin", 0, TriggerKind.BACKFILL, "admin"),
        (None, None, None, 0, TriggerKind.UNKNOWN, None),
    ],
)
def test_trigger_is_read_from_the_dag_run_fields(
    run_type: str | None,
    triggered_by: str | None,
    user: str | None,
    clears: int,
    kind: TriggerKind,
    by: str | None,
) -> None:
    trigger = trigger_from_dag_run(run_type, triggered_by, user=user, clear_number=clears)
    assert (trigger.kind, trigger.by, trigger.clear_number) == (kind, by, clears)


def test_a_run_without_errors_finishes_as_success() -> None:
    m = RunManifest(run_id="manual__1", vendor="demo", trigger=trigger_from_dag_run("manual"))
    m.finish()
    assert m.status == "success" and m.finished_at is not None
