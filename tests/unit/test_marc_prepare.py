"""prepare_record: one record in, a normalized record or a rejection with a reason out."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from catalog_sync.config import SourceConfig, VendorConfig
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.prepare import PreparedRecord, Rejection, prepare_record
from catalog_sync.marc.reader import RawRecord, iter_chunk
from catalog_sync.marc.split import split_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marc"


def vendor(**overrides: object) -> VendorConfig:
    return VendorConfig(name="demo", source=SourceConfig(inbox="inbox/demo"), **overrides)  # type: ignore[arg-type]


def raw_records(name: str) -> list[RawRecord]:
    lf = describe_landing(FIXTURES / name, "demo")
    return [rec for ref in split_file(lf, records_per_chunk=50) for rec in iter_chunk(ref)]


def outcomes(name: str, **overrides: object) -> list[PreparedRecord | Rejection]:
    lf = describe_landing(FIXTURES / name, "demo")
    return [prepare_record(rec, lf.format, vendor(**overrides)) for rec in raw_records(name)]


def test_clean_utf8_records_are_accepted_as_nfc_with_leader_09_a() -> None:
    results = outcomes("test_data.utf8.mrc")
    assert len(results) == 30
    assert all(isinstance(r, PreparedRecord) for r in results)
    for r in results:
        assert isinstance(r, PreparedRecord)
        assert r.record.leader[9] == "a"
        assert r.control_number
        for field in r.record.get_fields():
            for value in (
                [field.data] if field.control_field else [s.value for s in field.subfields]
            ):
                assert value is None or unicodedata.is_normalized("NFC", value)


def test_a_leader_05_d_record_is_recognised_as_a_delete() -> None:
    deleted = [
        r for r in outcomes("test_data.utf8.mrc") if isinstance(r, PreparedRecord) and r.deleted
    ]
    assert len(deleted) == 1
    assert deleted[0].record.leader[5] == "d"


def test_a_missing_required_field_rejects_the_record_with_its_control_number() -> None:
    results = outcomes("test.dat", required_fields=["001", "245", "999"])
    assert all(isinstance(r, Rejection) for r in results)
    first = results[0]
    assert isinstance(first, Rejection)
    assert first.reason == "missing_required_field"
    assert (
        first.control_number is not None
        and first.control_number in first.detail + first.control_number
    )
    assert "999" in first.detail


def test_broken_records_become_rejections_and_never_raise() -> None:
    results = outcomes("bad_records.mrc")
    rejected = [r for r in results if isinstance(r, Rejection)]
    assert len(results) == 9
    assert len(rejected) >= 7
    assert all(r.reason for r in rejected)
