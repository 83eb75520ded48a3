"""What bench/production.py reads off one measured run: the ILS request timeline and task spans.

The emulator counts every request it serves (`/_emulator/counters`); a thread samples that
counter every SAMPLE_EVERY seconds, so the requests inside any time window are read off the
timeline by interpolation. Task spans come from Airflow (TaskInstance start and end dates) or,
under `airflow dags test`, from its log lines; both are wall-clock epoch seconds here.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from catalog_sync.devstack import DEMO_DAG

SAMPLE_EVERY = 0.1
# Resolution of the "commit tasks run but the ILS sees nothing" diagnostic.
BIN_S = 0.5


@dataclass(frozen=True)
class Span:
    start: float
    end: float


@dataclass
class CounterTimeline:
    """(epoch seconds, requests, rate_limited) samples of the emulator's counters."""

    url: str
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self, client: httpx.Client) -> None:
        try:
            body = client.get(f"{self.url}/_emulator/counters").json()
        except (httpx.HTTPError, ValueError):
            return  # a missed sample only coarsens the timeline
        self.samples.append(
            (time.time(), int(body.get("requests", 0)), int(body.get("rate_limited", 0)))
        )

    def _loop(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                self._sample(client)
                self._stop.wait(SAMPLE_EVERY)
            self._sample(client)

    def start(self) -> CounterTimeline:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def requests_at(self, t: float) -> float:
        """Requests served by time t, linear between samples."""
        times = [s[0] for s in self.samples]
        i = bisect.bisect_left(times, t)
        if i == 0:
            return float(self.samples[0][1]) if self.samples else 0.0
        if i >= len(self.samples):
            return float(self.samples[-1][1])
        (t0, r0, _), (t1, r1, _) = self.samples[i - 1], self.samples[i]
        return r0 + (r1 - r0) * (t - t0) / (t1 - t0 or 1e-9)

    def between(self, start: float, end: float) -> float:
        return self.requests_at(end) - self.requests_at(start)

    def first_request_after(self, t: float) -> float | None:
        """When the counter first rose after t (to the resolution of the sampling)."""
        base = self.requests_at(t)
        for ts, requests, _ in self.samples:
            if ts > t and requests > base:
                return ts
        return None

    def rate_limited(self) -> int:
        return self.samples[-1][2] - self.samples[0][2] if self.samples else 0

    def total(self) -> int:
        return self.samples[-1][1] - self.samples[0][1] if self.samples else 0


def running_at(spans: Sequence[Span], t: float) -> int:
    return sum(1 for s in spans if s.start <= t < s.end)


def window_metrics(
    commits: Sequence[Span],
    timeline: CounterTimeline,
    rate_limit: float,
    pool_slots: int,
) -> dict[str, Any]:
    """The share of the rate limit used while commit tasks run, and where the rest went."""
    if not commits:
        return {"error": "no commit_chunk ran"}
    start = min(s.start for s in commits)
    end = max(s.end for s in commits)
    window = end - start
    requests = timeline.between(start, end)
    busy = sum(s.end - s.start for s in commits)
    ordered = sorted(commits, key=lambda s: s.start)
    # Idle gaps: a pool slot freed by one commit and taken by the next (under the scheduler).
    handoffs = []
    for s in ordered[pool_slots:]:
        ended_before = [c.end for c in ordered if c.end <= s.start]
        if ended_before:
            handoffs.append(s.start - max(ended_before))
    # Bins with commit tasks running: how many saw no ILS request at all (start-up, teardown).
    bins = quiet = 0
    t = start
    while t < end:
        if running_at(commits, t + BIN_S / 2):
            bins += 1
            if timeline.between(t, min(t + BIN_S, end)) < 0.5:
                quiet += 1
        t += BIN_S
    first = timeline.first_request_after(start)
    durations = [s.end - s.start for s in commits]
    return {
        "commit_tasks": len(commits),
        "commit_window_s": round(window, 2),
        "ils_requests_in_window": round(requests),
        "rate_limit": rate_limit,
        "share_of_rate_limit": round(requests / (rate_limit * window), 3) if window else None,
        "peak_concurrent_commits": peak_overlap(commits),
        "pool_slots": pool_slots,
        "slot_occupancy": round(busy / (pool_slots * window), 3) if window else None,
        "commit_task_s": {
            "min": round(min(durations), 2),
            "mean": round(sum(durations) / len(durations), 2),
            "max": round(max(durations), 2),
        },
        "first_request_after_first_commit_start_s": round(first - start, 2) if first else None,
        "slot_handoff_gap_s": _stats(handoffs),
        "quiet_share_while_committing": round(quiet / bins, 3) if bins else None,
        "request_rate_while_active": (
            round(requests / ((bins - quiet) * BIN_S), 1) if bins > quiet else None
        ),
    }


def _stats(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "n": len(values),
        "min": round(min(values), 2),
        "mean": round(sum(values) / len(values), 2),
        "max": round(max(values), 2),
    }


def peak_overlap(spans: Sequence[Span]) -> int:
    events = sorted([(s.start, 1) for s in spans] + [(s.end, -1) for s in spans])
    peak = running = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


# -- under a real scheduler: task spans and each commit task's own log ----------------------


def _epoch(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def scheduler_run(api: Any, timeout: float, out: dict[str, Any]) -> tuple[float, list[Span], str]:
    """Trigger as the UI does; the run's wall time is from its queueing to its end.

    Each commit task's own log gives when it sent its first and last ILS request (the client
    logs every request), so start-up and teardown inside the task show apart from the queue.
    """
    run_id = api.trigger(DEMO_DAG, {"force": True})
    state = api.wait_for_run(DEMO_DAG, run_id, timeout)
    dag_run = api._call("GET", f"/dags/{DEMO_DAG}/dagRuns/{run_id}")
    wall = (_epoch(dag_run["end_date"]) or 0.0) - (_epoch(dag_run["queued_at"]) or 0.0)
    commits = []
    per_task = []
    tis = api.task_instances(DEMO_DAG, run_id)
    for ti in tis:
        start, end = _epoch(ti["start_date"]), _epoch(ti["end_date"])
        if ti["task_id"] == "commit_chunk" and start and end:
            commits.append(Span(start, end))
            per_task.append(commit_task_timing(api, run_id, ti, start, end))
    out["commit_tasks_detail"] = sorted(per_task, key=lambda t: t["start"])
    out["task_spans"] = task_spans(tis)
    return wall, commits, state


def commit_task_timing(
    api: Any, run_id: str, ti: dict[str, Any], start: float, end: float
) -> dict[str, Any]:
    """start -> first ILS request, the requests' span, last request -> end, for one commit.

    From the client's own request events also: mean latency and rate-gate wait, and requests
    in flight on average while it was requesting (Little's law: sum of latencies / span), so a
    task held back by its own concurrency shows apart from one held back by the token bucket.
    """
    path = f"/dags/{DEMO_DAG}/dagRuns/{run_id}/taskInstances/commit_chunk/logs/{ti['try_number']}"
    try:
        body = api._call("GET", path, params={"map_index": ti["map_index"]})
    except httpx.HTTPError:
        body = {}
    events = request_events(body.get("content", []))
    timing: dict[str, Any] = {
        "map_index": ti["map_index"],
        "hostname": ti.get("hostname"),
        "start": round(start, 3),
        "end": round(end, 3),
        "duration_s": round(end - start, 2),
        "ils_requests_logged": len(events),
    }
    timing.update(request_profile(events, start, end))
    return timing


@dataclass(frozen=True)
class RequestEvent:
    """One ils_request line of a task log: when it was logged (its end), latency, gate wait."""

    at: float
    latency_ms: float
    rate_wait_ms: float


def request_events(lines: Sequence[Any]) -> list[RequestEvent]:
    events = []
    for line in lines:
        text = json.dumps(line) if isinstance(line, dict) else str(line)
        if "ils_request" not in text:
            continue
        stamp = line.get("timestamp") if isinstance(line, dict) else text[:32].split(" ")[0]
        payload = _request_payload(line, text)
        with suppress(ValueError, TypeError):
            at = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
            events.append(
                RequestEvent(
                    at,
                    float(payload.get("latency_ms", 0.0)),
                    float(payload.get("rate_wait_ms", 0.0)),
                )
            )
    return sorted(events, key=lambda e: e.at)


def _request_payload(line: Any, text: str) -> dict[str, Any]:
    """The request event's fields, whether the log line is structured or the JSON message."""
    if isinstance(line, dict):
        for key in ("ils_request", "event"):
            value = line.get(key)
            if isinstance(value, dict):
                return value
            if isinstance(value, str) and value.startswith("{"):
                with suppress(ValueError):
                    return dict(json.loads(value))
        if "latency_ms" in line:
            return line
    with suppress(ValueError):
        return dict(json.loads(text[text.index("{", 1) : text.rindex("}") + 1]))
    return {}


def request_profile(events: Sequence[RequestEvent], start: float, end: float) -> dict[str, Any]:
    if not events:
        return {}
    first, last = events[0].at, events[-1].at
    span = last - first
    n = len(events)
    latencies = sorted(e.latency_ms for e in events)
    return {
        "to_first_request_s": round(first - start, 2),
        "requesting_s": round(span, 2),
        "after_last_request_s": round(end - last, 2),
        "first_request_at": round(first, 3),
        "last_request_at": round(last, 3),
        "requests_per_s_while_requesting": round(n / span, 1) if span > 0 else None,
        "latency_ms_mean": round(sum(latencies) / n, 1),
        "latency_ms_p90": round(latencies[int(0.9 * (n - 1))], 1),
        "rate_wait_ms_mean": round(sum(e.rate_wait_ms for e in events) / n, 1),
        "in_flight_mean": round(sum(latencies) / 1000 / span, 2) if span > 0 else None,
    }


def steady_metrics(
    tasks: Sequence[dict[str, Any]], timeline: CounterTimeline, rate_limit: float, window: float
) -> dict[str, Any]:
    """The share while at least one commit task is between its first and last ILS request.

    The whole-window share counts every task's start-up and teardown; this one is what the
    token bucket and the tasks' concurrency deliver once requests flow, and window minus
    this time is the fixed overhead the scheduler and task start-up add.
    """
    spans = [
        Span(t["first_request_at"], t["last_request_at"])
        for t in tasks
        if t.get("first_request_at") is not None
    ]
    if not spans:
        return {}
    merged = _merged(spans)
    requesting = sum(s.end - s.start for s in merged)
    requests = sum(timeline.between(s.start, s.end) for s in merged)
    return {
        "requesting_s": round(requesting, 2),
        "fixed_overhead_s": round(window - requesting, 2),
        "ils_requests_while_requesting": round(requests),
        "share_while_requesting": (
            round(requests / (rate_limit * requesting), 3) if requesting else None
        ),
    }


def _merged(spans: Sequence[Span]) -> list[Span]:
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: s.start):
        if out and s.start <= out[-1].end:
            out[-1] = Span(out[-1].start, max(out[-1].end, s.end))
        else:
            out.append(s)
    return out


def per_second(timeline: CounterTimeline, start: float, end: float) -> list[int]:
    """ILS requests in each second of [start, end): the request rate over the commit window."""
    out = []
    t = start
    while t < end:
        out.append(round(timeline.between(t, min(t + 1.0, end))))
        t += 1.0
    return out


def task_spans(tis: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every task instance's span, relative to the run's first start (the timeline)."""
    starts = [_epoch(t["start_date"]) for t in tis if t["start_date"]]
    t0 = min(s for s in starts if s is not None) if starts else 0.0
    return [
        {
            "task": t["task_id"],
            "id": t.get("id"),
            "map_index": t["map_index"],
            "start": round((_epoch(t["start_date"]) or t0) - t0, 2),
            "end": round((_epoch(t["end_date"]) or t0) - t0, 2),
            "hostname": t.get("hostname"),
        }
        for t in sorted(tis, key=lambda t: t["start_date"] or "")
        if t["start_date"]
    ]
