"""Filler before the first record is skipped as filler between records is (issue 15, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.marc_support import MARC_FIXTURES, vendor

from catalog_sync.marc.filescan import scan_file
from catalog_sync.marc.sniff import detect_format


@pytest.mark.parametrize("filler", [b"\x00", b"\x00\x00\r\n", b"\x1a", b" \n"])
def test_filler_before_the_first_record_is_skipped(tmp_path: Path, filler: bytes) -> None:
    path = tmp_path / "leading.mrc"
    path.write_bytes(filler + (MARC_FIXTURES / "test.dat").read_bytes())
    assert detect_format(path) == "iso2709"
    report = scan_file(path, vendor())
    assert (report.records_total, report.accepted) == (10, 10)


def test_filler_before_marcxml_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "leading.xml"
    path.write_bytes(b"\x00\x00" + (MARC_FIXTURES / "collection.xml").read_bytes())
    assert detect_format(path) == "marcxml"
    assert scan_file(path, vendor()).accepted == 3
