"""Faults under the real scheduler: Redis, the state store's Postgres and the ILS go away mid-run.

Each run either completes through Airflow's retries, or fails naming the cause and a re-trigger
completes it; either way the ILS's write log shows every changed record written exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from catalog_sync.devstack import DEMO_DAG
from tests.production.conftest import SAMPLE_RECORDS, EmbeddedRun
from tests.production.harness import (
    assert_each_record_written_once,
    latest_summary,
    wait_for_writes,
)
from tests.production.postgres import start_postgres

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

# Writes the ILS has applied when the fault strikes: commit_chunk tasks are mid-way.
STRIKE_AFTER_WRITES = 150
RUN_TIMEOUT = 900


@dataclass(frozen=True)
class FaultOutcome:
    writes_before_fault: int
    first_state: str
    retried: list[str]
    retriggered: bool


def run_through(
    run: EmbeddedRun, fault: Callable[[], None], cause: tuple[str, ...]
) -> FaultOutcome:
    """Trigger, strike mid-commit, wait; a failed run must name the cause, then a re-run heals."""
    api = run.start()
    run_id = run.trigger()
    before = wait_for_writes(run.services.ils, STRIKE_AFTER_WRITES)
    fault()
    state = api.wait_for_run(DEMO_DAG, run_id, timeout=RUN_TIMEOUT)
    tis = api.task_instances(DEMO_DAG, run_id)
    retried = [f"{t['task_id']}[{t['map_index']}] try {t['try_number']}" for t in tis
               if (t["try_number"] or 0) > 1]  # fmt: skip
    if state != "success":
        failed = [t for t in tis if t["state"] == "failed"]
        assert failed, [(t["task_id"], t["state"]) for t in tis]
        logs = "\n".join(api.task_log(DEMO_DAG, run_id, t) for t in failed)
        assert any(word in logs for word in cause), f"no {cause} in the failed tasks' logs"
        rerun = run.trigger()
        assert api.wait_for_run(DEMO_DAG, rerun, timeout=RUN_TIMEOUT) == "success"
    # The fault hit while commits were writing: some writes came before it, some after.
    assert before < len(run.services.ils.writes())
    summary = latest_summary(run.layout)
    assert (summary["records"], summary["failed"]) == (SAMPLE_RECORDS, 0)
    outcome = FaultOutcome(before, state, retried, state != "success")
    print(f"\n{outcome}")
    return outcome


def test_redis_restarted_mid_commit_loses_no_record_and_writes_none_twice(
    embedded: EmbeddedRun,
) -> None:
    run_through(embedded, embedded.services.restart_redis, cause=("Redis", "redis"))
    assert_each_record_written_once(embedded.services.ils, SAMPLE_RECORDS)


def test_state_store_postgres_restarted_mid_commit_loses_no_record_and_writes_none_twice(
    embedded: EmbeddedRun,
) -> None:
    postgres = start_postgres()
    try:
        embedded.extra_env["AIRFLOW_VAR_CATALOG_SYNC_STATE_URL"] = postgres.url

        def restart() -> None:
            postgres.stop()
            time.sleep(5)
            postgres.start()

        run_through(embedded, restart, cause=("OperationalError", "state store", "5432"))
        assert_each_record_written_once(embedded.services.ils, SAMPLE_RECORDS)
    finally:
        embedded.stop_stack()
        postgres.remove()


def test_ils_down_for_a_minute_mid_commit_loses_no_record_and_writes_none_twice(
    embedded: EmbeddedRun,
) -> None:
    def outage() -> None:
        embedded.services.stop_emulator()
        time.sleep(60)
        embedded.services.start_emulator_again()

    run_through(embedded, outage, cause=("ILS", "Connect"))
    assert_each_record_written_once(embedded.services.ils, SAMPLE_RECORDS)
