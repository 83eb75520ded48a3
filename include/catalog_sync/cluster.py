"""The distributed mode run natively (no containers): Airflow on CeleryExecutor with N workers.

The control plane (scheduler, dag-processor, api-server, triggerer) and each Celery worker are
`airflow ...` processes with the settings of catalog_sync.deploy, the same ones
docker-compose.yaml is generated from. `catalog-sync cluster up` starts them in the background
(each its own process group, pid files under the runtime run dir, so `cluster down`,
`devstack down` and `make clean` stop them); tests call start_control_plane / start_worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from catalog_sync.deploy import ClusterSettings, cluster_env, redis_db, with_secrets, worker_argv
from catalog_sync.devstack import (
    DEMO_VENDOR,
    LocalServices,
    airflow_bin,
    ensure_services,
    prepare_airflow,
)
from catalog_sync.devstack import provision as provision_airflow
from catalog_sync.embedded import COMPONENTS, AirflowStack, admin_login
from catalog_sync.ownservices import pid_file_process, read_pid
from catalog_sync.paths import RuntimeLayout
from catalog_sync.services import ServiceError, session_pids, signal_session

DEFAULT_POSTGRES = ("127.0.0.1", 5432)
AIRFLOW_DATABASE = "airflow"
SETTINGS_FILE = "cluster.json"


class ClusterError(ServiceError):
    """The cluster cannot start; the message says what is missing and how to give it."""


def log_dir(layout: RuntimeLayout) -> Path:
    return layout.root / "airflow" / "logs" / "components"


def _spawn(
    layout: RuntimeLayout,
    name: str,
    argv: list[str],
    env: dict[str, str],
    log_name: str,
) -> subprocess.Popen[bytes]:
    logs = log_dir(layout)
    logs.mkdir(parents=True, exist_ok=True)
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    with (logs / log_name).open("ab") as log:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group: stopping (or kill -9 of) the group reaches its children.
            start_new_session=True,
        )
    # devstack.stop_services (devstack down, make clean) ends every airflow-*.pid group.
    (layout.run_dir / f"airflow-{name}.pid").write_text(f"{proc.pid} {env['AIRFLOW__API__HOST']}\n")
    return proc


def start_control_plane(
    layout: RuntimeLayout,
    s: ClusterSettings,
    *,
    services: LocalServices | None = None,
    extra_env: dict[str, str] | None = None,
    ready_timeout: float = 180.0,
) -> AirflowStack:
    """Migrate + provision the metadata DB and start the four components; wait until healthy.

    `services`: the ILS emulator (and Redis) the ils_default Connection points at; default the
    checkout's own (devstack.ensure_services) with the cluster's Redis.
    """
    s = with_secrets(layout, s)
    env = {**cluster_env(layout, s), **(extra_env or {})}
    services = services or ensure_services(layout, s.redis_url)
    services = replace(services, redis_url=redis_db(s.redis_url, 1))
    prepare_airflow(layout, env)
    provision_airflow(layout, services, env)
    stack = AirflowStack(layout, s.api_url, log_dir(layout))
    # What `cluster status` needs to find the cluster again (no secrets).
    public = {k: v for k, v in asdict(s).items() if k not in ("jwt_secret", "fernet_key")}
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    (layout.run_dir / SETTINGS_FILE).write_text(json.dumps(public, indent=2))
    try:
        for name in COMPONENTS:
            stack.processes[name] = _spawn(layout, name, [airflow_bin(), name], env, f"{name}.log")
        stack.wait_ready(ready_timeout)
    except BaseException:
        stack.stop()
        raise
    return stack


def start_worker(
    layout: RuntimeLayout,
    s: ClusterSettings,
    hostname: str,
    *,
    prefix: Sequence[str] = (),
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """One Celery worker with its own CATALOG_SYNC_HOME = layout.root.

    `prefix` wraps the command (['ip', 'netns', 'exec', 'w1'] runs it on a test host). Give `s`
    the control plane's secrets (with_secrets on its home) when this worker has a home of its
    own; without them it would sign and check with secrets the api-server does not know.
    Log: layout.root/airflow/logs/components/worker-<hostname>.log. The worker leads a
    session of its own; its task processes get process groups of their own inside it, so
    kill -9 of a worker host is signal_session(proc.pid, SIGKILL), not killpg.
    """
    s = with_secrets(layout, s)
    (layout.root / "airflow").mkdir(parents=True, exist_ok=True)
    env = {**cluster_env(layout, s), **(extra_env or {})}
    return _spawn(
        layout,
        f"worker-{hostname}",
        [*prefix, *worker_argv(s, hostname)],
        env,
        f"worker-{hostname}.log",
    )


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """SIGTERM the worker's group (a warm shutdown lets running tasks end), then SIGKILL
    whatever is left of its session, task processes in groups of their own included."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)
    signal_session(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(10)


def _reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


def resolve_postgres(url: str | None, default: tuple[str, int] = DEFAULT_POSTGRES) -> str:
    """The metadata DB's URL: the one given, else the server on 127.0.0.1:5432 when it answers.

    That server is used as the PGUSER (default postgres) with PGPASSWORD, as libpq does.
    """
    if url:
        return url
    host, port = default
    if not _reachable(default):
        raise ClusterError(
            f"no Postgres for Airflow's metadata: none was given and nothing answers on "
            f"{host}:{port}. Give one: catalog-sync cluster up --postgres-url "
            "postgresql+psycopg2://USER:PASSWORD@HOST:5432/airflow (or make cluster "
            "POSTGRES_URL=...). The database is created if missing; the state store goes in "
            "database catalog_sync on the same server."
        )
    user = os.environ.get("PGUSER", "postgres")
    return f"postgresql+psycopg2://{user}@{host}:{port}/{AIRFLOW_DATABASE}"


def ensure_databases(*urls: str) -> None:
    """CREATE DATABASE for each URL's database that is missing (through the `postgres` one)."""
    for url in urls:
        target = make_url(url)
        shown = target.render_as_string(hide_password=True)
        engine = create_engine(
            target.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=None
        )
        try:
            with engine.connect() as conn:
                exists = conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :name"),
                    {"name": target.database},
                ).scalar()
                if not exists:
                    conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        except SQLAlchemyError as exc:
            raise ClusterError(
                f"cannot prepare the Postgres database {shown}: {exc.__class__.__name__}: "
                f"{str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}. Check the URL, "
                "or create the database and give the user rights on it."
            ) from exc
        finally:
            engine.dispose()


def cluster_up(
    layout: RuntimeLayout,
    s: ClusterSettings,
    *,
    extra_env: dict[str, str] | None = None,
    ready_timeout: float = 240.0,
) -> ClusterSettings:
    """Control plane + s.workers Celery workers, in the background; returns the settings used."""
    if running := sorted(name for name, path in _pid_files(layout).items() if read_pid(path)):
        # Starting again would overwrite their pid files and leave them unstoppable.
        raise ClusterError(
            f"Airflow is already running from {layout.root} ({', '.join(running)}): "
            "`make cluster-status` shows it, `make cluster-down` stops it"
        )
    ensure_databases(s.postgres_url, s.effective_state_url)
    s = with_secrets(layout, s)
    start_control_plane(layout, s, extra_env=extra_env, ready_timeout=ready_timeout)
    host = socket.gethostname()
    workers: dict[str, subprocess.Popen[bytes]] = {}
    for n in range(1, s.workers + 1):
        # Workers on one host share its log folder (the api-server reads it directly), but
        # each one's log server needs a port of its own.
        own = replace(s, worker_log_port=s.worker_log_port + n - 1)
        name = f"worker{n}@{host}"
        workers[name] = start_worker(layout, own, name, extra_env=extra_env)
    wait_for_workers(layout, s, workers, ready_timeout)
    return s


def wait_for_workers(
    layout: RuntimeLayout,
    s: ClusterSettings,
    workers: dict[str, subprocess.Popen[bytes]],
    timeout: float = 180.0,
) -> None:
    """Until every worker answers a ping on the broker; one that exits fails at once."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        for name, proc in workers.items():
            if proc.poll() is not None:
                raise ClusterError(
                    f"celery worker {name} exited with {proc.returncode}; see "
                    f"{log_dir(layout) / f'worker-{name}.log'}"
                )
        seen = celery_workers(redis_db(s.redis_url, 0))
        if set(workers) <= set(seen):
            return
        time.sleep(2)
    raise ClusterError(
        f"celery workers {sorted(set(workers) - set(seen))} did not answer within "
        f"{timeout:.0f} s; see their logs in {log_dir(layout)}"
    )


def _pid_files(layout: RuntimeLayout) -> dict[str, Path]:
    names = [*COMPONENTS, "worker-*"]
    found: dict[str, Path] = {}
    for pattern in names:
        for path in sorted(layout.run_dir.glob(f"airflow-{pattern}.pid")):
            found[path.stem.removeprefix("airflow-")] = path
    return found


def cluster_down(layout: RuntimeLayout, timeout: float = 30.0) -> list[str]:
    """SIGTERM each component's and worker's process group, SIGKILL what is left after timeout."""
    pid_files = _pid_files(layout).items()
    running = {name: pid for name, path in pid_files if (pid := pid_file_process(path))}
    for pid in running.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(session_pids(p) for p in running.values()):
        time.sleep(0.5)
    for pid in running.values():
        signal_session(pid, signal.SIGKILL)  # task processes sit in groups of their own
    for path in _pid_files(layout).values():
        path.unlink(missing_ok=True)
    (layout.run_dir / SETTINGS_FILE).unlink(missing_ok=True)
    return sorted(running)


@dataclass(frozen=True)
class ClusterStatus:
    processes: dict[str, bool]  # component or worker-<hostname> -> its pid is alive
    health: dict[str, str]  # the api-server's view of each component ({} if it does not answer)
    workers_seen: list[str]  # Celery hostnames that answered a ping through the broker

    @property
    def up(self) -> bool:
        return bool(self.processes) and all(self.processes.values())

    def lines(self) -> list[str]:
        out = [f"{name:<32} {'up' if alive else 'DOWN'}" for name, alive in self.processes.items()]
        if not out:
            out.append("no cluster components started from this home")
        health = ", ".join(f"{k}={v}" for k, v in self.health.items()) or "no answer"
        out.append(f"api-server health: {health}")
        out.append(f"celery workers answering: {', '.join(self.workers_seen) or 'none'}")
        return out


def celery_workers(broker_url: str, timeout: float = 2.0) -> list[str]:
    """Hostnames of the Celery workers that answer a broadcast ping on the broker."""
    from celery import Celery

    app = Celery(broker=broker_url)
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception:  # broker down: no worker can be seen
        return []
    finally:
        app.close()
    return sorted(name for reply in replies for name in reply)


def cluster_status(layout: RuntimeLayout) -> ClusterStatus:
    pid_files = _pid_files(layout).items()
    processes = {name: pid_file_process(path) is not None for name, path in pid_files}
    try:
        saved = json.loads((layout.run_dir / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return ClusterStatus(processes, {}, [])
    s = ClusterSettings(**saved)
    stack = AirflowStack(layout, s.api_url, log_dir(layout))
    return ClusterStatus(processes, stack.health(), celery_workers(redis_db(s.redis_url, 0)))


def run_cluster_up(layout: RuntimeLayout, s: ClusterSettings) -> int:
    """`catalog-sync cluster up` (make cluster): start, print where everything is, return."""
    print(f"metadata DB: {make_url(s.postgres_url).render_as_string(hide_password=True)}")
    services = ensure_services(layout, s.redis_url or None)
    if not s.storage_url:
        layout.inbox(DEMO_VENDOR).mkdir(parents=True, exist_ok=True)  # where a delivery goes
    s = replace(s, redis_url=s.redis_url or services.redis_url)
    print(f"redis: {s.redis_url}   ILS emulator: {services.emulator_url}")
    print(f"starting the control plane and {s.workers} Celery workers ...")
    try:
        s = cluster_up(layout, s)
    except ServiceError as exc:
        print(f"catalog-sync cluster up: {exc}")
        cluster_down(layout)
        return 1
    print(f"Airflow UI: {s.api_url}   login: {admin_login(layout)}")
    print(f"component and worker logs: {log_dir(layout)}")
    print(f"task logs: {layout.root / 'airflow' / 'logs'}")
    print("`make cluster-status` shows each component; `make cluster-down` stops them all")
    return 0


def run_cluster_status(layout: RuntimeLayout) -> int:
    status = cluster_status(layout)
    print("\n".join(status.lines()))
    return 0 if status.up else 1


def run_cluster_worker(layout: RuntimeLayout, s: ClusterSettings, name: str) -> int:
    """`catalog-sync cluster worker`: one Celery worker on this host, in the foreground.

    For a worker host of its own: its secrets are the control plane's jwt.secret and
    fernet.key, copied into this home's airflow/ folder (with_secrets reads them there).
    """
    secrets_dir = layout.root / "airflow"
    if not s.jwt_secret and not (secrets_dir / "jwt.secret").exists():
        print(
            f"catalog-sync cluster worker: no {secrets_dir / 'jwt.secret'}. Copy jwt.secret and "
            "fernet.key from the control plane's CATALOG_SYNC_HOME/airflow/ into this host's "
            "(mode 0600): the api-server only accepts tasks signed with its secret."
        )
        return 2
    proc = start_worker(layout, s, name)
    print(f"celery worker {name}: log {log_dir(layout) / f'worker-{name}.log'} (Ctrl-C stops it)")
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_worker(proc)
        (layout.run_dir / f"airflow-worker-{name}.pid").unlink(missing_ok=True)
