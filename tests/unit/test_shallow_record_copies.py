"""The commit path's record copies share fields instead of deep-copying a record, and still
never change the record they were made from: split_items and stamped_payload, on real records."""

from __future__ import annotations

import copy
from pathlib import Path

import pymarc
import pytest
from pymarc import Record

from catalog_sync.changes.stamp import STAMP_SOURCE, record_stamp, stamp_record
from catalog_sync.config import ItemMapping
from catalog_sync.marc.shallow import sharing_fields
from catalog_sync.pipeline.commit_job import marcxml
from catalog_sync.pipeline.create import stamped_payload
from catalog_sync.pipeline.items import split_items

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIRSI = ItemMapping(tag="999", barcode="i", home_library="m", item_type="t", purchase_price="p")


def records(path: Path) -> list[Record]:
    with path.open("rb") as fh:
        found = [r for r in pymarc.MARCReader(fh, to_unicode=True, force_utf8=True) if r]
    assert found, f"{path.name} holds no readable record"
    return found


def image(record: Record) -> tuple[str, list[str]]:
    """All a record holds, as text (as_marc() would write the length into its leader)."""
    return str(record.leader), [str(f) for f in record.fields]


@pytest.mark.parametrize(
    ("name", "mapping"),
    [
        ("privacy/sirsi_999_item_price.mrc", SIRSI),
        ("privacy/koha_952_item.mrc", ItemMapping()),
        ("marc/test_data.utf8.mrc", ItemMapping()),  # no item fields at all
    ],
)
def test_split_items_leaves_the_record_as_read_and_gives_the_bib_deepcopy_gave(
    name: str, mapping: ItemMapping
) -> None:
    for record in records(FIXTURES / name):
        before = image(record)
        by_deepcopy = copy.deepcopy(record)
        by_deepcopy.remove_fields(mapping.tag)

        bib, _ = split_items(record, mapping)
        marcxml(bib)
        bib.as_marc()  # writes the length into the bib's leader, not the record's

        assert image(record) == before
        assert marcxml(bib) == marcxml(by_deepcopy)
        assert not bib.get_fields(mapping.tag)


@pytest.mark.parametrize(
    "name",
    ["marc/test_data.utf8.mrc", "privacy/loc_acquisition_provenance.mrc", "marc/one.dat"],
)
def test_stamped_payload_is_the_deepcopied_payload_and_the_record_keeps_no_stamp(
    name: str,
) -> None:
    for record in records(FIXTURES / name):
        before = image(record)

        payload = stamped_payload(record, "key-1")

        assert payload == marcxml(stamp_record(copy.deepcopy(record), "key-1"))
        assert image(record) == before
        assert record_stamp(record) is None
        assert STAMP_SOURCE.encode() + b"key-1" in payload


def test_a_second_stamp_replaces_the_first_in_the_payload_only() -> None:
    [record, *_] = records(FIXTURES / "marc" / "test_data.utf8.mrc")
    stamp_record(record, "older")
    before = image(record)

    payload = stamped_payload(record, "newer")

    assert image(record) == before and record_stamp(record) == "older"
    assert payload.count(STAMP_SOURCE.encode()) == 1 and b"newer" in payload


def test_a_copy_sharing_fields_changes_apart_from_its_record() -> None:
    [record, *_] = records(FIXTURES / "marc" / "test_data.utf8.mrc")
    before = image(record)

    other = sharing_fields(record)
    other.remove_fields("245")
    other.leader[5] = "d"  # Leader is mutable in place

    assert image(record) == before
    assert other.get_fields("245") == [] and record.get_fields("245") != []
