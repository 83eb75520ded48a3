"""Runtime settings read when a task runs (never while a DAG file is parsed)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from airflow.sdk import Variable

from catalog_sync.config import VendorConfig, load_vendors
from catalog_sync.paths import RuntimeLayout, layout, runtime_home
from catalog_sync.state import StateStore

HOME_VARIABLE = "catalog_sync_home"
REDIS_VARIABLE = "catalog_sync_redis_url"
STATE_URL_VARIABLE = "catalog_sync_state_url"


@dataclass(frozen=True)
class TaskRuntime:
    vendor: VendorConfig
    layout: RuntimeLayout
    redis_url: str | None

    def state(self) -> StateStore:
        return StateStore(_variable(STATE_URL_VARIABLE, None) or self.layout.state_url)


def _variable(key: str, default: str | None) -> str | None:
    value = Variable.get(key, default=default)
    return str(value) if value is not None else None


def task_runtime(vendor_name: str) -> TaskRuntime:
    home = _variable(HOME_VARIABLE, str(runtime_home()))
    redis_url = _variable(REDIS_VARIABLE, os.environ.get("REDIS_URL"))
    return TaskRuntime(load_vendors()[vendor_name], layout(home), redis_url)
