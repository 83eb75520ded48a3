"""Item fields split from real vendor records into Koha item properties, or refused."""

from __future__ import annotations

from pathlib import Path

import pymarc
import pytest
from pymarc import Record

from catalog_sync.config import ItemMapping
from catalog_sync.pipeline.items import ItemProblem, split_items

PRIVACY = Path(__file__).resolve().parents[1] / "fixtures" / "privacy"
# Sirsi/Symphony's 999: $i barcode, $m library, $a call number, $t item type, $p price.
SIRSI = ItemMapping(
    tag="999",
    barcode="i",
    home_library="m",
    holding_library=None,
    item_type="t",
    callnumber="a",
    purchase_price="p",
    replacement_price=None,
    copy_number=None,
    public_notes=None,
    internal_notes=None,
)


def first(name: str) -> Record:
    with (PRIVACY / name).open("rb") as fh:
        record = next(iter(pymarc.MARCReader(fh, to_unicode=True)))
    assert record is not None
    return record


def test_a_sirsi_999_becomes_an_item_and_leaves_the_bib() -> None:
    record = first("sirsi_999_item_price.mrc")

    bib, items = split_items(record, SIRSI)

    assert items == [
        {
            "external_id": "36105033811451",
            "home_library_id": "GREEN",
            "item_type_id": "STKS-MONO",
            "callnumber": "HC241.25 .I4 D47",
            "purchase_price": 40.0,  # "$40.00" as Koha's number
        }
    ]
    assert bib.get_fields("999") == [] and record.get_fields("999") != []
    assert [f.tag for f in bib.fields] == [f.tag for f in record.fields if f.tag != "999"]


def test_koha_952_defaults_map_the_koha_export() -> None:
    _, (item,) = split_items(first("koha_952_item.mrc"), ItemMapping())

    assert item["external_id"] == "35609000970837"
    assert (item["home_library_id"], item["holding_library_id"]) == ("BC", "BC")
    assert item["purchase_price"] == 1.0 and item["copy_number"] == "1"


@pytest.mark.parametrize(
    ("code", "value", "reason"),
    [
        ("i", None, "item_no_barcode"),
        ("m", None, "item_no_library"),
        ("p", "QZCANARY00001Q", "item_bad_price"),
    ],
)
def test_a_bad_item_fails_its_record_without_the_value_in_the_message(
    code: str, value: str | None, reason: str
) -> None:
    record = first("sirsi_999_item_price.mrc")
    field = record["999"]
    field.delete_subfield(code)
    if value is not None:
        field.add_subfield(code, value)

    with pytest.raises(ItemProblem) as refused:
        split_items(record, SIRSI)

    assert refused.value.reason == reason
    assert "QZCANARY" not in str(refused.value)


def test_two_items_with_one_barcode_are_refused() -> None:
    record = first("sirsi_999_item_price.mrc")
    record.add_ordered_field(record["999"])

    with pytest.raises(ItemProblem) as refused:
        split_items(record, SIRSI)

    assert refused.value.reason == "item_duplicate_barcode"
