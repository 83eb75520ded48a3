"""The whole DAG end to end: a seed load, then the same file with a share of records changed.

Runs `airflow dags test catalog_sync_demo` as `make demo` does (devstack's Airflow home,
provisioning and inbox), but in its own CATALOG_SYNC_HOME under bench/cache, with a private
Redis and an emulator on a free port, and samples the resident memory of the Airflow process
tree every 50 ms so each task's peak can be read off its [DAG TEST] start/end lines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
import yaml

from catalog_sync.devstack import (
    DEMO_DAG,
    DEMO_VENDOR,
    EMULATOR_RATE_LIMIT,
    LocalServices,
    airflow_bin,
    airflow_env,
    ils_connections,
    import_connections,
    lay_demo_file,
    prepare_airflow,
    provision,
)
from catalog_sync.paths import CONFIG_DIR, RuntimeLayout
from catalog_sync.services import ServiceProcess, free_port, start_emulator, start_redis

_TASK_START = re.compile(r"\[DAG TEST\] running task <TaskInstance: [\w.]+?\.(\w+) ")
_TASK_END = re.compile(r"\[DAG TEST\] end task task_id=(\w+) map_index=(-?\d+)")
# What each run keeps between benchmark runs: only the migrated Airflow metadata DB.
_KEEP = {"airflow", "config"}
SAMPLE_EVERY = 0.05


@dataclass
class TaskWindow:
    task: str
    started: float
    ended: float | None = None
    rss_at_start: int = 0
    rss_peak: int = 0


@dataclass
class DagRunMeasure:
    label: str
    wall_s: float = 0.0
    returncode: int = 0
    peak_rss_tree: int = 0
    windows: list[TaskWindow] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    counters_before: dict[str, int] = field(default_factory=dict)
    counters_after: dict[str, int] = field(default_factory=dict)
    log_path: str = ""

    def summary(self) -> dict[str, Any]:
        by_task: dict[str, dict[str, Any]] = {}
        for w in self.windows:
            s = by_task.setdefault(
                w.task, {"runs": 0, "seconds": 0.0, "peak_rss_mb": 0.0, "max_growth_mb": 0.0}
            )
            s["runs"] += 1
            s["seconds"] = round(s["seconds"] + ((w.ended or w.started) - w.started), 2)
            s["peak_rss_mb"] = max(s["peak_rss_mb"], round(w.rss_peak / 2**20, 1))
            growth = max(0, w.rss_peak - w.rss_at_start) / 2**20
            s["max_growth_mb"] = max(s["max_growth_mb"], round(growth, 1))
        delta = {
            k: self.counters_after.get(k, 0) - self.counters_before.get(k, 0)
            for k in self.counters_after
        }
        return {
            "label": self.label,
            "returncode": self.returncode,
            "wall_s": round(self.wall_s, 2),
            "peak_rss_tree_mb": round(self.peak_rss_tree / 2**20, 1),
            "tasks": by_task,
            "emulator_counters": delta,
            "report_summary": self.report.get("summary", {}),
            # The run report's own client-side count, by kind (issue 17 item 1).
            "requests_per_written_record": self.report.get("requests_per_written_record", {}),
            "log": self.log_path,
        }


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


def run_dag_measured(
    layout: RuntimeLayout,
    label: str,
    timeout: float,
    dag_id: str = DEMO_DAG,
    vendor: str = DEMO_VENDOR,
) -> DagRunMeasure:
    """One forced `airflow dags test` of the demo DAG (or `dag_id`, reporting as `vendor`),
    with task windows and tree RSS."""
    measure = DagRunMeasure(label)
    log_path = layout.root / f"dag-{label}.log"
    measure.log_path = str(log_path)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [airflow_bin(), "dags", "test", dag_id, "-c", json.dumps({"force": True})],
        env=airflow_env(layout),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ps = psutil.Process(proc.pid)
    current: list[int] = [0]
    lock = threading.Lock()

    def reader() -> None:
        assert proc.stdout is not None
        with log_path.open("w") as log:
            for line in proc.stdout:
                log.write(line)
                now = time.perf_counter()
                with lock:
                    if m := _TASK_START.search(line):
                        measure.windows.append(TaskWindow(m.group(1), now, None, current[0]))
                    elif (m := _TASK_END.search(line)) and measure.windows:
                        for w in reversed(measure.windows):
                            if w.task == m.group(1) and w.ended is None:
                                w.ended = now
                                break

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    deadline = started + timeout
    while proc.poll() is None:
        rss = _tree_rss(ps)
        with lock:
            current[0] = rss
            measure.peak_rss_tree = max(measure.peak_rss_tree, rss)
            for w in measure.windows:
                if w.ended is None:
                    w.rss_peak = max(w.rss_peak, rss, w.rss_at_start)
        if time.perf_counter() > deadline:
            proc.kill()
            break
        time.sleep(SAMPLE_EVERY)
    proc.wait()
    thread.join(timeout=10)
    measure.wall_s = time.perf_counter() - started
    measure.returncode = proc.returncode
    report = layout.reports / vendor / "latest" / "report.json"
    if report.is_file():
        measure.report = json.loads(report.read_text(encoding="utf-8"))
    return measure


def bench_config(home: Path, records_per_chunk: int) -> Path:
    """A copy of include/config whose demo vendor uses the benchmark's chunk size."""
    target = home / "config"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(CONFIG_DIR, target)
    vendors_file = target / "vendors.yaml"
    doc = yaml.safe_load(vendors_file.read_text(encoding="utf-8"))
    doc["vendors"][DEMO_VENDOR]["records_per_chunk"] = records_per_chunk
    vendors_file.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return target


def fresh_home(home: Path) -> None:
    """Everything from earlier runs goes, except the migrated Airflow metadata DB."""
    home.mkdir(parents=True, exist_ok=True)
    for child in home.iterdir():
        if child.name in _KEEP:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _client_rate(
    layout: RuntimeLayout, services: LocalServices, rate: float, concurrency: int
) -> None:
    """Re-import the ILS connection(s) with another client rate limit."""
    import_connections(layout, ils_connections(services, rate, concurrency))


_SEED_FILES = ("emulator.db", "state.db")


def _restore_seed(cache: Path, layout: RuntimeLayout) -> bool:
    """Copy a cached seed (the ILS and state store after the seed run) into the home."""
    if not (cache / "complete").is_file():
        return False
    for name in _SEED_FILES:
        for src in cache.glob(f"{name}*"):
            shutil.copyfile(src, layout.root / src.name)
    return True


def _save_seed(layout: RuntimeLayout, cache: Path) -> None:
    if cache.exists():
        shutil.rmtree(cache)
    cache.mkdir(parents=True)
    for name in _SEED_FILES:
        for src in layout.root.glob(f"{name}*"):
            shutil.copyfile(src, cache / src.name)
    (cache / "complete").touch()


def provisioned_rate(layout: RuntimeLayout) -> float:
    """The client rate limit `provision` gives the ILS connection(s), requests/s."""
    return EMULATOR_RATE_LIMIT


def _counters(url: str) -> dict[str, int]:
    return dict(httpx.get(f"{url}/_emulator/counters", timeout=30).json())


def run_end_to_end(
    home: Path,
    base_file: Path,
    changed_file: Path,
    *,
    records_per_chunk: int,
    seed_cache: Path,
    timeout: float = 3600.0,
) -> dict[str, Any]:
    """Seed the ILS with `base_file` (rate limit lifted), then time `changed_file` at the limit.

    The limit is the client rate `provision` sets (as `make demo` runs); the emulator gets the
    same limit for the measured run, so a client that overruns it would see 429s.
    """
    fresh_home(home)
    layout = RuntimeLayout(home.resolve())
    config = bench_config(layout.root, records_per_chunk)
    env = {
        "CATALOG_SYNC_HOME": str(layout.root),
        "CATALOG_SYNC_CONFIG_DIR": str(config),
        "CATALOG_SYNC_EMULATOR_PORT": str(free_port()),
    }
    # A cached seed goes in before the emulator opens its database.
    seeded = _restore_seed(seed_cache, layout)
    seed_summary: dict[str, Any] = {"from_cache": str(seed_cache)}
    redis: ServiceProcess | None = None
    emulator: ServiceProcess | None = None
    with _environ(**env):
        os.environ.pop("REDIS_URL", None)  # a private Redis: others' tests share 6379
        try:
            redis = start_redis(layout.run_dir)
            emulator_port = int(env["CATALOG_SYNC_EMULATOR_PORT"])
            emulator = start_emulator(
                layout.run_dir, port=emulator_port, db=layout.root / "emulator.db"
            )
            services = LocalServices(redis.url, emulator.url)
            t0 = time.perf_counter()
            prepare_airflow(layout)
            provision(layout, services)
            setup_s = time.perf_counter() - t0
            rate_limit = provisioned_rate(layout)
            if not seeded:
                # Seed: the ILS gets every record once; its speed is not the subject here.
                _client_rate(layout, services, 5000.0, 16)
                lay_demo_file(layout, base_file)
                seed = run_dag_measured(layout, "seed", timeout)
                seed.counters_after = _counters(emulator.url)
                seed_summary = seed.summary()
                if seed.returncode == 0:
                    emulator.stop()  # SQLite files complete before they are copied
                    _save_seed(layout, seed_cache)
                    emulator = start_emulator(
                        layout.run_dir, port=emulator_port, db=layout.root / "emulator.db"
                    )
                provision(layout, services)  # the client back at the production rate
            # Measured run: emulator and client both at the rate limit, as in production.
            httpx.post(
                f"{emulator.url}/_emulator/faults", json={"rate_limit": rate_limit}, timeout=10
            ).raise_for_status()
            lay_demo_file(layout, changed_file)
            before = _counters(emulator.url)
            changed = run_dag_measured(layout, "changed", timeout)
            changed.counters_before = before
            changed.counters_after = _counters(emulator.url)
        finally:
            if emulator is not None:
                emulator.stop()
            if redis is not None:
                redis.stop()
    return {
        "home": str(layout.root),
        "records_per_chunk": records_per_chunk,
        "rate_limit": rate_limit,
        "setup_s": round(setup_s, 2),
        "seed": seed_summary,
        "changed": changed.summary(),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--changed", type=Path, required=True)
    ap.add_argument("--records-per-chunk", type=int, default=2000)
    ap.add_argument("--seed-cache", type=Path, required=True, help="seeded ILS + state, reused")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--out", type=Path, required=True, help="JSON result file")
    args = ap.parse_args(argv)
    result = run_end_to_end(
        args.home,
        args.base,
        args.changed,
        records_per_chunk=args.records_per_chunk,
        seed_cache=args.seed_cache,
        timeout=args.timeout,
    )
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
