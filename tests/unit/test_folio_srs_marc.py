"""An SRS record whose parsed MARC cannot be read fails that record alone (ils_bad_answer).

Before, only a missing record raised an ILSError: content that was not JSON, or JSON that is
not MARC-in-JSON, raised whatever pymarc or json raised, which no caller catches, and failed
the whole commit task. The record: the first of traject's LoC test file (tests/fixtures/marc).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pymarc
import pytest

from catalog_sync.ils.errors import ILSBadAnswer
from catalog_sync.ils.folio.records import srs_marcxml

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "marc" / "test_data.utf8.mrc"
SRS_ID = "6b4ae089-e1ee-431f-af83-e1133f8e3da0"


@pytest.fixture(scope="module")
def marc_in_json() -> dict[str, Any]:
    with FIXTURE.open("rb") as handle:
        record = next(r for r in pymarc.MARCReader(handle) if r is not None)
    content: dict[str, Any] = json.loads(record.as_json())
    return content


def source(content: object) -> dict[str, Any]:
    return {"id": SRS_ID, "recordType": "MARC_BIB", "parsedRecord": {"content": content}}


def test_readable_marc_in_json_comes_back_as_marcxml(marc_in_json: dict[str, Any]) -> None:
    xml = srs_marcxml(source(marc_in_json))
    record = pymarc.parse_xml_to_array(io.BytesIO(xml))[0]
    assert record["001"].data == next(iter(marc_in_json["fields"][0].values()))
    assert len(record.fields) == len(marc_in_json["fields"])


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda c: None, id="no content"),
        pytest.param(lambda c: json.dumps(c)[:-40], id="cut JSON text"),
        pytest.param(lambda c: {**c, "fields": "not a list"}, id="fields not a list"),
        pytest.param(
            lambda c: {**c, "fields": [*c["fields"], {"245": {"subfields": "x"}}]},
            id="subfields not a list",
        ),
        pytest.param(lambda c: [], id="an empty collection"),
        pytest.param(lambda c: 42, id="a number, not a record"),
    ],
)
def test_unreadable_content_is_a_bad_answer_naming_the_record_not_its_content(
    marc_in_json: dict[str, Any], broken: Any
) -> None:
    with pytest.raises(ILSBadAnswer) as caught:
        srs_marcxml(source(broken(marc_in_json)))
    assert caught.value.reason == "ils_bad_answer"
    assert SRS_ID in str(caught.value)
    title = next(f["245"] for f in marc_in_json["fields"] if "245" in f)
    assert str(title["subfields"][0]["a"])[:12] not in str(caught.value)
