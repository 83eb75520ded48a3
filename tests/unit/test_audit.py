"""Audit events: JSON lines bound to run/file/chunk/record, in the file and the task log, no PII."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymarc import MARCReader
from tests.privacy_canaries import find_canaries, plant_canaries

from catalog_sync.audit import (
    AUDIT_LOGGER,
    audit_context,
    bind_audit_context,
    bound_context,
    configure_audit_log,
    correlation_id,
    get_audit_logger,
    remove_audit_log,
    reset_audit_context,
)
from catalog_sync.privacy import Masker, load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "privacy"
SHA = "9f2c" * 16


@pytest.fixture
def audit_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "audit" / "audit.jsonl"
    handler = configure_audit_log(path)
    try:
        yield path
    finally:
        remove_audit_log(handler)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_events_carry_the_bound_ids_and_reach_file_and_task_log(
    audit_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audit = get_audit_logger("process_chunk")
    cid = correlation_id("demo", SHA, "c0ffee", 1234)
    with audit_context(run_id="manual__2026-11-28", vendor="demo", file_sha256=SHA):
        with audit_context(chunk_id="c0ffee"):
            audit.info("chunk.started", records=2000)
            with audit_context(correlation_id=cid):
                audit.warning("record.rejected", reason="missing_245")
        audit.info("file.split", chunks=3)
    audit.info("run.outside")

    events = lines(audit_file)
    assert [e["event"] for e in events] == [
        "chunk.started",
        "record.rejected",
        "file.split",
        "run.outside",
    ]
    started, rejected, split, outside = events
    assert started["chunk_id"] == "c0ffee" and "correlation_id" not in started
    assert rejected["correlation_id"] == cid and rejected["reason"] == "missing_245"
    assert rejected["level"] == "warning" and rejected["file_sha256"] == SHA
    assert "chunk_id" not in split and split["run_id"] == "manual__2026-11-28"
    assert "run_id" not in outside
    assert all(e["logger"] == f"{AUDIT_LOGGER}.process_chunk" for e in events)

    task_log = [
        json.loads(r.getMessage()) for r in caplog.records if r.name.startswith(AUDIT_LOGGER)
    ]
    assert task_log == events


def test_correlation_ids_are_deterministic_per_record() -> None:
    first = correlation_id("demo", SHA, "c0ffee", 1234)
    assert first == correlation_id("demo", SHA, "c0ffee", 1234)
    others = {
        correlation_id("other", SHA, "c0ffee", 1234),
        correlation_id("demo", "0" * 64, "c0ffee", 1234),
        correlation_id("demo", SHA, "c0ffef", 1234),
        correlation_id("demo", SHA, "c0ffee", 1235),
    }
    assert first not in others and len(others) == 4
    assert first == f"demo:{SHA[:12]}:c0ffee:1234"


def test_canaries_never_reach_the_audit_file_or_task_log(
    audit_file: Path, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with (FIXTURES / "loc_acquisition_provenance.mrc").open("rb") as fh:
        records = [r for r in MARCReader(fh, to_unicode=True) if r is not None]
    planted, canaries = plant_canaries(records[:3])
    barcodes = canaries.by_rule["scrub:patron-barcode"]
    emails = canaries.by_rule["scrub:email"]
    masker = Masker(load_policy(), secrets.token_bytes(32))
    audit = get_audit_logger("commit_chunk")

    with audit_context(run_id="scheduled__x", vendor="demo"):
        for record in planted:
            # A masked record may be logged whole; policy values are gone, PII shapes scrubbed.
            audit.info("record.masked", record=str(masker.mask_record(record)))
        audit.error(
            "ils.write_failed", detail=f"patron {barcodes[0]} <{emails[0]}>", tries=[emails[1]]
        )
        audit.logger.info("plain message for %s about %s", emails[2], barcodes[1])
        try:
            raise RuntimeError(f"ILS said: unknown borrower {barcodes[2]} ({emails[3]})")
        except RuntimeError:
            audit.logger.exception("commit failed")

    assert len(lines(audit_file)) == len(planted) + 3
    assert find_canaries([audit_file.parent], canaries) == []
    task_log = tmp_path / "task.log"
    task_log.write_text(caplog.text, encoding="utf-8")
    assert "[email]" in caplog.text and "[patron-barcode]" in caplog.text
    assert find_canaries([task_log], canaries) == []
    # The originals still hold every canary: only the telemetry was cleaned.
    originals = tmp_path / "originals.mrc"
    originals.write_bytes(b"".join(str(r).encode() for r in planted))
    assert {c for _, c in find_canaries([originals], canaries)} == set(canaries)


def test_bound_ids_stay_with_their_thread() -> None:
    seen: dict[str, dict[str, str]] = {}

    def work(chunk: str) -> None:
        with audit_context(chunk_id=chunk):
            seen[chunk] = bound_context()

    with audit_context(run_id="r1"):
        threads = [threading.Thread(target=work, args=(c,)) for c in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert bound_context() == {"run_id": "r1"}
    assert seen == {"a": {"chunk_id": "a"}, "b": {"chunk_id": "b"}}


def test_binding_none_unbinds_and_reset_restores() -> None:
    token = bind_audit_context(run_id="r1", chunk_id="c1")
    inner = bind_audit_context(chunk_id=None)
    assert bound_context() == {"run_id": "r1"}
    reset_audit_context(inner)
    assert bound_context() == {"run_id": "r1", "chunk_id": "c1"}
    reset_audit_context(token)
    assert bound_context() == {}


@pytest.mark.parametrize("name", ["Record Rejected", "record-rejected", "", "record..rejected"])
def test_event_names_must_be_stable_dotted_identifiers(name: str) -> None:
    with pytest.raises(ValueError):
        get_audit_logger("x").info(name)


def test_reserved_fields_cannot_be_overwritten() -> None:
    with pytest.raises(ValueError):
        get_audit_logger("x").info("record.ok", event="other")
    with pytest.raises(ValueError):
        bind_audit_context(level="debug")


def test_configuring_the_same_file_twice_writes_each_event_once(audit_file: Path) -> None:
    assert configure_audit_log(audit_file) is configure_audit_log(audit_file)
    get_audit_logger("x").info("run.started")
    assert len(lines(audit_file)) == 1


def test_events_below_info_are_not_written(audit_file: Path) -> None:
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.INFO)
    get_audit_logger("x").debug("record.detail")
    assert not audit_file.exists() or lines(audit_file) == []
