"""Fingerprints decide "unchanged" without an ILS call, so they must track content, not bytes."""

from __future__ import annotations

from pathlib import Path

import pymarc
from pymarc import Field, Subfield

from catalog_sync.changes.fingerprint import record_fingerprint, record_key

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marc"


def _iso_records() -> list[pymarc.Record]:
    with (FIXTURES / "test_data.utf8.mrc").open("rb") as fh:
        return [r for r in pymarc.MARCReader(fh, to_unicode=True, force_utf8=True) if r]


def test_same_records_as_iso2709_and_marcxml_have_the_same_fingerprints() -> None:
    iso = _iso_records()
    xml = pymarc.parse_xml_to_array(str(FIXTURES / "test_data.utf8.marc.xml"))
    assert len(iso) == len(xml) == 30
    assert [record_fingerprint(r) for r in iso] == [record_fingerprint(r) for r in xml]


def test_reserialising_a_record_keeps_its_fingerprint() -> None:
    for record in _iso_records():
        again = pymarc.Record(data=record.as_marc(), to_unicode=True, force_utf8=True)
        assert record_fingerprint(again) == record_fingerprint(record)


def test_a_one_subfield_change_changes_the_fingerprint() -> None:
    record = _iso_records()[0]
    before = record_fingerprint(record)
    record.add_field(Field(tag="500", indicators=[" ", " "], subfields=[Subfield("a", "Note.")]))
    assert record_fingerprint(record) != before


def test_record_key_prefixes_the_agency_when_003_is_present() -> None:
    record = _iso_records()[0]
    control = record["001"].data
    assert record_key(record, ["001"]) == control.strip()
    record.add_ordered_field(pymarc.Field(tag="003", data="DLC"))
    assert record_key(record, ["003", "001"]) == f"DLC:{control.strip()}"


def test_record_without_001_has_no_key() -> None:
    record = _iso_records()[0]
    record.remove_fields("001")
    assert record_key(record, ["003", "001"]) is None
