"""The distributed deployment's settings, in one place: the native cluster and docker-compose.yaml.

`catalog-sync cluster up` (catalog_sync.cluster) starts processes with these settings, and
`catalog-sync cluster compose --write` generates docker-compose.yaml from them (compose.py), so
the two cannot drift apart: same executor, broker, result backend, worker concurrency and
worker_max_memory_per_child, same resource limits per service.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import make_url

from catalog_sync.devstack import airflow_bin, airflow_env
from catalog_sync.paths import RuntimeLayout

# Each worker gets two cores (its `cpus` limit). Parsing and staging a chunk is CPU-bound: more
# than one such task per core only queues for the CPU. Commit tasks mostly wait on the ILS and
# are capped by the ILS pool (4 slots cluster-wide, about 2 per worker of two). So one slot per
# core plus a worker's share of the pool: 2 + 2 = 4, not Celery's default of 16.
WORKER_CONCURRENCY = 4
# A Celery pool process is replaced after a task leaves it above this resident size (KiB). A
# pool process supervises one task process at a time (~150 MB once Airflow is imported); 500 MB
# means it kept something big after a task, and a fresh one is cheaper than a slow leak.
WORKER_MAX_MEMORY_PER_CHILD_KB = 500_000
STATE_DATABASE = "catalog_sync"
# Where a worker serves its task logs to the api-server ([logging] worker_log_server_port).
WORKER_LOG_PORT = 8793


@dataclass(frozen=True)
class Limits:
    """A service's CPU and memory limit (compose deploy.resources.limits; cgroup on a host)."""

    cpus: float
    memory: str  # compose byte value: "512m", "2g"


# Per service. Workers: WORKER_CONCURRENCY task processes (~300 MB each while staging a chunk)
# plus their supervisors; the control plane's components idle at 150-400 MB each.
LIMITS: dict[str, Limits] = {
    "postgres": Limits(1.0, "1g"),
    "redis": Limits(0.5, "256m"),
    "emulator": Limits(0.5, "512m"),
    "airflow-init": Limits(1.0, "1g"),
    "airflow-apiserver": Limits(1.0, "1g"),
    "airflow-scheduler": Limits(1.0, "1g"),
    "airflow-dag-processor": Limits(0.5, "768m"),
    "airflow-triggerer": Limits(0.5, "512m"),
    "airflow-worker": Limits(2.0, "3g"),
}


@dataclass(frozen=True)
class ClusterSettings:
    postgres_url: str  # SQLAlchemy URL of Airflow's metadata DB: postgresql+psycopg2://...
    redis_url: str  # redis://host:port (Celery broker on db 0; catalog-sync gate/leases on db 1)
    api_host: str = "127.0.0.1"  # the api-server binds here AND workers call the execution API
    api_port: int = 8080
    workers: int = 2
    worker_concurrency: int = WORKER_CONCURRENCY
    worker_max_memory_per_child_kb: int = WORKER_MAX_MEMORY_PER_CHILD_KB
    storage_url: str | None = None  # run storage root (catalog_sync_storage_url), e.g. sftp://...
    storage_conn_id: str | None = None  # its Connection id (catalog_sync_storage_conn_id)
    state_url: str | None = None  # state store URL; default: database catalog_sync, same server
    # Shared by every component and worker: the scheduler signs task tokens and the api-server
    # checks them (jwt_secret); the api-server signs log requests a worker checks (secret_key);
    # fernet encrypts Connections in the metadata DB. None: taken from the cluster home
    # (with_secrets), so a worker on another home must be given the control plane's.
    jwt_secret: str | None = None
    fernet_key: str | None = None
    worker_log_port: int = WORKER_LOG_PORT

    @property
    def api_url(self) -> str:
        host = "127.0.0.1" if self.api_host in ("", "0.0.0.0", "::") else self.api_host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.api_port}"

    @property
    def effective_state_url(self) -> str:
        return self.state_url or state_url_for(self.postgres_url)


def redis_db(url: str, db: int) -> str:
    """The same Redis server, database `db` (any database in the URL is replaced)."""
    base = url.split("?", 1)[0].rstrip("/")
    scheme, rest = base.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{db}"


def state_url_for(postgres_url: str) -> str:
    """The state store next to Airflow's metadata: its own database on the same server.

    A database of its own (not a schema) keeps its migrations and its backups apart from
    Airflow's, and `airflow db reset` cannot touch it.
    """
    return make_url(postgres_url).set(database=STATE_DATABASE).render_as_string(hide_password=False)


def result_backend(postgres_url: str) -> str:
    """Celery's result backend: the metadata DB through Celery's SQLAlchemy backend (db+...)."""
    return f"db+{postgres_url}"


def airflow_settings(s: ClusterSettings) -> dict[str, str]:
    """AIRFLOW__* / CATALOG_SYNC_* settings every component and worker shares (no host paths)."""
    env = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": s.postgres_url,
        "AIRFLOW__CELERY__BROKER_URL": redis_db(s.redis_url, 0),
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend(s.postgres_url),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(s.worker_concurrency),
        # The provider's documented knob merges these into its DEFAULT_CELERY_CONFIG
        # (default_celery.py, [celery] extra_celery_config); the worker reads it at start.
        "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps(
            {"worker_max_memory_per_child": s.worker_max_memory_per_child_kb}
        ),
        # The scheduler queues no more than the workers can run.
        "AIRFLOW__CORE__PARALLELISM": str(s.workers * s.worker_concurrency),
        "AIRFLOW__API__HOST": s.api_host,
        "AIRFLOW__API__PORT": str(s.api_port),
        # Task processes on every worker reach the api-server here; left to Airflow it is
        # localhost:8080, which on a worker host is nothing.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{s.api_url}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(s.worker_log_port),
        "AIRFLOW_VAR_CATALOG_SYNC_REDIS_URL": redis_db(s.redis_url, 1),
        "AIRFLOW_VAR_CATALOG_SYNC_STATE_URL": s.effective_state_url,
    }
    if s.storage_url:
        env["AIRFLOW_VAR_CATALOG_SYNC_STORAGE_URL"] = s.storage_url
    if s.storage_conn_id:
        env["AIRFLOW_VAR_CATALOG_SYNC_STORAGE_CONN_ID"] = s.storage_conn_id
    if s.jwt_secret:
        env["AIRFLOW__API_AUTH__JWT_SECRET"] = s.jwt_secret
        env["AIRFLOW__API__SECRET_KEY"] = s.jwt_secret
    if s.fernet_key:
        env["AIRFLOW__CORE__FERNET_KEY"] = s.fernet_key
    return env


def cluster_env(layout: RuntimeLayout, s: ClusterSettings) -> dict[str, str]:
    """devstack.airflow_env(layout) + airflow_settings(s): the env of a process on this host."""
    env = airflow_env(layout)
    env.update(airflow_settings(s))
    env.update(
        {
            # This host's own folder: tasks keep their local copies here (never shared).
            "AIRFLOW_VAR_CATALOG_SYNC_HOME": str(layout.root),
            # The health check's HTTP server would need a port of its own on each host.
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        }
    )
    return env


def worker_argv(s: ClusterSettings, hostname: str) -> list[str]:
    """The Celery worker command: concurrency and a Celery hostname unique in the cluster."""
    return [
        airflow_bin(),
        "celery",
        "worker",
        "--concurrency",
        str(s.worker_concurrency),
        "--celery-hostname",
        hostname,
    ]


def _secret_file(path: Path, make: str) -> str:
    """A secret made once and kept in the cluster home, readable by this user only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()  # made by a concurrent start
        with os.fdopen(fd, "w") as fh:
            fh.write(make)
    return path.read_text().strip()


def with_secrets(layout: RuntimeLayout, s: ClusterSettings) -> ClusterSettings:
    """`s` with the JWT secret and fernet key filled from the cluster home where not given."""
    from cryptography.fernet import Fernet

    secrets_dir = layout.root / "airflow"
    return replace(
        s,
        jwt_secret=s.jwt_secret
        or _secret_file(secrets_dir / "jwt.secret", secrets.token_urlsafe(32)),
        fernet_key=s.fernet_key
        or _secret_file(secrets_dir / "fernet.key", Fernet.generate_key().decode()),
    )
