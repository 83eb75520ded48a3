"""The same change set under three deployments: `airflow dags test`, the embedded scheduler, Celery.

Each mode gets its own CATALOG_SYNC_HOME under bench/cache/production/<mode>, a private Redis
and emulator, and the ILS and state store a seed run left (bench/e2e.py's seed cache: the base
file loaded once, every record created). Then, per rate limit, it lays the base file with 5% of
records revised (a new 500 note on the same records each time, so every run updates the same
number of records), runs the DAG and measures, from the emulator's request counter sampled
every 0.1 s and the commit_chunk spans, the share of the rate limit used while commit tasks run:
    requests in [first commit start, last commit end] / (rate limit x that window).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from catalog_sync.devstack import (
    DEMO_DAG,
    DEMO_VENDOR,
    LocalServices,
    ils_connections,
    import_connections,
    lay_demo_file,
    prepare_airflow,
    provision,
)
from catalog_sync.paths import RuntimeLayout
from catalog_sync.services import ServiceProcess, free_port, start_emulator, start_redis

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
for path in (BENCH, REPO_ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import pyspy  # noqa: E402
from corpus import CHANGE_NOTE, with_changes  # noqa: E402
from cpusplit import CpuSplit  # noqa: E402
from e2e import (  # noqa: E402
    _environ,
    _restore_seed,
    _save_seed,
    bench_config,
    fresh_home,
    run_dag_measured,
)
from prodmetrics import (  # noqa: E402
    CounterTimeline,
    Span,
    per_second,
    scheduler_run,
    steady_metrics,
    window_metrics,
)

MODES = ("dagstest", "embedded", "celery")
USER, PASSWORD = "bench", "bench-only-password"
CHANGE_EVERY = 20  # 5% of records revised; --change-every 4 revises 25%
MAX_CONCURRENCY = 8  # the provisioned ILS connection's, kept at every rate


@dataclass
class Bench:
    """One mode's fixed inputs."""

    base: Path
    seed_cache: Path
    records_per_chunk: int
    rates: list[float]
    timeout: float
    cache: Path
    # None: the ILS pool's slots as include/config has them; a number tries another size.
    pool_slots: int | None = None
    change_every: int = CHANGE_EVERY


def load_now() -> dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {"load1": round(one, 2), "load5": round(five, 2), "load15": round(fifteen, 2)}


def revision(base: Path, n: int, every: int, cache: Path) -> Path:
    """The base file with every `every`-th record revised for the n-th measured run of a mode.

    Written to the cache: the base may be in the read-only shared corpus.
    """
    tag = "" if every == CHANGE_EVERY else f"-every{every}"
    dest = cache / "slices" / f"{base.stem}{tag}-rev{n}.mrc"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.is_file() or dest.stat().st_mtime < base.stat().st_mtime:
        with_changes(base, dest, every, note=f"{CHANGE_NOTE} revision {n}")
    return dest


def on_demand_config(home: Path, records_per_chunk: int, slots: int | None = None) -> Path:
    """bench_config, with the demo vendor run on demand: no schedule or window gating it."""
    config = bench_config(home, records_per_chunk)
    path = config / "vendors.yaml"
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    demo = doc["vendors"]["demo"]
    for key in ("schedule", "maintenance_window", "business_days_only", "blackout_dates",
                "min_gap", "notify_to"):  # fmt: skip
        demo.pop(key, None)
    if slots is not None:
        doc["ils_connections"]["ils_default"]["pool_slots"] = slots
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return config


def pool_slots(config: Path) -> int:
    doc = yaml.safe_load((config / "vendors.yaml").read_text())
    return int(doc["ils_connections"]["ils_default"]["pool_slots"])


def client_rate(home: Home, rate: float, concurrency: int) -> None:
    """Re-import the ILS connection(s) with another client rate limit."""
    conns = ils_connections(home.services, rate, concurrency)
    import_connections(home.layout, conns, env=home.airflow_env)


def set_rate(emulator_url: str, rate: float) -> None:
    httpx.post(
        f"{emulator_url}/_emulator/faults", json={"rate_limit": rate}, timeout=10
    ).raise_for_status()


@dataclass
class Home:
    """A mode's home with its Redis and emulator, seeded from the cache."""

    layout: RuntimeLayout
    config: Path
    redis: ServiceProcess
    emulator: ServiceProcess
    # The env of `airflow` commands against this home's metadata DB (a cluster's: Postgres).
    airflow_env: dict[str, str] | None = None

    @property
    def services(self) -> LocalServices:
        return LocalServices(self.redis.url, self.emulator.url)


# The seed's client: the rate limit lifted, so it loads as fast as the pipeline can.
SEED_RATE, SEED_CONCURRENCY = 5000.0, 16


def ensure_seed(b: Bench) -> None:
    """Load the base file once (every record a create, rate limit lifted) and cache the result.

    The same cache as bench/e2e.py's seed (ILS and state store files), so either seeds both.
    """
    if (b.seed_cache / "complete").is_file():
        return
    # One home per seed: two seeds built at once (a quick one beside the 250k) must not
    # share a home, as the second's fresh_home would wipe the first's mid-run.
    root = b.cache / "production" / f"seed-{b.seed_cache.name}"
    fresh_home(root)
    layout = RuntimeLayout(root.resolve())
    config = bench_config(layout.root, b.records_per_chunk)
    env = {"CATALOG_SYNC_HOME": str(layout.root), "CATALOG_SYNC_CONFIG_DIR": str(config)}
    with _environ(**env):
        for name in ("REDIS_URL", "CATALOG_SYNC_STATE_URL"):
            os.environ.pop(name, None)
        redis = start_redis(layout.run_dir)
        emulator = start_emulator(layout.run_dir, db=layout.root / "emulator.db")
        try:
            prepare_airflow(layout)
            provision(layout, LocalServices(redis.url, emulator.url))
            client_rate(Home(layout, config, redis, emulator), SEED_RATE, SEED_CONCURRENCY)
            lay_demo_file(layout, b.base)
            seed = run_dag_measured(layout, "seed", b.timeout)
            if seed.returncode != 0:
                raise RuntimeError(f"the seed run failed; see {seed.log_path}")
            # A seed that loaded nothing (a file the inbox did not take) must not be cached
            # as complete: every later run would measure creates, not the daily file.
            created = (seed.report or {}).get("summary", {}).get("created", 0)
            if not created:
                raise RuntimeError(f"the seed run created no records; see {seed.log_path}")
        finally:
            emulator.stop()  # SQLite files complete before they are copied
            redis.stop()
        _save_seed(layout, b.seed_cache)
        # The seed is the initial load (every record a create into an empty ILS): kept with
        # the cache so `make bench` reports it beside the daily file (issue 17 item 4).
        figures = {
            **seed.summary(),
            "client_rate": SEED_RATE,
            "client_concurrency": SEED_CONCURRENCY,
        }
        (b.seed_cache / "seed.json").write_text(json.dumps(figures, indent=2))


@contextmanager
def seeded_home(b: Bench, mode: str) -> Iterator[Home]:
    ensure_seed(b)
    suffix = f"-slots{b.pool_slots}" if b.pool_slots is not None else ""
    root = b.cache / "production" / f"{mode}{suffix}"
    fresh_home(root)
    layout = RuntimeLayout(root.resolve())
    config = on_demand_config(layout.root, b.records_per_chunk, b.pool_slots)
    env = {"CATALOG_SYNC_HOME": str(layout.root), "CATALOG_SYNC_CONFIG_DIR": str(config)}
    with _environ(**env):
        for name in ("REDIS_URL", "CATALOG_SYNC_STATE_URL"):
            os.environ.pop(name, None)  # a private Redis and the seeded SQLite state
        _restore_seed(b.seed_cache, layout)
        redis = start_redis(layout.run_dir)
        emulator: ServiceProcess | None = None
        try:
            emulator = start_emulator(layout.run_dir, db=layout.root / "emulator.db")
            yield Home(layout, config, redis, emulator)
        finally:
            if emulator is not None:
                emulator.stop()
            redis.stop()


Runner = Callable[[dict[str, Any]], tuple[float, list[Span], str]]


def measured(home: Home, rate: float, run: Runner, slots: int) -> dict[str, Any]:
    """One measured run at `rate`: the client's and the emulator's limit, counters sampled."""
    set_rate(home.emulator.url, rate)
    client_rate(home, rate, MAX_CONCURRENCY)
    load_before = load_now()
    timeline = CounterTimeline(home.emulator.url).start()
    split = CpuSplit().start()
    spy_dir = home.layout.root / "pyspy" / f"rate{rate:g}"
    spies = pyspy.start(spy_dir, {"emulator": home.emulator.process.pid, **pyspy.our_children()})
    detail: dict[str, Any] = {}
    try:
        wall, commits, state = run(detail)
    finally:
        timeline.stop()
        split.stop()
        pyspy.stop(spies)
    row: dict[str, Any] = {
        "rate_limit": rate,
        "state": state,
        "wall_s": round(wall, 1),
        "ils_requests_total": timeline.total(),
        "status_429": timeline.rate_limited(),
        "load_before": load_before,
        "load_after": load_now(),
        # Where the CPU went (scheduler, tasks, emulator, ...) and each task's peak memory.
        "cpu_split": split.summary({t["id"]: t["task"] for t in detail.get("task_spans", [])}),
    }
    if spies:
        row["pyspy"] = pyspy.summarise(spy_dir)
    row.update(window_metrics(commits, timeline, rate, slots))
    row.update(detail)
    if commits and "commit_window_s" in row:
        start, end = min(c.start for c in commits), max(c.end for c in commits)
        row.update(
            steady_metrics(detail.get("commit_tasks_detail", []), timeline, rate, end - start)
        )
        row["requests_per_second"] = per_second(timeline, start, end)
    return row


# -- (a) airflow dags test ------------------------------------------------------------------


def mode_dagstest(b: Bench) -> list[dict[str, Any]]:
    rows = []
    with seeded_home(b, "dagstest") as home:
        prepare_airflow(home.layout)
        provision(home.layout, home.services)
        for n, rate in enumerate(b.rates, start=1):
            lay_demo_file(home.layout, revision(b.base, n, b.change_every, b.cache))

            def run(
                _: dict[str, Any], label: str = f"rate{rate:g}"
            ) -> tuple[float, list[Span], str]:
                offset = time.time() - time.perf_counter()
                m = run_dag_measured(home.layout, label, b.timeout)
                commits = [
                    Span(w.started + offset, w.ended + offset)
                    for w in m.windows
                    if w.task == "commit_chunk" and w.ended is not None
                ]
                return m.wall_s, commits, "success" if m.returncode == 0 else "failed"

            rows.append(measured(home, rate, run, 1))
    return rows


# -- (b) embedded scheduler (LocalExecutor) -------------------------------------------------


def login_file(layout: RuntimeLayout) -> dict[str, str]:
    """A known SimpleAuthManager user, so the benchmark can take a token as the UI does."""
    airflow_home = layout.root / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    (airflow_home / "simple_auth_manager_passwords.json.generated").write_text(
        json.dumps({USER: PASSWORD})
    )
    return {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin"}


def scheduler_rows(b: Bench, home: Home, api_url: str) -> list[dict[str, Any]]:
    """Under a running scheduler (either mode): log in, unpause, one measured run per rate."""
    from tests.production.harness import AirflowApi

    api = AirflowApi(api_url, USER, PASSWORD)
    api.wait_for_dag(DEMO_DAG)
    api.unpause(DEMO_DAG)
    slots = pool_slots(home.config)
    rows = []
    for n, rate in enumerate(b.rates, start=1):
        lay_demo_file(home.layout, revision(b.base, n, b.change_every, b.cache))
        row = measured(home, rate, lambda d: scheduler_run(api, b.timeout, d), slots)
        rows.append({**row, **run_report(home.layout)})
    return rows


def run_report(layout: RuntimeLayout) -> dict[str, Any]:
    """The measured run's own report: its summary and requests per written record, by kind."""
    path = layout.reports / DEMO_VENDOR / "latest" / "report.json"
    if not path.is_file():
        return {}
    report = json.loads(path.read_text(encoding="utf-8"))
    return {
        "report_summary": report.get("summary", {}),
        "requests_per_written_record": report.get("requests_per_written_record", {}),
    }


def mode_embedded(b: Bench) -> list[dict[str, Any]]:
    from catalog_sync.embedded import embedded_parallelism, start_airflow

    with seeded_home(b, "embedded") as home:
        extra = login_file(home.layout)
        stack = start_airflow(home.layout, free_port(), home.services, extra_env=extra)
        try:
            rows = scheduler_rows(b, home, stack.api_url)
        finally:
            stack.stop()
    for row in rows:
        row["parallelism"] = embedded_parallelism()
    return rows


# -- (c) CeleryExecutor, two workers on this machine ----------------------------------------


def mode_celery(b: Bench) -> list[dict[str, Any]]:
    from celerymode import run_celery

    return run_celery(b, seeded_home, login_file, scheduler_rows)


RUNNERS: dict[str, Callable[[Bench], list[dict[str, Any]]]] = {
    "dagstest": mode_dagstest,
    "embedded": mode_embedded,
    "celery": mode_celery,
}


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| mode | rate req/s | state | wall s | commit window s | ILS req in window | share "
        "| 429 | peak commits / slots | quiet share | load before/after |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        if "error" in r and "rate_limit" not in r:
            lines.append(f"| {r['mode']} | | error: {r['error'][-120:]} |" + " |" * 8)
            continue
        share = r.get("share_of_rate_limit")
        lines.append(
            f"| {r['mode']} | {r['rate_limit']:g} | {r.get('state')} | {r.get('wall_s')} "
            f"| {r.get('commit_window_s')} | {r.get('ils_requests_in_window')} "
            f"| {f'{share:.0%}' if share is not None else '-'} | {r.get('status_429')} "
            f"| {r.get('peak_concurrent_commits')} / {r.get('pool_slots')} "
            f"| {r.get('quiet_share_while_committing')} "
            f"| {r['load_before']['load1']} / {r['load_after']['load1']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--base", type=Path, required=True, help="the seeded base file")
    ap.add_argument("--seed-cache", type=Path, required=True)
    ap.add_argument("--records-per-chunk", type=int, default=2000)
    ap.add_argument("--rates", default="200,50", help="comma-separated req/s")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--pool-slots", type=int, help="ILS pool size to try instead of the config's")
    ap.add_argument(
        "--change-every", type=int, default=CHANGE_EVERY, help="revise every N-th record"
    )
    ap.add_argument("--cache", type=Path, default=BENCH / "cache")
    ap.add_argument("--out", type=Path, required=True, help="JSON result file")
    args = ap.parse_args(argv)
    b = Bench(
        args.base,
        args.seed_cache,
        args.records_per_chunk,
        [float(r) for r in args.rates.split(",")],
        args.timeout,
        args.cache,
        args.pool_slots,
        args.change_every,
    )
    rows: list[dict[str, Any]] = []
    for mode in [m for m in args.modes.split(",") if m]:
        print(f"[production] {mode} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            for row in RUNNERS[mode](b):
                rows.append({"mode": mode, "change_every": b.change_every, **row})
        except Exception as exc:  # one mode failing must not lose the others' figures
            rows.append({"mode": mode, "error": f"{type(exc).__name__}: {exc}"[-1000:]})
        print(f"[production] {mode} {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        args.out.write_text(json.dumps({"rows": rows}, indent=2))
    with suppress(OSError):
        print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
