"""Services this checkout started itself: one record each, checked before any reuse or stop.

A record (run/<name>.json under the runtime folder) holds the pid, the process's start time,
the port and URL, and the identity the service answers with (the emulator's and mail sink's
token, Redis's run_id). A service is reused only when that process is still the one started
(pid alive with the same start time: the kernel reuses pids) and the port answers with the
same identity; anything else, such as another checkout's emulator on the port, is never used.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from catalog_sync.services import (
    ServiceProcess,
    emulator_identity,
    free_port,
    pid_alive,
    redis_server_info,
    smtp_banner_has,
)

# Seconds a pid file may predate its process by: boot time is whole seconds in /proc/stat.
PID_FILE_SLACK = 2.0


@dataclass(frozen=True)
class ServiceRecord:
    """What a checkout knows about a service it started."""

    name: str
    pid: int
    # Start time of the process in clock ticks after boot (/proc/<pid>/stat): a reused pid
    # belongs to a process with another start time.
    started: int
    port: int
    url: str
    identity: str


def process_started(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks after boot); None when it is gone."""
    try:
        # "pid (comm) state ppid ...": comm may hold spaces and ')' so split after the last ')'.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # Field 22 of stat is starttime; fields here start at field 3 (state), and a zombie is gone.
    return None if fields[0] == "Z" else int(fields[19])


def process_started_at(pid: int) -> float | None:
    """When process `pid` started, in seconds since the epoch (its start in clock ticks after
    boot, plus the boot time /proc/stat gives); None when it is gone."""
    ticks = process_started(pid)
    if ticks is None:
        return None
    with open("/proc/stat", encoding="ascii") as stat:
        boot = next(int(line.split()[1]) for line in stat if line.startswith("btime "))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def read_pid(path: Path) -> int | None:
    """The live process a pid file ("<pid> <url>") names; None when gone or unreadable."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def pid_file_process(path: Path) -> int | None:
    """The live process an Airflow component's pid file names, if it is the one the file was
    written for: the file is written as soon as the component is started, so a process that
    started after it holds a pid the kernel has given out again since (the machine rebooted,
    the component died long ago) and is someone else's.

    Not CATALOG_SYNC_HOME in the process's environment (`started_from`): the api-server's
    setproctitle writes its title over /proc/<pid>/environ, so `make clean` left it running.
    """
    pid = read_pid(path)
    if pid is None:
        return None
    started = process_started_at(pid)
    try:
        written = path.stat().st_mtime
    except OSError:
        return None
    return pid if started is not None and started <= written + PID_FILE_SLACK else None


def record_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.json"


def record_service(run_dir: Path, service: ServiceProcess) -> ServiceRecord:
    """Write the record of a service just started (0600, replaced atomically)."""
    pid = service.process.pid
    started = process_started(pid)
    if started is None:
        raise RuntimeError(f"{service.name} (pid {pid}) exited as soon as it was ready")
    port = int(service.url.rsplit(":", 1)[1].split("/")[0])
    record = ServiceRecord(service.name, pid, started, port, service.url, service.identity)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = record_path(run_dir, service.name)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(record), fh)
    os.replace(tmp, path)
    return record


def load_record(run_dir: Path, name: str) -> ServiceRecord | None:
    """The record of service `name`, None when absent or unreadable."""
    try:
        return ServiceRecord(**json.loads(record_path(run_dir, name).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def still_ours(record: ServiceRecord) -> bool:
    """Whether the recorded process is still the one this checkout started."""
    return process_started(record.pid) == record.started


def emulator_answers(record: ServiceRecord) -> bool:
    return emulator_identity(record.url) == (record.identity, record.pid)


def redis_answers(record: ServiceRecord) -> bool:
    info = redis_server_info(record.url) or {}
    return info.get("run_id") == record.identity and info.get("process_id") == record.pid


def mail_answers(record: ServiceRecord) -> bool:
    return smtp_banner_has(record.url, record.identity)


Probe = Callable[[ServiceRecord], bool]


def reusable(run_dir: Path, name: str, answers: Probe) -> ServiceRecord | None:
    """The recorded service when it is still ours and answers with its identity, else None."""
    record = load_record(run_dir, name)
    if record is None or not still_ours(record) or not answers(record):
        return None
    return record


def port_for(env_var: str) -> int:
    """The port `env_var` asks for when it is free on loopback, else any free port.

    A port already taken is somebody else's service (another checkout's, perhaps): never
    one to talk to.
    """
    wanted = int(os.environ.get(env_var, "0") or 0)
    if wanted:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", wanted))
            except OSError:
                return free_port()
        return wanted
    return free_port()


def started_from(pid: int, root: Path) -> bool:
    """Whether process `pid` runs with CATALOG_SYNC_HOME=`root`, as every Airflow component
    a checkout starts does (devstack.airflow_env): a pid file's pid the kernel gave to
    another process since does not."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"CATALOG_SYNC_HOME={root}".encode() in environ


def stop_service(run_dir: Path, name: str) -> bool:
    """SIGTERM the recorded service if it is still the process we started; drop the record.

    A record whose pid now names another process stops nothing.
    """
    record = load_record(run_dir, name)
    record_path(run_dir, name).unlink(missing_ok=True)
    if record is None or not still_ours(record):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, signal.SIGTERM)
    return True
