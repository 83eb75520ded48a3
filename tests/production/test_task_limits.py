"""Settings the embedded mode and the vendor DAGs derive: one port, sized parallelism, limits."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from catalog_sync.config import RetryPolicy, VendorConfig
from catalog_sync.embedded import embedded_env, embedded_parallelism
from catalog_sync.paths import layout


def test_task_processes_reach_the_execution_api_on_the_port_the_ui_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW__API__HOST", raising=False)
    env = embedded_env(layout(tmp_path), 18093)
    assert env["AIRFLOW__API__PORT"] == "18093"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18093/execution/"


def test_tasks_follow_an_api_server_bound_to_one_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__API__HOST", "192.0.2.7")
    env = embedded_env(layout(tmp_path), 18093)
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://192.0.2.7:18093/execution/"


def test_parallelism_is_one_task_per_core_plus_the_ils_pool_slots() -> None:
    assert embedded_parallelism(cpus=2, pool_slots=4) == 6


def test_commit_tasks_time_out_and_every_task_retries_as_the_vendor_config_says() -> None:
    from catalog_sync_airflow.factory import build_vendor_dag

    vendor = VendorConfig.model_validate(
        {
            "name": "limits",
            "source": {"kind": "local", "inbox": "inbox/limits"},
            "commit_timeout_minutes": 7,
            "retry": {"retries": 5, "delay_seconds": 3, "backoff": 1.5, "max_delay_seconds": 30},
        }
    )
    dag = build_vendor_dag(vendor)
    assert dag.get_task("commit_chunk").execution_timeout == timedelta(minutes=7)
    assert dag.get_task("process_chunk").execution_timeout is None
    for task in dag.tasks:
        assert task.retries == 5, task.task_id
        assert task.retry_delay == timedelta(seconds=3), task.task_id
        assert task.retry_exponential_backoff == 1.5, task.task_id
        assert task.max_retry_delay == timedelta(seconds=30), task.task_id


def test_a_vendor_without_settings_keeps_the_product_defaults() -> None:
    policy = VendorConfig.model_validate(
        {"name": "plain", "source": {"kind": "local", "inbox": "x"}}
    )
    assert policy.retry == RetryPolicy(
        retries=2, delay_seconds=60, backoff=2.0, max_delay_seconds=900
    )
    assert policy.commit_timeout_minutes == 30
