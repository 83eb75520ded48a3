"""Records without 001 are matched on the vendor's other match points (issue 15, item 6).

No real file without 001 and with another match point is in the corpus (the 96 Nepali records
the issue names are not in it), so the records here are pymarc's test.dat records with their
001 removed, as such a file delivers them: nine carry an ISBN (020) and an LCCN (010), one
an LCCN alone.
"""

from __future__ import annotations

from pathlib import Path

import pymarc
import pytest
from tests.marc_support import MARC_FIXTURES, vendor

from catalog_sync.changes.fingerprint import match_point_key
from catalog_sync.changes.state import StateStore
from catalog_sync.marc.filescan import scan_file
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.split import split_file
from catalog_sync.paths import RuntimeLayout
from catalog_sync.pipeline.process import process_chunk, read_staged


@pytest.fixture
def without_001(tmp_path: Path) -> Path:
    path = tmp_path / "no001.mrc"
    with path.open("wb") as out:
        for record in pymarc.MARCReader((MARC_FIXTURES / "test.dat").read_bytes()):
            assert record is not None
            record.remove_fields("001")
            out.write(record.as_marc())
    return path


def test_records_without_001_are_accepted_when_another_match_point_is_present(
    without_001: Path,
) -> None:
    # A vendor matching on ISBN and ISSN: the one record with only an LCCN (010) has none.
    report = scan_file(without_001, vendor(match_points=["020", "022"]))
    assert (report.records_total, report.accepted) == (10, 9)
    assert report.reasons == {"no_match_point": 1}
    assert report.warnings["no_control_number"] == 9
    # The default points include 010, so there every record has one.
    assert scan_file(without_001, vendor()).accepted == 10


def test_only_the_vendors_match_points_count(without_001: Path) -> None:
    report = scan_file(without_001, vendor(match_points=["001+003", "035"]))
    assert (report.accepted, report.reasons) == (0, {"no_match_point": 10})


def test_the_dag_keys_them_by_the_match_point_they_are_matched_on(
    without_001: Path, tmp_path: Path
) -> None:
    v = vendor(match_points=["020", "022"])
    landing = describe_landing(without_001, v.name)
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    [ref] = split_file(landing, records_per_chunk=100)
    report = process_chunk(ref, v, RuntimeLayout(tmp_path / "run"), state, "run-1")
    assert (report.accepted, report.reasons) == (9, {"no_match_point": 1})
    keys = [change.record_key for change in read_staged(report.staging_path)]
    assert keys[0] == "isbn13=9780471383147"
    assert all(k.startswith("isbn13=978") for k in keys)


def test_a_record_with_001_keeps_its_control_number_key() -> None:
    record = next(iter(pymarc.MARCReader((MARC_FIXTURES / "test.dat").read_bytes())))
    assert record is not None
    assert match_point_key(record, ["001+003", "020"]) == "isbn13=9780471383147"
    report = scan_file(MARC_FIXTURES / "test.dat", vendor())
    assert "no_control_number" not in report.warnings
