"""Reject files keep every rejected record as received, with an index that says where and why."""

from __future__ import annotations

import json
from pathlib import Path

from catalog_sync.config import SourceConfig, VendorConfig
from catalog_sync.marc.filescan import iter_outcomes
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.prepare import Rejection
from catalog_sync.marc.rejects import RejectWriter, index_path_for, read_index

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marc"


def write_rejects(name: str, target: Path) -> int:
    landing = describe_landing(FIXTURES / name, "demo")
    vendor = VendorConfig(name="demo", source=SourceConfig(inbox="x"), required_fields=[])
    with RejectWriter(target, chunk_id="c1") as writer:
        for raw, _, outcome in iter_outcomes(landing, vendor):
            if isinstance(outcome, Rejection):
                writer.add(raw, outcome)
    return writer.count


def test_each_rejected_record_is_kept_byte_for_byte_and_indexed(tmp_path: Path) -> None:
    target = tmp_path / "run" / "c1.rej"
    assert write_rejects("bad_records.mrc", target) == 2
    landing_bytes = (FIXTURES / "bad_records.mrc").read_bytes()
    kept = target.read_bytes()
    entries = read_index(target)
    assert [e["reason"] for e in entries] == ["no_fields", "record_terminator_missing"]
    for entry in entries:
        assert set(entry) == {
            "chunk_id", "ordinal", "offset", "length", "reject_offset", "reject_length",
            "control_number", "reason", "detail",
        }  # fmt: skip
        assert entry["chunk_id"] == "c1"
        offset, length = int(str(entry["offset"])), int(str(entry["length"]))
        start, size = int(str(entry["reject_offset"])), int(str(entry["reject_length"]))
        assert kept[start : start + size] == landing_bytes[offset : offset + length]
    assert [e["ordinal"] for e in entries] == [6, 8]
    # Index lines are JSON objects, one per line.
    lines = index_path_for(target).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["offset"] for line in lines] == [764, 917]


def test_a_control_number_found_in_a_rejected_record_is_indexed(tmp_path: Path) -> None:
    target = tmp_path / "x.rej"
    assert write_rejects("three-records-second-bad.xml", target) == 1
    [entry] = read_index(target)
    assert entry["control_number"] == "afc99990058366"
    assert entry["reason"] == "xml_malformed"


def test_a_rerun_without_rejects_leaves_no_stale_reject_file(tmp_path: Path) -> None:
    target = tmp_path / "c1.rej"
    assert write_rejects("bad_records.mrc", target) == 2
    assert write_rejects("test.dat", target) == 0
    assert not target.exists()
    assert not index_path_for(target).exists()
    assert read_index(target) == []


def test_a_mask_is_applied_before_the_record_reaches_disk(tmp_path: Path) -> None:
    landing = describe_landing(FIXTURES / "utf8_with_bad_bytes.marc", "demo")
    vendor = VendorConfig(name="demo", source=SourceConfig(inbox="x"), required_fields=[])
    target = tmp_path / "m.rej"
    with RejectWriter(target, mask=lambda data: b"#" * len(data)) as writer:
        for raw, _, outcome in iter_outcomes(landing, vendor):
            assert isinstance(outcome, Rejection)
            writer.add(raw, outcome)
    assert set(target.read_bytes()) == {ord("#")}
    assert read_index(target)[0]["reason"] == "invalid_utf8"
