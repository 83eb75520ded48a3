"""The emulator answers like Koha's REST API, persists, logs writes and misbehaves on request."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pymarc
import pytest

from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.emulator.loadgen import marcxml_records
from catalog_sync.services import ServiceProcess, start_emulator

EmulatorFactory = Callable[..., ServiceProcess]
LOC_FILE = "loc-marc-open-access/BooksAll.2016.part01.utf8.first5000.mrc"
AUTH = ("catalog", "catalog-demo")
MARCXML = {"Content-Type": "application/marcxml+xml", "x-confirm-not-duplicate": "1"}
WRITE_TYPES = ["application/marcxml+xml", "application/marc-in-json", "application/marc"]

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def records(corpus_dir: Path) -> list[bytes]:
    path = corpus_dir / LOC_FILE
    if not path.exists():
        pytest.skip(f"{path} not in the shared corpus")
    return marcxml_records(path, 30)


@pytest.fixture(scope="module")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One emulator process for the tests that need no special options (reset between tests)."""
    workdir = tmp_path_factory.mktemp("emulator")
    proc = start_emulator(workdir, db=workdir / "koha.db")
    yield proc
    proc.stop()


@pytest.fixture
def emulator(shared_emulator: ServiceProcess) -> ServiceProcess:
    EmulatorControl(shared_emulator.url).reset()
    return shared_emulator


@pytest.fixture
def koha(emulator: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, auth=AUTH, timeout=10) as client:
        yield client


def post(koha: httpx.Client, record: bytes, **headers: str) -> httpx.Response:
    return koha.post("/api/v1/biblios", content=record, headers={**MARCXML, **headers})


def content(marcxml: bytes) -> list[str]:
    """A record's fields as text, without what Koha rebuilds on save (005, 999)."""
    record = pymarc.parse_xml_to_array(io.BytesIO(marcxml))[0]
    return [str(f) for f in record.fields if f.tag not in ("005", "999")]


def test_a_posted_record_reads_back_rebuilt_as_koha_saves_it_and_is_logged_once(
    koha: httpx.Client, records: list[bytes]
) -> None:
    created = post(koha, records[0], **{"X-Request-ID": "vendor:abc:0:0"})

    assert created.status_code == 200  # Koha answers 200, not 201, with the new id
    biblio_id = created.json()["id"]
    assert created.headers["location"].endswith(f"/api/v1/biblios/{biblio_id}")
    read = koha.get(f"/api/v1/biblios/{biblio_id}", headers={"Accept": "application/marcxml+xml"})
    assert read.content != records[0]  # Koha serialises its own rebuilt copy
    assert content(read.content) == content(records[0])
    rebuilt = pymarc.parse_xml_to_array(io.BytesIO(read.content))[0]
    assert rebuilt["999"]["c"] == rebuilt["999"]["d"] == str(biblio_id)
    assert len(rebuilt["005"].data) == 16 and rebuilt["005"].data.endswith(".0")
    assert rebuilt.leader[9] == "a"
    assert read.headers["content-type"].startswith("application/marcxml+xml")
    log = koha.get("/_emulator/writes").json()
    assert [(w["method"], w["record_id"], w["request_id"]) for w in log["writes"]] == [
        ("POST", biblio_id, "vendor:abc:0:0")
    ]
    assert log["writes"][0]["payload_sha256"] == hashlib.sha256(records[0]).hexdigest()
    stored = koha.get("/_emulator/biblios").json()["biblios"]
    control = pymarc.parse_xml_to_array(io.BytesIO(records[0]))[0]["001"].data
    assert stored[0]["control_number"] == control.strip()


def test_without_the_confirm_header_a_same_title_post_is_a_koha_duplicate(
    koha: httpx.Client, records: list[bytes]
) -> None:
    first = koha.post(
        "/api/v1/biblios", content=records[1], headers={"Content-Type": MARCXML["Content-Type"]}
    )
    again = koha.post(
        "/api/v1/biblios", content=records[1], headers={"Content-Type": MARCXML["Content-Type"]}
    )
    confirmed = post(koha, records[1])

    assert again.status_code == 400
    assert again.json() == {"error": f"Duplicate biblio {first.json()['id']}"}
    assert confirmed.status_code == 200


def test_unsupported_media_types_get_koha_406_with_the_accepted_list(
    koha: httpx.Client, records: list[bytes]
) -> None:
    bad_post = koha.post(
        "/api/v1/biblios", content=records[0], headers={"Content-Type": "text/xml"}
    )
    biblio_id = post(koha, records[0]).json()["id"]
    bad_put = koha.put(
        f"/api/v1/biblios/{biblio_id}", content=records[0], headers={"Content-Type": "text/xml"}
    )
    bad_get = koha.get(f"/api/v1/biblios/{biblio_id}", headers={"Accept": "image/png"})

    assert (bad_post.status_code, bad_post.json()) == (406, WRITE_TYPES)
    assert (bad_put.status_code, bad_put.json()) == (406, ["application/json", *WRITE_TYPES])
    assert bad_get.status_code == 406 and "text/plain" in bad_get.json()


def test_marc_in_json_and_iso2709_bodies_are_stored_and_served_in_every_format(
    koha: httpx.Client, records: list[bytes]
) -> None:
    record = pymarc.parse_xml_to_array(io.BytesIO(records[2]))[0]
    via_json = koha.post(
        "/api/v1/biblios",
        content=record.as_json(),
        headers={"Content-Type": "application/marc-in-json", "x-confirm-not-duplicate": "1"},
    ).json()["id"]
    via_iso = koha.post(
        "/api/v1/biblios",
        content=record.as_marc(),
        headers={"Content-Type": "application/marc", "x-confirm-not-duplicate": "1"},
    ).json()["id"]

    for biblio_id in (via_json, via_iso):
        mij = koha.get(
            f"/api/v1/biblios/{biblio_id}", headers={"Accept": "application/marc-in-json"}
        )
        assert json.loads(mij.content)["fields"][0] == {"001": record["001"].data}
        iso = koha.get(f"/api/v1/biblios/{biblio_id}", headers={"Accept": "application/marc"})
        assert pymarc.Record(data=iso.content)["245"]["a"] == record["245"]["a"]
        api = koha.get(f"/api/v1/biblios/{biblio_id}").json()
        assert api["biblio_id"] == biblio_id and api["title"]


def test_the_list_paginates_with_total_count_and_rfc5988_links(
    koha: httpx.Client, records: list[bytes]
) -> None:
    for record in records[:5]:
        post(koha, record)

    page = koha.get("/api/v1/biblios", params={"_page": 2, "_per_page": 2})
    everything = koha.get("/api/v1/biblios", params={"_per_page": -1})
    unknown = koha.get("/api/v1/biblios", params={"sort": "title"})

    assert page.headers["x-total-count"] == "5"
    assert [b["biblio_id"] for b in page.json()] == [3, 4]
    assert set(page.links) == {"prev", "next", "first", "last"}
    assert "_page=3" in page.links["next"]["url"] and "_page=3" in page.links["last"]["url"]
    assert len(everything.json()) == 5
    echoed = koha.get("/api/v1/biblios", headers={"x-koha-request-id": "42"})
    assert echoed.headers["x-koha-request-id"] == "42"
    not_a_number = koha.get("/api/v1/biblios", headers={"x-koha-request-id": "draw-1"})
    assert not_a_number.json() == {
        "errors": [{"message": "Expected integer - got string.", "path": "/x-koha-request-id"}],
        "status": 400,
    }
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["path"] == "/query/sort"


def test_a_biblio_with_items_cannot_be_deleted_until_they_are_gone(
    koha: httpx.Client, records: list[bytes]
) -> None:
    biblio_id = post(koha, records[3]).json()["id"]
    item = koha.post(
        f"/api/v1/biblios/{biblio_id}/items",
        json={"external_id": "31234000111", "home_library_id": "CPL"},
    )
    duplicate = koha.post(
        f"/api/v1/biblios/{biblio_id}/items",
        json={"external_id": "31234000111", "home_library_id": "CPL"},
    )

    blocked = koha.delete(f"/api/v1/biblios/{biblio_id}")
    assert item.status_code == 201 and duplicate.status_code == 409
    assert duplicate.json() == {"error": "Duplicate barcode."}
    assert blocked.status_code == 409 and "items attached" in blocked.json()["error"]
    listed = koha.get("/api/v1/items", params={"external_id": "31234000111"})
    assert [i["item_id"] for i in listed.json()] == [item.json()["item_id"]]
    assert koha.get(f"/api/v1/biblios/{biblio_id}/items").headers["x-total-count"] == "1"

    assert koha.delete(f"/api/v1/items/{item.json()['item_id']}").status_code == 204
    assert koha.delete(f"/api/v1/biblios/{biblio_id}").status_code == 204
    gone = koha.get(f"/api/v1/biblios/{biblio_id}")
    assert gone.status_code == 404 and gone.json()["error_code"] == "not_found"


def test_auth_failures_carry_koha_bodies_and_bearer_tokens_work(
    emulator: ServiceProcess,
) -> None:
    url = emulator.url
    anonymous = httpx.get(f"{url}/api/v1/biblios", timeout=10)
    wrong = httpx.get(f"{url}/api/v1/biblios", auth=("catalog", "nope"), timeout=10)
    bad_grant = httpx.post(f"{url}/api/v1/oauth/token", data={"grant_type": "password"}, timeout=10)
    bad_client = httpx.post(
        f"{url}/api/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
        timeout=10,
    )
    token = httpx.post(
        f"{url}/api/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "catalog-sync",
            "client_secret": "catalog-sync-demo",
        },
        timeout=10,
    ).json()
    bearer = httpx.get(
        f"{url}/api/v1/biblios",
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=10,
    )

    assert (anonymous.status_code, anonymous.json()) == (401, {"error": "Authentication failure."})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Authentication failure."})
    assert (bad_grant.status_code, bad_grant.json()) == (400, {"error": "Unimplemented grant type"})
    assert bad_client.status_code == 403
    assert set(token) == {"access_token", "token_type", "expires_in"}
    assert bearer.status_code == 200


def test_a_restart_keeps_the_catalog_and_the_write_log(
    emulator_factory: EmulatorFactory, tmp_path: Path, records: list[bytes]
) -> None:
    db = tmp_path / "koha.db"
    first = emulator_factory(db=db)
    with httpx.Client(base_url=first.url, auth=AUTH, timeout=10) as koha:
        ids = [post(koha, r).json()["id"] for r in records[:3]]
    first.stop()

    second = emulator_factory(db=db)
    with httpx.Client(base_url=second.url, auth=AUTH, timeout=10) as koha:
        assert [b["biblio_id"] for b in koha.get("/_emulator/biblios").json()["biblios"]] == ids
        assert len(koha.get("/_emulator/writes").json()["writes"]) == 3
        read = koha.get(f"/api/v1/biblios/{ids[1]}", headers={"Accept": "application/marcxml+xml"})
        assert content(read.content) == content(records[1])
        assert post(koha, records[3]).json()["id"] == ids[-1] + 1


def test_an_empty_token_bucket_answers_429_with_retry_after(
    emulator_factory: EmulatorFactory,
) -> None:
    emulator = emulator_factory("--rate-limit", "5", "--burst", "5")
    with httpx.Client(base_url=emulator.url, auth=AUTH, timeout=10) as koha:
        answers = [koha.get("/api/v1/biblios") for _ in range(12)]
        control = koha.get("/_emulator/writes")

    refused = [a for a in answers if a.status_code == 429]
    assert refused and all(int(a.headers["retry-after"]) >= 1 for a in refused)
    assert control.status_code == 200  # /_emulator/ is never rate-limited
    assert control.json()["counters"]["rate_limited"] == len(refused)


def test_faults_from_the_command_line_answer_koha_and_proxy_error_bodies(
    emulator_factory: EmulatorFactory,
) -> None:
    emulator = emulator_factory("--faults", "error_rate=1,error_statuses=500/502/503,seed=4")
    with httpx.Client(base_url=emulator.url, auth=AUTH, timeout=10) as koha:
        answers = [koha.get("/api/v1/biblios") for _ in range(30)]

    by_status = {a.status_code: a for a in answers}
    assert set(by_status) == {500, 502, 503}
    assert by_status[500].json()["error_code"] == "internal_server_error"
    assert by_status[503].json() == {"error": "System is under maintenance."}


def test_dropped_connections_before_and_after_apply_as_the_control_endpoint_sets(
    emulator: ServiceProcess, records: list[bytes]
) -> None:
    with httpx.Client(base_url=emulator.url, auth=AUTH, timeout=10) as koha:
        koha.post("/_emulator/faults", json={"drop_rate": 1, "drop_after_share": 1})
        with pytest.raises(httpx.TransportError):
            post(koha, records[4])
        koha.post("/_emulator/faults", json={"drop_rate": 1, "drop_after_share": 0})
        with pytest.raises(httpx.TransportError):
            post(koha, records[5])
        koha.delete("/_emulator/faults")
        stored = koha.get("/_emulator/biblios").json()

    # Dropped after apply: the record is there although the client never heard back.
    assert stored["count"] == 1


def test_down_for_a_while_then_serving_again(emulator: ServiceProcess) -> None:
    with httpx.Client(base_url=emulator.url, auth=AUTH, timeout=10) as koha:
        status = koha.post("/_emulator/faults", json={"down_for": 600}).json()
        down = koha.get("/api/v1/biblios")
        assert status["down_remaining"] > 0
        koha.post("/_emulator/faults", json={"down_for": 0})
        up = koha.get("/api/v1/biblios")

    assert (down.status_code, down.json()) == (503, {"error": "System is under maintenance."})
    assert up.status_code == 200


def test_expired_tokens_are_refused_until_a_new_one_is_issued(emulator: ServiceProcess) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "catalog-sync",
        "client_secret": "catalog-sync-demo",
    }
    with httpx.Client(base_url=emulator.url, timeout=10) as raw:
        token = raw.post("/api/v1/oauth/token", data=form).json()["access_token"]
        raw.post("/_emulator/tokens/expire")
        expired = raw.get("/api/v1/biblios", headers={"Authorization": f"Bearer {token}"})

    assert (expired.status_code, expired.json()) == (401, {"error": "Authentication failure."})


def test_a_user_without_edit_permission_reads_but_gets_koha_403_on_writes(
    emulator_factory: EmulatorFactory, records: list[bytes]
) -> None:
    emulator = emulator_factory("--readonly-user", "opac", "--readonly-password", "opac-pass")
    with httpx.Client(base_url=emulator.url, auth=("opac", "opac-pass"), timeout=10) as reader:
        listed = reader.get("/api/v1/biblios")
        refused = post(reader, records[0])

    assert listed.status_code == 200
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "Authorization failure. Missing required permission(s).",
        "required_permissions": {"editcatalogue": "edit_catalogue"},
    }


def test_slow_answers_still_answer_and_are_counted(emulator: ServiceProcess) -> None:
    with httpx.Client(base_url=emulator.url, auth=AUTH, timeout=10) as koha:
        koha.post("/_emulator/faults", json={"slow_rate": 1, "slow_seconds": 0.05})
        answers = [koha.get("/api/v1/biblios").status_code for _ in range(3)]
        counters = koha.get("/_emulator/writes").json()["counters"]

    assert answers == [200, 200, 200]
    assert counters["slowed"] == 3
