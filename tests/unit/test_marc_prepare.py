"""prepare_record: one record in, a normalized record or a rejection with a stable reason out."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from xml.etree import ElementTree

import pymarc
import pytest

from catalog_sync.config import SourceConfig, VendorConfig
from catalog_sync.marc.filescan import iter_outcomes
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.prepare import PreparedRecord, Rejection, prepare_record
from catalog_sync.marc.reader import RawRecord
from catalog_sync.models import RecordFormat

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marc"


def vendor(**overrides: object) -> VendorConfig:
    return VendorConfig(name="demo", source=SourceConfig(inbox="inbox/demo"), **overrides)  # type: ignore[arg-type]


def outcomes(
    name: str, allow_utf8_repair: bool | None = None, **overrides: object
) -> list[PreparedRecord | Rejection]:
    landing = describe_landing(FIXTURES / name, "demo")
    return [o for _, _, o in iter_outcomes(landing, vendor(**overrides), allow_utf8_repair)]


def accepted(name: str, **overrides: object) -> list[PreparedRecord]:
    results = outcomes(name, None, **overrides)
    assert all(isinstance(r, PreparedRecord) for r in results), results
    return [r for r in results if isinstance(r, PreparedRecord)]


def only(
    name: str, allow_utf8_repair: bool | None = None, **overrides: object
) -> PreparedRecord | Rejection:
    [result] = outcomes(name, allow_utf8_repair, **overrides)
    return result


def values(record: pymarc.Record) -> list[str]:
    found: list[str] = []
    for field in record.fields:
        if field.control_field:
            found.append(field.data or "")
        else:
            found.extend(s.value for s in field.subfields)
    return found


def test_clean_utf8_records_are_accepted_as_nfc_with_leader_09_a() -> None:
    results = accepted("test_data.utf8.mrc")
    assert len(results) == 30
    for r in results:
        assert r.record.leader[9] == "a"
        assert r.control_number
        assert all(unicodedata.is_normalized("NFC", v) for v in values(r.record))
    # These LoC records arrive decomposed (NFD): normalizing them is flagged, not silent.
    assert sum("nfc_normalized" in r.warnings for r in results) == 28


def test_iso2709_and_marcxml_of_the_same_records_prepare_to_identical_records() -> None:
    from_iso = accepted("test_data.utf8.mrc")
    from_xml = accepted("test_data.utf8.marc.xml")
    assert [r.record.as_marc() for r in from_iso] == [r.record.as_marc() for r in from_xml]


def test_a_leader_05_d_record_is_recognised_as_a_delete() -> None:
    deleted = [r for r in accepted("test_data.utf8.mrc") if r.deleted]
    assert [r.record.leader[5] for r in deleted] == ["d"]
    xml_delete = only("incremental_01_record_delete.xml")
    assert isinstance(xml_delete, PreparedRecord) and xml_delete.deleted
    assert xml_delete.control_number == "99122238836006421"


def test_a_delete_needs_only_its_control_fields_not_the_descriptive_ones() -> None:
    delete = only("incremental_01_record_delete.xml", required_fields=["001", "100"])
    assert isinstance(delete, PreparedRecord) and delete.deleted
    assert delete.record.get("100") is None
    no_key = only("incremental_01_record_delete.xml", required_fields=["003"])
    assert isinstance(no_key, Rejection) and no_key.reason == "missing_required_field"


def test_a_missing_required_field_rejects_the_record_and_names_the_field() -> None:
    results = outcomes("test.dat", required_fields=["001", "245", "999"])
    assert len(results) == 10
    for r in results:
        assert isinstance(r, Rejection)
        assert r.reason == "missing_required_field"
        assert "999" in r.detail
        assert r.control_number  # the reject index can point at the record


def test_either_of_two_alternative_required_fields_will_do() -> None:
    assert len(accepted("test.dat", required_fields=["001", "999/245"])) == 10


def test_a_bibliographic_requirement_does_not_reject_an_authority_record() -> None:
    result = only("auth_363723.mrc", required_fields=["001", "245"])
    assert isinstance(result, PreparedRecord)
    assert result.record.leader[6] == "z"


def test_leader_09_blank_over_utf8_bytes_is_read_as_utf8_and_flagged() -> None:
    lying = only("utf8_without_leader_flag.dat", required_fields=[])
    honest = only("utf8_with_leader_flag.dat", required_fields=[])
    assert isinstance(lying, PreparedRecord) and isinstance(honest, PreparedRecord)
    assert "leader09_marc8_but_utf8" in lying.warnings
    assert "leader09_marc8_but_utf8" not in honest.warnings
    assert values(lying.record) == values(honest.record)
    assert lying.record.leader[9] == "a"


def test_leader_09_a_over_marc8_bytes_is_converted_from_marc8_and_flagged() -> None:
    result = only("marc8_accented_chars.marc", required_fields=[])
    assert isinstance(result, PreparedRecord)
    assert "leader09_utf8_but_marc8" in result.warnings
    assert not any("\ufffd" in v for v in values(result.record))
    assert any(not v.isascii() for v in values(result.record))


def test_marc8_converts_to_the_expected_utf8_record() -> None:
    converted = only("marc8.dat", required_fields=[])
    expected = only("marc8-to-unicode.dat", required_fields=[])
    assert isinstance(converted, PreparedRecord) and isinstance(expected, PreparedRecord)
    assert "marc8_converted" in converted.warnings
    assert converted.record.as_marc() == expected.record.as_marc()


def test_sierra_marc8_export_matches_marcedit_utf8_for_every_record_accepted() -> None:
    ours = outcomes("diac-4-theo-directly-from-sierra.mrc", required_fields=[])
    theirs = accepted("diac-4-theo-MarcEdit-utf8-processed.mrc", required_fields=[])
    assert len(ours) == len(theirs) == 8
    compared = 0
    for mine, reference in zip(ours, theirs, strict=True):
        if isinstance(mine, Rejection):
            # Three records carry characters the Arabic MARC-8 set does not define: rejected,
            # never written with blanks where the characters were.
            assert mine.reason == "marc8_invalid"
            continue
        expected = {f.tag: unicodedata.normalize("NFC", f.value()) for f in reference.record.fields}
        assert {f.tag: f.value() for f in mine.record.fields} == expected
        compared += 1
    assert compared == 5


def test_invalid_utf8_is_rejected_unless_the_vendor_allows_repair() -> None:
    strict = only("utf8_with_bad_bytes.marc", required_fields=[])
    assert isinstance(strict, Rejection)
    assert strict.reason == "invalid_utf8"
    repaired = only("utf8_with_bad_bytes.marc", allow_utf8_repair=True, required_fields=[])
    assert isinstance(repaired, PreparedRecord)
    assert "utf8_repaired" in repaired.warnings
    assert any("\ufffd" in v for v in values(repaired.record))


def test_the_vendor_setting_allow_utf8_repair_is_honoured() -> None:
    raw = RawRecord(offset=0, data=(FIXTURES / "utf8_with_bad_bytes.marc").read_bytes(), ordinal=0)
    allowing = vendor(required_fields=[]).model_copy()
    object.__setattr__(
        allowing, "allow_utf8_repair", True
    )  # the lead adds this field to VendorConfig
    assert isinstance(prepare_record(raw, "iso2709", allowing), PreparedRecord)
    assert isinstance(prepare_record(raw, "iso2709", vendor(required_fields=[])), Rejection)


def test_a_legacy_code_page_is_rejected_rather_than_decoded_as_marc8() -> None:
    results = outcomes("1251.dat", required_fields=[])
    assert len(results) == 6
    assert {r.reason for r in results if isinstance(r, Rejection)} == {"unknown_charset"}


def test_a_directory_counted_in_characters_is_recovered_from_the_terminators() -> None:
    result = only("marc_with_bad_utf8.utf8.marc", required_fields=[])
    assert isinstance(result, PreparedRecord)
    assert {"directory_recovered", "record_length_mismatch"} <= set(result.warnings)
    assert result.control_number == "178448"
    assert result.record["245"]["a"].startswith("Ten years at NIH")


def test_broken_directories_in_bad_records_are_recovered_and_flagged_not_dropped() -> None:
    results = outcomes("bad_records.mrc", required_fields=[])
    assert len(results) == 9
    recovered = [
        r for r in results if isinstance(r, PreparedRecord) and "directory_recovered" in r.warnings
    ]
    clean = results[0]
    assert isinstance(clean, PreparedRecord)
    assert len(recovered) == 2
    assert all(r.record["245"].value() == clean.record["245"].value() for r in recovered)
    reasons = [r.reason for r in results if isinstance(r, Rejection)]
    assert reasons == ["no_fields", "record_terminator_missing"]
    truncated = results[-1]
    assert isinstance(truncated, Rejection) and "truncated record" in truncated.detail


def test_stripped_separators_are_rejected_as_one_record() -> None:
    result = only("202003131720.mrc")
    assert isinstance(result, Rejection)
    assert result.reason == "separators_missing"
    assert result.detail.startswith("2977 bytes without any field, subfield or record separator")


def test_undefined_codes_are_warnings_and_impossible_codes_rejections() -> None:
    flagged = only("datos-20161010-ajob.mrc", required_fields=[])
    assert isinstance(flagged, PreparedRecord)
    assert {"subfield_undefined", "indicator_undefined"} <= set(flagged.warnings)
    broken = only("bad_subfield_code.dat", required_fields=[])
    assert isinstance(broken, Rejection)
    assert broken.reason == "subfield_code_invalid"


def test_control_characters_inside_data_are_removed_and_flagged() -> None:
    result = only("with_control_caracther_and_corrupt_ldr05.mrc", required_fields=[])
    assert isinstance(result, PreparedRecord)
    assert "control_character_removed" in result.warnings
    assert not any(ch < " " for v in values(result.record) for ch in v if ch not in "\t\n\r")


def test_a_subfield_delimiter_ending_a_control_field_is_dropped_so_marcxml_can_carry_it() -> None:
    # Two of the 8 LoC BooksAll records (of 250,000) whose 001 ends in \x1f: their MARCXML was
    # not well-formed, and the FOLIO adapter's parse of it failed the whole commit task.
    results = outcomes("loc-booksall-001-subfield-delimiter.mrc")
    assert [type(r).__name__ for r in results] == ["PreparedRecord", "PreparedRecord"]
    for result in results:
        assert isinstance(result, PreparedRecord)
        assert "control_character_removed" in result.warnings
        control = result.record["001"].data
        assert "\x1f" not in control and control.strip().isdigit()
        ElementTree.fromstring(pymarc.record_to_xml(result.record, namespace=True))
    assert [r.control_number for r in results if isinstance(r, PreparedRecord)] == [
        "00038361",
        "00315568",
    ]


def test_a_not_well_formed_marcxml_record_is_rejected_and_its_neighbours_kept() -> None:
    results = outcomes("three-records-second-bad.xml")
    assert [type(r).__name__ for r in results] == ["PreparedRecord", "Rejection", "PreparedRecord"]
    bad = results[1]
    assert isinstance(bad, Rejection) and bad.reason == "xml_malformed"
    assert bad.control_number == "afc99990058366"
    assert bad.detail.startswith("not well-formed XML: invalid character in attribute value")


def test_marcxml_cut_off_midway_is_rejected_with_a_reason() -> None:
    result = only("invalidUChicago_SampleBibs.xml")
    assert isinstance(result, Rejection)
    assert result.reason == "xml_malformed"
    assert result.control_number == "10424784"


@pytest.mark.parametrize(
    "data", [b"", b"00024", b"\x00" * 30, b"garbage\x1d", "é".encode() * 20 + b"\x1d"]
)
def test_odd_bytes_never_raise(data: bytes) -> None:
    formats: tuple[RecordFormat, ...] = ("iso2709", "marcxml")
    for fmt in formats:
        result = prepare_record(RawRecord(offset=0, data=data, ordinal=0), fmt, vendor())
        assert isinstance(result, Rejection)
        assert result.reason


def test_the_fast_data_field_constructor_builds_what_pymarc_builds() -> None:
    from catalog_sync.marc.prepare import _data_field

    subfields = [pymarc.Subfield("a", "Ten years at NIH :"), pymarc.Subfield("b", "advancing")]
    ours = _data_field("245", pymarc.Indicators("1", "0"), subfields)
    theirs = pymarc.Field(tag="245", indicators=pymarc.Indicators("1", "0"), subfields=subfields)
    for attribute in ("tag", "data", "indicators", "subfields", "control_field", "indicator1"):
        assert getattr(ours, attribute) == getattr(theirs, attribute)
    assert ours.as_marc("utf-8") == theirs.as_marc("utf-8")
    assert str(ours) == str(theirs)
    assert ours.value() == theirs.value()
