"""Embedded production mode: Airflow's scheduler, dag-processor, api-server and triggerer.

LocalExecutor with SQLite metadata in one Airflow home, started as separate `airflow ...`
processes (no Airflow import here) so a caller holds a handle on each: `make airflow` runs them
in the foreground, tests start and stop them around a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from catalog_sync.config import load_ils_connections
from catalog_sync.devstack import (
    DEMO_VENDOR,
    LocalServices,
    airflow_bin,
    airflow_env,
    ensure_services,
    prepare_airflow,
    provision,
)
from catalog_sync.mailsink import ensure_mail_sink
from catalog_sync.paths import RuntimeLayout
from catalog_sync.services import ServiceError

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Components the api-server's health endpoint reports on, and that must be "healthy".
HEALTH_KEYS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def embedded_parallelism(cpus: int | None = None, pool_slots: int | None = None) -> int:
    """How many task processes LocalExecutor runs at once (it forks all of them up front).

    Parsing and staging chunks is CPU-bound, so more than one such task per core only queues
    for the CPU; commit tasks mostly wait on the ILS and are capped by their pools anyway. So:
    one slot per core plus every ILS pool's slots. Airflow's default of 32 would fork 32
    interpreters (~100 MB each) on a 2-core machine that can use six.
    """
    cpus = cpus or os.cpu_count() or 1
    if pool_slots is None:
        pool_slots = sum(c.pool_slots for c in load_ils_connections().values())
    return cpus + pool_slots


def embedded_env(layout: RuntimeLayout, api_port: int) -> dict[str, str]:
    """airflow_env plus what the four components must agree on, all derived from api_port."""
    env = airflow_env(layout)
    # The SimpleAuthManager UI of a one-machine setup stays on this machine unless asked.
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__API__PORT": str(api_port),
            # Task processes reach the api-server's execution API here; left to Airflow it stays
            # on localhost:8080 whatever the port, and every task fails before it starts.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url(env, api_port)}/execution/",
            # The health check's own HTTP server would need a port of its own.
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        }
    )
    env.setdefault("AIRFLOW__CORE__PARALLELISM", str(embedded_parallelism()))
    return env


def api_url(env: dict[str, str], api_port: int) -> str:
    """Where this machine reaches the api-server: its bind address, loopback for a wildcard."""
    host = env.get("AIRFLOW__API__HOST", "127.0.0.1")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://{f'[{host}]' if ':' in host else host}:{api_port}"


@dataclass
class AirflowStack:
    """The running components of one Airflow home; stop() ends each with all its children."""

    layout: RuntimeLayout
    api_url: str
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def exited(self) -> dict[str, int]:
        """Components that have stopped, with their exit codes."""
        codes = {name: p.poll() for name, p in self.processes.items()}
        return {name: code for name, code in codes.items() if code is not None}

    def health(self) -> dict[str, str]:
        """Status per component from GET /api/v2/monitor/health ({} when it does not answer)."""
        try:
            body = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return {}
        return {key: str((body.get(key) or {}).get("status")) for key in HEALTH_KEYS}

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Until every component reports healthy; a component that exits fails at once."""
        deadline = time.monotonic() + timeout
        health: dict[str, str] = {}
        while time.monotonic() < deadline:
            if dead := self.exited():
                name, code = next(iter(dead.items()))
                raise ServiceError(
                    f"airflow {name} exited with {code}; see {self.log_dir / f'{name}.log'}"
                )
            health = self.health()
            if health and all(status == "healthy" for status in health.values()):
                return
            time.sleep(1)
        raise ServiceError(
            f"Airflow did not become healthy within {timeout:.0f} s (last health: {health}); "
            f"see the logs in {self.log_dir}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM each component's process group (workers, task processes), SIGKILL if slow."""
        for proc in self.processes.values():
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            # The group too: a LocalExecutor worker may outlive its scheduler.
            _signal_group(proc, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait(10)
        for name in self.processes:
            (self.layout.run_dir / f"airflow-{name}.pid").unlink(missing_ok=True)

    def __enter__(self) -> AirflowStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def start_airflow(
    layout: RuntimeLayout,
    api_port: int,
    services: LocalServices | None = None,
    extra_env: dict[str, str] | None = None,
    ready_timeout: float = 180.0,
) -> AirflowStack:
    """Provision the Airflow home as `make demo` does, start the four components, wait healthy.

    `services` defaults to the checkout's own Redis and emulator (ensure_services);
    `extra_env` adds settings for every component and the task processes they start.
    """
    services = services or ensure_services(layout)
    prepare_airflow(layout)
    provision(layout, services)
    env = {**embedded_env(layout, api_port), **(extra_env or {})}
    log_dir = layout.root / "airflow" / "logs" / "components"
    log_dir.mkdir(parents=True, exist_ok=True)
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    stack = AirflowStack(layout, api_url(env, api_port), log_dir)
    try:
        for name in COMPONENTS:
            with (log_dir / f"{name}.log").open("ab") as log:
                stack.processes[name] = subprocess.Popen(
                    [airflow_bin(), name],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    # Its own process group, so stop() reaches the workers it forks too.
                    start_new_session=True,
                )
            # So `catalog-sync devstack down` (make clean) finds them if this process is killed.
            (layout.run_dir / f"airflow-{name}.pid").write_text(
                f"{stack.processes[name].pid} {stack.api_url}\n"
            )
        stack.wait_ready(ready_timeout)
    except BaseException:
        stack.stop()
        raise
    return stack


def run_airflow_ui(layout: RuntimeLayout, api_port: int) -> int:
    """`make airflow`: the four components in the foreground until Ctrl-C or one of them exits."""
    services = ensure_services(layout)
    layout.inbox(DEMO_VENDOR).mkdir(parents=True, exist_ok=True)
    print(f"redis: {services.redis_url}   ILS emulator: {services.emulator_url}")
    # Notices go to a local SMTP sink (var/mail/) unless a mail server is configured.
    mail: dict[str, str] = {}
    if "AIRFLOW_CONN_SMTP_DEFAULT" not in os.environ:
        mail["AIRFLOW_CONN_SMTP_DEFAULT"] = ensure_mail_sink(layout.run_dir, layout.root / "mail")
        print(f"mail notices: Connection smtp_default = {mail['AIRFLOW_CONN_SMTP_DEFAULT']}")
    print(f"starting the scheduler, dag-processor, api-server and triggerer on port {api_port} ...")
    stack = start_airflow(layout, api_port, services, extra_env=mail)
    try:
        print(f"Airflow UI: {stack.api_url}   login: {admin_login(layout)}")
        print(f"component logs: {stack.log_dir}   (Ctrl-C stops everything)")
        while not stack.exited():
            time.sleep(1)
        name, code = next(iter(stack.exited().items()))
        print(f"airflow {name} exited with {code}; see {stack.log_dir / f'{name}.log'}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        print("stopping Airflow ...")
        stack.stop()


def admin_login(layout: RuntimeLayout) -> str:
    """The UI's admin login, as SimpleAuthManager generated it on its first start."""
    path = layout.root / "airflow" / "simple_auth_manager_passwords.json.generated"
    try:
        password = json.loads(path.read_text()).get("admin")
    except (OSError, ValueError):
        password = None
    return f"admin / {password}" if password else "see the api-server log"
