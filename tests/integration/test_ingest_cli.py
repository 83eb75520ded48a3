"""`catalog-sync validate` and `normalize` on real files: reports, reject files, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pymarc
import pytest

from catalog_sync.ingest_cli import normalize_main, validate_main
from catalog_sync.marc.rejects import read_index

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marc"


def run_validate(tmp_path: Path, path: Path, *extra: str) -> tuple[int, dict[str, object]]:
    report = tmp_path / "report.json"
    code = validate_main([str(path), "--report", str(report), *extra])
    return code, json.loads(report.read_text(encoding="utf-8"))


def test_validate_writes_a_report_with_the_documented_keys(tmp_path: Path) -> None:
    code, report = run_validate(tmp_path, FIXTURES / "test_data.utf8.mrc")
    assert code == 0
    assert {"records_total", "accepted", "rejected", "reasons"} <= set(report)
    assert (report["records_total"], report["accepted"], report["rejected"]) == (30, 30, 0)
    assert report["deleted"] == 1
    assert report["format"] == "iso2709"


def test_rejections_are_not_errors_and_land_in_the_rejects_file(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.mrc"
    code, report = run_validate(
        tmp_path, FIXTURES / "bad_records.mrc", "--rejects", str(rejects), "--required-fields", ""
    )
    assert code == 0
    assert report["records_total"] == 9
    assert report["reasons"] == {"no_fields": 1, "record_terminator_missing": 1}
    assert report["rejects_path"] == str(rejects)
    assert [e["reason"] for e in read_index(rejects)] == ["no_fields", "record_terminator_missing"]


def test_a_marcxml_file_broken_midway_keeps_its_good_records(tmp_path: Path) -> None:
    code, report = run_validate(tmp_path, FIXTURES / "three-records-second-bad.xml")
    assert code == 0
    assert (report["accepted"], report["rejected"]) == (2, 1)
    assert report["reasons"] == {"xml_malformed": 1}


def test_a_truncated_file_reports_its_cut_record(tmp_path: Path) -> None:
    truncated = tmp_path / "cut.mrc"
    data = (FIXTURES / "test.dat").read_bytes()
    truncated.write_bytes(data[: len(data) - 300])
    code, report = run_validate(tmp_path, truncated)
    assert code == 0
    assert (report["records_total"], report["accepted"], report["rejected"]) == (10, 9, 1)
    assert report["reasons"] == {"record_terminator_missing": 1}


def test_a_file_with_stripped_separators_is_one_clear_rejection(tmp_path: Path) -> None:
    code, report = run_validate(tmp_path, FIXTURES / "202003131720.mrc")
    assert code == 0
    assert (report["records_total"], report["rejected"]) == (1, 1)
    assert report["reasons"] == {"separators_missing": 1}


@pytest.mark.parametrize(
    ("content", "reason", "message"),
    [
        (b"", "empty_file", "vendor.mrc is empty"),
        (None, "not_marc", "vendor.mrc is not MARC: starts with PNG image bytes"),
    ],
)
def test_a_file_that_is_not_marc_says_what_it_is(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    reason: str,
    message: str,
) -> None:
    path = tmp_path / "vendor.mrc"
    if content is None:
        shutil.copyfile(FIXTURES / "pin_32.png", path)
    else:
        path.write_bytes(content)
    code, report = run_validate(tmp_path, path)
    assert code == 1
    assert (report["records_total"], report["accepted"], report["rejected"]) == (0, 0, 0)
    assert isinstance(report["file_error"], dict) and report["file_error"]["reason"] == reason
    assert message in capsys.readouterr().out


def test_an_unreadable_path_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate_main([str(tmp_path / "missing.mrc")]) == 2
    assert "missing.mrc: no such file" in capsys.readouterr().err
    assert validate_main([str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_without_read_permission_exits_2(tmp_path: Path) -> None:
    locked = tmp_path / "locked.mrc"
    shutil.copyfile(FIXTURES / "one.dat", locked)
    locked.chmod(0)
    assert validate_main([str(locked)]) == 2


def test_bad_arguments_exit_2() -> None:
    assert validate_main([]) == 2
    assert validate_main(["x.mrc", "--no-such-option"]) == 2
    assert normalize_main(["only-one-argument.mrc"]) == 2


def test_normalize_to_mrc_writes_accepted_records_as_utf8_nfc_leader_09_a(tmp_path: Path) -> None:
    out = tmp_path / "out.mrc"
    assert normalize_main([str(FIXTURES / "marc8.dat"), str(out), "--required-fields", ""]) == 0
    with out.open("rb") as fh:
        [record] = list(pymarc.MARCReader(fh, to_unicode=True, force_utf8=True))
    assert record is not None
    assert record.leader[9] == "a"
    with (FIXTURES / "marc8-to-unicode.dat").open("rb") as fh:
        [reference] = list(pymarc.MARCReader(fh, to_unicode=True, force_utf8=True))
    assert reference is not None
    nfc = [unicodedata.normalize("NFC", f.value()) for f in reference.fields]
    assert [f.value() for f in record.fields] == nfc


def test_normalize_to_xml_writes_a_marcxml_collection_that_validates_clean(tmp_path: Path) -> None:
    out = tmp_path / "out.xml"
    assert normalize_main([str(FIXTURES / "test_data.utf8.mrc"), str(out)]) == 0
    records = pymarc.parse_xml_to_array(str(out))
    assert len(records) == 30
    assert all(r.leader[9] == "a" for r in records)
    code, report = run_validate(tmp_path, out)
    assert code == 0
    assert (report["accepted"], report["rejected"]) == (30, 0)
    warnings = report["warnings"]
    assert isinstance(warnings, dict)
    assert "nfc_normalized" not in warnings  # already NFC: nothing left to normalize


def test_normalize_keeps_rejected_records_out_of_the_output(tmp_path: Path) -> None:
    out, rejects = tmp_path / "clean.mrc", tmp_path / "rejects.mrc"
    code = normalize_main(
        [str(FIXTURES / "three-records-second-bad.xml"), str(out), "--rejects", str(rejects)]
    )
    assert code == 0
    with out.open("rb") as fh:
        assert len([r for r in pymarc.MARCReader(fh) if r is not None]) == 2
    assert [e["reason"] for e in read_index(rejects)] == ["xml_malformed"]


def test_normalize_refuses_an_unknown_output_extension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert normalize_main([str(FIXTURES / "one.dat"), str(tmp_path / "out.json")]) == 2
    assert ".mrc" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_normalize_leaves_no_output_for_a_file_that_is_not_marc(tmp_path: Path) -> None:
    out = tmp_path / "out.mrc"
    assert normalize_main([str(FIXTURES / "pin_32.png"), str(out)]) == 1
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_the_catalog_sync_command_dispatches_validate(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "catalog_sync", "validate", str(FIXTURES / "one.dat")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "one.dat (iso2709): 1 records, 1 accepted, 0 rejected" in done.stdout


def test_a_bibframe_file_is_validated_instance_by_instance(tmp_path: Path) -> None:
    bibframe = FIXTURES.parent / "bibframe" / "regression-bibframe.xml"
    if not bibframe.is_file():
        pytest.skip("BIBFRAME fixtures not present")
    code, report = run_validate(tmp_path, bibframe)
    assert code == 0
    assert report["format"] == "bibframe"
    assert (report["records_total"], report["accepted"], report["rejected"]) == (1, 1, 0)


def test_a_truncated_bibframe_file_is_a_file_error_naming_where_it_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = (FIXTURES.parent / "bibframe" / "regression-bibframe.xml").read_bytes()
    path = tmp_path / "delivery.rdf"
    path.write_bytes(real[: len(real) // 2])  # a real LoC record cut off mid-document
    code, report = run_validate(tmp_path, path)
    assert code == 1
    assert isinstance(report["file_error"], dict)
    assert report["file_error"]["reason"] == "not_bibframe_rdfxml"
    assert report["file_error"]["detail"] == (
        "vendor file delivery.rdf is not well-formed RDF/XML at line 91, column 91: "
        "Premature end of data in tag primaryContributorName00MatchKey line 91"
    )
    assert "Traceback" not in capsys.readouterr().out
