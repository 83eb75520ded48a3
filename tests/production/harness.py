"""The embedded production mode under test: real Airflow components, driven over the REST API."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.paths import RuntimeLayout
from catalog_sync.services import ServiceProcess, start_emulator, start_redis

TERMINAL = {"success", "failed"}


class AirflowApi:
    """The REST API (/api/v2) as the UI uses it: a JWT from the auth manager on every call."""

    def __init__(self, url: str, username: str, password: str) -> None:
        response = httpx.post(
            f"{url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        response.raise_for_status()
        self._client = httpx.Client(
            base_url=f"{url}/api/v2",
            headers={"Authorization": f"Bearer {response.json()['access_token']}"},
            timeout=30,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the dag-processor has parsed the DAG into the metadata DB."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._client.get(f"/dags/{dag_id}").status_code == 200:
                return
            time.sleep(1)
        raise AssertionError(f"{dag_id} was not parsed within {timeout:.0f} s")

    def unpause(self, dag_id: str) -> None:
        body = self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        assert body["is_paused"] is False

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        """What the UI's Trigger button posts: no logical date, the run's params as conf."""
        body = {"logical_date": None, "conf": conf}
        body = self._call("POST", f"/dags/{dag_id}/dagRuns", json=body)
        return str(body["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL:
                return state
            time.sleep(2)
        raise AssertionError(f"run {run_id} still {state!r} after {timeout:.0f} s")

    def task_log(self, dag_id: str, run_id: str, ti: dict[str, Any]) -> str:
        """The text of one task instance's latest try, as the UI's log view shows it."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs"
        body = self._call(
            "GET", f"{path}/{ti['try_number']}", params={"map_index": ti["map_index"]}
        )
        return "\n".join(str(line) for line in body.get("content", []))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, page by page: the API caps a page at 100 (its
        maximum_page_limit), which a 250,000-record file's 256 task instances exceed."""
        found: list[dict[str, Any]] = []
        while True:
            body = self._call(
                "GET",
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": len(found)},
            )
            page = list(body["task_instances"])
            found += page
            if not page or len(found) >= int(body.get("total_entries", 0)):
                return found


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime


def intervals(task_instances: Sequence[dict[str, Any]], task_id: str) -> list[Interval]:
    """Start and end of each mapped instance of task_id that ran."""
    return [
        Interval(datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"]))
        for ti in task_instances
        if ti["task_id"] == task_id and ti["start_date"] and ti["end_date"]
    ]


def peak_overlap(spans: Sequence[Interval]) -> int:
    """The most intervals running at one instant (an end and a start at the same instant: 1)."""
    events = sorted([(s.start, 1) for s in spans] + [(s.end, -1) for s in spans])
    peak = running = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


@dataclass
class Services:
    """Redis and the ILS emulator of one test, restartable on the same port (and database)."""

    workdir: Path
    redis: ServiceProcess
    emulator: ServiceProcess
    emulator_db: Path

    @classmethod
    def start(cls, workdir: Path) -> Services:
        redis = start_redis(workdir / "redis")
        db = workdir / "emulator.db"
        return cls(workdir, redis, start_emulator(workdir, db=db), db)

    @property
    def ils(self) -> EmulatorControl:
        return EmulatorControl(self.emulator.url)

    def restart_redis(self) -> None:
        """Stop and start it again on its port: a non-persistent Redis comes back empty."""
        port = int(self.redis.url.rsplit(":", 1)[1].split("/")[0])
        self.redis.stop()
        self.redis = start_redis(self.workdir / "redis", port=port)

    def stop_emulator(self) -> None:
        self.emulator.stop()

    def start_emulator_again(self) -> None:
        port = int(self.emulator.url.rsplit(":", 1)[1])
        self.emulator = start_emulator(self.workdir, port=port, db=self.emulator_db)

    def stop(self) -> None:
        self.emulator.stop()
        self.redis.stop()


def wait_for_writes(ils: EmulatorControl, at_least: int, timeout: float = 300) -> int:
    """Until the ILS has applied at least that many writes: commit_chunk tasks are running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = len(ils.writes())
        if done >= at_least:
            return done
        time.sleep(0.2)
    raise AssertionError(f"fewer than {at_least} ILS writes after {timeout:.0f} s")


def latest_summary(layout: RuntimeLayout, vendor: str = "demo") -> dict[str, int]:
    report = json.loads((layout.reports / vendor / "latest" / "report.json").read_text())
    return dict(report["summary"])


def assert_each_record_written_once(ils: EmulatorControl, records: int) -> None:
    """The ILS's write log: each of `records` new records created once, nothing else written."""
    writes = ils.writes()
    per_record = Counter((w["resource"], w["record_id"], w["method"]) for w in writes)
    assert [key for key, n in per_record.items() if n > 1] == []
    assert Counter(w["method"] for w in writes) == {"POST": records}
    assert Counter(ils.creates_per_control_number().values()) == {1: records}
    assert len(ils.biblios()) == records
