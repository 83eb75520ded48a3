"""`catalog-sync` (also `python -m catalog_sync`): the operator's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

USAGE = """catalog-sync COMMAND [ARGS]

commands:
  validate PATH [--report FILE.json] [--rejects FILE]   check a vendor file, record by record
  normalize IN OUT                                      write accepted records, UTF-8 NFC
  emulator --port N [--db PATH] [--rate-limit R] [--faults PROFILE]
                                                        run the ILS emulator
  demo [--file PATH]                                    the `make demo` run
  airflow-ui [--port N]                                 the `make airflow` Airflow UI
  devstack up|down                                      start/stop the local Redis and ILS emulator
  cluster up [--workers N] [--concurrency C] [--postgres-url URL] [--redis-url URL]
             [--api-host H] [--api-port P] [--storage-url URL] [--storage-conn-id ID]
                                                        Airflow on CeleryExecutor, N workers
  cluster worker [--name N] [same settings as up]       one more worker, on this host
  cluster down|status                                   stop it / show each component
  cluster compose [--write]                             print (write) docker-compose.yaml
  report [--vendor V]                                   print the latest run report of a vendor
"""


def _validate(argv: list[str]) -> int:
    from catalog_sync.ingest_cli import validate_main

    return validate_main(argv)


def _normalize(argv: list[str]) -> int:
    from catalog_sync.ingest_cli import normalize_main

    return normalize_main(argv)


def _emulator(argv: list[str]) -> int:
    from catalog_sync.emulator.cli import emulator_main

    return emulator_main(argv)


def _demo(argv: list[str]) -> int:
    from catalog_sync.devstack import run_demo
    from catalog_sync.paths import layout

    parser = argparse.ArgumentParser(prog="catalog-sync demo")
    parser.add_argument("--file", type=Path, help="vendor file to load instead of the sample")
    parser.add_argument("--ils", default="koha", choices=("koha", "folio"), help="ILS to load into")
    args = parser.parse_args(argv)
    return run_demo(layout(), args.file, args.ils)


def _airflow_ui(argv: list[str]) -> int:
    import os

    from catalog_sync.embedded import run_airflow_ui
    from catalog_sync.paths import layout

    parser = argparse.ArgumentParser(prog="catalog-sync airflow-ui")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("AIRFLOW__API__PORT", "8080")),
        help="UI and API port; task processes follow it (default: $AIRFLOW__API__PORT or 8080)",
    )
    args = parser.parse_args(argv)
    return run_airflow_ui(layout(), args.port)


def _devstack(argv: list[str]) -> int:
    from catalog_sync.devstack import ensure_services, stop_services
    from catalog_sync.paths import layout

    parser = argparse.ArgumentParser(prog="catalog-sync devstack")
    parser.add_argument("action", choices=["up", "down"])
    args = parser.parse_args(argv)
    if args.action == "up":
        services = ensure_services(layout())
        print(f"redis: {services.redis_url}\nemulator: {services.emulator_url}")
    else:
        print("stopped: " + (", ".join(stop_services(layout())) or "nothing was running"))
    return 0


def _cluster(argv: list[str]) -> int:
    import os

    from catalog_sync import deploy
    from catalog_sync.paths import layout

    parser = argparse.ArgumentParser(prog="catalog-sync cluster")
    parser.add_argument("action", choices=["up", "worker", "down", "status", "compose"])
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=deploy.WORKER_CONCURRENCY,
        help=f"task processes per worker (default {deploy.WORKER_CONCURRENCY})",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("POSTGRES_URL") or None,
        help="metadata DB (default $POSTGRES_URL, else the Postgres on 127.0.0.1:5432)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL") or None,
        help="Celery broker (default $REDIS_URL, else this checkout's own redis-server)",
    )
    parser.add_argument("--api-host", default="127.0.0.1", help="api-server address workers use")
    parser.add_argument("--api-port", type=int, default=8080)
    parser.add_argument("--storage-url", help="run storage shared by the workers (fsspec URL)")
    parser.add_argument("--storage-conn-id", help="the Airflow Connection of --storage-url")
    parser.add_argument("--write", action="store_true", help="compose: write docker-compose.yaml")
    parser.add_argument("--name", help="worker: its Celery hostname (default worker@HOSTNAME)")
    args = parser.parse_args(argv)
    home = layout()
    if args.action == "compose":
        from catalog_sync.compose import COMPOSE_FILE, render

        if args.write:
            COMPOSE_FILE.write_text(render())
            print(f"wrote {COMPOSE_FILE}")
        else:
            print(render(), end="")
        return 0

    from catalog_sync import cluster

    if args.action == "down":
        print("stopped: " + (", ".join(cluster.cluster_down(home)) or "nothing was running"))
        return 0
    if args.action == "status":
        return cluster.run_cluster_status(home)
    try:
        postgres_url = cluster.resolve_postgres(args.postgres_url)
    except cluster.ClusterError as exc:
        print(f"catalog-sync cluster up: {exc}", file=sys.stderr)
        return 2
    settings = deploy.ClusterSettings(
        postgres_url=postgres_url,
        redis_url=args.redis_url or "",
        api_host=args.api_host,
        api_port=args.api_port,
        workers=args.workers,
        worker_concurrency=args.concurrency,
        storage_url=args.storage_url,
        storage_conn_id=args.storage_conn_id,
    )
    if args.action == "worker":
        if not args.redis_url:
            print("catalog-sync cluster worker: give the broker: --redis-url", file=sys.stderr)
            return 2
        import socket

        name = args.name or f"worker@{socket.gethostname()}"
        return cluster.run_cluster_worker(home, settings, name)
    return cluster.run_cluster_up(home, settings)


def _report(argv: list[str]) -> int:
    from catalog_sync.paths import layout

    parser = argparse.ArgumentParser(prog="catalog-sync report")
    parser.add_argument("--vendor", default="demo")
    args = parser.parse_args(argv)
    path = layout().reports / args.vendor / "latest" / "report.txt"
    if not path.is_file():
        print(f"no run report for vendor {args.vendor!r} yet ({path})", file=sys.stderr)
        return 2
    print(path.read_text(encoding="utf-8"), end="")
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "validate": _validate,
    "normalize": _normalize,
    "emulator": _emulator,
    "demo": _demo,
    "airflow-ui": _airflow_ui,
    "devstack": _devstack,
    "cluster": _cluster,
    "report": _report,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"catalog-sync: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr, end="")
        return 2
    return command(args[1:])
