"""The FOLIO emulator answers every route as FOLIO's RAML says: statuses, content types, schemas."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pymarc
import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from tests.folio_emulator import FIXTURES, TENANT, Okapi, cookie, login, start_folio

from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils.folio.reference import HOLDINGS_SOURCES, IDENTIFIER_TYPES, INSTANCE_TYPES
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(60)
SCHEMAS = FIXTURES / "folio"
INV = "mod-inventory-storage/ramls/schemas"
SRS = "data-import-raml-storage/schemas"
ERRORS = "raml/schemas/errors.schema"
TEXT = INSTANCE_TYPES["text"]
ISBN = IDENTIFIER_TYPES["ISBN"]


def _retrieve(uri: str) -> Resource:
    return Resource.from_contents(
        json.loads(Path(urlparse(uri).path).read_text()), default_specification=DRAFT4
    )


_REGISTRY: Registry = Registry(retrieve=_retrieve)  # type: ignore[call-arg]


def conforms(body: object, schema: str) -> None:
    """Validate against FOLIO's schema file, its relative $refs resolved from disk."""
    uri = (SCHEMAS.absolute() / schema).as_uri()
    Draft4Validator({"$ref": uri}, registry=_REGISTRY).validate(body)


def is_text(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def is_errors(response: httpx.Response) -> list[dict[str, object]]:
    assert response.status_code == 422, response.text
    conforms(response.json(), ERRORS)
    errors: list[dict[str, object]] = response.json()["errors"]
    return errors


def instance(title: str, *isbns: str, hrid: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "source": "MARC",
        "title": title,
        "instanceTypeId": TEXT,
        "identifiers": [{"value": v, "identifierTypeId": ISBN} for v in isbns],
    }
    if hrid:
        body["hrid"] = hrid
    return body


def test_reference_uuids_are_folios_own(tmp_path: Path) -> None:
    folder = SCHEMAS / "mod-inventory-storage" / "reference-data"
    for sub, table in (
        ("identifier-types", IDENTIFIER_TYPES),
        ("instance-types", INSTANCE_TYPES),
        ("holdings-sources", HOLDINGS_SOURCES),
    ):
        published = {
            (d := json.loads(p.read_text()))["name"]: d["id"] for p in (folder / sub).glob("*.json")
        }
        assert {name: published.get(name) for name in table} == table


def test_login_sets_expiring_cookies_and_refresh_is_single_use(folio: ServiceProcess) -> None:
    with httpx.Client(base_url=folio.url) as client:
        response = login(client)
        assert response.status_code == 201
        conforms(response.json(), "mod-login/ramls/loginResponseWithExpiry.json")
        refresh = cookie(response, "folioRefreshToken")
        assert "Max-Age=600" in response.headers.get_list("set-cookie")[0]
        headers = {"X-Okapi-Tenant": TENANT, "Cookie": f"folioRefreshToken={refresh}"}
        renewed = client.post("/authn/refresh", headers=headers)
        assert renewed.status_code == 201
        conforms(renewed.json(), "mod-login/ramls/loginResponseWithExpiry.json")
        assert cookie(renewed, "folioAccessToken") != cookie(response, "folioAccessToken")
        is_errors(client.post("/authn/refresh", headers=headers))
        bad = client.post(
            "/authn/login-with-expiry",
            json={"username": "catalog", "password": "wrong"},
            headers={"X-Okapi-Tenant": TENANT},
        )
        assert is_errors(bad)[0]["code"] == "wrong.username.or.wrong.password.or.account.blocked"
        no_password = client.post(
            "/authn/login-with-expiry", json={"username": "x"}, headers={"X-Okapi-Tenant": TENANT}
        )
        assert is_text(no_password, 400) == "You must provide a password"
        fresh = cookie(renewed, "folioRefreshToken")
        out = client.post(
            "/authn/logout",
            headers={"X-Okapi-Tenant": TENANT, "Cookie": f"folioRefreshToken={fresh}"},
        )
        assert out.status_code == 204


def test_tenant_is_required_and_checked(folio: ServiceProcess) -> None:
    with httpx.Client(base_url=folio.url) as client:
        unknown = client.post(
            "/authn/login-with-expiry",
            json={"username": "catalog", "password": "catalog-demo"},
            headers={"X-Okapi-Tenant": "nosuchlib"},
        )
        assert is_text(unknown, 404) == "No such Tenant nosuchlib"
        missing = client.get("/instance-storage/instances")
        assert "for tenant supertenant" in is_text(missing, 404)


def test_token_missing_expired_or_conflicting(okapi: Okapi, folio: ServiceProcess) -> None:
    plain = okapi.client.get("/instance-storage/instances", headers={"X-Okapi-Tenant": TENANT})
    assert is_text(plain, 403).startswith("Token missing, access requires permission:")
    both = {**okapi.headers, "Authorization": "Bearer something-else"}
    is_text(okapi.client.get("/instance-storage/instances", headers=both), 400)
    assert okapi.get("/instance-storage/instances").status_code == 200
    EmulatorControl(folio.url).expire_tokens()
    assert is_text(okapi.get("/instance-storage/instances"), 401) == "Access token has expired"


def test_instance_crud_with_optimistic_locking(okapi: Okapi) -> None:
    created = okapi.post("/instance-storage/instances", instance("A title", "0262011530"))
    assert created.status_code == 201
    body = created.json()
    conforms(body, f"{INV}/instance-storage/instance.json")
    assert body["_version"] == 1 and body["hrid"].startswith("in")
    assert created.headers["location"].endswith(body["id"])
    path = f"/instance-storage/instances/{body['id']}"
    read = okapi.get(path).json()
    conforms(read, f"{INV}/instance-storage/instance.json")
    assert okapi.put(path, {**read, "title": "New"}).status_code == 204
    stale = okapi.put(path, {**read, "title": "Stale"})
    assert "optimistic locking" in is_text(stale, 409)
    assert okapi.get(path).json()["title"] == "New" and okapi.get(path).json()["_version"] == 2
    invalid = okapi.post("/instance-storage/instances", {"title": "x", "colour": "red"})
    keys = {p["key"] for e in is_errors(invalid) for p in e["parameters"]}  # type: ignore[attr-defined]
    assert {"colour", "source", "instanceTypeId"} <= keys
    assert okapi.delete(path).status_code == 204
    assert is_text(okapi.get(path), 404) == "Not found"
    is_text(okapi.client.put(path, content=b"{", headers=okapi.headers), 400)


def test_batch_upsert_is_all_or_nothing(okapi: Okapi, folio: ServiceProcess) -> None:
    first, second = instance("One", "111"), instance("Two", "222")
    batch = "/instance-storage/batch/synchronous"
    created = okapi.post(batch, {"instances": [first, second]}, upsert="true")
    assert created.status_code == 201 and created.content == b""
    stored = okapi.get(f"/instance-storage/instances/{first['id']}").json()
    third = instance("Three", "333")
    stale = {**second, "_version": 7, "title": "Two again"}
    conflict = okapi.post(
        batch, {"instances": [{**stored, "title": "One again"}, third, stale]}, upsert="true"
    )
    assert str(second["id"]) in is_text(conflict, 409)
    assert okapi.get(f"/instance-storage/instances/{third['id']}").status_code == 404
    assert okapi.get(f"/instance-storage/instances/{first['id']}").json()["title"] == "One"
    without_upsert = okapi.post(batch, {"instances": [stored]})
    is_errors(without_upsert)
    bad = okapi.post(batch, {"instances": [third, {"title": "no type"}]}, upsert="true")
    assert any(
        p["key"] == "instances[1].source"
        for e in is_errors(bad)
        for p in e["parameters"]  # type: ignore[attr-defined]
    )
    too_many = okapi.post(batch, {"instances": [instance(f"t{n}") for n in range(51)]})
    assert is_text(too_many, 413) == "Payload Too Large"
    writes = EmulatorControl(folio.url).writes()
    assert [w["record_id"] for w in writes] == [first["id"], second["id"]]


def test_cql_lookups_and_paging(okapi: Okapi) -> None:
    records = [instance(f"Book {n}", f"97800000000{n:02d} (pbk.)") for n in range(12)]
    records[3]["hrid"] = "loc00003"
    okapi.post("/instance-storage/batch/synchronous", {"instances": records}, upsert="true")
    first_page = okapi.get("/instance-storage/instances").json()
    conforms(first_page, f"{INV}/instance-storage/instances.json")
    assert first_page["totalRecords"] == 12 and len(first_page["instances"]) == 10
    rest = okapi.get("/instance-storage/instances", offset=10, limit=10).json()
    assert [r["title"] for r in rest["instances"]] == ["Book 10", "Book 11"]

    def titles(query: str) -> list[str]:
        found = okapi.get("/instance-storage/instances", query=query, limit=100)
        assert found.status_code == 200, found.text
        return sorted(r["title"] for r in found.json()["instances"])

    assert titles('hrid=="loc00003"') == ["Book 3"]
    assert titles(f'id=="{records[5]["id"]}"') == ["Book 5"]
    assert titles('identifiers =/@value "9780000000001"') == ["Book 1"]
    typed = f'identifiers =/@identifierTypeId={ISBN} "9780000000002"'
    assert titles(typed) == ["Book 2"]
    other_type = IDENTIFIER_TYPES["ISSN"]
    assert titles(f'identifiers =/@identifierTypeId={other_type} "9780000000002"') == []
    several = " or ".join(f'identifiers =/@value "97800000000{n:02d}"' for n in (4, 7, 11))
    assert titles(several) == ["Book 11", "Book 4", "Book 7"]
    assert titles(f'(hrid=="loc00003" or {several}) and id=="{records[7]["id"]}"') == ["Book 7"]
    unsupported = okapi.get("/instance-storage/instances", query="title all book")
    is_text(unsupported, 400)
    is_text(okapi.get("/instance-storage/instances", limit=-1), 400)


def test_holdings_and_items(okapi: Okapi) -> None:
    owner = instance("Owner")
    okapi.post("/instance-storage/instances", owner)
    [main] = okapi.get("/locations", query='code=="KU/CC/DI/M"').json()["locations"]
    location = main["id"]
    holdings = {
        "id": str(uuid.uuid4()),
        "instanceId": owner["id"],
        "sourceId": HOLDINGS_SOURCES["MARC"],
        "permanentLocationId": location,
        "callNumber": "QA76 .A1",
    }
    created = okapi.post("/holdings-storage/holdings", holdings)
    assert created.status_code == 201
    conforms(created.json(), f"{INV}/holdings-storage/holdingsRecord.json")
    orphan = {**holdings, "id": str(uuid.uuid4()), "instanceId": str(uuid.uuid4())}
    is_errors(okapi.post("/holdings-storage/holdings", orphan))
    nowhere = {**holdings, "id": str(uuid.uuid4()), "permanentLocationId": str(uuid.uuid4())}
    [error] = is_errors(okapi.post("/holdings-storage/holdings", nowhere))
    assert "does not exist in location.id" in str(error["message"])
    [book] = okapi.get("/material-types", query='name=="book"').json()["mtypes"]
    [circulates] = okapi.get("/loan-types", query='name=="Can circulate"').json()["loantypes"]
    item = {
        "holdingsRecordId": holdings["id"],
        "barcode": "39015000000017X",
        "status": {"name": "Available"},
        "materialTypeId": book["id"],
        "permanentLoanTypeId": circulates["id"],
    }
    for reference in ("materialTypeId", "permanentLoanTypeId", "permanentLocationId"):
        unknown = {**item, reference: str(uuid.uuid4())}
        [error] = is_errors(okapi.post("/item-storage/items", unknown))
        assert error["parameters"] == [{"key": reference, "value": unknown[reference]}]
    batch = okapi.post("/item-storage/batch/synchronous", {"items": [item]}, upsert="true")
    assert batch.status_code == 201
    items = okapi.get("/item-storage/items", query=f'holdingsRecordId=="{holdings["id"]}"').json()
    conforms(items, f"{INV}/item-storage/items.json")
    assert [i["barcode"] for i in items["items"]] == ["39015000000017X"]
    # FOLIO's barcode index is unique and case-insensitive (schema.json), and so is its CQL.
    duplicate = {**item, "id": str(uuid.uuid4()), "barcode": "39015000000017x"}
    [error] = is_errors(okapi.post("/item-storage/items", duplicate))
    assert error["parameters"] == [{"key": "barcode", "value": "39015000000017x"}]
    by_barcode = okapi.get("/item-storage/items", query='barcode=="39015000000017x"').json()
    assert [i["id"] for i in by_barcode["items"]] == [i["id"] for i in items["items"]]
    found = okapi.get("/holdings-storage/holdings", query=f'instanceId=="{owner["id"]}"').json()
    conforms(found, f"{INV}/holdings-storage/holdingsRecords.json")
    referenced = okapi.delete(f"/instance-storage/instances/{owner['id']}")
    assert "still referenced" in is_text(referenced, 400)
    hold_batch = okapi.post(
        "/holdings-storage/batch/synchronous",
        {"holdingsRecords": [{**holdings, "_version": 1, "callNumber": "QA76 .A2"}]},
        upsert="true",
    )
    assert hold_batch.status_code == 201
    item_path = f"/item-storage/items/{items['items'][0]['id']}"
    stored_item = okapi.get(item_path).json()
    conforms(stored_item, f"{INV}/item-storage/item.json")
    assert okapi.put(item_path, {**stored_item, "copyNumber": "2"}).status_code == 204
    assert "optimistic locking" in is_text(okapi.put(item_path, stored_item), 409)
    holdings_path = f"/holdings-storage/holdings/{holdings['id']}"
    stored_holdings = okapi.get(holdings_path).json()
    conforms(stored_holdings, f"{INV}/holdings-storage/holdingsRecord.json")
    assert stored_holdings["callNumber"] == "QA76 .A2" and stored_holdings["_version"] == 2
    assert okapi.put(holdings_path, stored_holdings).status_code == 204
    assert okapi.delete(item_path).status_code == 204
    assert okapi.delete(holdings_path).status_code == 204
    assert okapi.delete(f"/instance-storage/instances/{owner['id']}").status_code == 204


def test_source_records_link_marc_to_the_instance(
    okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    owner = instance(loc_records[0].title or "untitled")
    okapi.post("/instance-storage/instances", owner)
    owner = okapi.get(f"/instance-storage/instances/{owner['id']}").json()
    snapshot_id = str(uuid.uuid4())
    snap = okapi.post("/source-storage/snapshots", {"jobExecutionId": snapshot_id, "status": "NEW"})
    assert snap.status_code == 201
    conforms(snap.json(), f"{SRS}/mod-source-record-storage/snapshot.json")
    one = okapi.get(f"/source-storage/snapshots/{snapshot_id}")
    conforms(one.json(), f"{SRS}/mod-source-record-storage/snapshot.json")
    conforms(
        okapi.get("/source-storage/snapshots").json(),
        f"{SRS}/mod-source-record-storage/snapshotCollection.json",
    )

    def srs_record(marc: pymarc.Record, instance_id: str, hrid: str) -> dict[str, object]:
        record_id = str(uuid.uuid4())
        return {
            "id": record_id,
            "snapshotId": snapshot_id,
            "matchedId": record_id,
            "recordType": "MARC_BIB",
            "rawRecord": {"content": marc.as_json()},
            "parsedRecord": {"content": json.loads(marc.as_json())},
            "externalIdsHolder": {"instanceId": instance_id, "instanceHrid": hrid},
        }

    record = srs_record(loc_records[0], str(owner["id"]), str(owner["hrid"]))
    created = okapi.post("/source-storage/records", record)
    assert created.status_code == 201
    conforms(created.json(), f"{SRS}/dto/record.json")
    by_instance = okapi.get(f"/source-storage/records/{owner['id']}/formatted", idType="INSTANCE")
    assert by_instance.json()["id"] == record["id"]
    conforms(by_instance.json(), f"{SRS}/dto/record.json")
    sources = okapi.get("/source-storage/source-records", instanceId=str(owner["id"])).json()
    conforms(sources, f"{SRS}/dto/sourceRecordCollection.json")
    assert sources["sourceRecords"][0]["parsedRecord"]["content"]["fields"]
    updated = {**created.json(), "parsedRecord": {"content": json.loads(loc_records[1].as_json())}}
    put = okapi.put(f"/source-storage/records/{record['id']}", updated)
    assert put.status_code == 200
    conforms(put.json(), f"{SRS}/dto/record.json")
    batch = okapi.post(
        "/source-storage/batch/records",
        {
            "records": [
                srs_record(loc_records[2], str(uuid.uuid4()), "in2"),
                {"recordType": "MARC_BIB"},
            ],
            "totalRecords": 2,
        },
    )
    assert batch.status_code == 201
    conforms(batch.json(), f"{SRS}/dto/recordsBatchResponse.json")
    assert batch.json()["totalRecords"] == 1 and len(batch.json()["errorMessages"]) == 1
    listed = okapi.get("/source-storage/records", snapshotId=snapshot_id).json()
    conforms(listed, f"{SRS}/dto/recordCollection.json")
    assert listed["totalRecords"] == 2
    assert is_text(okapi.get(f"/source-storage/records/{uuid.uuid4()}"), 404)
    assert okapi.delete(f"/source-storage/records/{record['id']}").status_code == 204
    gone = okapi.get("/source-storage/source-records", instanceId=str(owner["id"])).json()
    assert gone["totalRecords"] == 0


def test_catalog_survives_a_restart(tmp_path: Path) -> None:
    proc = start_folio(tmp_path)
    record = instance("Kept")
    with httpx.Client(base_url=proc.url) as client:
        okapi = Okapi(client, cookie(login(client), "folioAccessToken"))
        assert okapi.post("/instance-storage/instances", record).status_code == 201
    proc.stop()
    proc = start_folio(tmp_path)  # same --db file
    try:
        with httpx.Client(base_url=proc.url) as client:
            okapi = Okapi(client, cookie(login(client), "folioAccessToken"))
            kept = okapi.get(f"/instance-storage/instances/{record['id']}")
            assert kept.status_code == 200 and kept.json()["title"] == "Kept"
            snapshot = okapi.get(f"/source-storage/snapshots/{uuid.uuid4()}")
            assert is_text(snapshot, 404) == "Not found"
    finally:
        proc.stop()


def test_rate_limit_and_faults_as_in_the_koha_mode(tmp_path: Path) -> None:
    proc = start_folio(tmp_path, "--rate-limit", "1", "--burst", "2")
    try:
        with httpx.Client(base_url=proc.url) as client:
            statuses = [login(client).status_code for _ in range(4)]
            assert statuses[:2] == [201, 201] and 429 in statuses[2:]
            limited = next(r for r in (login(client) for _ in range(3)) if r.status_code == 429)
            assert int(limited.headers["retry-after"]) >= 1
            control = EmulatorControl(proc.url)
            control.set_faults(error_rate=1.0, error_statuses=[503], rate_limit=None)
            assert login(client).status_code == 503
            assert control.counters()["injected_errors"] == 1
    finally:
        proc.stop()


def test_parsed_records_fetch_by_instance_and_batch_update(
    okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    snapshot_id = str(uuid.uuid4())
    okapi.post("/source-storage/snapshots", {"jobExecutionId": snapshot_id, "status": "NEW"})
    instance_id, record_id = str(uuid.uuid4()), str(uuid.uuid4())
    record = {
        "id": record_id,
        "snapshotId": snapshot_id,
        "matchedId": record_id,
        "recordType": "MARC_BIB",
        "rawRecord": {"content": loc_records[0].as_json()},
        "parsedRecord": {"content": loc_records[0].as_dict()},
        "externalIdsHolder": {"instanceId": instance_id, "instanceHrid": "in1"},
    }
    assert okapi.post("/source-storage/records", record).status_code == 201
    request = {
        "conditions": {"idType": "INSTANCE", "ids": [instance_id, str(uuid.uuid4())]},
        "data": [{"from": "001", "to": "245"}],
        "recordType": "MARC_BIB",
    }
    fetched = okapi.post("/source-storage/batch/parsed-records/fetch", request)
    assert fetched.status_code == 200, fetched.text
    conforms(fetched.json(), f"{SRS}/dto/strippedParsedRecordCollection.json")
    [stripped] = fetched.json()["records"]
    tags = [next(iter(f)) for f in stripped["parsedRecord"]["content"]["fields"]]
    assert stripped["id"] == record_id and tags and all("001" <= t <= "245" for t in tags)
    is_errors(okapi.post("/source-storage/batch/parsed-records/fetch", {"conditions": {}}))

    changed = {**record, "parsedRecord": {"content": loc_records[1].as_dict()}}
    missing = {**record, "id": str(uuid.uuid4())}
    put = okapi.client.put(
        "/source-storage/batch/parsed-records",
        json={"records": [changed, missing], "totalRecords": 2},
        headers=okapi.headers,
    )
    assert put.status_code == 200, put.text
    conforms(put.json(), f"{SRS}/dto/parsedRecordsBatchResponse.json")
    assert put.json()["totalRecords"] == 1 and len(put.json()["errorMessages"]) == 1
    stored = okapi.get(f"/source-storage/records/{record_id}").json()
    assert stored["parsedRecord"]["content"] == loc_records[1].as_dict()


def test_retrieve_takes_the_cql_in_the_body(okapi: Okapi) -> None:
    records = [instance(f"Book {n}") for n in range(600)]
    for start in (0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550):
        batch = {"instances": records[start : start + 50]}
        okapi.post("/instance-storage/batch/synchronous", batch, upsert="true")
    query = " or ".join(f'id=="{r["id"]}"' for r in records[:500])
    found = okapi.post("/instance-storage/instances/retrieve", {"query": query, "limit": 1000})
    assert found.status_code == 200, found.text
    conforms(found.json(), f"{INV}/instance-storage/instances.json")
    assert found.json()["totalRecords"] == 500
    is_errors(okapi.post("/instance-storage/instances/retrieve", {"limit": -1}))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_injected_faults_answer_as_folio_does_in_text_plain(
    okapi: Okapi, folio: ServiceProcess, status: int
) -> None:
    # RMB and Okapi send text/plain for every error but 422; Koha's JSON bodies here would let
    # a client pass that only understands Koha's errors.
    control = EmulatorControl(folio.url)
    control.set_faults(error_rate=1.0, error_statuses=[status], rate_limit=None)
    try:
        response = okapi.get("/instance-storage/instances", limit=1, query="cql.allRecords=1")
    finally:
        control.clear_faults()
    assert is_text(response, status) and not response.text.lstrip().startswith("{")
    assert control.counters()["injected_errors"] == 1


def shelve(
    okapi: Okapi, owner: dict[str, Any], holdings_ids: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`owner` stored with a holdings record of each id at the main location; the material
    type and loan type its items take (a book that circulates)."""
    okapi.post("/instance-storage/instances", owner)
    [main] = okapi.get("/locations", query='code=="KU/CC/DI/M"').json()["locations"]
    for holdings_id in holdings_ids:
        holdings = {
            "id": holdings_id,
            "instanceId": owner["id"],
            "sourceId": HOLDINGS_SOURCES["MARC"],
            "permanentLocationId": main["id"],
        }
        assert okapi.post("/holdings-storage/holdings", holdings).status_code == 201
    [book] = okapi.get("/material-types", query='name=="book"').json()["mtypes"]
    [circulates] = okapi.get("/loan-types", query='name=="Can circulate"').json()["loantypes"]
    return book, circulates


def test_cql_delete_of_items_removes_exactly_what_it_selects(
    okapi: Okapi, folio: ServiceProcess
) -> None:
    """item-storage.raml `DELETE /item-storage/items?query=`: 204 for what the CQL selects
    (none included); 400 text/plain for no query or CQL the emulator cannot run, deleting
    nothing, so a client's delete never quietly removes more or less than it asked for."""
    owner = instance("Weeded")
    holdings = {"id": str(uuid.uuid4())}
    book, circulates = shelve(okapi, owner, [holdings["id"]])
    ids = [str(uuid.uuid4()) for _ in range(4)]
    items = [
        {"id": i, "holdingsRecordId": holdings["id"], "barcode": f"W-{n}",
         "status": {"name": "Available"}, "materialTypeId": book["id"],
         "permanentLoanTypeId": circulates["id"]}
        for n, i in enumerate(ids)
    ]  # fmt: skip
    assert okapi.post("/item-storage/batch/synchronous", {"items": items}).status_code == 201

    def delete(query: str | None, headers: dict[str, str] | None = None) -> httpx.Response:
        params = {} if query is None else {"query": query}
        return okapi.client.delete(
            "/item-storage/items", params=params, headers=headers or okapi.headers
        )

    def held() -> list[str]:
        found = okapi.get("/item-storage/items", query="cql.allRecords=1", limit=100).json()
        return sorted(i["id"] for i in found["items"])

    assert "query parameter is empty" in is_text(delete(None), 400)
    assert "query parameter is empty" in is_text(delete("  "), 400)
    no_token = delete(f'id=="{ids[0]}"', headers={"X-Okapi-Tenant": TENANT})
    assert "inventory-storage.items.collection.delete" in is_text(no_token, 403)
    for unsupported in (
        'barcode=="W-*"',  # truncation: RMB would match all four
        f"id==({ids[0]} and {ids[1]})",  # a value list is joined by `or` only
        'title=="Weeded"',  # no such item index here
        f"_version==/number one and id=={ids[0]}",
        f"id==({ids[0]} or {ids[1]}",
    ):
        assert "CQL" in is_text(delete(unsupported), 400), unsupported
    assert held() == sorted(ids)
    # A staff edit bumps ids[0] to _version 2: a delete of version 1 leaves it.
    path = f"/item-storage/items/{ids[0]}"
    assert okapi.put(path, {**okapi.get(path).json(), "copyNumber": "2"}).status_code == 204
    chosen = f'_version==/number 1 and id==("{ids[0]}" or {ids[1]} or {ids[2]})'
    assert delete(chosen).status_code == 204
    assert held() == sorted([ids[0], ids[3]])
    assert delete(chosen).status_code == 204  # again: selects nothing now, deletes nothing
    assert held() == sorted([ids[0], ids[3]])
    assert delete(f"(_version==/number 2 and id==({ids[0]})) or id=={ids[3]}").status_code == 204
    assert held() == []
    deleted = [w for w in EmulatorControl(folio.url).writes() if w["resource"] == "item"][-4:]
    assert sorted(w["record_id"] for w in deleted) == sorted(ids)


def test_cql_delete_of_holdings_is_refused_whole_while_an_item_references_one(
    okapi: Okapi,
) -> None:
    owner = instance("Shelved")
    ids = [str(uuid.uuid4()) for _ in range(2)]
    book, circulates = shelve(okapi, owner, ids)
    item = {"holdingsRecordId": ids[1], "status": {"name": "Available"},
            "materialTypeId": book["id"], "permanentLoanTypeId": circulates["id"]}  # fmt: skip
    assert okapi.post("/item-storage/items", item).status_code == 201

    def delete(query: str) -> httpx.Response:
        return okapi.client.delete(
            "/holdings-storage/holdings", params={"query": query}, headers=okapi.headers
        )

    def held() -> list[str]:
        found = okapi.get("/holdings-storage/holdings", query=f'instanceId=="{owner["id"]}"')
        return sorted(h["id"] for h in found.json()["holdingsRecords"])

    both = f"_version==/number 1 and id==({ids[0]} or {ids[1]})"
    assert "still referenced from table item" in is_text(delete(both), 400)
    assert held() == sorted(ids)  # one SQL DELETE: nothing of it applied
    assert delete(f"_version==/number 1 and id==({ids[0]})").status_code == 204
    assert held() == [ids[1]]
