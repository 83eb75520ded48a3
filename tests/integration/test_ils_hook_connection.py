"""ILSHook against the running emulator: test_connection and a client from the Connection."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as aioredis

from catalog_sync.ils.client import Candidate
from catalog_sync.leases import LeaseManager, record_scope
from catalog_sync.services import ServiceProcess
from ils.hooks import ILSHook, lease_settings

pytestmark = pytest.mark.timeout(60)


def point_connection_at(
    monkeypatch: pytest.MonkeyPatch, emulator: ServiceProcess, password: str, **extra: object
) -> None:
    where = urlsplit(emulator.url)
    conn = {
        "conn_type": "http",
        "host": where.hostname,
        "port": where.port,
        "login": "catalog",
        "password": password,
        "extra": extra,
    }
    monkeypatch.setenv("AIRFLOW_CONN_ILS_DEFAULT", json.dumps(conn))


def test_test_connection_reports_the_ils_and_its_size(
    monkeypatch: pytest.MonkeyPatch, emulator: ServiceProcess
) -> None:
    point_connection_at(monkeypatch, emulator, "catalog-demo", rate_limit=20)

    ok, message = ILSHook().test_connection()

    assert ok, message
    assert "ils_default" in message and "0 biblios" in message


def test_test_connection_with_a_wrong_password_says_so(
    monkeypatch: pytest.MonkeyPatch, emulator: ServiceProcess
) -> None:
    point_connection_at(monkeypatch, emulator, "wrong")

    ok, message = ILSHook().test_connection()

    assert not ok and "401" in message and "'ils_default'" in message


def test_the_hooks_client_reaches_the_ils_with_oauth2_credentials(
    monkeypatch: pytest.MonkeyPatch, emulator: ServiceProcess, redis_url: str
) -> None:
    point_connection_at(
        monkeypatch,
        emulator,
        "",
        client_id="catalog-sync",
        client_secret="catalog-sync-demo",
        rate_limit=50,
    )

    async def run() -> list[Candidate]:
        async with ILSHook().client(redis_url) as ils:
            return await ils.find_by_numbers({"lccn": ["00000002"]}, correlation_id="hook-check")

    assert asyncio.run(run()) == []
    counters = httpx.get(f"{emulator.url}/_emulator/writes", timeout=10).json()["counters"]
    assert counters["tokens_issued"] == 1 and counters["status_200"] == 2


def test_a_folio_connection_gives_the_folio_adapter_with_its_tenant(
    monkeypatch: pytest.MonkeyPatch, folio: ServiceProcess
) -> None:
    point_connection_at(monkeypatch, folio, "catalog-demo", flavour="folio", tenant="diku")

    ok, message = ILSHook().test_connection()

    assert ok, message
    assert "FOLIO" in message and "'diku'" in message and "0 instances" in message


def test_a_folio_connection_naming_an_unknown_tenant_fails_naming_it(
    monkeypatch: pytest.MonkeyPatch, folio: ServiceProcess
) -> None:
    point_connection_at(monkeypatch, folio, "catalog-demo", flavour="folio", tenant="nosuchlib")

    ok, message = ILSHook().test_connection()

    assert not ok and "nosuchlib" in message


def test_a_connections_lease_ttl_is_what_its_record_leases_live_for_in_redis(
    monkeypatch: pytest.MonkeyPatch, emulator: ServiceProcess, redis_url: str
) -> None:
    point_connection_at(monkeypatch, emulator, "catalog-demo", lease_ttl=120, lease_wait=240)
    key = record_scope("ils_default", "test-connection-lease-ttl|1")

    async def held_for() -> int:
        timings = lease_settings([ILSHook().get_conn()])
        redis = aioredis.from_url(redis_url)
        try:
            async with (
                LeaseManager.from_url(redis_url, timings) as leases,
                leases.hold([key]),
            ):
                return int(await redis.pttl(key))
        finally:
            await redis.aclose()

    # Milliseconds left on the lease just taken: the Connection's 120 s, not the default 30 s.
    assert 60_000 < asyncio.run(held_for()) <= 120_000
