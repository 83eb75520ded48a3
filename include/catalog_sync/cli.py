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
    args = parser.parse_args(argv)
    return run_demo(layout(), args.file)


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
