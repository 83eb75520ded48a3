"""A demo-vendor run against the real emulator: run the DAG, then read what the ILS holds."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from catalog_sync.config import load_vendors
from catalog_sync.paths import CONFIG_DIR
from catalog_sync.services import ServiceProcess


def use_vendors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vendors: dict[str, Any]) -> None:
    """Point the DAG factory at a copy of include/config whose vendors.yaml holds `vendors`."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    body = yaml.safe_load((config / "vendors.yaml").read_text())
    body["vendors"] = vendors
    (config / "vendors.yaml").write_text(yaml.safe_dump(body))
    monkeypatch.setenv("CATALOG_SYNC_CONFIG_DIR", str(config))


@dataclass
class DemoRun:
    home: Path
    inbox: Path
    emulator: ServiceProcess
    emulator_db: Path

    def run(self, force: bool = True, vendor: str = "demo") -> Any:
        from catalog_sync_airflow.factory import build_vendor_dag

        dag = build_vendor_dag(load_vendors()[vendor])
        return dag.test(run_conf={"force": force})

    def stored(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.emulator.url}/_emulator/biblios", timeout=10)
        response.raise_for_status()
        body = response.json()
        return list(body["biblios"] if isinstance(body, dict) else body)

    def writes(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.emulator.url}/_emulator/writes", timeout=10)
        response.raise_for_status()
        body = response.json()
        return list(body["writes"] if isinstance(body, dict) else body)

    def summary(self, vendor: str = "demo") -> dict[str, int]:
        report = self.home / "reports" / vendor / "latest" / "report.json"
        return dict(json.loads(report.read_text())["summary"])
