"""The ILS client against the real emulator over HTTP and a real Redis (issue 4, "Must show")."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalog_sync.emulator.loadgen import marcxml_records, run_writers
from catalog_sync.ils import (
    ILSAuthError,
    ILSConflict,
    ILSNotFound,
    ILSSettings,
    ILSUnavailable,
    open_client,
)
from catalog_sync.ils.koha import control_number_of
from catalog_sync.ils.requestlog import LOGGER_NAME
from catalog_sync.services import ServiceProcess, free_port

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


def emulator_json(url: str, path: str) -> Any:
    return httpx.get(f"{url}{path}", timeout=10).json()


def settings_for(url: str, **overrides: Any) -> ILSSettings:
    base: dict[str, Any] = {
        "name": "ils_test",
        "base_url": url,
        "username": USER,
        "password": PASSWORD,
    }
    return ILSSettings(**{**base, **overrides})


def posts_per_control_number(url: str) -> Counter[str]:
    """How often each stored record's control number was created, from the write log."""
    stored = {
        b["biblio_id"]: b["control_number"]
        for b in emulator_json(url, "/_emulator/biblios")["biblios"]
    }
    writes = emulator_json(url, "/_emulator/writes")["writes"]
    return Counter(
        stored.get(w["record_id"], f"deleted:{w['record_id']}")
        for w in writes
        if w["method"] == "POST" and w["resource"] == "biblio"
    )


def test_thousand_writes_from_four_processes_keep_to_the_rate_and_land_exactly_once(
    emulator_factory: EmulatorFactory, redis_url: str, loc_records: list[bytes]
) -> None:
    rate = 300.0
    emulator = emulator_factory("--rate-limit", str(rate))
    settings = settings_for(emulator.url, rate_limit=rate, max_concurrency=8)
    work = [(f"bulk-{i}", xml) for i, xml in enumerate(loc_records)]

    results = run_writers(settings, redis_url, work, processes=4)

    assert sum(sum(r.failures.values()) for r in results) == 0
    created = {cid: bid for r in results for cid, bid in r.created.items()}
    assert len(created) == 1000 and len(set(created.values())) == 1000
    per_record = posts_per_control_number(emulator.url)
    assert set(per_record.values()) == {1}
    assert set(per_record) == {control_number_of(xml) for xml in loc_records}
    counters = emulator_json(emulator.url, "/_emulator/writes")["counters"]
    assert counters.get("rate_limited", 0) < 0.02 * counters["requests"]


def test_injected_503s_and_dropped_connections_still_land_every_write_exactly_once(
    emulator_factory: EmulatorFactory, loc_records: list[bytes]
) -> None:
    faults = "error_rate=0.2,error_statuses=503,drop_rate=0.1,drop_after_share=0.5,seed=7"
    emulator = emulator_factory("--faults", faults)
    records = loc_records[:120]

    async def run() -> dict[str, str]:
        async with open_client(settings_for(emulator.url)) as ils:
            ids = await asyncio.gather(
                *(ils.create_biblio(xml, correlation_id=f"f-{i}") for i, xml in enumerate(records))
            )
            by_control = {
                control_number_of(xml) or "": bid for xml, bid in zip(records, ids, strict=True)
            }
            # Updates (idempotent PUT) and deletes (re-checked after an ambiguous failure).
            await asyncio.gather(
                *(
                    ils.update_biblio(ids[i], records[i], correlation_id=f"u-{i}")
                    for i in range(0, 30)
                )
            )
            await asyncio.gather(
                *(ils.delete_biblio(ids[i], correlation_id=f"d-{i}") for i in range(90, 120))
            )
            return by_control

    by_control = asyncio.run(run())

    counters = emulator_json(emulator.url, "/_emulator/writes")["counters"]
    assert counters["injected_errors"] > 0 and counters["dropped_after_apply"] > 0
    stored = emulator_json(emulator.url, "/_emulator/biblios")["biblios"]
    assert sorted(b["biblio_id"] for b in stored) == sorted(
        int(by_control[control_number_of(x) or ""]) for x in records[:90]
    )
    writes = emulator_json(emulator.url, "/_emulator/writes")["writes"]
    posts = Counter(w["record_id"] for w in writes if w["method"] == "POST")
    deletes = Counter(w["record_id"] for w in writes if w["method"] == "DELETE")
    assert len(posts) == 120 and set(posts.values()) == {1}
    assert len(deletes) == 30 and set(deletes.values()) == {1}


def test_a_down_ils_opens_the_breaker_and_the_batch_fails_fast_naming_the_ils(
    emulator_factory: EmulatorFactory, loc_records: list[bytes]
) -> None:
    emulator = emulator_factory("--faults", "down")
    settings = settings_for(emulator.url, name="ils_koha_main", breaker_threshold=5)

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
    assert all("ils_koha_main" in m and emulator.url in m for m in messages)
    assert any("circuit open" in m for m in messages)
    # Failing fast: far fewer requests reached the ILS than 100 calls x 8 attempts.
    assert emulator_json(emulator.url, "/_emulator/writes")["counters"]["requests"] < 40


def test_an_unreachable_ils_fails_with_unavailable_not_a_raw_connect_error() -> None:
    settings = settings_for(f"http://127.0.0.1:{free_port()}", breaker_threshold=3, max_attempts=3)

    async def run() -> None:
        async with open_client(settings) as ils:
            await ils.get_biblio("1", correlation_id="nowhere")

    with pytest.raises(ILSUnavailable, match="ils_test"):
        asyncio.run(run())


def test_an_expired_token_is_refreshed_without_failing_the_batch(
    emulator_factory: EmulatorFactory, loc_records: list[bytes]
) -> None:
    emulator = emulator_factory()
    settings = settings_for(
        emulator.url, username=None, password=None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )

    async def run() -> list[str]:
        async with open_client(settings) as ils:
            first = await asyncio.gather(
                *(
                    ils.create_biblio(x, correlation_id=f"t1-{i}")
                    for i, x in enumerate(loc_records[:30])
                )
            )
            httpx.post(f"{emulator.url}/_emulator/tokens/expire", timeout=10).raise_for_status()
            second = await asyncio.gather(
                *(
                    ils.create_biblio(x, correlation_id=f"t2-{i}")
                    for i, x in enumerate(loc_records[30:60])
                )
            )
            return [*first, *second]

    ids = asyncio.run(run())

    assert len(set(ids)) == 60
    counters = emulator_json(emulator.url, "/_emulator/writes")["counters"]
    assert counters["tokens_issued"] == 2
    assert counters.get("status_401", 0) >= 1


def test_a_wrong_password_fails_at_once_with_a_clear_message_and_no_retries(
    emulator_factory: EmulatorFactory, loc_records: list[bytes]
) -> None:
    emulator = emulator_factory()

    async def run() -> None:
        async with open_client(settings_for(emulator.url, password="not-the-password")) as ils:
            await ils.create_biblio(loc_records[0], correlation_id="bad-password")

    with pytest.raises(ILSAuthError) as caught:
        asyncio.run(run())

    assert caught.value.status == 401 and caught.value.reason == "ils_auth"
    assert "Authentication failure." in str(caught.value) and "'ils_test'" in str(caught.value)
    assert emulator_json(emulator.url, "/_emulator/writes")["counters"]["requests"] == 1


def test_a_wrong_client_secret_fails_at_the_token_endpoint_without_retries(
    emulator_factory: EmulatorFactory,
) -> None:
    emulator = emulator_factory()
    settings = settings_for(
        emulator.url, username=None, password=None, client_id=CLIENT_ID, client_secret="wrong"
    )

    async def run() -> None:
        async with open_client(settings) as ils:
            await ils.get_biblio("1", correlation_id="bad-secret")

    with pytest.raises(ILSAuthError, match="unauthorized_client"):
        asyncio.run(run())
    assert emulator_json(emulator.url, "/_emulator/writes")["counters"]["requests"] == 1


def test_without_a_client_rate_429s_shrink_concurrency_and_every_write_still_lands(
    emulator_factory: EmulatorFactory, loc_records: list[bytes]
) -> None:
    emulator = emulator_factory("--rate-limit", "60", "--burst", "5")
    records = loc_records[:40]

    async def run() -> tuple[list[str], int]:
        async with open_client(settings_for(emulator.url, max_concurrency=16)) as ils:
            ids = await asyncio.gather(
                *(ils.create_biblio(x, correlation_id=f"aimd-{i}") for i, x in enumerate(records))
            )
            return ids, ils.transport.concurrency.decreases  # type: ignore[attr-defined]

    ids, decreases = asyncio.run(run())

    assert len(set(ids)) == 40
    assert decreases >= 1
    assert emulator_json(emulator.url, "/_emulator/writes")["counters"]["rate_limited"] > 0
    assert set(posts_per_control_number(emulator.url).values()) == {1}


def test_biblio_calls_map_koha_answers_to_domain_results(
    emulator_factory: EmulatorFactory, loc_records: list[bytes]
) -> None:
    emulator = emulator_factory()
    record = loc_records[0]

    async def run() -> None:
        async with open_client(settings_for(emulator.url)) as ils:
            biblio_id = await ils.create_biblio(record, correlation_id="map-1")
            assert await ils.get_biblio(biblio_id, correlation_id="map-2") == record
            assert await ils.find_biblio_ids(
                control_number_of(record) or "", correlation_id="map-3"
            ) == [biblio_id]
            httpx.post(
                f"{emulator.url}/api/v1/biblios/{biblio_id}/items",
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
    emulator_factory: EmulatorFactory, loc_records: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    emulator = emulator_factory("--faults", "error_rate=0.3,error_statuses=500,seed=1")
    records = loc_records[:20]

    async def run() -> None:
        async with open_client(settings_for(emulator.url)) as ils:
            await asyncio.gather(
                *(ils.create_biblio(x, correlation_id=f"log-{i}") for i, x in enumerate(records))
            )

    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        asyncio.run(run())

    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == LOGGER_NAME]
    assert len(events) == emulator_json(emulator.url, "/_emulator/writes")["counters"]["requests"]
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


def test_missing_write_permission_is_an_auth_error_sent_once(
    emulator_factory: EmulatorFactory, loc_records: list[bytes]
) -> None:
    emulator = emulator_factory("--readonly-user", "opac", "--readonly-password", "opac-pass")
    settings = settings_for(emulator.url, username="opac", password="opac-pass")

    async def run() -> None:
        async with open_client(settings) as ils:
            await ils.create_biblio(loc_records[0], correlation_id="reader-write")

    with pytest.raises(ILSAuthError) as caught:
        asyncio.run(run())
    assert caught.value.status == 403 and "Missing required permission" in str(caught.value)
    assert emulator_json(emulator.url, "/_emulator/writes")["counters"]["requests"] == 1


def test_after_the_ils_comes_back_the_breaker_lets_a_probe_through_and_closes(
    emulator_factory: EmulatorFactory, loc_records: list[bytes]
) -> None:
    emulator = emulator_factory("--faults", "down")
    settings = settings_for(emulator.url, breaker_threshold=3, breaker_reset=0.5, max_attempts=4)

    async def run() -> str:
        async with open_client(settings) as ils:
            with pytest.raises(ILSUnavailable):
                await ils.create_biblio(loc_records[0], correlation_id="while-down")
            httpx.delete(f"{emulator.url}/_emulator/faults", timeout=10).raise_for_status()
            # Still open right after recovery: fail fast without touching the ILS.
            with pytest.raises(ILSUnavailable, match="circuit open"):
                await ils.get_biblio("1", correlation_id="still-open")
            await asyncio.sleep(0.6)  # the breaker's reset time, not a measured duration
            return await ils.create_biblio(loc_records[0], correlation_id="after-recovery")

    biblio_id = asyncio.run(run())

    assert emulator_json(emulator.url, "/_emulator/biblios")["biblios"][0]["biblio_id"] == int(
        biblio_id
    )


def test_creates_that_outlast_the_timeout_are_found_again_not_written_twice(
    emulator_factory: EmulatorFactory, loc_records: list[bytes]
) -> None:
    # A third of the answers take 0.5 s, the client gives up after 0.3 s: the ILS finishes
    # those writes after the client stopped listening.
    emulator = emulator_factory("--faults", "slow_rate=0.3,slow_seconds=0.5,seed=5")
    records = loc_records[:30]

    async def run() -> list[str]:
        async with open_client(settings_for(emulator.url, timeout=0.3)) as ils:
            return await asyncio.gather(
                *(ils.create_biblio(x, correlation_id=f"slow-{i}") for i, x in enumerate(records))
            )

    ids = asyncio.run(run())

    assert len(set(ids)) == 30
    assert emulator_json(emulator.url, "/_emulator/writes")["counters"]["slowed"] > 0
    assert set(posts_per_control_number(emulator.url).values()) == {1}
    assert len(posts_per_control_number(emulator.url)) == 30
