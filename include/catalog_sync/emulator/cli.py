"""`catalog-sync emulator`: serve the Koha-compatible ILS emulator on loopback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from catalog_sync.emulator.faults import FaultProfileError, parse_fault_profile
from catalog_sync.emulator.state import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_TOKEN_TTL,
    DEFAULT_USER,
    EmulatorConfig,
)

_FAULTS_HELP = (
    "fault profile: a name (none, flaky, unstable, slow, down) and/or key=value pairs, comma "
    "separated: error_rate=0.2, error_statuses=500/502/503, drop_rate=0.05, drop_after_share=0.5, "
    "slow_rate=0.1, slow_seconds=0.5, down_for=30, down_mode=503|drop, bad_answer_rate=0.1, "
    "bad_answer=html|empty|garbled, bad_answer_methods=GET/POST, seed=1 "
    "(default: none). Change it at run time with POST /_emulator/faults."
)


_EPILOG = (
    "Koha routes: /api/v1/oauth/token, /api/v1/biblios[/{id}[/items[/{item_id}]]], "
    "/api/v1/items[/{id}]. Emulator-only extensions (not Koha): 429 rate limiting, fault "
    "injection, the x-catalog-sync-fence header, and control and audit routes (never "
    "rate-limited or faulted): GET /_emulator/health, GET /_emulator/identity, "
    "GET /_emulator/writes[?since=SEQ], "
    "GET /_emulator/counters, "
    "GET /_emulator/biblios, GET|POST|DELETE /_emulator/faults (JSON fault profile, plus "
    "rate_limit and burst), POST /_emulator/tokens/expire, POST /_emulator/reset."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="catalog-sync emulator",
        description="A Koha-compatible ILS emulator (REST API subset) with a write log at "
        "/_emulator/writes and fault injection for tests and demos.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog=_EPILOG,
    )
    parser.add_argument(
        "--flavour", choices=("koha", "folio"), default="koha", help="ILS to emulate"
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="SQLite file that keeps the catalog across restarts (default: in memory)",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="requests/s before answering 429 with Retry-After (default: no limit)",
    )
    parser.add_argument(
        "--burst",
        type=float,
        default=None,
        help="token bucket size (default: one second's worth of --rate-limit)",
    )
    parser.add_argument("--faults", default="none", help=_FAULTS_HELP)
    parser.add_argument("--user", default=DEFAULT_USER, help="Basic auth user")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="Basic auth password")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help="OAuth2 client id")
    parser.add_argument(
        "--client-secret", default=DEFAULT_CLIENT_SECRET, help="OAuth2 client secret"
    )
    parser.add_argument(
        "--readonly-user", default=None, help="a Basic auth user without write permission (403)"
    )
    parser.add_argument("--readonly-password", default="", help="its password")
    parser.add_argument(
        "--token-ttl", type=int, default=DEFAULT_TOKEN_TTL, help="OAuth2 token lifetime, seconds"
    )
    parser.add_argument("--page-size", type=int, default=20, help="default _per_page")
    parser.add_argument(
        "--syspref",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Koha system preference: RESTBasicAuth=0|1, RESTOAuth2ClientCredentials=0|1, "
        "autoControlNumber=OFF|biblionumber (defaults 1, 1, OFF)",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    parser.add_argument(
        "--identity",
        default=None,
        help="token GET /_emulator/identity answers with, so whoever started this emulator can "
        "tell it from another one on the same port",
    )
    return parser


_SYSPREFS = {
    "RESTBasicAuth": ("basic_auth", {"0": False, "1": True}),
    "RESTOAuth2ClientCredentials": ("oauth2_client_credentials", {"0": False, "1": True}),
    "autoControlNumber": ("auto_control_number", {"OFF": False, "biblionumber": True}),
}


def parse_sysprefs(pairs: list[str]) -> dict[str, bool]:
    """--syspref NAME=VALUE pairs as EmulatorConfig settings; ValueError naming a bad one."""
    out: dict[str, bool] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in _SYSPREFS or value not in _SYSPREFS[name][1]:
            known = ", ".join(f"{n}={'|'.join(v)}" for n, (_, v) in _SYSPREFS.items())
            raise ValueError(f"unknown --syspref {pair!r} (known: {known})")
        setting, values = _SYSPREFS[name]
        out[setting] = values[value]
    return out


def emulator_main(argv: list[str]) -> int:
    """Run the emulator until interrupted; 2 on bad arguments."""
    if _flavour(argv) == "folio":
        from catalog_sync.emulator.folio.cli import folio_main

        return folio_main(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        faults = parse_fault_profile(args.faults)
    except FaultProfileError as exc:
        print(f"catalog-sync emulator: {exc}", file=sys.stderr)
        return 2
    try:
        sysprefs = parse_sysprefs(args.syspref)
    except ValueError as exc:
        print(f"catalog-sync emulator: {exc}", file=sys.stderr)
        return 2
    if args.rate_limit is not None and args.rate_limit <= 0:
        print("catalog-sync emulator: --rate-limit must be positive", file=sys.stderr)
        return 2
    config = EmulatorConfig(
        db=args.db,
        rate_limit=args.rate_limit,
        burst=args.burst,
        faults=faults,
        user=args.user,
        password=args.password,
        client_id=args.client_id,
        client_secret=args.client_secret,
        readonly_user=args.readonly_user,
        readonly_password=args.readonly_password,
        token_ttl=args.token_ttl,
        page_size=args.page_size,
        identity=args.identity,
        **sysprefs,
    )
    from catalog_sync.emulator.app import build_app
    from catalog_sync.emulator.serve import serve

    return serve(build_app(config), args)


def _flavour(argv: list[str]) -> str:
    """--flavour alone, before the flavour's own options are known."""
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--flavour", default="koha")
    return str(probe.parse_known_args(argv)[0].flavour)


if __name__ == "__main__":
    raise SystemExit(emulator_main(sys.argv[1:]))
