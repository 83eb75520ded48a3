"""The emulator is as strict as Koha: `q` on real columns only, typed headers, 500 on bad MARC,
records rebuilt on save, and the system preferences the client depends on."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pymarc
import pytest

from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.services import ServiceProcess, start_emulator

EmulatorFactory = Callable[..., ServiceProcess]
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "loc-books-2016-part01-first1000.mrc"
AUTH = ("catalog", "catalog-demo")
CONFIRMED = {"Content-Type": "application/marcxml+xml", "x-confirm-not-duplicate": "1"}

pytestmark = pytest.mark.timeout(60)


def sample(indexes: list[int]) -> list[pymarc.Record]:
    with SAMPLE.open("rb") as fh:
        records = list(pymarc.MARCReader(fh))
    return [records[i] for i in indexes]


def xml(record: pymarc.Record) -> bytes:
    return bytes(pymarc.record_to_xml(record, namespace=True))


# 351 and 958 carry four ISBN-10s each, with qualifiers ("0780363590 (softbound edition)").
WITH_ISBNS = [351, 958]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    proc = start_emulator(tmp_path_factory.mktemp("koha-rules"), db=None)
    yield proc
    proc.stop()


@pytest.fixture
def koha(shared: ServiceProcess) -> Iterator[httpx.Client]:
    EmulatorControl(shared.url).reset()
    with httpx.Client(base_url=shared.url, auth=AUTH, timeout=10) as client:
        yield client


def load(koha: httpx.Client, records: list[pymarc.Record]) -> list[int]:
    ids = []
    for record in records:
        answer = koha.post("/api/v1/biblios", content=xml(record), headers=CONFIRMED)
        answer.raise_for_status()
        ids.append(answer.json()["id"])
    return ids


def ids_for(koha: httpx.Client, *queries: object, **kwargs: object) -> list[int]:
    params: list[tuple[str, str]] = [("q", json.dumps(q)) for q in queries]
    answer = koha.request("GET", "/api/v1/biblios", params=params, **kwargs)  # type: ignore[arg-type]
    answer.raise_for_status()
    return [b["biblio_id"] for b in answer.json()]


def test_isbns_are_stored_raw_and_joined_and_found_with_like_and_arrays(
    koha: httpx.Client,
) -> None:
    first, second, plain = load(koha, sample([*WITH_ISBNS, 0]))

    listed = koha.get(f"/api/v1/biblios/{first}").json()
    assert listed["isbn"].startswith("0780363590 (softbound edition) | 0780363604")
    assert ids_for(koha, {"isbn": "0780363590"}) == []  # equality is on the raw value
    assert ids_for(koha, {"isbn": {"-like": "%0780363604%"}}) == [first]
    either = {"isbn": [{"-like": "%0780363604%"}, {"-like": "%0780364570%"}]}
    assert ids_for(koha, either) == [first, second]
    assert ids_for(koha, {"biblio_id": {"-in": [plain, second]}}) == [second, plain]
    assert ids_for(koha, {"biblio_id": {">": first}}, {"biblio_id": {"<": plain}}) == [second]
    assert ids_for(koha, [{"biblio_id": first}, {"biblio_id": plain}]) == [first, plain]
    header = {"x-koha-query": json.dumps({"biblio_id": second})}
    assert ids_for(koha, headers=header) == [second]
    body = json.dumps({"biblio_id": plain}).encode()
    assert ids_for(koha, content=body) == [plain]
    ordered = koha.get("/api/v1/biblios", params={"_order_by": "-biblio_id"}).json()
    assert [b["biblio_id"] for b in ordered] == [plain, second, first]
    lccn = sample([0])[0]["010"]["a"]
    assert ids_for(koha, {"lc_control_number": lccn}) == [plain]


def test_marc_fields_that_are_not_columns_are_not_queryable(koha: httpx.Client) -> None:
    load(koha, sample([0]))

    for query in ({"control_number": "x"}, {"control_number_source": "DLC"}, {"isbn13": "9"}):
        answer = koha.get("/api/v1/biblios", params={"q": json.dumps(query)})
        assert answer.status_code == 400, query
        assert answer.json()["error_code"] == "invalid_parameter_value"
    bad_op = koha.get("/api/v1/biblios", params={"q": json.dumps({"title": {"-regexp": "x"}})})
    assert bad_op.status_code == 400
    bad_json = koha.get("/api/v1/biblios", params={"q": "{title"})
    assert bad_json.json()["errors"][0] == {"message": "Malformed query string", "path": "/query/q"}
    assert koha.get("/api/v1/biblios", params={"_match": "fuzzy"}).status_code == 400
    assert koha.get("/api/v1/biblios", params={"_match": "contains"}).status_code == 200
    assert koha.get("/api/v1/biblios", params={"_order_by": "+control_number"}).status_code == 400
    assert koha.get("/api/v1/biblios", params={"_per_page": "0"}).status_code == 400


def test_write_headers_are_validated_and_malformed_marc_is_a_koha_500(
    koha: httpx.Client,
) -> None:
    record = xml(sample([0])[0])
    schema = koha.post(
        "/api/v1/biblios", content=record, headers={**CONFIRMED, "x-record-schema": "MARC"}
    )
    confirm = koha.post(
        "/api/v1/biblios", content=record, headers={**CONFIRMED, "x-confirm-not-duplicate": "yes"}
    )
    broken = koha.post("/api/v1/biblios", content=record[: len(record) // 2], headers=CONFIRMED)
    stray = koha.post("/api/v1/biblios?force=1", content=record, headers=CONFIRMED)

    assert schema.status_code == 400 and schema.json()["errors"][0]["path"] == "/x-record-schema"
    assert confirm.json() == {
        "errors": [
            {"message": "Expected integer - got string.", "path": "/x-confirm-not-duplicate"}
        ],
        "status": 400,
    }
    assert (broken.status_code, broken.json()) == (
        500,
        {
            "error": "Something went wrong, check Koha logs for details.",
            "error_code": "internal_server_error",
        },
    )
    assert stray.status_code == 400
    assert EmulatorControl(str(koha.base_url)).biblios() == []


def test_the_duplicate_check_uses_the_isbn_before_title_and_author(koha: httpx.Client) -> None:
    [biblio] = load(koha, sample([WITH_ISBNS[0]]))
    retitled = sample([WITH_ISBNS[0]])[0]
    retitled["245"]["a"] = "Another title"
    plain = {"Content-Type": "application/marcxml+xml"}

    same_isbn = koha.post("/api/v1/biblios", content=xml(retitled), headers=plain)

    assert (same_isbn.status_code, same_isbn.json()) == (
        400,
        {"error": f"Duplicate biblio {biblio}"},
    )


def test_pagination_counts_the_filtered_and_the_whole_catalog(koha: httpx.Client) -> None:
    ids = load(koha, sample([0, 1, 2, 3]))
    answer = koha.get(
        "/api/v1/biblios",
        params={"q": json.dumps({"biblio_id": {">": ids[0]}}), "_per_page": 2},
    )

    assert answer.headers["x-total-count"] == "3"
    assert answer.headers["x-base-total-count"] == "4"
    assert set(answer.links) == {"next", "first", "last"}


def read_back(url: str, biblio_id: int) -> pymarc.Record:
    answer = httpx.get(
        f"{url}/api/v1/biblios/{biblio_id}",
        auth=AUTH,
        headers={"Accept": "application/marcxml+xml"},
        timeout=10,
    )
    answer.raise_for_status()
    return pymarc.parse_xml_to_array(io.BytesIO(answer.content))[0]


def test_auto_control_number_rewrites_001_to_the_biblio_number(
    emulator_factory: EmulatorFactory,
) -> None:
    emulator = emulator_factory("--syspref", "autoControlNumber=biblionumber")
    record = sample([0])[0]
    created = httpx.post(
        f"{emulator.url}/api/v1/biblios",
        content=xml(record),
        headers=CONFIRMED,
        auth=AUTH,
        timeout=10,
    ).json()["id"]

    stored = read_back(emulator.url, created)
    assert stored["001"].data == str(created) != record["001"].data
    assert stored["245"]["a"] == record["245"]["a"]


def test_rest_auth_system_preferences_turn_basic_and_oauth2_off(
    emulator_factory: EmulatorFactory,
) -> None:
    emulator = emulator_factory(
        "--syspref", "RESTBasicAuth=0", "--syspref", "RESTOAuth2ClientCredentials=0"
    )
    basic = httpx.get(f"{emulator.url}/api/v1/biblios", auth=AUTH, timeout=10)
    token = httpx.post(
        f"{emulator.url}/api/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "catalog-sync",
            "client_secret": "catalog-sync-demo",
        },
        timeout=10,
    )

    assert (basic.status_code, basic.json()) == (401, {"error": "Basic authentication disabled"})
    assert (token.status_code, token.json()) == (400, {"error": "Unimplemented grant type"})


def test_timestamps_are_compared_as_rfc_3339_date_times(koha: httpx.Client) -> None:
    [biblio] = load(koha, sample([0]))
    stamp = koha.get(f"/api/v1/biblios/{biblio}").json()["timestamp"]

    assert ids_for(koha, {"timestamp": {">=": stamp}}) == [biblio]
    assert ids_for(koha, {"timestamp": {">": stamp}}) == []
    assert ids_for(koha, {"timestamp": {">=": "2000-01-01T00:00:00-10:00"}}) == [biblio]
    mysql_style = {"timestamp": {">=": "2000-01-01 00:00:00"}}
    answer = koha.get("/api/v1/biblios", params={"q": json.dumps(mysql_style)})
    assert answer.status_code == 400
