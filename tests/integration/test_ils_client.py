"""The ILS client against the real emulator over HTTP and a real Redis (issue 4, "Must show")."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalog_sync.changes.identifiers import lccn
from catalog_sync.changes.stamp import marcxml_control, marcxml_subfields
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.emulator.loadgen import marcxml_records, run_writers
from catalog_sync.ils import (
    ILSAuthError,
    ILSConflict,
    ILSNotFound,
    ILSSettings,
    ILSUnavailable,
    open_client,
)
from catalog_sync.ils.requestlog import LOGGER_NAME
from catalog_sync.services import ServiceProcess, free_port, start_emulator


def control_number_of(marcxml: bytes) -> str | None:
    return marcxml_control(marcxml, "001")


LOC_FILE = "loc-marc-open-access/BooksAll.2016.part01.utf8.first5000.mrc"
USER, PASSWORD = "catalog", "catalog-demo"
CLIENT_ID, CLIENT_SECRET = "catalog-sync", "catalog-sync-demo"

pytestmark = pytest.mark.timeout(120)
EmulatorFactory = Callable[..., ServiceProcess]


@pytest.fixture(scope="module")
def loc_records(corpus_dir: Path) -> list[bytes]:
    """1,000 real LoC records (public domain) as MARCXML, each with its own 001."""
    path = corpus_dir / LOC_FILE
    if not path.exists():
        pytest.skip(f"{path} not in the shared corpus")
    records = marcxml_records(path, 1000)
    assert len({control_number_of(r) for r in records}) == len(records) == 1000
    return records


def settings_for(url: str, **overrides: Any) -> ILSSettings:
    base: dict[str, Any] = {
        "name": "ils_test",
        "base_url": url,
        "username": USER,
        "password": PASSWORD,
    }
    return ILSSettings(**{**base, **overrides})


@pytest.fixture(scope="module")
def shared_ils(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One emulator for the tests that set their faults over /_emulator/ (reset in between)."""
    workdir = tmp_path_factory.mktemp("ils")
    reader = ["--readonly-user", "opac", "--readonly-password", "opac-pass"]
    proc = start_emulator(workdir, db=workdir / "koha.db", extra_args=reader)
    yield proc
    proc.stop()


@pytest.fixture
def koha(shared_ils: ServiceProcess) -> EmulatorControl:
    control = EmulatorControl(shared_ils.url)
    control.reset()
    return control


def create_all(settings: ILSSettings, records: list[bytes], prefix: str) -> list[str]:
    """Create every record at once through one client, as a commit task gathers them."""

    async def run() -> list[str]:
        async with open_client(settings) as ils:
            return await asyncio.gather(
                *(
                    ils.create_biblio(x, correlation_id=f"{prefix}-{i}")
                    for i, x in enumerate(records)
                )
            )

    return asyncio.run(run())


def test_thousand_writes_from_four_processes_keep_to_the_rate_and_land_exactly_once(
    emulator_factory: EmulatorFactory, redis_url: str, loc_records: list[bytes]
) -> None:
    rate = 300.0
    emulator = EmulatorControl(emulator_factory("--rate-limit", str(rate)).url)
    settings = settings_for(emulator.url, rate_limit=rate, max_concurrency=8)
    work = [(f"bulk-{i}", xml) for i, xml in enumerate(loc_records)]

    results = run_writers(settings, redis_url, work, processes=4)

    assert sum(sum(r.failures.values()) for r in results) == 0
    created = {cid: bid for r in results for cid, bid in r.created.items()}
    assert len(created) == 1000 and len(set(created.values())) == 1000
    per_record = emulator.creates_per_control_number()
    assert set(per_record.values()) == {1}
    assert set(per_record) == {control_number_of(xml) for xml in loc_records}
    counters = emulator.counters()
    assert counters.get("rate_limited", 0) < 0.02 * counters["requests"]


def test_injected_503s_and_dropped_connections_still_land_every_write_exactly_once(
    emulator_factory: EmulatorFactory, loc_records: list[bytes]
) -> None:
    faults = "error_rate=0.2,error_statuses=503,drop_rate=0.1,drop_after_share=0.5,seed=7"
    emulator = EmulatorControl(emulator_factory("--faults", faults).url)
    records = loc_records[:120]

    async def run() -> list[str]:
        async with open_client(settings_for(emulator.url)) as ils:
            ids = await asyncio.gather(
                *(ils.create_biblio(xml, correlation_id=f"f-{i}") for i, xml in enumerate(records))
            )
            # Updates (idempotent PUT) and deletes (re-checked after an ambiguous failure).
            await asyncio.gather(
                *(ils.update_biblio(ids[i], records[i], correlation_id=f"u-{i}") for i in range(30))
            )
            await asyncio.gather(
                *(ils.delete_biblio(ids[i], correlation_id=f"d-{i}") for i in range(90, 120))
            )
            return ids

    ids = asyncio.run(run())

    counters = emulator.counters()
    assert counters["injected_errors"] > 0 and counters["dropped_after_apply"] > 0
    assert sorted(b["biblio_id"] for b in emulator.biblios()) == sorted(int(i) for i in ids[:90])
    writes = emulator.writes()
    posts = Counter(w["record_id"] for w in writes if w["method"] == "POST")
    deletes = Counter(w["record_id"] for w in writes if w["method"] == "DELETE")
    assert len(posts) == 120 and set(posts.values()) == {1}
    assert len(deletes) == 30 and set(deletes.values()) == {1}


def test_a_down_ils_opens_the_breaker_and_the_batch_fails_fast_naming_the_ils(
    koha: EmulatorControl, loc_records: list[bytes]
) -> None:
    koha.set_faults(down_for=600)
    settings = settings_for(koha.url, name="ils_koha_main", breaker_threshold=5)

    async def run() -> list[BaseException | str]:
        async with open_client(settings) as ils:
            return await asyncio.gather(
                *(
                    ils.create_biblio(x, correlation_id=f"down-{i}")
                    for i, x in enumerate(loc_records[:100])
                ),
                return_exceptions=True,
            )

    outcomes = asyncio.run(run())

    assert all(isinstance(o, ILSUnavailable) for o in outcomes)
    messages = {str(o) for o in outcomes}
    assert all("ils_koha_main" in m and koha.url in m for m in messages)
    assert any("circuit open" in m for m in messages)
    # Failing fast: far fewer requests reached the ILS than 100 calls x 8 attempts.
    assert koha.counters()["requests"] < 40


def test_after_the_ils_comes_back_the_breaker_lets_a_probe_through_and_closes(
    koha: EmulatorControl, loc_records: list[bytes]
) -> None:
    koha.set_faults(down_for=600)
    settings = settings_for(koha.url, breaker_threshold=3, breaker_reset=0.5, max_attempts=4)

    async def run() -> str:
        async with open_client(settings) as ils:
            with pytest.raises(ILSUnavailable):
                await ils.create_biblio(loc_records[0], correlation_id="while-down")
            koha.clear_faults()
            # Still open right after recovery: fail fast without touching the ILS.
            with pytest.raises(ILSUnavailable, match="circuit open"):
                await ils.get_biblio("1", correlation_id="still-open")
            await asyncio.sleep(0.6)  # the breaker's reset time, not a measured duration
            return await ils.create_biblio(loc_records[0], correlation_id="after-recovery")

    biblio_id = asyncio.run(run())

    assert [b["biblio_id"] for b in koha.biblios()] == [int(biblio_id)]


def test_an_unreachable_ils_fails_with_unavailable_not_a_raw_connect_error() -> None:
    settings = settings_for(f"http://127.0.0.1:{free_port()}", breaker_threshold=3, max_attempts=3)

    async def run() -> None:
        async with open_client(settings) as ils:
            await ils.get_biblio("1", correlation_id="nowhere")

    with pytest.raises(ILSUnavailable, match="ils_test"):
        asyncio.run(run())


def test_an_expired_token_is_refreshed_without_failing_the_batch(
    koha: EmulatorControl, loc_records: list[bytes]
) -> None:
    tokens_before = koha.counters().get("tokens_issued", 0)
    settings = settings_for(
        koha.url, username=None, password=None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )

    async def run() -> list[str]:
        async with open_client(settings) as ils:
            first = await asyncio.gather(
                *(
                    ils.create_biblio(x, correlation_id=f"t1-{i}")
                    for i, x in enumerate(loc_records[:30])
                )
            )
            koha.expire_tokens()
            second = await asyncio.gather(
                *(
                    ils.create_biblio(x, correlation_id=f"t2-{i}")
                    for i, x in enumerate(loc_records[30:60])
                )
            )
            return [*first, *second]

    ids = asyncio.run(run())

    assert len(set(ids)) == 60
    counters = koha.counters()
    assert counters["tokens_issued"] - tokens_before == 2
    assert counters.get("status_401", 0) >= 1


def test_a_wrong_password_fails_at_once_with_a_clear_message_and_no_retries(
    koha: EmulatorControl, loc_records: list[bytes]
) -> None:
    with pytest.raises(ILSAuthError) as caught:
        create_all(settings_for(koha.url, password="not-the-password"), loc_records[:1], "pw")

    assert caught.value.status == 401 and caught.value.reason == "ils_auth"
    assert "Authentication failure." in str(caught.value) and "'ils_test'" in str(caught.value)
    assert koha.counters()["requests"] == 1


def test_a_wrong_client_secret_fails_at_the_token_endpoint_without_retries(
    koha: EmulatorControl, loc_records: list[bytes]
) -> None:
    settings = settings_for(
        koha.url, username=None, password=None, client_id=CLIENT_ID, client_secret="wrong"
    )

    with pytest.raises(ILSAuthError, match="unauthorized_client"):
        create_all(settings, loc_records[:1], "secret")
    assert koha.counters()["requests"] == 1


def test_missing_write_permission_is_an_auth_error_sent_once(
    koha: EmulatorControl, loc_records: list[bytes]
) -> None:
    settings = settings_for(koha.url, username="opac", password="opac-pass")

    with pytest.raises(ILSAuthError) as caught:
        create_all(settings, loc_records[:1], "reader")
    assert caught.value.status == 403 and "Missing required permission" in str(caught.value)
    assert koha.counters()["requests"] == 1


def test_without_a_client_rate_429s_shrink_concurrency_and_every_write_still_lands(
    koha: EmulatorControl, loc_records: list[bytes]
) -> None:
    koha.set_faults(rate_limit=60, burst=5)
    records = loc_records[:40]

    async def run() -> tuple[list[str], int]:
        async with open_client(settings_for(koha.url, max_concurrency=16)) as ils:
            ids = await asyncio.gather(
                *(ils.create_biblio(x, correlation_id=f"aimd-{i}") for i, x in enumerate(records))
            )
            return ids, ils.transport.concurrency.decreases  # type: ignore[attr-defined]

    ids, decreases = asyncio.run(run())

    assert len(set(ids)) == 40
    assert decreases >= 1
    assert koha.counters()["rate_limited"] > 0
    assert set(koha.creates_per_control_number().values()) == {1}


def test_creates_that_outlast_the_timeout_are_found_again_not_written_twice(
    koha: EmulatorControl, loc_records: list[bytes]
) -> None:
    # A third of the answers take 0.5 s, the client gives up after 0.3 s: the ILS finishes
    # those writes after the client stopped listening.
    koha.set_faults(slow_rate=0.3, slow_seconds=0.5, seed=5)

    ids = create_all(settings_for(koha.url, timeout=0.3), loc_records[:30], "slow")

    assert len(set(ids)) == 30
    assert koha.counters()["slowed"] > 0
    per_record = koha.creates_per_control_number()
    assert len(per_record) == 30 and set(per_record.values()) == {1}


def test_biblio_calls_map_koha_answers_to_domain_results(
    koha: EmulatorControl, loc_records: list[bytes]
) -> None:
    record = loc_records[0]

    async def run() -> None:
        async with open_client(settings_for(koha.url)) as ils:
            biblio_id = await ils.create_biblio(record, correlation_id="map-1")
            stored = await ils.get_biblio(biblio_id, correlation_id="map-2")
            assert stored is not None and marcxml_control(stored, "001") == control_number_of(
                record
            )
            number = lccn(marcxml_subfields(record, "010", "a")[0]) or ""
            found = await ils.find_by_numbers({"lccn": [number]}, correlation_id="map-3")
            assert [c.biblio_id for c in found] == [biblio_id]
            httpx.post(
                f"{koha.url}/api/v1/biblios/{biblio_id}/items",
                json={"external_id": "39015000000001"},
                auth=(USER, PASSWORD),
                timeout=10,
            ).raise_for_status()
            with pytest.raises(ILSConflict, match="items attached"):
                await ils.delete_biblio(biblio_id, correlation_id="map-4")
            assert await ils.get_biblio("999999", correlation_id="map-5") is None
            with pytest.raises(ILSNotFound):
                await ils.update_biblio("999999", record, correlation_id="map-6")

    asyncio.run(run())


def test_every_request_is_one_json_log_event_without_bodies_or_credentials(
    koha: EmulatorControl, loc_records: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    koha.set_faults(error_rate=0.3, error_statuses=[500], seed=1)

    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        create_all(settings_for(koha.url), loc_records[:20], "log")

    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == LOGGER_NAME]
    assert len(events) == koha.counters()["requests"]
    assert {e["correlation_id"] for e in events} == {f"log-{i}" for i in range(20)}
    assert {e["status"] for e in events} >= {200, 500}
    assert max(e["attempt"] for e in events) >= 2
    for event in events:
        assert set(event) >= {
            "method",
            "path",
            "status",
            "latency_ms",
            "attempt",
            "response_headers",
        }
    text = caplog.text
    assert "Basic " not in text and PASSWORD not in text
    assert "<record" not in text and "controlfield" not in text
