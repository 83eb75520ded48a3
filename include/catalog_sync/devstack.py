"""The embedded mode on one machine: local services, Airflow home, provisioning and the demo run.

Airflow is driven through its own command line (`airflow ...`), so this module imports none of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from catalog_sync.config import load_ils_connections, pool_specs
from catalog_sync.ownservices import (
    ServiceRecord,
    emulator_answers,
    pid_file_process,
    port_for,
    read_pid,
    record_service,
    redis_answers,
    reusable,
    started_from,
    stop_service,
)
from catalog_sync.paths import REPO_ROOT, RuntimeLayout
from catalog_sync.services import ServiceError, start_emulator, start_redis

SAMPLE_FILE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
DEMO_VENDOR = "demo"
DEMO_DAG = f"catalog_sync_{DEMO_VENDOR}"
# Demo-only credentials of the emulator (its documented defaults); a real ILS's live in Airflow.
EMULATOR_USER, EMULATOR_PASSWORD = "catalog", "catalog-demo"
# `make demo ILS=folio`: the same file through the FOLIO emulator's Connection and vendor.
FOLIO_CONNECTION, FOLIO_VENDOR, FOLIO_TENANT = "ils_folio", "demo_folio", "diku"
DEMO_VENDORS = {"koha": DEMO_VENDOR, "folio": FOLIO_VENDOR}


@dataclass(frozen=True)
class LocalServices:
    redis_url: str
    emulator_url: str
    folio_url: str | None = None  # the FOLIO emulator, started only for a FOLIO demo


def airflow_env(layout: RuntimeLayout) -> dict[str, str]:
    """Environment for `airflow` commands: an Airflow home inside the runtime folder, SQLite."""
    home = layout.root / "airflow"
    env = dict(os.environ)
    env.update(
        {
            "CATALOG_SYNC_HOME": str(layout.root),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "PYTHONPATH": os.pathsep.join(
                [str(REPO_ROOT / "include"), str(REPO_ROOT / "plugins"), str(REPO_ROOT / "dags")]
                + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
            ),
        }
    )
    env.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    # `airflow standalone` starts its components as `airflow ...` found on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def airflow_bin() -> str:
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else (shutil.which("airflow") or "airflow")


def airflow(
    layout: RuntimeLayout, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`airflow ARGS` against this home's SQLite metadata DB, or with `env` (a cluster's)."""
    result = subprocess.run(
        [airflow_bin(), *args],
        env=env or airflow_env(layout),
        check=False,
        text=True,
        capture_output=True,
    )
    if check and result.returncode != 0:
        # Its own last words (a refused database connection, ...), not just the exit status.
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise ServiceError(
            f"`airflow {' '.join(args[:2])}` exited with {result.returncode}:\n{tail}"
        )
    return result


def ensure_services(
    layout: RuntimeLayout, redis_url: str | None = None, folio: bool = False
) -> LocalServices:
    """Redis (`redis_url`, REDIS_URL, else our own) and the ILS emulator, both this checkout's.

    A service is reused only when its record in run/ names a process this checkout started
    that still answers with its identity; otherwise we start our own on a free port (or the
    port CATALOG_SYNC_REDIS_PORT / CATALOG_SYNC_EMULATOR_PORT asks for, when free).
    """
    run = layout.run_dir
    run.mkdir(parents=True, exist_ok=True)
    redis_url = redis_url or os.environ.get("REDIS_URL", "")
    if not redis_url:
        redis = reusable(run, "redis", redis_answers)
        if redis is None:
            started = start_redis(run, port=port_for("CATALOG_SYNC_REDIS_PORT"), detach=True)
            redis = record_service(run, started)
        redis_url = redis.url
    emulator = reusable(run, "emulator", emulator_answers)
    if emulator is None:
        started = start_emulator(
            run,
            port=port_for("CATALOG_SYNC_EMULATOR_PORT"),
            db=layout.root / "emulator.db",
            detach=True,
        )
        emulator = record_service(run, started)
    folio_url = ensure_folio_emulator(layout).url if folio else None
    return LocalServices(redis_url, emulator.url, folio_url)


def ensure_folio_emulator(layout: RuntimeLayout) -> ServiceRecord:
    """The FOLIO emulator, started and reused under the same own-services rules as the Koha
    one (its own record, `emulator_folio`, so each is stopped only as itself)."""
    run = layout.run_dir
    folio = reusable(run, "emulator_folio", emulator_answers)
    if folio is None:
        started = start_emulator(
            run,
            port=port_for("CATALOG_SYNC_FOLIO_EMULATOR_PORT"),
            db=layout.root / "emulator-folio.db",
            extra_args=["--flavour", "folio"],
            detach=True,
        )
        folio = record_service(run, replace(started, name="emulator_folio"))
    return folio


def stop_services(layout: RuntimeLayout) -> list[str]:
    """Stop the emulator, Redis and any Airflow component a killed `make airflow` left behind.

    Only processes this checkout started: a record whose pid now names another process, or a
    port someone else's service holds now, stops nothing.
    """
    stopped = []
    for info in sorted(layout.run_dir.glob("airflow-*.pid")):
        pid = pid_file_process(info)
        if pid is not None:
            # Each component leads its own process group (its workers and task processes too).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
            stopped.append(info.stem)
        info.unlink(missing_ok=True)
    for name in ("emulator", "emulator_folio", "redis", "mail"):
        if stop_service(layout.run_dir, name):
            stopped.append(name)
        # "<pid> <url>" files of checkouts before service records: their services were
        # started under `make`, so with this checkout's CATALOG_SYNC_HOME in their environment.
        legacy = layout.run_dir / f"{name}.pid"
        pid = read_pid(legacy)
        if pid is not None and started_from(pid, layout.root):
            os.kill(pid, signal.SIGTERM)
            stopped.append(name)
        legacy.unlink(missing_ok=True)
    return stopped


def prepare_airflow(layout: RuntimeLayout, env: dict[str, str] | None = None) -> None:
    """Create or upgrade the Airflow metadata DB once per Airflow version.

    With `env` (a cluster's, on Postgres) every start migrates: the stamp file lives in this
    home, the database elsewhere, and `db migrate` on a current database is a quick no-op.
    """
    home = layout.root / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    stamp = home / f".migrated-{version('apache-airflow-core')}"
    if env is not None:
        airflow(layout, "db", "migrate", env=env)
    elif not stamp.exists():
        airflow(layout, "db", "migrate")
        stamp.touch()


# What provision gives the emulator's ILS Connection: the emulator's own default rate limit.
EMULATOR_RATE_LIMIT = 200.0
EMULATOR_MAX_CONCURRENCY = 8


def ils_connections(
    services: LocalServices,
    rate_limit: float = EMULATOR_RATE_LIMIT,
    max_concurrency: int = EMULATOR_MAX_CONCURRENCY,
) -> dict[str, dict[str, Any]]:
    """Every configured ILS Connection, pointed at the emulator (`airflow connections import`)."""
    emulator = httpx.URL(services.emulator_url)
    extra = {"flavour": "koha", "rate_limit": rate_limit, "max_concurrency": max_concurrency}
    connections = {
        name: {
            "conn_type": "http",
            "description": "ILS emulator started by make demo (Koha REST API)",
            "host": emulator.host,
            "port": emulator.port,
            "schema": emulator.scheme,
            "login": EMULATOR_USER,
            "password": EMULATOR_PASSWORD,
            "extra": json.dumps(extra),
        }
        for name in load_ils_connections()
        if name != FOLIO_CONNECTION
    }
    if services.folio_url is not None:
        folio = httpx.URL(services.folio_url)
        folio_extra = {
            "flavour": "folio",
            "tenant": FOLIO_TENANT,
            "max_concurrency": max_concurrency,
        }
        connections[FOLIO_CONNECTION] = {
            "conn_type": "http",
            "description": "FOLIO emulator started by make demo ILS=folio (Okapi, one tenant)",
            "host": folio.host,
            "port": folio.port,
            "schema": folio.scheme,
            "login": EMULATOR_USER,
            "password": EMULATOR_PASSWORD,
            "extra": json.dumps(folio_extra),
        }
    return connections


def import_connections(
    layout: RuntimeLayout, connections: dict[str, dict[str, Any]], env: dict[str, str] | None = None
) -> None:
    """`airflow connections import` through a file only this user can read, gone afterwards.

    The file holds the ILS password and the PII key: it exists 0600 for the import's duration
    in a 0700 folder, and is removed even when the import fails.
    """
    folder = layout.root / "airflow" / "provision"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / f"connections-{secrets.token_hex(8)}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(connections, fh)
        airflow(layout, "connections", "import", "--overwrite", str(path), env=env)
    finally:
        path.unlink(missing_ok=True)


def provision(
    layout: RuntimeLayout, services: LocalServices, env: dict[str, str] | None = None
) -> None:
    """The ils_default Connection, one pool per ILS connection, and the DAG's variables.

    `env`: a cluster's environment, so they go into its metadata DB instead of this SQLite.
    """
    out = layout.root / "airflow" / "provision"
    out.mkdir(parents=True, exist_ok=True)
    connections = ils_connections(services)
    connections["catalog_sync_pii"] = {
        "conn_type": "generic",
        "description": "Secret key (password) of the keyed hashes that mask PII",
        "password": pii_secret(layout),
    }
    import_connections(layout, connections, env)
    # Pools and Variables hold no secret: their files stay, to show what was provisioned.
    pools = pool_specs()
    variables = {
        "catalog_sync_home": str(layout.root),
        "catalog_sync_redis_url": services.redis_url,
    }
    for name, body in (("pools", pools), ("variables", variables)):
        (out / f"{name}.json").write_text(json.dumps(body, indent=2))
    airflow(layout, "pools", "import", str(out / "pools.json"), env=env)
    airflow(
        layout,
        "variables",
        "import",
        "--action-on-existing-key",
        "overwrite",
        str(out / "variables.json"),
        env=env,
    )


def pii_secret(layout: RuntimeLayout) -> str:
    """The embedded mode's PII hashing key: random, made once, readable by this user only.

    Kept across runs so masked values stay comparable; a real deployment keeps its key in a
    secrets backend instead.
    """
    path = layout.root / "airflow" / "pii.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def lay_demo_file(layout: RuntimeLayout, source: Path, vendor: str = DEMO_VENDOR) -> Path:
    """Put exactly this file in the demo vendor's inbox (earlier demo files are removed)."""
    inbox = layout.inbox(vendor)
    inbox.mkdir(parents=True, exist_ok=True)
    for old in inbox.iterdir():
        if old.is_file():
            old.unlink()
    dest = inbox / source.name
    shutil.copyfile(source, dest)
    return dest


def run_demo(layout: RuntimeLayout, file: Path | None = None, ils: str = "koha") -> int:
    """`make demo`: services up, Airflow ready, one forced run of catalog_sync_demo, its report.

    `ils="folio"` (`make demo ILS=folio`) runs catalog_sync_demo_folio against the FOLIO emulator.
    """
    if ils not in DEMO_VENDORS:
        print(f"catalog-sync demo: no demo for ILS {ils!r} (known: koha, folio)", file=sys.stderr)
        return 2
    vendor = DEMO_VENDORS[ils]
    dag_id = f"catalog_sync_{vendor}"
    source = (file or SAMPLE_FILE).resolve()
    if not source.is_file():
        print(f"catalog-sync demo: cannot read {source}: no such file", file=sys.stderr)
        return 2
    layout.root.mkdir(parents=True, exist_ok=True)
    print(f"runtime folder: {layout.root}")
    services = ensure_services(layout, folio=ils == "folio")
    print(
        f"redis: {services.redis_url}   ILS emulator: {services.folio_url or services.emulator_url}"
    )
    print("preparing the Airflow home (SQLite) and provisioning ils_default ...")
    prepare_airflow(layout)
    provision(layout, services)
    laid = lay_demo_file(layout, source, vendor)
    print(f"vendor file: {laid} ({laid.stat().st_size:,} bytes)")
    log_path = layout.root / "airflow" / "demo-last.log"
    started = time.time()
    print(f"running {dag_id} with `airflow dags test` (log: {log_path}) ...")
    with log_path.open("w") as log:
        proc = subprocess.run(
            [airflow_bin(), "dags", "test", dag_id, "-c", json.dumps({"force": True})],
            env=airflow_env(layout),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    report = layout.reports / vendor / "latest" / "report.txt"
    if proc.returncode != 0 or not report.is_file() or report.stat().st_mtime < started:
        print(f"\nthe demo run FAILED:\n{_failure_excerpt(log_path)}")
        print(f"full log: {log_path}", file=sys.stderr)
        return 1
    print()
    print(report.read_text(encoding="utf-8"), end="")
    return 0


# The last line of a Python traceback: "package.module.SomeError: what went wrong".
_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Unavailable)): (.+)$")


def _failure_excerpt(log_path: Path, lines: int = 25) -> str:
    """The failing tasks' own error messages (deduplicated), else the end of the log."""
    text = log_path.read_text(errors="replace").splitlines()
    messages: list[str] = []
    for line in text:
        match = _EXCEPTION_LINE.match(line.strip())
        if match and match.group(2) not in messages:
            messages.append(match.group(2))
    return "\n".join(f"  {m}" for m in messages) if messages else "\n".join(text[-lines:])
