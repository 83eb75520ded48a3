"""Format sniffing from content, with messages an operator understands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalog_sync.marc.errors import CatalogSyncInputError, EmptyFileError, NotMarcError
from catalog_sync.marc.sniff import detect_format

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marc"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("test.dat", "iso2709"),
        ("test_data.utf8.mrc", "iso2709"),
        ("test_data.utf8.marc.xml", "marcxml"),
        ("collection.xml", "marcxml"),
        ("three-records-second-bad.xml", "marcxml"),
        ("invalidUChicago_SampleBibs.xml", "marcxml"),
        ("202003131720.mrc", "iso2709"),
    ],
)
def test_format_is_read_from_the_content(name: str, expected: str) -> None:
    assert detect_format(FIXTURES / name) == expected


def test_the_file_name_does_not_decide_the_format(tmp_path: Path) -> None:
    disguised = tmp_path / "records.mrc"
    shutil.copyfile(FIXTURES / "collection.xml", disguised)
    assert detect_format(disguised) == "marcxml"
    renamed = tmp_path / "records.xml"
    shutil.copyfile(FIXTURES / "test.dat", renamed)
    assert detect_format(renamed) == "iso2709"


def test_an_image_sent_as_mrc_is_named_as_an_image(tmp_path: Path) -> None:
    image = tmp_path / "x.mrc"
    shutil.copyfile(FIXTURES / "pin_32.png", image)
    with pytest.raises(NotMarcError) as info:
        detect_format(image)
    assert str(info.value) == "vendor file x.mrc is not MARC: starts with PNG image bytes"
    assert info.value.reason == "not_marc"
    assert isinstance(info.value, CatalogSyncInputError)


def test_an_empty_file_is_reported_as_empty(tmp_path: Path) -> None:
    empty = tmp_path / "daily.mrc"
    empty.touch()
    with pytest.raises(EmptyFileError, match=r"daily\.mrc is empty"):
        detect_format(empty)


def test_xml_without_marc_records_is_not_marc(tmp_path: Path) -> None:
    other = tmp_path / "feed.xml"
    other.write_bytes(
        b'<?xml version="1.0"?>\n<rss version="2.0"><channel><title>x</title></channel></rss>\n'
    )
    with pytest.raises(NotMarcError, match=r"XML with root element <rss>"):
        detect_format(other)


def test_bibframe_rdf_is_recognised(corpus_dir: Path) -> None:
    rdf = next((corpus_dir / "bibframe2marc").rglob("*.rdf"))
    assert detect_format(rdf) == "bibframe"
