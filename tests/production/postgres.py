"""A private Postgres for a test: initdb into a temporary folder, on a free loopback port."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from catalog_sync.services import free_port


def _as_postgres() -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no `postgres` user to run initdb as")
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root and `runuser` is missing (needed to run initdb as postgres)")
    return [runuser, "-u", "postgres", "--"]


@dataclass
class PostgresServer:
    root: Path
    port: int
    prefix: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.prefix, "pg_ctl", "-D", str(self.root / "data"), "-w", *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-l", str(self.root / "postgres.log"), "-o", options, "start")

    def stop(self) -> None:
        # fast: open sessions are cut, as when an operator or a failover restarts the server.
        self._pg_ctl("-m", "fast", "stop")

    def remove(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """initdb (trust auth on loopback only) and start; skips when Postgres is not installed."""
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        pytest.skip("Postgres server binaries (initdb, pg_ctl) are not on PATH")
    prefix = _as_postgres()
    # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="catalog-sync-pg-"))
    if prefix:
        shutil.chown(root, "postgres", "postgres")
    subprocess.run(
        [*prefix, "initdb", "-D", str(root / "data"), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = PostgresServer(root, free_port(), prefix)
    server.start()
    return server
