"""Bad indicators are repaired with a warning code; strict vendors reject them (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import pymarc
import pytest
from tests.marc_support import MARC_FIXTURES, outcomes, vendor

from catalog_sync.ingest_cli import validate_main
from catalog_sync.marc.filescan import scan_file
from catalog_sync.marc.prepare import PreparedRecord, Rejection


def test_a_stray_byte_after_the_indicators_is_dropped_and_the_record_kept() -> None:
    # pymarc's regression45.dat: 11 of 12 records carry a 752 whose indicator area is
    # "  \\" (a MarcEdit blank placeholder leaked into binary).
    results = outcomes(MARC_FIXTURES / "regression45.dat")
    assert len(results) == 12
    assert all(isinstance(r, PreparedRecord) for r in results), results
    repaired = [r for r in results if "indicator_stray_byte_dropped" in r.warnings]  # type: ignore[union-attr]
    assert len(repaired) == 11
    for r in repaired:
        assert isinstance(r, PreparedRecord)
        field = r.record.get("752")
        assert field is not None
        assert (field.indicator1, field.indicator2) == (" ", " ")
        assert not any(s.value.startswith("\\") for s in field.subfields)


def test_strict_vendors_still_reject_the_stray_byte() -> None:
    results = outcomes(MARC_FIXTURES / "regression45.dat", marc_strictness="strict")
    assert [r.reason for r in results if isinstance(r, Rejection)] == ["indicator_invalid"] * 11


def test_a_bad_indicator_character_in_marcxml_is_blanked_with_a_warning() -> None:
    # Alma's broken_indicator.xml: 700 ind2 is "§".
    [result] = outcomes(MARC_FIXTURES / "broken_indicator.xml")
    assert isinstance(result, PreparedRecord), result
    assert "indicator_blanked" in result.warnings
    indicators = [(f.indicator1, f.indicator2) for f in result.record.get_fields("700")]
    assert ("1", " ") in indicators
    assert all("§" not in pair for pair in indicators)
    [strict] = outcomes(MARC_FIXTURES / "broken_indicator.xml", marc_strictness="strict")
    assert isinstance(strict, Rejection) and strict.reason == "indicator_invalid"


@pytest.mark.parametrize("bad", ["", "\u00a0"])
def test_an_empty_or_non_breaking_space_indicator_is_blanked(tmp_path: Path, bad: str) -> None:
    source = (MARC_FIXTURES / "broken_indicator.xml").read_text(encoding="utf-8")
    path = tmp_path / "nbsp.xml"
    path.write_text(source.replace('ind2="§"', f'ind2="{bad}"'), encoding="utf-8")
    [result] = outcomes(path)
    assert isinstance(result, PreparedRecord), result
    assert "indicator_blanked" in result.warnings


def test_an_unrepairable_record_is_still_rejected() -> None:
    # pymarc's bad_indicator.dat: its first directory entry names tag "0 2" (the record
    # itself cannot be trusted), so blanking the missing indicators does not save it.
    [result] = outcomes(MARC_FIXTURES / "bad_indicator.dat")
    assert isinstance(result, Rejection)
    assert result.reason == "tag_invalid"


def test_repairs_are_counted_in_the_report() -> None:
    report = scan_file(MARC_FIXTURES / "regression45.dat", vendor())
    assert (report.accepted, report.rejected) == (12, 0)
    assert report.warnings["indicator_stray_byte_dropped"] == 11


def test_validate_reports_repairs_and_rejects_them_with_strict(tmp_path: Path) -> None:
    lenient, strict = tmp_path / "lenient.json", tmp_path / "strict.json"
    assert validate_main([str(MARC_FIXTURES / "regression45.dat"), "--report", str(lenient)]) == 0
    assert (
        validate_main(
            [str(MARC_FIXTURES / "regression45.dat"), "--strict", "--report", str(strict)]
        )
        == 0
    )
    lenient_report, strict_report = (json.loads(p.read_text()) for p in (lenient, strict))
    assert (
        lenient_report["accepted"],
        lenient_report["warnings"]["indicator_stray_byte_dropped"],
    ) == (12, 11)
    assert (strict_report["accepted"], strict_report["reasons"]) == (1, {"indicator_invalid": 11})


def test_marc_strictness_is_a_vendor_setting_with_a_lenient_default() -> None:
    assert vendor().marc_strictness == "lenient"
    with pytest.raises(ValueError, match="marc_strictness"):
        vendor(marc_strictness="sloppy")


def test_pymarc_reads_the_repaired_record_back() -> None:
    # A repaired record serialises and reads back with two indicators (nothing half-fixed).
    [result] = outcomes(MARC_FIXTURES / "broken_indicator.xml")
    assert isinstance(result, PreparedRecord)
    again = next(pymarc.MARCReader(result.record.as_marc(), to_unicode=True))
    assert again is not None
    assert [f.indicators for f in again.get_fields("700")] == [
        f.indicators for f in result.record.get_fields("700")
    ]
