"""A shelf-ready vendor loading into FOLIO end to end: bibs become instances, their 945 item
fields FOLIO items under a holdings per location, and a bib already in FOLIO is found by its
OCLC number.

tests/fixtures/privacy/vendor_shelfready_priced_9xx.mrc is three records of a real vendor file
from FOLIO's own mod-data-import tests (PROVENANCE.md there): each carries a 945 item ($i
barcode, $l location) and an OCLC number in 035. Real parts: dag.test(), Redis, the FOLIO
emulator over HTTP; FOLIO's state is read through its storage APIs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pymarc
import pytest

from catalog_sync.config import load_vendors
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import open_client
from catalog_sync.pipeline.commit_job import marcxml
from tests.end_to_end.harness import use_vendors
from tests.end_to_end.test_folio_end_to_end import (
    Folio,
    folio_demo,  # noqa: F401 (the fixture)
)
from tests.folio_emulator import settings

pytestmark = pytest.mark.slow

FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "privacy"
    / "vendor_shelfready_priced_9xx.mrc"
)
VENDOR = "shelfready_folio"


# The shelf-ready 945 as these deliveries use it: barcode $i, location code $l, and the item
# and loan types FOLIO needs that the 945 does not carry.
ITEMS_945 = {
    "tag": "945", "barcode": "i", "home_library": "l", "holding_library": None,
    "item_type": None, "callnumber": None, "purchase_price": None,
    "replacement_price": None, "copy_number": None, "public_notes": None,
    "internal_notes": None, "default_item_type": "book",
    "default_loan_type": "Can circulate",
}  # fmt: skip


def file_records() -> list[pymarc.Record]:
    with FIXTURE.open("rb") as fh:
        return [r for r in pymarc.MARCReader(fh) if r is not None]


def query_all(folio: Folio, path: str, key: str) -> list[dict[str, Any]]:
    response = folio.http.get(
        path, params={"query": "cql.allRecords=1", "limit": 1000}, headers=folio.headers
    )
    response.raise_for_status()
    return list(response.json()[key])


def run() -> Any:
    from catalog_sync_airflow.factory import build_vendor_dag

    return build_vendor_dag(load_vendors()[VENDOR]).test(run_conf={"force": True})


def report(folio: Folio) -> dict[str, Any]:
    latest = folio.home / "reports" / VENDOR / "latest" / "report.json"
    return dict(json.loads(latest.read_text()))


def test_shelf_ready_items_load_into_folio_once_and_a_held_bib_is_matched_by_oclc(
    folio_demo: Folio,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_vendors(tmp_path, monkeypatch, {
        VENDOR: {
            "description": "Shelf-ready books with their items in 945, into FOLIO",
            "ils_conn_id": "ils_folio",
            "source": {"kind": "local", "inbox": f"inbox/{VENDOR}"},
            "match_points": ["oclc"],  # the held bib shares its ISBN too: OCLC alone decides
            "items": ITEMS_945,
        }
    })  # fmt: skip
    # The library's location for the vendor's $l code, as set up in FOLIO's Settings.
    added = httpx.post(
        f"{folio_demo.proc.url}/_emulator/reference",
        json={"locations": [{"code": "fhgen", "name": "Fairhaven general collection"}]},
        timeout=10,
    )
    [location_id] = added.json()["locations"]
    records = file_records()
    # The first bib is in FOLIO already, loaded by someone else: same OCLC number, own 001.
    held = pymarc.Record(leader=records[0].leader, force_utf8=True)
    held.fields = [f for f in records[0].fields if f.tag != "945"]
    held["001"].data = "folio-own-1"

    async def preload() -> str:
        async with open_client(settings(folio_demo.proc.url)) as ils:
            return await ils.create_biblio(marcxml(held), correlation_id="preload")

    matched_id = asyncio.run(preload())
    inbox = folio_demo.home / "inbox" / VENDOR
    inbox.mkdir(parents=True)
    shutil.copy(FIXTURE, inbox / FIXTURE.name)

    assert run().state == "success"

    summary = report(folio_demo)["summary"]
    assert (summary["records"], summary["created"], summary["failed"], summary["held"]) == (
        3, 2, 0, 0,
    )  # fmt: skip
    instances = query_all(folio_demo, "/instance-storage/instances", "instances")
    assert len(instances) == 3 and matched_id in {i["id"] for i in instances}
    items = query_all(folio_demo, "/item-storage/items", "items")
    assert sorted(i["barcode"] for i in items) == sorted(r["945"]["i"] for r in records)
    holdings = query_all(folio_demo, "/holdings-storage/holdings", "holdingsRecords")
    assert {h["permanentLocationId"] for h in holdings} == {location_id}
    assert sorted(h["instanceId"] for h in holdings) == sorted(i["id"] for i in instances)
    by_holdings = {h["id"]: h["instanceId"] for h in holdings}
    matched_item = next(i for i in items if i["barcode"] == records[0]["945"]["i"])
    assert by_holdings[matched_item["holdingsRecordId"]] == matched_id
    assert sum(c["items_created"] for c in report(folio_demo)["commits"]) == 3
    for instance in instances:  # the bib reached FOLIO without its item field
        assert folio_demo.marc(instance["id"]).get_fields("945") == []

    writes = EmulatorControl(folio_demo.proc.url).counters()["writes"]
    assert run().state == "success"  # the same file again: no item made twice, nothing written

    assert report(folio_demo)["summary"]["unchanged"] == 3
    assert len(query_all(folio_demo, "/item-storage/items", "items")) == 3
    assert EmulatorControl(folio_demo.proc.url).counters()["writes"] == writes


SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "loc-books-2016-part01-first1000.mrc"
DELIVERY = 200


def delivery(path: Path, location: str) -> list[str]:
    """The sample's first DELIVERY records, each with one 945 item at `location`; barcodes."""
    barcodes = []
    with SAMPLE.open("rb") as fh, path.open("wb") as out:
        for n, record in zip(range(DELIVERY), pymarc.MARCReader(fh), strict=False):
            assert record is not None
            barcodes.append(f"39015{n:09d}")
            record.add_field(
                pymarc.Field(
                    tag="945",
                    indicators=pymarc.Indicators(" ", " "),
                    subfields=[pymarc.Subfield("i", barcodes[-1]), pymarc.Subfield("l", location)],
                )
            )
            out.write(record.as_marc())
    return barcodes


def test_a_delivery_of_hundreds_of_items_costs_a_fraction_of_a_request_per_item(
    folio_demo: Folio,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One request per item (or four, holdings and look-ups included) would be 200 or more: the
    # items of the records a commit task has in flight go out in batches (ils/folio/itembatch).
    use_vendors(tmp_path, monkeypatch, {VENDOR: {
        "description": "200 books with one 945 item each, into FOLIO",
        "ils_conn_id": "ils_folio", "records_per_chunk": 250,
        "source": {"kind": "local", "inbox": f"inbox/{VENDOR}"},
        "items": ITEMS_945,
    }})  # fmt: skip
    added = httpx.post(
        f"{folio_demo.proc.url}/_emulator/reference",
        json={"locations": [{"code": "fhgen", "name": "General"}, {"code": "fhref", "name": "R"}]},
        timeout=10,
    )
    general, reference = added.json()["locations"]
    inbox = folio_demo.home / "inbox" / VENDOR
    inbox.mkdir(parents=True)
    figures = []
    for name, location, where in (("new", "fhgen", general), ("moved", "fhref", reference)):
        for old in inbox.iterdir():
            old.unlink()
        barcodes = delivery(inbox / f"{name}.mrc", location)

        assert run().state == "success"

        figure = report(folio_demo)["requests_per_written_record"]["item"]
        figures.append(figure)
        assert figure["written"] == DELIVERY and figure["requests"] < DELIVERY / 2, figure
        items = query_all(folio_demo, "/item-storage/items", "items")
        assert sorted(i["barcode"] for i in items) == barcodes  # each once, none twice
        holdings = {
            h["id"]: h
            for h in query_all(folio_demo, "/holdings-storage/holdings", "holdingsRecords")
        }
        assert {holdings[i["holdingsRecordId"]]["permanentLocationId"] for i in items} == {where}
    print("requests per item, new then moved:", [f["per_written"] for f in figures])
