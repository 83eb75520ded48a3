"""The FOLIO adapter reads each payload's MARCXML through ElementTree; every record comes out as
pymarc's own parser builds it, and what the fast path does not take goes to pymarc's parser."""

from __future__ import annotations

import io
from pathlib import Path

import pymarc
import pytest

from catalog_sync.changes.stamp import stamp_record
from catalog_sync.ils.folio.records import parse_marcxml
from catalog_sync.pipeline.commit_job import marcxml

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "loc-books-2016-part01-first1000.mrc"
MARC_FIXTURES = REPO / "tests" / "fixtures" / "marc"


def by_pymarc(xml: bytes) -> list[pymarc.Record]:
    return list(pymarc.parse_xml_to_array(io.BytesIO(xml), strict=False))


def same(mine: pymarc.Record, theirs: pymarc.Record) -> None:
    assert str(mine.leader) == str(theirs.leader)
    assert [(f.tag, f.is_control_field(), f.data) for f in mine.fields] == [
        (f.tag, f.is_control_field(), f.data) for f in theirs.fields
    ]
    assert [(f.indicators, f.subfields) for f in mine.fields if not f.is_control_field()] == [
        (f.indicators, f.subfields) for f in theirs.fields if not f.is_control_field()
    ]
    assert mine.as_marc() == theirs.as_marc()


def test_a_thousand_stamped_loc_payloads_read_as_pymarc_reads_them() -> None:
    with SAMPLE.open("rb") as fh:
        records = [r for r in pymarc.MARCReader(fh, to_unicode=True) if r is not None]
    assert len(records) == 1000
    for n, record in enumerate(records):
        xml = marcxml(stamp_record(record, f"key-{n}"))
        [theirs] = by_pymarc(xml)
        same(parse_marcxml(xml), theirs)


@pytest.mark.parametrize(
    "name", ["test_data.utf8.marc.xml", "collection.xml", "chalmers_bib_holdings_pair.xml"]
)
def test_other_marcxml_reads_as_pymarc_reads_it_or_is_refused_alike(name: str) -> None:
    data = (MARC_FIXTURES / name).read_bytes()
    theirs = by_pymarc(data)
    if len(theirs) != 1:
        with pytest.raises(Exception) as refused:
            parse_marcxml(data)
        assert "one readable MARCXML record" in str(refused.value)
        for record in theirs:  # each alone, without the namespace prefix
            xml = pymarc.record_to_xml(record, namespace=True)
            same(parse_marcxml(xml), by_pymarc(xml)[0])
        return
    same(parse_marcxml(data), theirs[0])


@pytest.mark.parametrize(
    "xml",
    [
        # A subfield holding markup, text in a datafield, an empty code, a prefixed namespace.
        b'<record><leader>00000nam a2200000 a 4500</leader><datafield tag="245" ind1="1" '
        b'ind2="0"><subfield code="a">A <b>bold</b> title</subfield></datafield></record>',
        b'<record><leader>00000nam a2200000 a 4500</leader><datafield tag="245">loose'
        b'<subfield code="">no code</subfield><subfield code="a">T</subfield></datafield>'
        b"</record>",
        b'<m:record xmlns:m="http://www.loc.gov/MARC21/slim"><m:leader>00000nam a2200000 a '
        b'4500</m:leader><m:controlfield tag="001">x1</m:controlfield></m:record>',
    ],
)
def test_unusual_markup_reads_as_pymarc_reads_it(xml: bytes) -> None:
    [theirs] = by_pymarc(xml)
    same(parse_marcxml(xml), theirs)


def test_a_leader_of_the_wrong_length_is_refused_as_pymarc_refuses_it() -> None:
    xml = b"<record><leader>short</leader></record>"
    with pytest.raises(pymarc.exceptions.RecordLeaderInvalid):
        by_pymarc(xml)
    with pytest.raises(pymarc.exceptions.RecordLeaderInvalid):
        parse_marcxml(xml)
