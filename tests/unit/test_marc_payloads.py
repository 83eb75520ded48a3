"""The pydantic form of a normalized record: lossless round trip; a refusal is a rejection."""

from __future__ import annotations

from pathlib import Path

import pymarc

from catalog_sync.config import SourceConfig, VendorConfig
from catalog_sync.marc.filescan import iter_outcomes
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.payloads import NormalizedRecord, to_payload
from catalog_sync.marc.prepare import PreparedRecord, Rejection

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marc"


def prepared(name: str) -> list[PreparedRecord]:
    landing = describe_landing(FIXTURES / name, "demo")
    vendor = VendorConfig(name="demo", source=SourceConfig(inbox="x"), required_fields=[])
    return [o for _, _, o in iter_outcomes(landing, vendor) if isinstance(o, PreparedRecord)]


def test_a_normalized_record_survives_json_and_back_unchanged() -> None:
    records = prepared("test_data.utf8.mrc")
    assert len(records) == 30
    for record in records:
        payload = to_payload(record)
        assert isinstance(payload, NormalizedRecord)
        again = NormalizedRecord.model_validate_json(payload.model_dump_json())
        assert again == payload
        assert again.to_pymarc().as_marc() == record.record.as_marc()
        assert again.deleted == record.deleted


def test_a_record_the_model_refuses_becomes_a_payload_invalid_rejection() -> None:
    [record] = prepared("one.dat")
    record.record.leader = pymarc.Leader(
        str(record.record.leader)[:9] + " " + str(record.record.leader)[10:]
    )
    result = to_payload(record)
    assert isinstance(result, Rejection)
    assert result.reason == "payload_invalid"
    assert "leader" in result.detail
    assert result.control_number == record.control_number
