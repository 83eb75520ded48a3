"""Match searches longer than the web server in front of Koha accepts.

Koha's packages serve the API through Apache, which answers 414 to a request line over 8190
bytes (LimitRequestLine) before Koha sees it; the emulator does the same (emulator/httpd.py).
A batch of 40 records' ISBNs is about 4 KB of `q` with one ISBN each and twice that with two,
so the client splits a search whose URL would not fit, and halves one a stricter proxy still
refuses. Records: LoC's open-access books (public domain) from the shared corpus, the first
that carry an ISBN.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pymarc
import pytest

from catalog_sync.changes.identifiers import record_identifiers
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.emulator.httpd import LIMIT_REQUEST_LINE
from catalog_sync.ils import ILSSettings
from catalog_sync.ils.koha import KohaAdapter
from catalog_sync.pipeline.commit_job import marcxml
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(180)
EmulatorFactory = Callable[..., ServiceProcess]
USER, PASSWORD = "catalog", "catalog-demo"
LOC_FILE = "loc-marc-open-access/BooksAll.2016.part01.utf8.first5000.mrc"
Sample = list[tuple[pymarc.Record, list[str]]]


@pytest.fixture(scope="module")
def with_isbns(corpus_dir: Path) -> Sample:
    path = corpus_dir / LOC_FILE
    if not path.exists():
        pytest.skip(f"{path} not in the shared corpus")
    return records_with_isbns(path, 120)


def records_with_isbns(path: Path, count: int) -> Sample:
    """The first `count` records of `path` that carry an ISBN, with their normalised ISBNs."""
    found: Sample = []
    with path.open("rb") as handle:
        for record in pymarc.MARCReader(handle, to_unicode=True, force_utf8=True):
            isbns = record_identifiers(record)["isbn"] if record is not None else []
            if record is not None and isbns:
                found.append((record, isbns))
            if len(found) == count:
                break
    assert len(found) == count, f"only {len(found)} records of {path.name} carry an ISBN"
    return found


def settings(url: str) -> ILSSettings:
    return ILSSettings(name="ils_long", base_url=url, username=USER, password=PASSWORD)


async def load(url: str, records: Sample) -> dict[str, str]:
    """Each record created in the ILS: ISBN -> the biblio id that holds it."""
    held: dict[str, str] = {}
    async with KohaAdapter(settings(url)) as ils:
        for record, isbns in records:
            biblio_id = await ils.create_biblio(marcxml(record), correlation_id="long-seed")
            held.update(dict.fromkeys(isbns, biblio_id))
    return held


def test_the_emulator_refuses_a_request_line_over_apaches_limit_as_apache_does(
    emulator: ServiceProcess,
) -> None:
    def get(line_length: int) -> httpx.Response:
        # "GET " + target + " HTTP/1.1": pad the query so the whole line has this length.
        base = "/api/v1/biblios?q="
        pad = line_length - len("GET ") - len(base) - len(" HTTP/1.1")
        return httpx.get(f"{emulator.url}{base}{'x' * pad}", timeout=10)

    at_limit, over = get(LIMIT_REQUEST_LINE), get(LIMIT_REQUEST_LINE + 1)
    assert at_limit.status_code == 401  # reached Koha, which wants a login
    assert over.status_code == 414
    assert over.headers["content-type"].startswith("text/html")
    assert "Request-URI Too Long" in over.text
    assert EmulatorControl(emulator.url).counters().get("uri_too_long") == 1


def test_isbns_of_many_records_are_searched_in_urls_apache_accepts_and_all_are_found(
    emulator: ServiceProcess, with_isbns: Sample
) -> None:
    records = with_isbns
    held = asyncio.run(load(emulator.url, records))
    wanted = sorted(held)
    control = EmulatorControl(emulator.url)
    before = control.counters().get("requests", 0)

    async def search() -> dict[str, str]:
        async with KohaAdapter(settings(emulator.url)) as ils:
            found = await ils.find_by_numbers({"isbn": wanted}, correlation_id="long-1")
        return {isbn: c.biblio_id for c in found for isbn in c.numbers["isbn"]}

    found = asyncio.run(search())
    counters = control.counters()
    assert found == held
    assert counters.get("uri_too_long", 0) == 0
    searches = counters["requests"] - before
    assert searches > 1, "one search cannot carry this many ISBNs under the limit"
    print(f"\n{len(wanted)} ISBNs of {len(records)} records: {searches} searches, no 414")


def test_a_search_a_stricter_proxy_refuses_is_halved_until_it_passes(
    emulator: ServiceProcess, with_isbns: Sample
) -> None:
    records = with_isbns[:60]
    held = asyncio.run(load(emulator.url, records))
    control = EmulatorControl(emulator.url)

    async def search() -> dict[str, str]:
        async with KohaAdapter(settings(emulator.url)) as ils:
            # The client's own budget set past the server's: only the 414 can tell it.
            ils.max_search_target = 10 * LIMIT_REQUEST_LINE
            found = await ils.find_by_numbers({"isbn": sorted(held)}, correlation_id="long-2")
        return {isbn: c.biblio_id for c in found for isbn in c.numbers["isbn"]}

    assert asyncio.run(search()) == held
    assert control.counters().get("uri_too_long", 0) >= 1
