"""`catalog-sync emulator --flavour folio`: serve the FOLIO-compatible emulator on loopback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from catalog_sync.emulator.cli import _FAULTS_HELP
from catalog_sync.emulator.faults import FaultProfileError, parse_fault_profile
from catalog_sync.emulator.folio.state import (
    DEFAULT_ACCESS_TTL,
    DEFAULT_REFRESH_TTL,
    DEFAULT_TENANT,
    FolioConfig,
)
from catalog_sync.emulator.state import DEFAULT_PASSWORD, DEFAULT_USER

_EPILOG = (
    "FOLIO routes: /authn/login-with-expiry, /authn/refresh, /authn/logout; "
    "/instance-storage/instances[/{id}], /instance-storage/batch/synchronous?upsert= (and "
    "-unsafe, refused 413 as without DB_ALLOW_SUPPRESS_OPTIMISTIC_LOCKING); the same for "
    "/holdings-storage/holdings and /item-storage/items; /source-storage/snapshots, "
    "/source-storage/records[/{id}[/formatted]], /source-storage/source-records, "
    "/source-storage/batch/records. Control and audit as in the Koha mode (/_emulator/...), "
    "plus POST /_emulator/tokens/revoke."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="catalog-sync emulator --flavour folio",
        description="A FOLIO-compatible ILS emulator (Okapi tenancy, mod-login, inventory "
        "storage, source record storage) with a write log and fault injection.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog=_EPILOG,
    )
    parser.add_argument("--flavour", choices=("folio",), default="folio", help="ILS to emulate")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: in memory)")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests/s before 429")
    parser.add_argument("--burst", type=float, default=None, help="token bucket size")
    parser.add_argument("--faults", default="none", help=_FAULTS_HELP)
    parser.add_argument(
        "--tenant",
        action="append",
        default=None,
        help=f"a known tenant (default: {DEFAULT_TENANT})",
    )
    parser.add_argument("--user", default=DEFAULT_USER, help="mod-login user")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="its password")
    parser.add_argument("--access-ttl", type=int, default=DEFAULT_ACCESS_TTL, help="seconds")
    parser.add_argument("--refresh-ttl", type=int, default=DEFAULT_REFRESH_TTL, help="seconds")
    parser.add_argument(
        "--max-batch", type=int, default=1000, help="records per batch request before 413"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    parser.add_argument(
        "--identity",
        default=None,
        help="token GET /_emulator/identity answers with, as in the Koha mode",
    )
    return parser


def folio_main(argv: list[str]) -> int:
    """Run the FOLIO emulator until interrupted; 2 on bad arguments."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        faults = parse_fault_profile(args.faults)
    except FaultProfileError as exc:
        print(f"catalog-sync emulator: {exc}", file=sys.stderr)
        return 2
    if args.rate_limit is not None and args.rate_limit <= 0:
        print("catalog-sync emulator: --rate-limit must be positive", file=sys.stderr)
        return 2
    config = FolioConfig(
        db=args.db,
        rate_limit=args.rate_limit,
        burst=args.burst,
        faults=faults,
        tenants=tuple(args.tenant or (DEFAULT_TENANT,)),
        user=args.user,
        password=args.password,
        access_ttl=args.access_ttl,
        refresh_ttl=args.refresh_ttl,
        max_batch=args.max_batch,
        identity=args.identity,
    )
    from catalog_sync.emulator.folio.app import build_folio_app
    from catalog_sync.emulator.serve import serve

    return serve(build_folio_app(config), args)
