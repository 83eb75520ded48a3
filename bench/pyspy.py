"""py-spy profiles of a measured run, if py-spy is installed (it is not a project dependency).

    CATALOG_SYNC_BENCH_PYSPY=/path/to/py-spy bench/production.py ...

records the emulator and the scheduler with all its subprocesses (the executor's workers, each
task's supervisor and runner) for the whole run, as py-spy's raw collapsed stacks, and reads
them back as "where the samples were": per process kind, the functions with the most samples
in their own code and the project functions with the most samples below them. py-spy samples
from outside the process (ptrace), so the profiled code runs at its own speed; it needs root
or CAP_SYS_PTRACE.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from cpusplit import kind_of, read_process

RATE = 11  # samples/s per process: py-spy's own CPU grows with it (47/s took a third of a core)


def py_spy() -> str | None:
    path = os.environ.get("CATALOG_SYNC_BENCH_PYSPY", "")
    return path if path and Path(path).is_file() else None


def start(out_dir: Path, pids: dict[str, int]) -> list[subprocess.Popen[bytes]]:
    """One `py-spy record` per named pid, with its subprocesses; [] without py-spy."""
    exe = py_spy()
    if exe is None:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for name, pid in pids.items():
        out = str(out_dir / f"{name}.txt")
        argv = [exe, "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
                "--rate", str(RATE), "--nonblocking", "-o", out]  # fmt: skip
        log = (out_dir / f"{name}.log").open("wb")
        procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()


def _frames(stack: str) -> tuple[str, list[str]]:
    """(process kind, frames root first) of one raw line's stack."""
    frames = stack.split(";")
    kind = "?"
    if frames and frames[0].startswith("process "):
        kind = kind_of(frames[0].split(":", 1)[-1].strip().strip('"'))
        frames = frames[1:]
    return kind, frames


def _short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"; line numbers split one function.
    name, _, where = frame.partition(" (")
    module = where.rsplit("/", 1)[-1].split(":", 1)[0]
    return f"{name} ({module})" if module else name


def summarise(out_dir: Path, top: int = 15) -> dict[str, Any]:
    """Per process kind: sample count, top self-time functions, top project functions."""
    own: dict[str, Counter[str]] = {}
    below: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    for path in sorted(out_dir.glob("*.txt")):
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            kind, frames = _frames(stack)
            if not frames:
                continue
            totals[kind] += count
            own.setdefault(kind, Counter())[_short(frames[-1])] += count
            ours = {_short(f) for f in frames if "catalog_sync" in f}
            for name in ours:
                below.setdefault(kind, Counter())[name] += count
    return {
        kind: {
            "samples": n,
            "self": [(f, c, round(c / n, 3)) for f, c in own[kind].most_common(top)],
            "project_inclusive": [
                (f, c, round(c / n, 3)) for f, c in below.get(kind, Counter()).most_common(top)
            ],
        }
        for kind, n in totals.most_common()
    }


def our_children() -> dict[str, int]:
    """This process's children that py-spy should follow: the Airflow scheduler (its executor
    runs every task) and the API server (every task's execution API calls)."""
    found = {}
    for entry in Path("/proc").iterdir():
        got = read_process(int(entry.name)) if entry.name.isdigit() else None
        if got is None or got[1] != os.getpid():
            continue
        kind = kind_of(got[0])
        if kind in ("scheduler", "api server"):
            found[kind.replace(" ", "-")] = int(entry.name)
    return found
