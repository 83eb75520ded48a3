"""The services of a distributed test, bound where the test hosts reach them.

Postgres, Redis and the ILS emulator listen on the bridge address of the root namespace; the
run storage is the SFTP test server on a host of its own. Each is a private process of the test
on a free port (the machine's 5432/6379 are never used).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import httpx
from tests.distributed.netns import Host
from tests.production.postgres import PostgresServer, start_postgres
from tests.sftp_server import PASSWORD, USER

from catalog_sync.services import ServiceError, ServiceProcess, free_port, redis_server_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
SFTP_PORT = 2222  # the storage host's own namespace: no other test can hold it
STORE = "catalog-sync"  # the storage root on the SFTP server, as tests/sftp_storage.py uses it
STORAGE_CONN_ID = "catalog_sync_storage"


def _spawn(argv: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
            start_new_session=True,
        )  # fmt: skip


def _wait_port(
    address: str, port: int, proc: subprocess.Popen[bytes], name: str, log: Path
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{name} exited with {proc.returncode}; see {log}")
        with contextlib.suppress(OSError), socket.create_connection((address, port), 0.5):
            return
        time.sleep(0.2)
    proc.kill()
    raise ServiceError(f"{name} did not listen on {address}:{port} within 60 s; see {log}")


def start_redis_on(workdir: Path, address: str) -> ServiceProcess:
    """A private, non-persistent redis-server bound to `address` (the Celery broker too)."""
    port = free_port()
    log = workdir / f"redis-{port}.log"
    argv = [redis_server_binary(), "--port", str(port), "--bind", address, "--save", "",
            "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "no"]  # fmt: skip
    proc = _spawn(argv, log)
    _wait_port(address, port, proc, "redis-server", log)
    return ServiceProcess("redis", f"redis://{address}:{port}/0", proc, log)


def start_emulator_on(workdir: Path, address: str, rate_limit: int) -> ServiceProcess:
    """The ILS emulator on `address`, refusing (429) whatever exceeds `rate_limit` requests/s."""
    port = free_port()
    log = workdir / f"emulator-{port}.log"
    argv = [sys.executable, "-m", "catalog_sync", "emulator", "--host", address,
            "--port", str(port), "--db", str(workdir / "emulator.db"),
            "--rate-limit", str(rate_limit)]  # fmt: skip
    proc = _spawn(argv, log)
    url = f"http://{address}:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"emulator exited with {proc.returncode}; see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/_emulator/health", timeout=0.5).status_code == 200:
                return ServiceProcess("emulator", url, proc, log)
        time.sleep(0.2)
    proc.kill()
    raise ServiceError(f"emulator did not answer at {url} within 60 s; see {log}")


@dataclass
class BridgedPostgres(PostgresServer):
    """The test Postgres, listening on loopback and the bridge address too."""

    address: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@{self.address}:{self.port}/postgres"

    def start(self) -> None:
        listen = f"127.0.0.1,{self.address}"
        options = (f"-p {self.port} -k {self.root} -c listen_addresses={listen} -c fsync=off "
                   "-c max_connections=300")  # fmt: skip
        self._pg_ctl("-l", str(self.root / "postgres.log"), "-o", options, "start")


def start_postgres_on(address: str, subnet: str) -> BridgedPostgres:
    """tests/production/postgres.py's server, reachable from the test hosts (trust, test only)."""
    local = start_postgres()
    local.stop()
    hba = local.root / "data" / "pg_hba.conf"
    with hba.open("a") as fh:
        fh.write(f"host all all {subnet} trust\n")
    server = BridgedPostgres(local.root, local.port, local.prefix, address)
    server.start()
    return server


@dataclass
class SftpHost:
    """The run storage: the SFTP test server alone on its own host, reached by sftp://."""

    host: Host
    root: Path  # the server's disk (the test reads it to check what is stored)
    known_hosts: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"sftp:///{STORE}"

    def connection(self) -> str:
        """AIRFLOW_CONN_CATALOG_SYNC_STORAGE for every component and worker."""
        connection = {
            "conn_type": "sftp",
            "host": self.host.address,
            "port": SFTP_PORT,
            "login": USER,
            "password": PASSWORD,
            "extra": {"known_hosts": str(self.known_hosts)},
        }
        return json.dumps(connection)

    def deliver(self, source: Path, vendor: str = "demo") -> Path:
        """The vendor's file, laid in the relative inbox the run reads from storage."""
        inbox = self.root / STORE / "inbox" / vendor
        inbox.mkdir(parents=True, exist_ok=True)
        target = inbox / source.name
        target.write_bytes(source.read_bytes())
        return target

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start_sftp_host(host: Host, workdir: Path) -> SftpHost:
    root = workdir / "sftp-root"
    (root / STORE).mkdir(parents=True)
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = workdir / "sftp-host-key"
    key.write_private_key(str(key_file))
    public = key.export_public_key("openssh").decode().split()
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[{host.address}]:{SFTP_PORT} {public[0]} {public[1]}\n")
    log = workdir / "sftp-host.log"
    argv = [*host.prefix(), sys.executable, "-m", "tests.distributed.sftp_host",
            "--bind", host.address, "--port", str(SFTP_PORT), "--root", str(root),
            "--host-key", str(key_file)]  # fmt: skip
    proc = _spawn(argv, log, cwd=REPO_ROOT)
    _wait_port(host.address, SFTP_PORT, proc, "sftp server", log)
    return SftpHost(host, root, known_hosts, proc)
