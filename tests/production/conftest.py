"""A temporary Airflow home and CATALOG_SYNC_HOME with their own Redis, emulator and components."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog_sync.devstack import DEMO_DAG, SAMPLE_FILE, LocalServices, lay_demo_file
from catalog_sync.embedded import AirflowStack, start_airflow
from catalog_sync.paths import CONFIG_DIR, RuntimeLayout, layout
from catalog_sync.services import free_port
from tests.production.harness import AirflowApi, Services

# Every record of the sample file is new to the empty ILS: a run creates each of them once.
SAMPLE_RECORDS = 1000
USER, PASSWORD = "operator", "test-only-password"
# 1,000 sample records in chunks of 125: eight chunks for a pool of three slots.
RECORDS_PER_CHUNK = 125
POOL_SLOTS = 3
# Short retry waits so a fault test ends in minutes (the product: two retries, after 1 and 2 min).
TEST_RETRY = {"retries": 5, "delay_seconds": 10, "backoff": 1.5, "max_delay_seconds": 60}


def test_config(target: Path) -> Path:
    """A copy of include/config whose demo vendor runs on demand, in more chunks than slots."""
    shutil.copytree(CONFIG_DIR, target)
    path = target / "vendors.yaml"
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    demo = config["vendors"]["demo"]
    for key in ("schedule", "maintenance_window", "business_days_only", "blackout_dates",
                "min_gap", "notify_to"):  # fmt: skip
        demo.pop(key, None)
    demo.update(records_per_chunk=RECORDS_PER_CHUNK, retry=TEST_RETRY)
    config["ils_connections"]["ils_default"]["pool_slots"] = POOL_SLOTS
    path.write_text(yaml.safe_dump(config))
    return target


@dataclass
class EmbeddedRun:
    """One production-mode setup: call start() (after any fault preparations), then run()."""

    layout: RuntimeLayout
    services: Services
    extra_env: dict[str, str]
    stack: AirflowStack | None = None
    api: AirflowApi | None = None

    def start(self) -> AirflowApi:
        self.stack = start_airflow(
            self.layout,
            free_port(),
            LocalServices(self.services.redis.url, self.services.emulator.url),
            extra_env=self.extra_env,
        )
        self.api = AirflowApi(self.stack.api_url, USER, PASSWORD)
        self.api.wait_for_dag(DEMO_DAG)
        self.api.unpause(DEMO_DAG)
        return self.api

    def stop_stack(self) -> None:
        """Before the services it uses go away (a fault test's own Postgres)."""
        if self.stack is not None:
            self.stack.stop()
            self.stack = None

    def trigger(self) -> str:
        assert self.api is not None, "start() first"
        return self.api.trigger(DEMO_DAG, {"force": True})


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedRun]:
    monkeypatch.setenv("CATALOG_SYNC_CONFIG_DIR", str(test_config(tmp_path / "config")))
    for name in ("REDIS_URL", "CATALOG_SYNC_STATE_URL"):
        monkeypatch.delenv(name, raising=False)
    home = layout(tmp_path / "home")
    airflow_home = home.root / "airflow"
    airflow_home.mkdir(parents=True)
    # SimpleAuthManager keeps its users' passwords here; a known one lets the test log in.
    (airflow_home / "simple_auth_manager_passwords.json.generated").write_text(
        json.dumps({USER: PASSWORD})
    )
    lay_demo_file(home, SAMPLE_FILE)
    services = Services.start(tmp_path / "services")
    run = EmbeddedRun(home, services, {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin"})
    try:
        yield run
    finally:
        run.stop_stack()
        services.stop()
