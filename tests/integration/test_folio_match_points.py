"""FOLIO matching by OCLC number and instance HRID: several values in one CQL query, verified.

Real parts: the FOLIO adapter against the FOLIO emulator over HTTP; the emulator's own request
counter says how many searches the look-ups cost.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pymarc
import pytest
from pymarc import Field, Indicators, Record, Subfield
from tests.folio_emulator import Okapi, settings

from catalog_sync.changes.matching import (
    BATCH_RECORDS,
    _by_index,
    find_match,
    match_numbers,
    prefetch_candidates,
)
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import open_client
from catalog_sync.ils.folio.records import match_clauses
from catalog_sync.ils.folio.reference import IDENTIFIER_TYPES, INSTANCE_TYPES
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(120)
OCLC = IDENTIFIER_TYPES["OCLC"]
SYSTEM = IDENTIFIER_TYPES["System control number"]
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "loc-books-2016-part01-first1000.mrc"


def put_instance(okapi: Okapi, title: str, *identifiers: tuple[str, str]) -> dict[str, object]:
    body = {
        "id": str(uuid.uuid4()),
        "source": "MARC",
        "title": title,
        "instanceTypeId": INSTANCE_TYPES["text"],
        "identifiers": [{"identifierTypeId": t, "value": v} for t, v in identifiers],
    }
    response = okapi.post("/instance-storage/instances", body)
    assert response.status_code == 201, response.text
    stored: dict[str, object] = response.json()
    return stored


def vendor_record(control: str, *oclc: str) -> Record:
    record = Record()
    record.add_field(Field(tag="001", data=control))
    for value in oclc:
        record.add_field(
            Field(tag="035", indicators=Indicators(" ", " "), subfields=[Subfield("a", value)])
        )
    return record


def requests(folio: ServiceProcess) -> int:
    return int(EmulatorControl(folio.url).counters().get("requests", 0))


def test_oclc_numbers_match_in_every_form_folio_keeps_them_in_one_query(
    folio: ServiceProcess, okapi: Okapi
) -> None:
    # Today's default rules: type OCLC with the prefix; older rules and migrations: a System
    # control number "(OCoLC)..." or a bare OCLC value; OCLC's ocm/ocn padding either way.
    a = put_instance(okapi, "A", (OCLC, "(OCoLC)ocm00012345"))
    b = put_instance(okapi, "B", (SYSTEM, "(OCoLC)987654321"))
    c = put_instance(okapi, "C", (OCLC, "55555"))
    put_instance(okapi, "not OCLC", (SYSTEM, "(DLC)12345"), (OCLC, "(OCoLC)123456"))
    wanted = {"oclc_number": ["12345", "987654321", "55555"]}
    before = requests(folio)

    async def body() -> list[tuple[str, frozenset[str]]]:
        async with open_client(settings(folio.url)) as ils:
            found = await ils.find_by_numbers(wanted, correlation_id="match-oclc")
        return [(c.biblio_id, c.numbers["oclc_number"]) for c in found]

    found = asyncio.run(body())

    assert sorted(found) == sorted(
        [(a["id"], {"12345"}), (b["id"], {"987654321"}), (c["id"], {"55555"})]
    )
    assert requests(folio) - before == 2  # the login, then one search for all three


def test_hrid_and_oclc_points_of_many_records_share_one_search(
    folio: ServiceProcess, okapi: Okapi
) -> None:
    by_hrid = put_instance(okapi, "exported by FOLIO")
    by_oclc = put_instance(okapi, "catalogued elsewhere", (OCLC, "(OCoLC)ocn123456789"))
    records = {
        "k1": vendor_record(str(by_hrid["hrid"])),
        "k2": vendor_record("vendor-42", "(OCoLC)123456789"),
        "k3": vendor_record("vendor-43", "(OCoLC)777"),
    }
    points = ["hrid", "oclc"]
    wanted = {key: match_numbers(record, points) for key, record in records.items()}
    assert wanted["k1"] == {"hrid": [by_hrid["hrid"]]}
    before = requests(folio)

    async def body() -> dict[str, str | None]:
        async with open_client(settings(folio.url)) as ils:
            found = await prefetch_candidates(wanted, ils, correlation_id="match-many")

            async def free(_: str) -> bool:
                return False

            return {
                key: (
                    await find_match(
                        record, points, ils, correlation_id=key, taken=free,
                        prefetched=found[key],
                    )
                ).ils_id
                for key, record in records.items()
            }  # fmt: skip

    matched = asyncio.run(body())

    assert matched == {"k1": by_hrid["id"], "k2": by_oclc["id"], "k3": None}
    assert requests(folio) - before == 2  # the login, then one search for three records


def test_a_chunks_creates_are_searched_as_many_records_a_request_as_folio_takes(
    folio: ServiceProcess, okapi: Okapi
) -> None:
    # Koha's 40 records a search is a URL bound; FOLIO's retrieve carries its CQL in the body,
    # so 200 LoC records (ISBN/ISSN/LCCN: ~2.5 clauses each) cost one search, not five.
    with SAMPLE.open("rb") as fh:
        records = [r for r in pymarc.MARCReader(fh, to_unicode=True) if r is not None][:200]
    points = ["020", "022", "010"]
    wanted = {f"k{n}": match_numbers(r, points) for n, r in enumerate(records)}
    clauses = sum(len(match_clauses(_by_index(numbers))) for numbers in wanted.values())
    assert clauses <= 500 and len(records) > BATCH_RECORDS  # one FOLIO query; 5 Koha searches
    key, first = next((k, v) for k, v in wanted.items() if "010" in v)
    held = put_instance(okapi, "already in FOLIO", (IDENTIFIER_TYPES["LCCN"], first["010"][0]))
    before = requests(folio)

    async def body() -> dict[str, list[str]]:
        async with open_client(settings(folio.url)) as ils:
            found = await prefetch_candidates(wanted, ils, correlation_id="match-chunk")
        return {k: [c.biblio_id for c in v] for k, v in found.items() if v}

    found = asyncio.run(body())

    assert found == {key: [held["id"]]}
    assert requests(folio) - before == 2  # the login, then one search for 200 records
