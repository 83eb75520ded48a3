"""The DAG end to end with a real shelf-ready delivery: its 945 item fields become Koha items.

tests/fixtures/privacy/vendor_shelfready_priced_9xx.mrc is three records of a real vendor file
(PROVENANCE.md there): each carries a 945 item ($i barcode, $l location) and a 960 order
price. The vendor maps 945 in vendors.yaml; the bibs reach Koha without it.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import httpx
import pymarc
import pytest

from tests.end_to_end.harness import DemoRun, use_vendors

pytestmark = pytest.mark.slow

FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "privacy"
    / "vendor_shelfready_priced_9xx.mrc"
)
AUTH = ("catalog", "catalog-demo")


def file_barcodes() -> list[str]:
    with FIXTURE.open("rb") as fh:
        return sorted(r["945"]["i"] for r in pymarc.MARCReader(fh) if r is not None)


def test_a_shelf_ready_delivery_loads_its_bibs_and_their_items_once(
    demo: DemoRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_vendors(tmp_path, monkeypatch, {
        "shelfready": {
            "description": "Shelf-ready books with their items in 945",
            "source": {"kind": "local", "inbox": "inbox/shelfready"},
            "items": {
                "tag": "945", "barcode": "i", "home_library": "l", "holding_library": "l",
                "item_type": None, "callnumber": None, "purchase_price": None,
                "replacement_price": None, "copy_number": None, "public_notes": None,
                "internal_notes": None,
            },
        }
    })  # fmt: skip
    inbox = demo.home / "inbox" / "shelfready"
    inbox.mkdir(parents=True)
    shutil.copy(FIXTURE, inbox / FIXTURE.name)

    assert demo.run(vendor="shelfready").state == "success"

    summary = demo.summary("shelfready")
    assert (summary["records"], summary["created"], summary["failed"]) == (3, 3, 0)
    items = httpx.get(f"{demo.emulator.url}/api/v1/items", auth=AUTH, timeout=10).json()
    assert sorted(i["external_id"] for i in items) == file_barcodes()
    assert {i["home_library_id"] for i in items} == {"fhgen"}
    assert len({i["biblio_id"] for i in items}) == 3  # one item on each biblio
    for biblio in demo.stored():
        marc = httpx.get(
            f"{demo.emulator.url}/api/v1/biblios/{biblio['biblio_id']}",
            headers={"Accept": "application/marcxml+xml"},
            auth=AUTH,
            timeout=10,
        ).content
        record = pymarc.parse_xml_to_array(io.BytesIO(marc))[0]
        assert record.get_fields("945") == [] and record["960"] is not None
    latest = demo.home / "reports" / "shelfready" / "latest"
    report = json.loads((latest / "report.json").read_text())
    assert sum(c["items_created"] for c in report["commits"]) == 3
    assert "items: 3 created, 0 updated, 0 deleted" in (latest / "report.txt").read_text()
