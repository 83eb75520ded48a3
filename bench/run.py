"""Catalog Sync benchmarks: `make bench-quick` (< 2 min, shared corpus) and `make bench` (full).

    .venv/bin/python bench/run.py [--quick] [--out DIR] [--only stages,scaling,...]

Measures, side by side: bare pymarc iteration and each process_chunk stage (records/s per core,
and as a ratio to pymarc); scaling with the record count; the CPU stage on every Python the
machine has and under garbage-collector settings; ILS commit throughput against the emulator's
rate limit; and the whole DAG end to end with 5% of records changed. Writes results.json,
results.md and stages.png under --out. Targets are reported, never asserted.

The code measured is a snapshot of the last commit (git archive HEAD, under bench/cache/src),
so others' half-saved edits in a shared tree cannot break or skew a run; --worktree measures
the working tree instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from corpus import CACHE, full_file, quick_file, take_records, with_changes  # noqa: E402
from report import write_outputs  # noqa: E402

SECTIONS = ("stages", "scaling", "pythons", "gc", "commit", "e2e", "daily")
# Run only when named (--only production): three Airflow deployments, a private Postgres,
# ~15 min; results go to bench/results/<date>-production/.
EXTRA_SECTIONS = ("production",)
PRODUCTION_RECORDS = 20_000
PRODUCTION_RATES = "200,50"  # the provisioned client rate (devstack.provision), and a lower one
PYENV = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
# What catalog_sync.marc, .privacy and .fingerprint import, at the pins of requirements.txt
# (redis: .fingerprint imports .matching, which imports the ILS clients and their rate limiter).
CPU_PACKAGES = ("pymarc", "pydantic", "lxml", "pyyaml", "httpx", "tenacity", "paramiko", "redis")
CPU_STAGES = "pymarc,prepare,fingerprint,cpu_stage"
# No cpu_stage here: it holds every raw record in memory, which no task does.
GC_STAGES = "pymarc,process_chunk"
CHANGE_EVERY = 20  # 5% of records changed in the end-to-end run
# The daily-file benchmark runs at the client rate `make demo` provisions (req/s).
DAILY_RATE = "200"
DAILY_TIMEOUT = 4 * 3600  # seconds for one DAG run of the daily file (the seed is the longest)


@dataclass(frozen=True)
class Plan:
    """How big each section is; the quick plan fits in about two minutes on an idle machine."""

    mode: str
    stage_records: int
    reps: int
    scaling: tuple[int, ...]
    python_records: int
    gc_records: int
    gc_modes: tuple[str, ...]
    commit_records: int
    e2e_records: int
    records_per_chunk: int
    python_rounds: int = 3
    # Daily file under the embedded scheduler (bench/production.py); 0 leaves it out.
    daily_records: int = 0
    daily_records_per_chunk: int = 2000
    # What runs without --only. The quick plan keeps what its figures need (per-core stage
    # rates against pymarc, the commit share, the daily file end to end) and leaves the
    # Python versions, gc modes and scaling, which only the full run's sizes make worth
    # reading, to `make bench`: that keeps it under two minutes.
    sections: tuple[str, ...] = SECTIONS


QUICK = Plan(
    "quick",
    5000,
    2,
    (1000, 5000),
    1000,
    5000,
    ("default", "freeze_threshold"),
    600,
    5000,
    1000,
    1,
    sections=("stages", "commit", "e2e"),
)
FULL = Plan(
    "full",
    50_000,
    3,
    (10_000, 50_000, 250_000),
    20_000,
    20_000,
    ("default", "freeze", "threshold", "freeze_threshold", "disabled"),
    4000,
    10_000,
    2000,
    daily_records=250_000,
)


def machine_description() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def load_now() -> dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {"load1": round(one, 2), "load5": round(five, 2), "load15": round(fifteen, 2)}


def source_tree(worktree: bool) -> tuple[Path, str]:
    """The code to measure: a snapshot of HEAD (cached per commit), or the working tree."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return REPO_ROOT, "worktree (no git)"
    if worktree:
        return REPO_ROOT, f"worktree on {sha}"
    snapshot = CACHE / "src" / sha
    if not (snapshot / "include").is_dir():
        snapshot.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(
            ["git", "-C", str(REPO_ROOT), "archive", "HEAD"], stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-x", "-C", str(snapshot)], stdin=archive.stdout, check=True)
        archive.wait(timeout=120)
    # Its bytecode, as `make bytecode` gives the tree (a snapshot cached before has none):
    # with PYTHONDONTWRITEBYTECODE set (this project's sessions), every Airflow task process of
    # a benchmark would otherwise compile the DAG file's imports from source, about three times
    # its start-up (bench/results/2026-12-01-startup). Up to date, this is ~0.05 s.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "include/catalog_sync", "plugins", "dags"],
        cwd=snapshot,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return snapshot, sha


class Runner:
    """Runs each section in its own process against the chosen source tree."""

    def __init__(self, src: Path, log: Path) -> None:
        self.src = src
        self.log = log

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        paths = [self.src / "include", self.src / "plugins", self.src / "dags"]
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
        return env

    def run(self, argv: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
        started = time.perf_counter()
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env or self.env(),
            cwd=REPO_ROOT,
            check=False,
        )
        with self.log.open("a", encoding="utf-8") as log:
            log.write(
                f"$ {' '.join(argv)}  ({time.perf_counter() - started:.1f} s, "
                f"rc={proc.returncode})\n{proc.stderr[-4000:]}\n"
            )
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[1]} failed (rc={proc.returncode}): {proc.stderr[-800:]}")
        return proc.stdout

    def stages(
        self,
        file: Path,
        stages: str,
        reps: int,
        gc: str = "default",
        python: str | None = None,
        timeout: float = 1800,
    ) -> dict[str, Any]:
        argv = [
            python or sys.executable,
            str(BENCH / "stages.py"),
            str(file),
            "--stages",
            stages,
            "--reps",
            str(reps),
            "--gc",
            gc,
        ]
        return dict(json.loads(self.run(argv, timeout).splitlines()[-1]))


def slice_of(source: Path, n: int) -> Path:
    if n == record_count(source):
        if source.suffix == ".mrc":
            return source
        # A vendor's inbox takes *.mrc: the downloaded BooksAll file has no suffix, and a
        # seed of it found nothing to load. A hard link names it without a 240 MB copy.
        named = CACHE / "slices" / f"{source.name}.mrc"
        if not named.exists():
            named.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, named)
        return named
    return take_records(source, n, CACHE / "slices" / f"{source.stem}-{n}.mrc")


def record_count(source: Path) -> int:
    count = 0
    with source.open("rb") as fh:
        while block := fh.read(1 << 22):
            count += block.count(b"\x1d")
    return count


def python_venv(version_dir: Path) -> Path | None:
    """A throwaway venv under bench/cache for another Python, built once with uv."""
    short = ".".join(version_dir.name.split(".")[:2])
    venv = CACHE / "pyenvs" / f"py{short}"
    python = venv / "bin" / "python"
    stamp = venv / ".bench-ready"
    # The stamp names the packages it was built with: a venv from an older list is topped up.
    wanted = " ".join(CPU_PACKAGES)
    if stamp.is_file() and stamp.read_text() == wanted:
        return python
    uv = REPO_ROOT / ".venv" / "bin" / "uv"
    if not uv.exists():
        return None
    subprocess.run(
        [
            str(uv),
            "venv",
            "-q",
            "--allow-existing",
            "--python",
            str(version_dir / "bin" / "python"),
            str(venv),
        ],
        check=True,
        timeout=300,
    )
    pins = ["-c", str(REPO_ROOT / "requirements.txt")]
    full = subprocess.run(
        [str(uv), "pip", "install", "-q", "--python", str(python), *pins, *CPU_PACKAGES],
        capture_output=True,
        timeout=600,
        check=False,
    )
    if full.returncode != 0:  # e.g. 3.10: the pins need >= 3.11; pymarc alone still compares
        subprocess.run(
            [str(uv), "pip", "install", "-q", "--python", str(python), *pins, "pymarc"],
            check=True,
            timeout=600,
        )
    stamp.write_text(wanted)
    return python


def other_pythons() -> list[Path]:
    mine = platform.python_version()
    found = []
    for minor in ("3.10", "3.11", "3.12", "3.13"):
        dirs = sorted(PYENV.glob(f"{minor}.*"))
        if dirs and dirs[-1].name != mine and (dirs[-1] / "bin" / "python").exists():
            found.append(dirs[-1])
    return found


def section_stages(r: Runner, plan: Plan, src: Path, out: dict[str, Any]) -> None:
    file = slice_of(src, plan.stage_records)
    out["stages"] = r.stages(
        file,
        "pymarc,frame,parse,validate,prepare,mask,fingerprint,diff,cpu_stage,process_chunk",
        plan.reps,
    )


def section_scaling(r: Runner, plan: Plan, src: Path, out: dict[str, Any]) -> None:
    rows = []
    for n in plan.scaling:
        reps = 1 if n >= 100_000 else plan.reps
        res = r.stages(slice_of(src, n), "pymarc,process_chunk", reps, timeout=3600)
        rows.append(
            {
                "records": n,
                "reps": reps,
                **{
                    stage: {
                        k: res["stages"][stage].get(k)
                        for k in ("seconds", "records_per_s", "us_per_record", "ratio_to_pymarc")
                    }
                    for stage in ("pymarc", "process_chunk")
                },
            }
        )
    out["scaling"] = rows


def section_pythons(r: Runner, plan: Plan, src: Path, out: dict[str, Any]) -> None:
    """Each Python in turn, round after round, keeping each one's best per stage.

    Runs minutes apart see different load on a shared machine; alternating the versions
    spreads that drift over all of them alike.
    """
    file = slice_of(src, plan.python_records)
    pythons: list[tuple[str, Path | None]] = [(platform.python_version(), Path(sys.executable))]
    for version_dir in other_pythons():
        pythons.append((version_dir.name, python_venv(version_dir)))
    best: dict[str, dict[str, Any]] = {}
    for _ in range(plan.python_rounds):
        for name, python in pythons:
            if python is None:
                best[name] = {"python": name, "note": "uv not found: venv not built"}
                continue
            env = r.env()
            env["PYTHONPATH"] = str(r.src / "include")
            argv = [
                str(python),
                str(BENCH / "stages.py"),
                str(file),
                "--stages",
                CPU_STAGES,
                "--reps",
                "1",
            ]
            row = json.loads(r.run(argv, 1800, env).splitlines()[-1])
            best[name] = _better(best.get(name), row)
    out["pythons"] = sorted(best.values(), key=lambda row: str(row.get("python")))


def _better(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Per stage, the faster of two runs; ratios recomputed against the run's best pymarc."""
    if not old or "stages" not in old:
        return new
    merged = dict(old, rounds=old.get("rounds", 1) + 1)
    stages = {}
    for name, s in new.get("stages", {}).items():
        prev = old["stages"].get(name, {})
        faster = s if s.get("seconds", 1e18) < prev.get("seconds", 1e18) else prev
        stages[name] = dict(faster or s)
    base = stages.get("pymarc", {}).get("records_per_s")
    for s in stages.values():
        if base and s.get("records_per_s"):
            s["ratio_to_pymarc"] = round(s["records_per_s"] / base, 3)
    merged["stages"] = stages
    return merged


def section_gc(r: Runner, plan: Plan, src: Path, out: dict[str, Any]) -> None:
    file = slice_of(src, plan.gc_records)
    argv = [
        sys.executable,
        str(BENCH / "stages.py"),
        str(file),
        "--stages",
        GC_STAGES,
        "--reps",
        str(max(len(plan.gc_modes), plan.reps)),  # each mode once in every position
        "--gc-compare",
        ",".join(plan.gc_modes),
    ]
    out["gc"] = json.loads(r.run(argv, 3600).splitlines()[-1])


def section_commit(r: Runner, plan: Plan, src: Path, out: dict[str, Any]) -> None:
    argv = [
        sys.executable,
        str(BENCH / "ils_bench.py"),
        "--rate",
        "200",
        "--records",
        str(plan.commit_records),
        "--json",
    ]
    out["commit"] = json.loads(r.run(argv, 1800).splitlines()[-1])


# What a seeded ILS and state store depend on: reused while these files stay the same, so a
# quick run after an unrelated commit does not seed again (~3 ILS requests per record).
SEED_INPUTS = (
    "include/catalog_sync/changes/fingerprint.py",
    "include/catalog_sync/marc/fastprint.py",
    "include/catalog_sync/marc/prepare.py",
    "include/catalog_sync/changes/state",  # the state schema and its statements
    "include/catalog_sync/emulator/store.py",
    "include/catalog_sync/emulator/records.py",
    "include/catalog_sync/pipeline/commit.py",
    "include/catalog_sync/migrations",
)


def seed_key(src: Path) -> str:
    digest = hashlib.sha256()
    for name in SEED_INPUTS:
        path = src / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            if f.is_file():
                digest.update(f.relative_to(src).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:12]


def section_e2e(r: Runner, plan: Plan, src: Path, out: dict[str, Any]) -> None:
    base = slice_of(src, plan.e2e_records)
    changed = CACHE / "slices" / f"{base.stem}-changed{CHANGE_EVERY}.mrc"
    if not changed.is_file() or changed.stat().st_mtime < base.stat().st_mtime:
        with_changes(base, changed, CHANGE_EVERY)
    seed = CACHE / "seeds" / f"{seed_key(r.src)}-{base.stem}-{plan.records_per_chunk}"
    result_file = CACHE / f"e2e-{plan.mode}.json"
    argv = [
        sys.executable,
        str(BENCH / "e2e.py"),
        "--home",
        str(CACHE / f"e2e-{plan.mode}"),
        "--base",
        str(base),
        "--changed",
        str(changed),
        "--records-per-chunk",
        str(plan.records_per_chunk),
        "--seed-cache",
        str(seed),
        "--out",
        str(result_file),
    ]
    r.run(argv, 5400)
    result = json.loads(result_file.read_text())
    result["records"] = plan.e2e_records
    result["changed_records"] = plan.e2e_records // CHANGE_EVERY
    out["e2e"] = result


def section_production(r: Runner, plan: Plan, src: Path, out: dict[str, Any]) -> None:
    """bench/production.py: dags test, embedded scheduler, Celery; 20,000 records, 5% changed."""
    base = slice_of(src, min(PRODUCTION_RECORDS, record_count(src)))
    chunk = max(1, record_count(base) // 10)  # ten chunks, as the distributed test runs
    seed = CACHE / "seeds" / f"{seed_key(r.src)}-{base.stem}-{chunk}"
    result_file = CACHE / "production.json"
    argv = [
        sys.executable,
        str(BENCH / "production.py"),
        "--base",
        str(base),
        "--seed-cache",
        str(seed),
        "--records-per-chunk",
        str(chunk),
        "--rates",
        os.environ.get("CATALOG_SYNC_BENCH_RATES", PRODUCTION_RATES),
        "--out",
        str(result_file),
    ]
    table = r.run(argv, 7200)
    print(table, flush=True)
    result = json.loads(result_file.read_text())
    result.update(records=record_count(base), records_per_chunk=chunk, table=table)
    out["production"] = result


def section_daily(r: Runner, plan: Plan, src: Path, out: dict[str, Any]) -> None:
    """The library's daily file: N records, 5% changed, end to end under the embedded scheduler.

    Its wall time is set against the issue's budget, 1.5 x (one pymarc pass over the file +
    changed records / rate limit) + 60 s, with the pymarc pass timed on the same file here.
    The seed (every record created once, rate limit lifted) is cached like e2e's; building it
    costs ~1-3 ILS requests per record at whatever the commit tasks sustain (hours at 250k).
    """
    if not plan.daily_records:
        out["daily"] = {"skipped": "not in this plan"}
        return
    base = slice_of(src, min(plan.daily_records, record_count(src)))
    records = record_count(base)
    # Chunk size is the daily file's main lever on Airflow's per-task cost: 10,000 tried too.
    chunk = int(os.environ.get("CATALOG_SYNC_BENCH_DAILY_CHUNK", plan.daily_records_per_chunk))
    seed = CACHE / "seeds" / f"{seed_key(r.src)}-{base.stem}-{chunk}"
    pymarc = r.stages(base, "pymarc", 1, timeout=3600)["stages"]["pymarc"]
    result_file = CACHE / f"daily-{plan.mode}.json"
    argv = [
        sys.executable, str(BENCH / "production.py"), "--base", str(base),
        "--seed-cache", str(seed), "--records-per-chunk", str(chunk),
        "--rates", os.environ.get("CATALOG_SYNC_BENCH_DAILY_RATE", DAILY_RATE),
        "--modes", "embedded", "--change-every", str(CHANGE_EVERY), "--out", str(result_file),
        # Each DAG run's own limit: production.py's 30-minute default killed a 250k seed.
        "--timeout", str(DAILY_TIMEOUT),
    ]  # fmt: skip
    r.run(argv, 2 * DAILY_TIMEOUT + 600)
    rows = json.loads(result_file.read_text())["rows"]
    out["daily"] = daily_figures(rows[0], records, records // CHANGE_EVERY, pymarc["seconds"])
    seed_file = seed / "seed.json"
    if seed_file.is_file():  # the seed run is the initial load: every record a create
        load = json.loads(seed_file.read_text())
        wall = load.get("wall_s") or 0
        load["records_per_s"] = round(records / wall, 1) if wall else None
        out["initial_load"] = load


def daily_figures(
    row: dict[str, Any], records: int, changed: int, pymarc_s: float
) -> dict[str, Any]:
    """What a library asks of its daily file: wall, records/s, requests per write, rate share."""
    rate = row.get("rate_limit") or 0.0
    wall = row.get("wall_s")
    budget = 1.5 * (pymarc_s + changed / rate) + 60 if rate else None
    per_written = row.get("requests_per_written_record", {}).get("all", {})
    return {
        "records": records,
        "changed_records": changed,
        "pymarc_pass_s": round(pymarc_s, 1),
        "budget_s": round(budget, 1) if budget else None,
        "wall_s": wall,
        "records_per_s": round(records / wall, 1) if wall else None,
        "requests_per_written_record": per_written.get("per_written"),
        "row": row,
    }


RUNNERS = {
    "stages": section_stages,
    "scaling": section_scaling,
    "pythons": section_pythons,
    "gc": section_gc,
    "commit": section_commit,
    "e2e": section_e2e,
    "daily": section_daily,
    "production": section_production,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="shared corpus, about two minutes")
    ap.add_argument("--out", type=Path, help="results folder (default bench/results/<date>-<mode>)")
    ap.add_argument(
        "--only", help="comma-separated sections (default: the plan's; quick runs fewer)"
    )
    ap.add_argument("--file", type=Path, help="input file instead of the LoC corpus")
    ap.add_argument("--records", type=int, help="stage/gc/python records (small test runs)")
    ap.add_argument("--worktree", action="store_true", help="measure the working tree, not HEAD")
    ap.add_argument(
        "--update", action="store_true", help="re-run --only sections into an existing results.json"
    )
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    sections = [s for s in (args.only or ",".join(plan.sections)).split(",") if s]
    unknown = set(sections) - set(SECTIONS) - set(EXTRA_SECTIONS)
    if unknown:
        print(f"bench: unknown section(s) {sorted(unknown)}; known: {SECTIONS}", file=sys.stderr)
        return 2
    if args.file is not None:
        source: Path | None = args.file
    elif args.quick:
        source = quick_file()
        if source is None:
            print("bench-quick: skipped: shared/corpus/loc-marc-open-access is absent")
            return 0
    else:
        source = full_file()
    assert source is not None
    if args.records:
        n = args.records
        plan = Plan(
            plan.mode,
            n,
            1,
            (n,),
            n,
            n,
            ("default", "freeze_threshold"),
            min(n, plan.commit_records),
            n,
            max(1, n // 2),
            1,
        )
        source = take_records(source, n, CACHE / "slices" / f"{source.stem}-{n}.mrc")

    stamp = datetime.now(UTC)
    kind = "production" if sections == ["production"] else plan.mode
    out_dir = args.out or REPO_ROOT / "bench" / "results" / f"{stamp:%Y-%m-%d}-{kind}"
    out_dir.mkdir(parents=True, exist_ok=True)
    src, revision = source_tree(args.worktree)
    results: dict[str, Any] = {
        "started_at": stamp.isoformat(timespec="seconds"),
        "mode": plan.mode,
        "plan": plan.__dict__,
        "code": revision,
        "input": {"file": source.name, "bytes": source.stat().st_size},
        "machine": machine_description(),
        "load": {"start": load_now()},
        "errors": {},
    }
    previous = out_dir / "results.json"
    if args.update and previous.is_file():
        kept = json.loads(previous.read_text())
        kept.setdefault("updated", []).append(
            {"sections": sections, "at": stamp.isoformat(timespec="seconds"), "code": revision}
        )
        kept["errors"] = {k: v for k, v in kept.get("errors", {}).items() if k not in sections}
        results = kept
        results["load"]["update_start"] = load_now()
    runner = Runner(src, out_dir / "run.log")
    with (out_dir / "run.log").open("a" if args.update else "w") as log:
        log.write(f"bench {plan.mode} {stamp.isoformat()} code {revision} {sections}\n")
    for name in sections:
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", flush=True)
        try:
            RUNNERS[name](runner, plan, source, results)
        except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as exc:
            results["errors"][name] = str(exc)[-1000:]
            print(f"[bench] {name} FAILED: {str(exc)[-300:]}", flush=True)
        results.setdefault("section_seconds", {})[name] = round(time.perf_counter() - t0, 1)
        results["load"][f"after_{name}"] = load_now()
        write_outputs(results, out_dir)  # after every section: a stopped run keeps what it had
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    paths = write_outputs(results, out_dir)
    print(f"[bench] results: {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
