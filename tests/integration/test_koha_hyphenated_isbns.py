"""A Koha that keeps an ISBN hyphenated, as catalogued, is still matched by a vendor's bare
number: the search carries each ISBN hyphenated as the ISBN agency's ranges place the hyphens.

Record: Princeton's Alma export `broken_indicator.xml` (tests/fixtures/marc/PROVENANCE.md), whose
020 $a is "82-15-06996-7" as its library catalogued it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pymarc
import pytest

from catalog_sync.changes.identifiers import isbn13
from catalog_sync.ils import ILSSettings
from catalog_sync.ils.koha import KohaAdapter
from catalog_sync.pipeline.commit_job import marcxml
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(60)
RECORD = Path(__file__).resolve().parents[1] / "fixtures" / "marc" / "broken_indicator.xml"
SETTINGS = ILSSettings(name="ils_hyphens", base_url="", username="catalog", password="catalog-demo")


def test_a_vendors_bare_isbn_finds_the_copy_koha_holds_hyphenated(
    emulator: ServiceProcess,
) -> None:
    record = pymarc.parse_xml_to_array(str(RECORD))[0]
    catalogued = record["020"]["a"]
    assert catalogued == "82-15-06996-7"
    bare = isbn13(catalogued)
    assert bare == "9788215069968"  # what a vendor's 020 "9788215069968" normalises to
    settings = SETTINGS.model_copy(update={"base_url": emulator.url})

    async def load_then_search() -> tuple[str, list[str]]:
        async with KohaAdapter(settings) as ils:
            biblio_id = await ils.create_biblio(marcxml(record), correlation_id="hyphen-0")
            found = await ils.find_by_numbers({"isbn": [bare]}, correlation_id="hyphen-1")
        return biblio_id, [c.biblio_id for c in found]

    biblio_id, found = asyncio.run(load_then_search())
    assert found == [biblio_id]
    # Koha kept the number as catalogued, so no bare-digit pattern is inside its column.
    held = httpx.get(
        f"{emulator.url}/api/v1/biblios/{biblio_id}",
        auth=("catalog", "catalog-demo"),
        headers={"Accept": "application/json"},
        timeout=10,
    ).json()
    assert held["isbn"] == "82-15-06996-7"
