"""Unknown elements in the MARC namespace reject the record with a reason code (issue 15, 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.marc_support import MARC_FIXTURES, outcomes, vendor

from catalog_sync.marc.filescan import scan_file
from catalog_sync.marc.prepare import PreparedRecord, Rejection


@pytest.mark.parametrize("element", ["datafield", "subfield"])
def test_a_misspelled_marcxml_element_rejects_the_record_with_a_reason(
    tmp_path: Path, element: str
) -> None:
    source = (MARC_FIXTURES / "collection.xml").read_text(encoding="utf-8")
    # Misspell one element of the first record's 245 (start and end tag alike).
    prefix = "marc:" if "<marc:datafield" in source else ""
    start = source.index(f'{prefix}datafield tag="245"')
    end = source.index("</" + prefix + "datafield>", start)
    head, field, tail = source[:start], source[start:end], source[end:]
    if element == "datafield":
        field, tail = (
            field.replace("datafield", "datafeild", 1),
            tail.replace("datafield", "datafeild", 1),
        )
    else:
        field = field.replace("subfield", "subfeild")
    path = tmp_path / "misspelled.xml"
    path.write_text(head + field + tail, encoding="utf-8")
    results = outcomes(path)
    assert len(results) == 3
    first = results[0]
    assert isinstance(first, Rejection)
    assert first.reason == "marcxml_unknown_element"
    assert "feild" in first.detail
    assert all(isinstance(r, PreparedRecord) for r in results[1:])


def test_elements_of_another_namespace_are_not_marc_and_are_ignored(tmp_path: Path) -> None:
    source = (MARC_FIXTURES / "test_data.utf8.marc.xml").read_text(encoding="utf-8")
    path = tmp_path / "foreign.xml"
    marker = "<leader>" if "<leader>" in source else "<marc:leader>"
    path.write_text(
        source.replace(marker, '<x:note xmlns:x="urn:example">vendor</x:note>' + marker, 1),
        encoding="utf-8",
    )
    assert scan_file(path, vendor()).accepted == 30
