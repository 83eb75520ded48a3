"""A CeleryExecutor cluster whose workers are real hosts: network namespaces on a test bridge.

Root namespace (the bridge address): Postgres, Redis, the ILS emulator and the Airflow control
plane. Host `store`: the SFTP server holding the run storage. Hosts `w1`, `w2`: one Celery
worker each, with a hostname of its own and an empty CATALOG_SYNC_HOME. The vendor file comes
in through the storage (the demo vendor's relative inbox), never through a shared folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.conftest import shared_dir
from tests.distributed.netns import Host, TestNet, check_hostname, require_netns
from tests.distributed.services import (
    STORAGE_CONN_ID,
    BridgedPostgres,
    SftpHost,
    start_emulator_on,
    start_postgres_on,
    start_redis_on,
    start_sftp_host,
)
from tests.production.conftest import PASSWORD, USER, test_config
from tests.production.harness import AirflowApi

from catalog_sync.devstack import DEMO_DAG, EMULATOR_PASSWORD, EMULATOR_USER, LocalServices
from catalog_sync.embedded import AirflowStack
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.paths import RuntimeLayout, layout
from catalog_sync.services import ServiceProcess, free_port

WORKERS = ("w1", "w2")
# The ILS's rate limit (requests/s): the emulator refuses more with 429, and the provisioned
# ils_default Connection tells the shared token bucket the same number.
ILS_RATE_LIMIT = 200
# Short enough that a dead or cut-off worker's task is failed and retried within a test.
FAST_DETECTION = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    # A killed worker's prefetched task messages stay unacknowledged in Redis for hours
    # (visibility timeout); the scheduler re-queues such stuck "queued" tasks after this.
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
}


def distributed_config(target: Path, records_per_chunk: int) -> Path:
    """tests/production's config copy, with this test's chunk size and no ILS matching.

    Only 001+003, which Koha cannot search (docs/koha.md), so no record is matched in the ILS:
    the 20,000-record file repeats real records under suffixed 001s (see
    test_two_worker_hosts); their shared ISBNs and LCCNs must not match them to one another.
    """
    test_config(target)
    path = target / "vendors.yaml"
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    config["vendors"]["demo"].update(records_per_chunk=records_per_chunk, match_points=["001+003"])
    path.write_text(yaml.safe_dump(config))
    return target


@dataclass
class Worker:
    host: Host
    home: RuntimeLayout
    process: subprocess.Popen[bytes]

    def kill_host(self) -> None:
        """kill -9 of the worker's whole process group, then of anything left on the host."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.host.kill_all()
        self.process.wait(30)


@dataclass
class Cluster:
    net: TestNet
    postgres: BridgedPostgres
    redis: ServiceProcess
    emulator: ServiceProcess
    storage: SftpHost
    control: RuntimeLayout
    stack: AirflowStack
    api: AirflowApi
    workers: dict[str, Worker] = field(default_factory=dict)

    @property
    def ils(self) -> EmulatorControl:
        return EmulatorControl(self.emulator.url)

    def trigger(self) -> str:
        return self.api.trigger(DEMO_DAG, {"force": True})

    def hostnames(self) -> dict[str, str]:
        return {w.host.hostname: name for name, w in self.workers.items()}

    def running_on(self, run_id: str, task_id: str) -> dict[str, list[dict[str, Any]]]:
        """Running instances of task_id, by the worker (w1, w2) whose host runs them."""
        names = self.hostnames()
        found: dict[str, list[dict[str, Any]]] = {}
        for ti in self.api.task_instances(DEMO_DAG, run_id):
            if ti["task_id"] == task_id and ti["state"] == "running" and ti.get("hostname"):
                found.setdefault(names.get(ti["hostname"], ti["hostname"]), []).append(ti)
        return found


def ils_connection(url: str, rate_limit: int) -> str:
    """ils_default as provisioning makes it, with the emulator's rate limit."""
    parsed = httpx.URL(url)
    connection = {
        "conn_type": "http",
        "host": parsed.host,
        "port": parsed.port,
        "schema": parsed.scheme,
        "login": EMULATOR_USER,
        "password": EMULATOR_PASSWORD,
        "extra": {"flavour": "koha", "rate_limit": rate_limit, "max_concurrency": 8},
    }
    return json.dumps(connection)


def _corpus_present() -> None:
    if not (shared_dir() / "corpus").is_dir():
        pytest.skip(f"shared corpus not present at {shared_dir() / 'corpus'}")


def _wait_for_workers(cluster: Cluster, timeout: float = 180) -> None:
    """Until each worker's Celery answers a ping through the broker (it takes tasks then)."""
    from catalog_sync.cluster import celery_workers
    from catalog_sync.deploy import redis_db

    wanted = {w.host.hostname for w in cluster.workers.values()}
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        for name, worker in cluster.workers.items():
            if worker.process.poll() is not None:
                raise AssertionError(f"worker {name} exited with {worker.process.returncode}")
        # Celery names a node "celery@<hostname>" when given a bare hostname.
        seen = {n.split("@")[-1] for n in celery_workers(redis_db(cluster.redis.url, 0))}
        if wanted <= seen:
            return
        time.sleep(2)
    raise AssertionError(f"workers {sorted(wanted - seen)} never answered within {timeout:.0f} s")


@contextlib.contextmanager
def start_cluster(
    tmp: Path,
    vendor_file: Path,
    records_per_chunk: int,
    extra_env: dict[str, str] | None = None,
    ils_rate_limit: int = ILS_RATE_LIMIT,
) -> Iterator[Cluster]:
    """Everything up, the vendor file on the storage host, the demo DAG unpaused."""
    require_netns()
    _corpus_present()
    from catalog_sync.cluster import ensure_databases, start_control_plane, start_worker
    from catalog_sync.deploy import ClusterSettings, with_secrets

    # The network goes last: every service is stopped while its address still exists.
    with TestNet.create(["store", *WORKERS]) as net, contextlib.ExitStack() as stack:
        for name in WORKERS:
            check_hostname(net.host(name))
        services = tmp / "services"
        services.mkdir()
        postgres = start_postgres_on(net.gateway, str(net.network))
        stack.callback(postgres.remove)
        redis = start_redis_on(services, net.gateway)
        stack.callback(redis.stop)
        emulator = start_emulator_on(services, net.gateway, ils_rate_limit)
        stack.callback(emulator.stop)
        storage = start_sftp_host(net.host("store"), tmp / "store")
        stack.callback(storage.stop)
        storage.deliver(vendor_file)

        settings = ClusterSettings(
            postgres_url=postgres.url.rsplit("/", 1)[0] + "/airflow",
            redis_url=redis.url,
            api_host=net.gateway,
            api_port=free_port(),
            workers=len(WORKERS),
            storage_url=storage.url,
            storage_conn_id=STORAGE_CONN_ID,
        )
        ensure_databases(settings.postgres_url, settings.effective_state_url)
        control = layout(tmp / "control")
        (control.root / "airflow").mkdir(parents=True)
        # SimpleAuthManager keeps its users' passwords here; a known one lets the test log in.
        (control.root / "airflow" / "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps({USER: PASSWORD})
        )
        settings = with_secrets(control, settings)
        config = str(distributed_config(tmp / "config", records_per_chunk))
        # Provisioning reads the pools from the config in this process, the tasks in theirs.
        stack.enter_context(_environ("CATALOG_SYNC_CONFIG_DIR", config))
        env = {
            "CATALOG_SYNC_CONFIG_DIR": config,
            f"AIRFLOW_CONN_{STORAGE_CONN_ID.upper()}": storage.connection(),
            # Over the provisioned one: the rate limit the emulator enforces, for every worker.
            "AIRFLOW_CONN_ILS_DEFAULT": ils_connection(emulator.url, ils_rate_limit),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            **(extra_env or {}),
        }
        try:
            airflow = start_control_plane(
                control, settings, services=LocalServices(redis.url, emulator.url), extra_env=env
            )
        except subprocess.CalledProcessError as exc:  # migrate/provision: say what Airflow said
            raise AssertionError(f"{exc.cmd[1:]} failed: {str(exc.stderr)[-3000:]}") from exc
        stack.callback(airflow.stop)
        cluster = Cluster(net, postgres, redis, emulator, storage, control, airflow,
                          AirflowApi(airflow.api_url, USER, PASSWORD))  # fmt: skip
        for name in WORKERS:
            host = net.host(name)
            home = layout(tmp / f"home-{name}")  # empty: nothing of the control plane's
            proc = start_worker(home, settings, host.hostname, prefix=host.prefix(), extra_env=env)
            cluster.workers[name] = Worker(host, home, proc)
            stack.callback(_stop_group, proc)
        _wait_for_workers(cluster)
        cluster.api.wait_for_dag(DEMO_DAG)
        cluster.api.unpause(DEMO_DAG)
        try:
            yield cluster
        finally:
            for name, worker in cluster.workers.items():
                log = worker.home.root / "airflow" / "logs" / "components"
                with contextlib.suppress(OSError):
                    shutil.copytree(log, tmp / "logs" / name, dirs_exist_ok=True)


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
