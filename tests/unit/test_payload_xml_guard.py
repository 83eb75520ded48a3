"""A payload an ILS is sent is well-formed XML, or its record fails alone (payload_not_xml).

Record: LoC BooksAll's record whose 001 ends in a subfield delimiter
(tests/fixtures/marc/PROVENANCE.md), read with pymarc as it stands, before validation drops it.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pymarc
import pytest

from catalog_sync.pipeline.commit_job import marcxml
from catalog_sync.pipeline.outcomes import PAYLOAD_NOT_XML, PayloadNotXml

FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "marc"
    / "loc-booksall-001-subfield-delimiter.mrc"
)


def records() -> list[pymarc.Record]:
    with FIXTURE.open("rb") as fh:
        return [r for r in pymarc.MARCReader(fh, to_unicode=True, force_utf8=True) if r]


def test_a_record_xml_cannot_carry_is_refused_before_any_ils_sees_it() -> None:
    record = records()[0]
    assert record["001"].data.endswith("\x1f")  # as delivered

    with pytest.raises(PayloadNotXml, match="not well-formed") as caught:
        marcxml(record)
    assert caught.value.reason == PAYLOAD_NOT_XML


def test_the_same_record_without_the_stray_delimiter_is_sent_as_it_serialises() -> None:
    record = records()[0]
    record["001"].data = record["001"].data.rstrip("\x1f")

    payload = marcxml(record)

    assert payload == pymarc.record_to_xml(record, namespace=True)
    ElementTree.fromstring(payload)
