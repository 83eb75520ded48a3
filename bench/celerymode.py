"""bench/production.py's third mode: CeleryExecutor, two workers on this machine, own Postgres.

The native cluster of catalog_sync.cluster (control plane + 2 x start_worker) against a Postgres
this benchmark starts (tests/production/postgres.py) and the mode's private Redis. The seeded
state store (SQLite, from the seed cache) is copied into the cluster's Postgres state database,
so the measured run sees the same ILS and state as the other modes. Both workers share the
mode's CATALOG_SYNC_HOME: they run on one machine, and disk sharing is not what is measured.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, insert, select

from catalog_sync.changes.state.schema import catalog_records, loaded_files
from catalog_sync.changes.state.store import StateStore
from catalog_sync.services import free_port

WORKERS = 2
COPY_BATCH = 2000


def copy_state(sqlite_path: str, target_url: str) -> int:
    """The seeded records (what decides "changed") from the SQLite state store into Postgres."""
    StateStore(target_url).close()  # migrates the empty database to the newest schema
    source = create_engine(f"sqlite:///{sqlite_path}")
    target = create_engine(target_url)
    copied = 0
    try:
        with source.connect() as src, target.begin() as dst:
            for table in (catalog_records, loaded_files):
                rows = [dict(r._mapping) for r in src.execute(select(table))]
                for i in range(0, len(rows), COPY_BATCH):
                    dst.execute(insert(table), rows[i : i + COPY_BATCH])
                copied += len(rows)
    finally:
        source.dispose()
        target.dispose()
    return copied


@contextmanager
def private_postgres() -> Iterator[Any]:
    """tests/production/postgres.py's server; its pytest.skip becomes a plain error here."""
    from tests.production.postgres import start_postgres

    try:
        server = start_postgres()
    except BaseException as exc:  # pytest's Skipped derives from BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise RuntimeError(f"no private Postgres for the Celery mode: {exc}") from exc
    try:
        yield server
    finally:
        server.remove()


def run_celery(
    b: Any,
    seeded_home: Callable[..., Any],
    login_file: Callable[..., dict[str, str]],
    scheduler_rows: Callable[..., list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    from catalog_sync.cluster import (
        ensure_databases,
        start_control_plane,
        start_worker,
        stop_worker,
    )
    from catalog_sync.deploy import ClusterSettings, cluster_env, with_secrets

    with private_postgres() as pg, seeded_home(b, "celery") as home:
        s = ClusterSettings(
            postgres_url=pg.url.rsplit("/", 1)[0] + "/airflow",
            redis_url=home.redis.url,
            api_port=free_port(),
            workers=WORKERS,
        )
        ensure_databases(s.postgres_url, s.effective_state_url)
        copied = copy_state(str(home.layout.root / "state.db"), s.effective_state_url)
        extra = login_file(home.layout)
        s = with_secrets(home.layout, s)
        home.airflow_env = {**cluster_env(home.layout, s), **extra}
        stack = start_control_plane(home.layout, s, services=home.services, extra_env=extra)
        workers: list[subprocess.Popen[bytes]] = []
        try:
            host = socket.gethostname()
            for n in range(1, WORKERS + 1):
                # Two workers on one host: each serves its logs on a port of its own.
                env = {**extra, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
                workers.append(start_worker(home.layout, s, f"bench{n}@{host}", extra_env=env))
            rows = scheduler_rows(b, home, stack.api_url)
        finally:
            for proc in workers:
                # Its task processes too: they lead process groups of their own.
                stop_worker(proc)
            stack.stop()
    for row in rows:
        row.update(
            workers=WORKERS,
            worker_concurrency=s.worker_concurrency,
            state_rows_copied=copied,
            hostnames=sorted({str(t.get("hostname")) for t in row.get("task_spans", [])}),
        )
    return rows
