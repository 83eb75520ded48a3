"""Vendor item fields become Koha items on the real emulator: out of the bib payload, through
/biblios/{id}/items exactly once (the barcode is the key), counted apart from the records.

The record is a real Koha export (tests/fixtures/privacy/koha_952_item.mrc: one 952 with
barcode $p, libraries $a/$b, item type $y, call number $o and price $g).
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pymarc
import pytest
from pymarc import Field, Record, Subfield
from tests.integration.test_commit import (  # noqa: F401
    BLANK,
    PASSWORD,
    USER,
    Feed,
    control,
    deleted,
    feed,
    ils,
    ils_record,
    sample_records,
)

from catalog_sync.config import ItemMapping, check_item_prices_masked
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSSettings
from catalog_sync.ils.koha import KohaAdapter
from catalog_sync.models import CommitReport
from catalog_sync.pipeline.commit import commit_changes
from catalog_sync.privacy import Masker, load_policy

# ruff: noqa: F811

pytestmark = pytest.mark.timeout(120)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "privacy" / "koha_952_item.mrc"
BARCODE = "35609000970837"  # the fixture's 952 $p


def koha_record() -> Record:
    with FIXTURE.open("rb") as fh:
        record = next(iter(pymarc.MARCReader(fh, to_unicode=True)))
    assert record is not None
    return record


def items_of(url: str, biblio_id: int | str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{url}/api/v1/biblios/{biblio_id}/items", auth=(USER, PASSWORD), timeout=10
    )
    response.raise_for_status()
    return list(response.json())


def with_item(record: Record, barcode: str, price: str = "12.50", library: str = "BC") -> Record:
    more = copy.deepcopy(record)
    more.add_ordered_field(
        Field(
            "952",
            BLANK,
            [
                Subfield("a", library),
                Subfield("b", library),
                Subfield("g", price),
                Subfield("o", "861.42 C955"),
                Subfield("p", barcode),
                Subfield("y", "LG"),
            ],
        )
    )
    return more


def only_biblio_id(control: EmulatorControl) -> int:
    (biblio,) = control.biblios()
    return int(biblio["biblio_id"])


def test_koha_952_items_become_items_and_never_travel_in_the_bib(
    feed: Feed, control: EmulatorControl
) -> None:
    report, _ = feed.load([koha_record()])

    biblio_id = only_biblio_id(control)
    (item,) = items_of(feed.ils_url, biblio_id)
    assert (report.created, report.items_created, report.items_updated) == (1, 1, 0)
    assert item["external_id"] == BARCODE
    assert (item["home_library_id"], item["holding_library_id"]) == ("BC", "BC")
    assert (item["item_type_id"], item["callnumber"]) == ("LG", "861.42 C955")
    assert item["purchase_price"] == 1.0
    # The bib Koha holds has no 952 (our payload carried none), the item is in the items table.
    assert ils_record(feed.ils_url, biblio_id).get_fields("952") == []
    assert [(w["method"], w["resource"]) for w in control.writes()] == [
        ("POST", "biblio"),
        ("POST", "item"),
    ]

    again, _ = feed.load([koha_record()])  # the same delivery again: nothing is written
    assert (again.unchanged, again.items_created, again.items_updated) == (1, 0, 0)
    assert len(control.writes()) == 2


def test_a_delivery_adding_an_item_adds_it_without_rewriting_the_bib(
    feed: Feed, control: EmulatorControl
) -> None:
    feed.load([koha_record()])
    biblio_id = only_biblio_id(control)
    seq = len(control.writes())

    report, _ = feed.load([with_item(koha_record(), "35609000970845")])

    writes = control.writes()[seq:]
    assert [(w["method"], w["resource"]) for w in writes] == [("POST", "item")]
    assert (report.unchanged, report.updated, report.items_created) == (1, 0, 1)
    barcodes = sorted(i["external_id"] for i in items_of(feed.ils_url, biblio_id))
    assert barcodes == [BARCODE, "35609000970845"]

    # A changed price is an item update (PUT), still no bib write.
    repriced = with_item(koha_record(), "35609000970845", price="14.00")
    report, _ = feed.load([repriced])
    writes = control.writes()[seq + 1 :]
    assert [(w["method"], w["resource"]) for w in writes] == [("PUT", "item")]
    assert (report.items_created, report.items_updated, report.updated) == (0, 1, 0)
    second = next(i for i in items_of(feed.ils_url, biblio_id) if i["external_id"] != BARCODE)
    assert second["purchase_price"] == 14.0


def test_a_barcode_of_another_biblio_fails_the_record_before_anything_is_written(
    feed: Feed, control: EmulatorControl
) -> None:
    first, other = sample_records(2)
    feed.load([with_item(first, "39999000000077")])
    seq = len(control.writes())

    report, _ = feed.load([with_item(first, "39999000000077"), with_item(other, "39999000000077")])

    assert report.failures == {"item_barcode_elsewhere": 1}
    assert control.writes()[seq:] == []  # not even the other record's bib
    assert len(control.biblios()) == 1


def test_an_item_without_a_barcode_fails_its_record_with_a_reason_and_the_rest_goes_on(
    feed: Feed, control: EmulatorControl
) -> None:
    good, bad = sample_records(2)
    no_barcode = with_item(bad, "")
    no_barcode["952"].delete_subfield("p")

    report, _ = feed.load([with_item(good, "39999000000078"), no_barcode])

    assert (report.created, report.items_created) == (1, 1)
    assert report.failures == {"item_no_barcode": 1}
    assert len(control.biblios()) == 1


def test_a_lost_answer_to_an_item_post_is_recovered_by_its_barcode_not_resent(
    feed: Feed, control: EmulatorControl
) -> None:
    feed.load(sample_records(1))
    biblio_id = str(only_biblio_id(control))
    settings = ILSSettings(name="ils_test", base_url=feed.ils_url, username=USER, password=PASSWORD)

    async def add() -> Any:
        async with KohaAdapter(settings, None) as client:
            # Every answer is dropped after Koha applied the request, until the faults clear.
            control.set_faults(drop_rate=1, drop_after_share=1)
            task = asyncio.create_task(
                client.add_item(
                    biblio_id,
                    {"external_id": "39999000000079", "home_library_id": "BC"},
                    correlation_id="lost-item",
                )
            )
            await asyncio.sleep(0.3)
            control.clear_faults()
            return await task

    item = asyncio.run(add())

    held = items_of(feed.ils_url, biblio_id)
    assert [i["item_id"] for i in held] == [int(item.item_id)]
    assert control.counters()["dropped_after_apply"] >= 1
    assert [w["resource"] for w in control.writes()].count("item") == 1


class Died(BaseException):
    """The worker's death right after Koha applied an item POST (SIGKILL in the crash tests):
    nothing after it runs, the ledger keeps the record pending."""


class DiesAfterItemPost(KohaAdapter):
    async def add_item(self, *args: Any, **kwargs: Any) -> Any:
        await super().add_item(*args, **kwargs)
        raise Died


def commit_with(feed: Feed, records: list[Record], adapter: type[KohaAdapter]) -> CommitReport:
    """One try of the chunk's commit with `adapter` (run id as the Feed's next run)."""
    feed.runs += 1
    run_id = f"run-{feed.runs}"
    (chunk,) = feed.stage(records, run_id)
    settings = ILSSettings(name="ils_test", base_url=feed.ils_url, username=USER, password=PASSWORD)

    async def commit() -> CommitReport:
        async with adapter(settings, None) as client:
            return await commit_changes(
                chunk.chunk, chunk.staging_path, feed.vendor, client, feed.state, run_id
            )

    return asyncio.run(commit())


def test_a_rerun_after_a_crash_between_item_post_and_ledger_creates_nothing_twice(
    feed: Feed, control: EmulatorControl
) -> None:
    record = with_item(koha_record(), "35609000970852")
    with pytest.raises(Died):
        commit_with(feed, [record], DiesAfterItemPost)
    assert len(items_of(feed.ils_url, only_biblio_id(control))) == 1  # died after the first

    # The retry (Airflow's, same run) finds the biblio by its stamp and the item by barcode.
    feed.runs -= 1
    report = commit_with(feed, [record], KohaAdapter)

    biblio_id = only_biblio_id(control)
    barcodes = sorted(i["external_id"] for i in items_of(feed.ils_url, biblio_id))
    assert barcodes == [BARCODE, "35609000970852"]
    assert (report.created, report.failed, report.items_created) == (1, 0, 1)
    posts = Counter((w["method"], w["resource"]) for w in control.writes())
    assert posts == Counter({("POST", "biblio"): 1, ("POST", "item"): 2})


def test_a_bib_with_items_is_deleted_only_when_the_vendor_says_its_items_go_too(
    tmp_path: Path, feed: Feed, control: EmulatorControl
) -> None:
    feed.load([koha_record()])
    biblio_id = only_biblio_id(control)

    kept, _ = feed.load([deleted(koha_record())])
    assert kept.reviews == {"items_attached": 1}
    assert len(items_of(feed.ils_url, biblio_id)) == 1

    mapping = feed.vendor.items.model_copy(update={"delete_with_items": True})
    feed.vendor = feed.vendor.model_copy(update={"items": mapping})
    gone, _ = feed.load([deleted(koha_record())])
    assert (gone.deleted, gone.items_deleted) == (1, 1)
    assert control.biblios() == []


def test_an_item_price_reaches_the_ils_only_and_an_unmasked_price_mapping_is_refused(
    tmp_path: Path, feed: Feed, control: EmulatorControl
) -> None:
    mapping = ItemMapping(
        tag="952", barcode="p", home_library="a", holding_library="b", purchase_price="g"
    )
    feed.vendor = feed.vendor.model_copy(update={"items": mapping})
    canary = "7319.41"  # planted in memory as the item's price
    record = with_item(sample_records(1)[0], "39999000000080", price=canary)
    masker = Masker(load_policy(), b"k" * 32)

    report, diffs = feed.load([record], masker=masker)

    (item,) = items_of(feed.ils_url, only_biblio_id(control))
    assert item["purchase_price"] == float(canary)  # the ILS payload carries the real price
    assert report.items_created == 1
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and canary.encode() in p.read_bytes()]
    landed = [p for p in leaks if p.parts[-3] == "landing"]  # the vendor's own delivery
    assert leaks == landed and str(diffs).find(canary) == -1

    # A vendor mapping its price to a subfield the PII policy does not mask is refused.
    unmasked = feed.vendor.model_copy(
        update={"items": ItemMapping(tag="949", purchase_price="c", replacement_price=None)}
    )
    with pytest.raises(ValueError, match=r"949 \$c is not masked"):
        check_item_prices_masked(unmasked)
