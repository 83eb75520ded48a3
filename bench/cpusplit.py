"""Where a measured run's CPU went, by process kind, and the peak memory of each task.

A run under the scheduler is many processes on the same cores: the scheduler, the API server,
the DAG processor, one supervisor and one task runner per task, the emulator, Redis. A thread
reads /proc every SAMPLE_EVERY seconds and keeps, per pid, its kind, its CPU seconds (utime +
stime) and its peak resident memory (VmHWM, which the kernel keeps as a high-water mark, so a
sample taken after the peak still sees it). A process's last fraction of a sample interval
before it exits is not seen; at 0.25 s against tasks that run for seconds, that is small.

Airflow 3 names its processes: a task's code runs in `airflow worker -- <ti id>`, the child
of its supervisor, which LocalExecutor's worker process is (`airflow worker -- LocalExecutor:
<task instance id>`; Celery's is `airflow supervisor: <id>`). The runner's own title carries
the task instance id; the caller names the ids from Airflow's task instances.
Processes this benchmark did not start (another engineer's tests on a shared machine) are
counted under "other" so the split can be read against the whole machine's load.
"""

from __future__ import annotations

import os
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLE_EVERY = 0.25
TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")

# (kind, pattern on the command line), first match wins.
KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("task supervisor", re.compile(r"^airflow (worker -- \w+Executor[^:]*|supervisor): ")),
    ("task", re.compile(r"^airflow worker -- ")),
    ("executor", re.compile(r"Executor")),
    ("scheduler", re.compile(r"airflow scheduler")),
    ("api server", re.compile(r"api[_-]server|gunicorn|uvicorn")),
    ("dag processor", re.compile(r"dag[_-]processor|DagFileProcessor")),
    ("triggerer", re.compile(r"triggerer")),
    ("emulator", re.compile(r"catalog_sync emulator|catalog_sync\.emulator")),
    ("redis", re.compile(r"redis-server")),
    ("celery", re.compile(r"celery")),
    ("airflow (other)", re.compile(r"airflow")),
)


@dataclass
class Seen:
    kind: str
    title: str
    cpu_s: float = 0.0
    cpu_at_start: float = 0.0
    hwm_kib: int = 0
    task: str = ""


def read_process(pid: int) -> tuple[str, int, float, int] | None:
    """(command line, parent pid, CPU seconds, VmHWM KiB) of one process, None if gone."""
    base = PROC / str(pid)
    try:
        title = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = (base / "stat").read_text()
        status = (base / "status").read_text()
    except OSError:
        return None
    # stat's second field is "(comm)" and may hold spaces: split after its last ")".
    rest = stat[stat.rindex(")") + 2 :].split()
    ppid, utime, stime = int(rest[1]), int(rest[11]), int(rest[12])
    hwm = re.search(r"VmHWM:\s+(\d+)", status)
    return title.strip(), ppid, (utime + stime) / TICKS, int(hwm.group(1)) if hwm else 0


def kind_of(title: str) -> str:
    for kind, pattern in KINDS:
        if pattern.search(title):
            return kind
    return "other"


@dataclass
class CpuSplit:
    """Samples every process while a run is measured; `summary()` after `stop()`."""

    seen: dict[int, Seen] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        for entry in PROC.iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            got = read_process(pid)
            if got is None or not got[0]:
                continue  # gone, or a kernel thread
            title, _, cpu, hwm = got
            known = self.seen.get(pid)
            if known is None:
                # A process already running when sampling began counts from its CPU then.
                start = cpu if self._thread is None else 0.0
                known = self.seen[pid] = Seen(kind_of(title), title, cpu_at_start=start)
            elif known.title != title:  # retitled (setproctitle after a fork): same process
                known.kind, known.title = kind_of(title), title
            if known.kind == "task" and not known.task:
                # The runner's own title carries its task instance id ("airflow worker -- id").
                known.task = title.partition(" -- ")[2].strip()
            known.cpu_s = cpu - known.cpu_at_start
            known.hwm_kib = max(known.hwm_kib, hwm)

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self._sample()
        self._sample()

    def start(self) -> CpuSplit:
        self._sample()  # the baseline: what ran before the measured run is not its cost
        self._thread = threading.Thread(target=self._loop, name="cpu-split", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def summary(self, names: dict[str, str] | None = None) -> dict[str, Any]:
        """CPU by kind; per task (task instance ids named by `names`), runs, CPU, peak RSS."""
        names = names or {}
        by_kind: dict[str, float] = defaultdict(float)
        by_task: dict[str, dict[str, float]] = defaultdict(
            lambda: {"count": 0, "cpu_s": 0.0, "peak_rss_mib": 0.0}
        )
        for s in self.seen.values():
            by_kind[s.kind] += s.cpu_s
            if s.kind == "task":
                t = by_task[names.get(s.task, "?")]
                t["count"] += 1
                t["cpu_s"] += s.cpu_s
                t["peak_rss_mib"] = max(t["peak_rss_mib"], s.hwm_kib / 1024)
        total = sum(by_kind.values())
        others = sorted(
            (s for s in self.seen.values() if s.kind == "other"), key=lambda s: -s.cpu_s
        )
        return {
            "sample_every_s": SAMPLE_EVERY,
            "cpu_s_total": round(total, 1),
            "cpu_s_by_kind": {
                k: round(v, 1) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]) if v
            },
            # What "other" was: on a shared machine, someone else's work.
            "top_other": [(s.title[:80], round(s.cpu_s, 1)) for s in others[:5] if s.cpu_s >= 1],
            "tasks": {
                name: {k: round(v, 1) for k, v in t.items()} for name, t in sorted(by_task.items())
            },
        }


def table(split: dict[str, Any], wall_s: float, cores: int) -> str:
    """Markdown: CPU seconds by process kind, as a share of what the cores could give."""
    lines = ["| process kind | CPU s | share of all CPU used |", "|---|---:|---:|"]
    total = split["cpu_s_total"] or 1.0
    for kind, cpu in split["cpu_s_by_kind"].items():
        lines.append(f"| {kind} | {cpu:,.1f} | {cpu / total:.0%} |")
    lines.append(
        f"| **all** | {split['cpu_s_total']:,.1f} | {split['cpu_s_total'] / (wall_s * cores):.0%} "
        f"of {cores} cores x {wall_s:,.0f} s |"
    )
    lines += ["", "| task | runs | CPU s | peak RSS of one run (MiB) |", "|---|---:|---:|---:|"]
    for name, t in split["tasks"].items():
        lines.append(f"| {name} | {t['count']:.0f} | {t['cpu_s']:,.1f} | {t['peak_rss_mib']:.0f} |")
    return "\n".join(lines)
