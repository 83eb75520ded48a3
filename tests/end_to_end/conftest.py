"""End-to-end fixtures: a demo vendor run wired to the real emulator, Redis and Airflow."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from catalog_sync.services import ServiceProcess
from tests.end_to_end.harness import DemoRun
from tests.end_to_end.ils_under_test import ils, ils_under_test, vendor_run  # noqa: F401


@pytest.fixture
def demo(
    tmp_path: Path,
    redis_url: str,
    emulator: ServiceProcess,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> DemoRun:
    home = tmp_path / "home"
    url = httpx.URL(emulator.url)
    connection = {
        "conn_type": "http",
        "host": url.host,
        "port": url.port,
        "schema": "http",
        "login": "catalog",
        "password": "catalog-demo",
        "extra": {"flavour": "koha", "max_concurrency": 8},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ILS_DEFAULT", json.dumps(connection))
    monkeypatch.setenv(
        "AIRFLOW_CONN_CATALOG_SYNC_PII",
        json.dumps({"conn_type": "generic", "password": "test-only-pii-hash-key"}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_CATALOG_SYNC_HOME", str(home))
    monkeypatch.setenv("AIRFLOW_VAR_CATALOG_SYNC_REDIS_URL", redis_url)
    inbox = home / "inbox" / "demo"
    inbox.mkdir(parents=True)
    return DemoRun(home, inbox, emulator, tmp_path / "emulator.db")
