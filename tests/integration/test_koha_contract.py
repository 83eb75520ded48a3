"""Contract: every request the Koha client makes is one Koha's spec declares, and every answer
the emulator gives it has the status, headers and body shape Koha's reference says.

The routes, parameters, statuses and columns below are transcribed from
../shared/reference/koha (paths/biblios.yaml, swagger-parameters.yaml, controllers/NOTES.md,
definitions/error.yaml); the client is driven through every call it has, faults included.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pymarc
import pytest

from catalog_sync.changes.identifiers import lccn
from catalog_sync.changes.stamp import stamp_record
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSConflict, ILSSettings
from catalog_sync.ils.koha import KohaAdapter
from catalog_sync.services import ServiceProcess, start_emulator

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "loc-books-2016-part01-first1000.mrc"
pytestmark = pytest.mark.timeout(120)

# paths/biblios.yaml + paths/oauth.yaml: route -> method -> (statuses, query params, headers)
ROUTES: dict[str, dict[str, tuple[set[int], set[str], set[str]]]] = {
    "/api/v1/oauth/token": {"POST": ({200, 400, 403}, set(), set())},
    "/api/v1/biblios": {
        "POST": (
            {200, 400, 401, 403, 406, 500, 503},
            set(),
            {"x-framework-id", "x-record-schema", "x-confirm-not-duplicate"},
        ),
        "GET": (
            {200, 401, 403, 404, 406, 500, 503},
            {"_page", "_per_page", "_match", "_order_by", "q"},
            {"x-koha-query", "x-koha-request-id"},
        ),
    },
    "/api/v1/biblios/{biblio_id}": {
        "GET": ({200, 401, 403, 404, 406, 500, 503}, set(), set()),
        "PUT": (
            {200, 400, 401, 403, 404, 406, 500, 503},
            set(),
            {"x-framework-id", "x-record-schema", "x-confirm-not-duplicate"},
        ),
        "DELETE": ({204, 401, 403, 404, 409, 500, 503}, set(), set()),
    },
    # paths/biblios.yaml (item sub-routes) and ils-api-notes.md (paths/items.yaml).
    "/api/v1/biblios/{biblio_id}/items": {
        "GET": (
            {200, 400, 401, 403, 404, 406, 500, 503},
            {"_page", "_per_page", "_match", "_order_by", "q"},
            {"x-koha-query", "x-koha-request-id"},
        ),
        "POST": ({201, 400, 401, 403, 404, 409, 500, 503}, set(), set()),
    },
    "/api/v1/biblios/{biblio_id}/items/{item_id}": {
        "PUT": ({200, 400, 401, 403, 404, 409, 500, 503}, set(), set()),
    },
    "/api/v1/items": {
        "GET": (
            {200, 400, 401, 403, 500, 503},
            {"external_id", "_page", "_per_page", "_match", "_order_by", "q"},
            {"x-koha-query", "x-koha-request-id", "x-koha-embed"},
        ),
    },
    "/api/v1/items/{item_id}": {
        "GET": ({200, 400, 401, 403, 404, 500, 503}, set(), set()),
        "DELETE": ({204, 401, 403, 404, 409, 500, 503}, set(), set()),
    },
}
ITEM_KEYS = {"item_id", "biblio_id"}
# controllers/NOTES.md: the columns `q` may name (biblio and biblioitems).
Q_COLUMNS = {
    "biblio_id", "title", "subtitle", "author", "part_name", "part_number", "medium",
    "series_title", "copyright_date", "framework_id", "creation_date", "timestamp", "abstract",
    "notes", "serial", "isbn", "issn", "ean", "lc_control_number", "publisher",
    "publication_year", "publication_place", "edition_statement", "pages", "item_type", "url",
}  # fmt: skip
Q_OPERATORS = {"-like", "-not_like", "-in", "=", "!=", "<", ">", "<=", ">="}
# Headers any HTTP client sends, ours for tracing, and the emulator-only fence (Koha ignores it).
GENERIC_HEADERS = {
    "host", "accept", "accept-encoding", "connection", "user-agent", "content-length",
    "content-type", "authorization", "x-request-id", "x-catalog-sync-fence",
}  # fmt: skip


@dataclass
class Exchange:
    method: str
    path: str
    params: list[tuple[str, str]]
    headers: dict[str, str]
    status: int
    response_headers: httpx.Headers
    body: bytes


def route_of(path: str) -> str:
    path = re.sub(r"/items/\d+$", "/items/{item_id}", path)
    return re.sub(r"/biblios/\d+(?=/|$)", "/biblios/{biblio_id}", path)


def q_columns(node: Any) -> set[str]:
    """Every column a Koha query names; operators must be ones Koha documents."""
    if isinstance(node, list):
        return set().union(*(q_columns(n) for n in node)) if node else set()
    assert isinstance(node, dict), node
    names: set[str] = set()
    for key, value in node.items():
        if key in ("-and", "-or"):
            names |= q_columns(value)
            continue
        names.add(key)
        conditions = value if isinstance(value, list) else [value]
        for condition in conditions:
            if isinstance(condition, dict):
                assert set(condition) <= Q_OPERATORS, condition
    return names


def check(exchange: Exchange) -> None:
    """One request and its answer against the reference."""
    where = f"{exchange.method} {exchange.path} -> {exchange.status}"
    declared = ROUTES.get(route_of(exchange.path), {})
    assert exchange.method in declared, f"undeclared route: {where}"
    statuses, params, headers = declared[exchange.method]
    assert exchange.status in statuses, where
    assert {name for name, _ in exchange.params} <= params, where
    assert set(exchange.headers) <= headers | GENERIC_HEADERS, where
    for name, value in exchange.params:
        if name == "q":
            assert q_columns(json.loads(value)) <= Q_COLUMNS, where
        if name in ("_page", "_per_page"):
            assert value.lstrip("-").isdigit(), where
    if "x-confirm-not-duplicate" in exchange.headers:
        assert exchange.headers["x-confirm-not-duplicate"].isdigit(), where
    kind = exchange.response_headers.get("content-type", "")
    if exchange.status == 204:
        assert exchange.body == b"", where
    elif exchange.status == 406:
        assert isinstance(json.loads(exchange.body), list), where
    elif exchange.status >= 400:
        body = json.loads(exchange.body)  # definitions/error.yaml: {error, error_code?, ...}
        assert isinstance(body, dict) and isinstance(body.get("error"), str), where
    elif exchange.method == "POST" and route_of(exchange.path) == "/api/v1/biblios":
        body = json.loads(exchange.body)
        assert set(body) == {"id"} and isinstance(body["id"], int), where
        assert exchange.response_headers["location"].endswith(f"/biblios/{body['id']}"), where
    elif "/items" in exchange.path:
        # definitions/item: an object with its ids; a list route answers a list of them.
        body = json.loads(exchange.body)
        for item in body if isinstance(body, list) else [body]:
            assert set(item) >= ITEM_KEYS and all(isinstance(item[k], int) for k in ITEM_KEYS)
        if exchange.method == "POST":
            assert exchange.status == 201, where
            assert exchange.response_headers["location"].endswith(f"/{body['item_id']}"), where
        if exchange.method == "GET" and exchange.path.endswith("/items"):
            assert exchange.response_headers["x-total-count"].isdigit(), where
    elif exchange.method == "PUT":
        assert set(json.loads(exchange.body)) == {"id"}, where
    elif (
        exchange.method == "GET"
        and route_of(exchange.path) == "/api/v1/biblios"
        and kind.startswith("application/marcxml+xml")
    ):
        # A list in MARCXML (Biblios.pm list, print_collection): one <collection> of the
        # records `q` asked for by biblio_id, each with its biblio number in 999 $c.
        asked = {str(i) for n, v in exchange.params if n == "q" for i in json.loads(v)["biblio_id"]}
        records = pymarc.parse_xml_to_array(io.BytesIO(exchange.body))
        assert records and {r["999"]["c"] for r in records} <= asked, where
        assert exchange.body.lstrip().startswith(b"<?xml") and b"<collection" in exchange.body
        assert exchange.response_headers["x-total-count"].isdigit(), where
    elif exchange.method == "GET" and route_of(exchange.path) == "/api/v1/biblios":
        assert isinstance(json.loads(exchange.body), list), where
        assert exchange.response_headers["x-total-count"].isdigit(), where
        assert 'rel="first"' in exchange.response_headers["link"], where
    elif exchange.method == "GET":
        assert kind.startswith("application/marcxml+xml"), where
        record = pymarc.parse_xml_to_array(io.BytesIO(exchange.body))[0]
        assert record["999"]["c"] == exchange.path.rsplit("/", 1)[-1], where
    elif route_of(exchange.path) == "/api/v1/oauth/token":
        assert set(json.loads(exchange.body)) == {"access_token", "token_type", "expires_in"}


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[ServiceProcess]:
    proc = start_emulator(tmp_path, db=None)
    yield proc
    proc.stop()


def records(n: int) -> list[pymarc.Record]:
    with SAMPLE.open("rb") as fh:
        return [r for _, r in zip(range(n), pymarc.MARCReader(fh), strict=False)]


def xml(record: pymarc.Record) -> bytes:
    return bytes(pymarc.record_to_xml(record, namespace=True))


def test_every_request_of_the_koha_client_is_in_the_spec_and_answered_as_the_spec_says(
    emulator: ServiceProcess,
) -> None:
    seen: list[Exchange] = []

    async def record_exchange(response: httpx.Response) -> None:
        await response.aread()
        request = response.request
        seen.append(
            Exchange(
                request.method,
                request.url.path,
                list(request.url.params.multi_items()),
                {k.lower(): v for k, v in request.headers.items()},
                response.status_code,
                response.headers,
                response.content,
            )
        )

    first, second, third = records(3)
    stamped = xml(stamp_record(first, "contract-1"))
    number = lccn(second["010"]["a"]) or ""

    async def drive() -> None:
        settings = ILSSettings(
            name="ils_contract",
            base_url=emulator.url,
            client_id="catalog-sync",
            client_secret="catalog-sync-demo",
        )
        http = httpx.AsyncClient(
            base_url=emulator.url, timeout=10, event_hooks={"response": [record_exchange]}
        )
        control = EmulatorControl(emulator.url)
        async with KohaAdapter(settings, http=http) as ils:
            await ils.check_access(correlation_id="c-0")
            one = await ils.create_biblio(stamped, correlation_id="c-1")
            two = await ils.create_biblio(xml(second), correlation_id="c-2")
            await ils.update_biblio(two, xml(second), correlation_id="c-3")
            assert await ils.get_biblio(one, correlation_id="c-4") is not None
            assert await ils.get_biblio("999999", correlation_id="c-5") is None
            copies = await ils.get_biblios([one, two, "999999"], correlation_id="c-5b")
            assert sorted(copies) == sorted([one, two])
            found = await ils.find_by_numbers({"lccn": [number]}, correlation_id="c-6")
            assert [c.biblio_id for c in found] == [two]
            since = datetime.now(UTC)
            created = await ils.find_created(
                ["contract-1"],
                title=first["245"]["a"],
                source="DLC",
                since=since,
                correlation_id="c-7",
            )
            assert created == {one: "contract-1"}
            # A create whose answer is dropped after Koha saved it: found again by its stamp.
            control.set_faults(drop_rate=1, drop_after_share=1)
            lost = xml(stamp_record(third, "contract-3"))
            task = asyncio.create_task(ils.create_biblio(lost, correlation_id="c-8"))
            await asyncio.sleep(0.3)
            control.clear_faults()
            three = await task
            httpx.post(
                f"{emulator.url}/api/v1/biblios/{two}/items",
                json={"external_id": "39015000000009", "home_library_id": "CPL"},
                auth=("catalog", "catalog-demo"),
                timeout=10,
            ).raise_for_status()
            with pytest.raises(ILSConflict):
                await ils.delete_biblio(two, correlation_id="c-9")
            # Items, as the pipeline writes them (pipeline/items.py).
            props = {
                "external_id": "39015000000010",
                "home_library_id": "CPL",
                "purchase_price": 9.5,
            }
            item = await ils.add_item(two, props, correlation_id="c-11")
            with pytest.raises(ILSConflict) as taken:
                await ils.add_item(three, props, correlation_id="c-12")
            assert taken.value.reason == "duplicate_barcode"
            await ils.update_item(
                two, item.item_id, {**props, "callnumber": "QA76"}, correlation_id="c-13"
            )
            held = await ils.list_items(two, correlation_id="c-14")
            assert [i.barcode for i in held] == ["39015000000009", "39015000000010"]
            assert (await ils.find_item("39015000000010", correlation_id="c-15")) is not None
            await ils.delete_item(item.item_id, correlation_id="c-16")
            assert await ils.find_item("39015000000010", correlation_id="c-17") is None
            await ils.delete_biblio(one, correlation_id="c-10")
            assert sorted(int(b["biblio_id"]) for b in control.biblios()) == sorted(
                [int(two), int(three)]
            )

    asyncio.run(drive())

    assert {(e.method, route_of(e.path)) for e in seen} == {
        ("POST", "/api/v1/oauth/token"),
        ("POST", "/api/v1/biblios"),
        ("GET", "/api/v1/biblios"),
        ("GET", "/api/v1/biblios/{biblio_id}"),
        ("PUT", "/api/v1/biblios/{biblio_id}"),
        ("DELETE", "/api/v1/biblios/{biblio_id}"),
        ("GET", "/api/v1/biblios/{biblio_id}/items"),
        ("POST", "/api/v1/biblios/{biblio_id}/items"),
        ("PUT", "/api/v1/biblios/{biblio_id}/items/{item_id}"),
        ("GET", "/api/v1/items"),
        ("DELETE", "/api/v1/items/{item_id}"),
    }
    assert {e.status for e in seen} >= {200, 204, 404, 409}
    for exchange in seen:
        check(exchange)
